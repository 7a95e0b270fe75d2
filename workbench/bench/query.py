"""Query benchmark: score-and-select a synthetic pool with the workbench and with modAL.

    workbench bench query --pool 1000000 --dim 768 --classes 2 --json bench_768.json
    python -m workbench.bench.query --pool 1000000 --dim 64 --classes 10 --json bench_64.json

For margin, entropy and 5-member vote-entropy QBC it measures, in one run: the workbench's
end-to-end ``score_pool`` (linear heads read straight from their weights), modAL's query function
on equivalent scikit-learn ``LogisticRegression`` models (same weights set as ``coef_`` /
``intercept_``), and the floor, one plain float32 matmul of the pool with the same weights. Times
are the best of ``--repeat`` runs, interleaved so load changes hit all three alike; peak extra
memory is measured by tracemalloc in a separate run (tracing starts after the pool exists).
A ``diverse_batch`` row times a ranked diverse batch (``margin_batch``) from the same pool;
modAL's ``uncertainty_batch_sampling`` is not run there: with nothing labeled it builds the
N x N distance matrix (``select_cold_start_instance``), 8 TB at N = 10^6. A ``margin_diversity``
row times the margin-weighted k-center strategy ranking ``--rank-n`` items (default 2,000, what a
round keeps), the first 256 of them spread out, as ``score_pool`` runs it in a round.

    workbench bench query --pool 1000000 --dim 384 --classes 2 --repeat 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from strategies import LinearHead, QueryResult, score_pool
from workbench.errors import WorkbenchError

BENCHED_STRATEGIES = ("margin", "entropy", "qbc_vote")
DIVERSE_BATCH_STRATEGY = "margin_batch"
MARGIN_DIVERSITY_STRATEGY = "margin_diversity"
RANKING_LENGTH = 2000  # what the workbench keeps per round (services.rounds.RANK_SIZE)
_POOL_GENERATION_ROWS = 65_536


def make_pool(pool: int, dim: int, *, rng: np.random.Generator) -> np.ndarray:
    """A standard-normal float32 pool of shape (pool, dim), generated in float32 chunks."""
    features = np.empty((pool, dim), dtype=np.float32)
    for start in range(0, pool, _POOL_GENERATION_ROWS):
        stop = min(start + _POOL_GENERATION_ROWS, pool)
        features[start:stop] = rng.standard_normal((stop - start, dim), dtype=np.float32)
    return features


def make_head(dim: int, classes: int, *, rng: np.random.Generator) -> LinearHead:
    """A random linear head with logits of unit scale on a standard-normal pool (one logit if binary)."""
    outputs = 1 if classes == 2 else classes
    weights = rng.standard_normal((dim, outputs), dtype=np.float32) / np.float32(np.sqrt(dim))
    biases = rng.standard_normal(outputs, dtype=np.float32) * np.float32(0.1)
    return LinearHead(weights, biases)


def sklearn_twin(head: LinearHead, classes: int):
    """A fitted-looking ``LogisticRegression`` computing the same probabilities as ``head``."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression()
    model.coef_ = head.weights.T.astype(np.float64)
    model.intercept_ = head.biases.astype(np.float64)
    model.classes_ = np.arange(classes)
    model.n_features_in_ = head.n_features
    return model


ModalQuery = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]


def modal_query(strategy: str, models: list) -> ModalQuery:
    """modAL's query function for ``strategy``, bound to the scikit-learn twin(s)."""
    from modAL.disagreement import vote_entropy_sampling
    from modAL.models import ActiveLearner, Committee
    from modAL.uncertainty import entropy_sampling, margin_sampling

    if strategy == "margin":
        return lambda pool, n: margin_sampling(models[0], pool, n_instances=n)
    if strategy == "entropy":
        return lambda pool, n: entropy_sampling(models[0], pool, n_instances=n)
    committee = Committee([ActiveLearner(estimator=model) for model in models])
    return lambda pool, n: vote_entropy_sampling(committee, pool, n_instances=n)


def as_workbench_scores(strategy: str, modal_scores: np.ndarray) -> np.ndarray:
    """modAL's scores in the workbench's convention (margin: ``1 - margin``; others unchanged)."""
    return 1 - modal_scores if strategy == "margin" else modal_scores


def peak_extra_bytes(function: Callable[[], Any]) -> int:
    """Peak bytes allocated (numpy included) while ``function`` runs, above what existed before."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        function()
        return tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()


def best_times(functions: dict[str, Callable[[], Any]], repeat: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Best wall time of each function over ``repeat`` interleaved rounds, and its last result."""
    best = {name: float("inf") for name in functions}
    results: dict[str, Any] = {}
    for _ in range(repeat):
        for name, function in functions.items():
            started = time.perf_counter()
            results[name] = function()
            best[name] = min(best[name], time.perf_counter() - started)
    return best, results


def run_query_bench(
    *,
    pool: int,
    dim: int,
    classes: int,
    n: int = 100,
    members: int = 5,
    batch: int = 100,
    repeat: int = 3,
    seed: int = 0,
    blas_threads: int | None = None,
    rank_n: int = RANKING_LENGTH,
) -> list[dict[str, Any]]:
    """Measure the workbench against modAL and the matmul floor; one row per strategy.

    ``blas_threads`` caps the BLAS thread pools (threadpoolctl) for all three alike; None leaves
    the libraries' defaults. On a small machine shared with other processes, OpenBLAS workers
    that spin after each call compete with the element-wise work between calls, which hurts a
    chunked loop far more than one big matmul, so the bench can be run both ways.

    Returns
    -------
    list of dict
        Rows with ``strategy, pool, dim, classes, seconds_workbench, seconds_modal,
        seconds_floor, peak_bytes_workbench, peak_bytes_modal``, plus ``pool_bytes``, ``n``,
        ``members``, ``blas_threads`` and, where modAL ran, ``overlap_with_modal`` (share of
        the workbench's picks modAL also picked) and ``scores_match_modal`` (the chosen scores
        agree; with vote entropy's many ties the items themselves may differ).
    """
    if pool < 1 or dim < 1 or members < 2 or repeat < 1:
        raise WorkbenchError("--pool, --dim and --repeat must be at least 1, --members at least 2")
    if classes < 2:
        raise WorkbenchError(f"--classes must be at least 2, got {classes}")
    if not 1 <= n <= pool or not 1 <= batch <= pool:
        raise WorkbenchError(f"--n and --batch must lie between 1 and the pool size ({pool})")
    if blas_threads is not None and blas_threads < 1:
        raise WorkbenchError(f"--blas-threads must be at least 1, got {blas_threads}")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=blas_threads, user_api="blas"):
        return _measure(
            pool=pool,
            dim=dim,
            classes=classes,
            n=n,
            members=members,
            batch=batch,
            repeat=repeat,
            seed=seed,
            blas_threads=blas_threads,
            rank_n=min(rank_n, pool),
        )


def _measure(
    *,
    pool: int,
    dim: int,
    classes: int,
    n: int,
    members: int,
    batch: int,
    repeat: int,
    seed: int,
    blas_threads: int | None,
    rank_n: int = RANKING_LENGTH,
) -> list[dict[str, Any]]:
    """The measurements of :func:`run_query_bench`, once its arguments are checked."""
    rng = np.random.default_rng(seed)
    features = make_pool(pool, dim, rng=rng)
    heads = [make_head(dim, classes, rng=rng) for _ in range(members)]
    twins = [sklearn_twin(head, classes) for head in heads]
    stacked_weights = np.concatenate([head.weights for head in heads], axis=1)
    common = {
        "pool": pool,
        "dim": dim,
        "classes": classes,
        "pool_bytes": features.nbytes,
        "n": n,
        "blas_threads": blas_threads,
    }

    rows = []
    for strategy in BENCHED_STRATEGIES:
        committee = strategy.startswith("qbc")
        model = heads if committee else heads[0]
        floor_weights = stacked_weights if committee else heads[0].weights
        query_modal = modal_query(strategy, twins if committee else twins[:1])

        def workbench(model=model, strategy=strategy) -> QueryResult:
            return score_pool(features, model, strategy, n, rng=np.random.default_rng(seed))

        def floor(w: np.ndarray = floor_weights) -> np.ndarray:
            return features @ w

        def modal(q: ModalQuery = query_modal) -> tuple[np.ndarray, np.ndarray]:
            return q(features, n)

        seconds, results = best_times(
            {"floor": floor, "workbench": workbench, "modal": modal},
            repeat,
        )
        ours: QueryResult = results["workbench"]
        modal_indices, modal_scores = results.pop("modal")
        modal_scores = as_workbench_scores(strategy, np.asarray(modal_scores, dtype=np.float64))
        rows.append(
            {
                "strategy": strategy,
                **common,
                "members": members if committee else 1,
                "seconds_workbench": seconds["workbench"],
                "seconds_modal": seconds["modal"],
                "seconds_floor": seconds["floor"],
                "peak_bytes_workbench": peak_extra_bytes(workbench),
                "peak_bytes_modal": peak_extra_bytes(modal),
                "overlap_with_modal": len(set(ours.indices.tolist()) & set(np.asarray(modal_indices).tolist())) / n,
                "scores_match_modal": bool(
                    np.allclose(np.sort(ours.scores), np.sort(modal_scores), rtol=1e-4, atol=1e-5)
                ),
            }
        )

    def diverse_batch() -> QueryResult:
        return score_pool(features, heads[0], DIVERSE_BATCH_STRATEGY, batch, rng=np.random.default_rng(seed))

    seconds, _ = best_times({"floor": lambda: features @ heads[0].weights, "workbench": diverse_batch}, repeat)
    rows.append(
        {
            "strategy": "diverse_batch",
            **common,
            "n": batch,
            "members": 1,
            "seconds_workbench": seconds["workbench"],
            "seconds_modal": None,
            "seconds_floor": seconds["floor"],
            "peak_bytes_workbench": peak_extra_bytes(diverse_batch),
            "peak_bytes_modal": None,
        }
    )

    def margin_diversity() -> QueryResult:
        return score_pool(features, heads[0], MARGIN_DIVERSITY_STRATEGY, rank_n, rng=np.random.default_rng(seed))

    seconds, _ = best_times({"floor": lambda: features @ heads[0].weights, "workbench": margin_diversity}, repeat)
    rows.append(
        {
            "strategy": MARGIN_DIVERSITY_STRATEGY,
            **common,
            "n": rank_n,
            "members": 1,
            "seconds_workbench": seconds["workbench"],
            "seconds_modal": None,
            "seconds_floor": seconds["floor"],
            "peak_bytes_workbench": peak_extra_bytes(margin_diversity),
            "peak_bytes_modal": None,
        }
    )
    return rows


def _cell(value: float | None, spec: str, width: int) -> str:
    return f"{'-' if value is None else format(value, spec):>{width}}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a fixed-width text table with the ratios the targets are stated in."""
    header = (
        f"{'strategy':<17}{'pool':>9}{'dim':>5}{'K':>4}  {'workbench s':>11}{'modAL s':>9}{'floor s':>9}"
        f"{'wb/floor':>9}{'modAL/wb':>9}  {'wb peak MB':>10}{'% pool':>7}{'modAL MB':>10}{'overlap':>8}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        workbench_seconds = row["seconds_workbench"]
        modal_seconds = row["seconds_modal"]
        modal_peak = row["peak_bytes_modal"]
        lines.append(
            f"{row['strategy']:<17}{row['pool']:>9}{row['dim']:>5}{row['classes']:>4}  "
            + _cell(workbench_seconds, ".3f", 11)
            + _cell(modal_seconds, ".3f", 9)
            + _cell(row["seconds_floor"], ".3f", 9)
            + _cell(workbench_seconds / row["seconds_floor"], ".2f", 9)
            + _cell(None if modal_seconds is None else modal_seconds / workbench_seconds, ".1f", 9)
            + "  "
            + _cell(row["peak_bytes_workbench"] / 1e6, ".1f", 10)
            + _cell(100 * row["peak_bytes_workbench"] / row["pool_bytes"], ".2f", 7)
            + _cell(None if modal_peak is None else modal_peak / 1e6, ".1f", 10)
            + _cell(row.get("overlap_with_modal"), ".2f", 8)
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``workbench bench query`` (and of ``python -m workbench.bench.query``)."""
    parser.add_argument("--pool", type=int, default=100_000, help="pool size N (default 100000)")
    parser.add_argument("--dim", type=int, default=64, help="feature dimension D (default 64)")
    parser.add_argument("--classes", type=int, default=2, help="number of classes K (default 2)")
    parser.add_argument("--n", type=int, default=100, help="items to select per query (default 100)")
    parser.add_argument("--members", type=int, default=5, help="committee size for QBC (default 5)")
    parser.add_argument("--batch", type=int, default=100, help="diverse batch size (default 100)")
    parser.add_argument(
        "--rank-n",
        type=int,
        default=RANKING_LENGTH,
        help=f"ranking length for margin_diversity (default {RANKING_LENGTH}, as a round)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measurement; best is kept")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pool and the weights")
    parser.add_argument("--blas-threads", type=int, help="cap BLAS threads for every arm (default: no cap)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows to FILE as JSON")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table, write the JSON rows if asked."""
    rows = run_query_bench(
        pool=args.pool,
        dim=args.dim,
        classes=args.classes,
        n=args.n,
        members=args.members,
        batch=args.batch,
        repeat=args.repeat,
        seed=args.seed,
        blas_threads=args.blas_threads,
        rank_n=args.rank_n,
    )
    print(format_table(rows))
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise WorkbenchError(f"cannot write {args.json}: {exc.strerror}") from exc
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workbench.bench.query",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except WorkbenchError as exc:
        print(f"workbench: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
