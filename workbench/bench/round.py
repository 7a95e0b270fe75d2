"""Benchmarks of the loop: a whole retrain round, and claim/submit latency while rounds run.

Labels are written straight into the database in the set-up (as if annotators had agreed), so the
figures measure the round, not the labeling.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import bindparam, update
from sqlmodel import Session, col

from workbench.bench.training import BENCH_CLASSES, synthetic_corpus
from workbench.db.bulk import insert_items
from workbench.db.engine import make_engine
from workbench.db.models import Item
from workbench.domain import Actor
from workbench.services import Workbench
from workbench.stress import Behaviour, run_stress
from workbench.worker import WORKER_NICENESS

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable

N_EVAL = 1_000
OPERATOR = Actor.operator()  # rounds run as the local operator, as the worker runs them


def seed_text_project(wb: Workbench, name: str, n_pool: int, n_labels: int, seed: int = 0) -> None:
    """A text project of n_pool synthetic pool items plus N_EVAL eval items; n_labels pool items
    and every eval item carry a final label."""
    texts, labels = synthetic_corpus(n_pool + N_EVAL, seed)
    # TF-IDF: the round's figures are TF-IDF's (embedding 10^5 texts here takes an hour, see bench featurize).
    project = wb.projects.create(
        name,
        "text",
        BENCH_CLASSES,
        strategy="margin",
        settings={"featurizer": {"method": "tfidf"}},
        actor=Actor.operator(),
    )
    rng = np.random.default_rng(seed)
    keys = rng.random(len(texts))
    with Session(wb.engine) as session, session.begin():
        insert_items(
            session,
            project.id,
            ((f"x{i}", {"text": text}, "eval" if i >= n_pool else "pool", keys[i]) for i, text in enumerate(texts)),
        )
        _mark_final(session, project.id, [*range(n_labels), *range(n_pool, n_pool + N_EVAL)], labels)


def add_labels(wb: Workbench, name: str, start: int, count: int, seed: int = 0) -> None:
    """Mark `count` more pool items final (a round's worth of new labels)."""
    _, labels = synthetic_corpus(start + count, seed)
    project = wb.projects.get(name, actor=Actor.operator())
    with Session(wb.engine) as session, session.begin():
        _mark_final(session, project.id, range(start, start + count), labels)


# As if two annotators had agreed on the item's label.
_FINAL = (
    update(Item)
    .where(col(Item.project_id) == bindparam("b_project_id"), col(Item.external_id) == bindparam("b_external_id"))
    .values(state="final", final_label=bindparam("b_label"), n_annotations=2, slots_taken=2)
)


def _mark_final(session: Session, project_id: int, indices: Iterable[int], labels: np.ndarray) -> None:
    """Give the items x{i} for i in indices their final label labels[i], in one executemany."""
    session.connection().execute(
        _FINAL, [{"b_project_id": project_id, "b_external_id": f"x{i}", "b_label": str(labels[i])} for i in indices]
    )


def bench_round(
    n_pool: int = 100_000, n_labels: int = 5_000, database_url: str | None = None, mlflow_pairs: int = 0
) -> dict:
    """Wall time of a whole round (version, train, evaluate, rescore, ranking live): the first round
    (features computed) and the next ones (features from the cache, 100 new labels each).

    With ``mlflow_pairs``, that many more pairs of rounds follow, each a round with MLflow tracking
    off then one with it on (a local file store), 100 new labels before each: the ratio of their
    medians is what tracking adds to a round, measured in the same run.
    """
    home = Path(tempfile.mkdtemp(prefix="workbench-round-"))
    os.environ["WORKBENCH_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    wb = Workbench(make_engine(database_url or f"sqlite:///{home / 'round.db'}"))
    seed_text_project(wb, "round-bench", n_pool, n_labels)
    import skops.io  # noqa: F401 - a worker imports this once at start (see workbench.worker)

    rounds: list[dict[str, Any]] = []
    labeled = n_labels

    def one_round(tracked: bool) -> dict:
        nonlocal labeled
        if rounds:
            add_labels(wb, "round-bench", labeled, 100)
            labeled += 100
        if tracked:
            os.environ["MLFLOW_TRACKING_URI"] = (home / "mlruns").as_uri()
        started = time.perf_counter()
        try:
            result = wb.rounds.run_retrain("round-bench", actor=OPERATOR)
        finally:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        entry = {
            "wall_s": time.perf_counter() - started,
            "n_train": result.n_train,
            "accuracy": result.metrics.accuracy if result.metrics else None,
            "timings": result.timings,
            "strategy": result.strategy,
            "mlflow": result.tracking.describe() if result.tracking else None,
        }
        if tracked and (result.tracking is None or not result.tracking.logged):
            outcome = result.tracking.describe() if result.tracking else "no tracking outcome"
            raise RuntimeError(f"the tracked round was not logged: {outcome}")
        rounds.append(entry)
        return entry

    for _ in range(4):
        one_round(False)
    warm = [r["wall_s"] for r in rounds[1:]]
    report = {
        "database": wb.engine.dialect.name,
        "n_pool": n_pool,
        "n_eval": N_EVAL,
        "n_labels": n_labels,
        "first_round_s": rounds[0]["wall_s"],
        "warm_round_s_median": float(np.median(warm)),
        "warm_round_s_max": max(warm),
        "rounds": rounds,
    }
    if mlflow_pairs:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for it for file:// stores
        started = time.perf_counter()
        import matplotlib.figure  # noqa: F401 - a worker pays these imports once, on its first tracked round
        import mlflow  # noqa: F401

        report["mlflow_import_s"] = time.perf_counter() - started
        pairs = [(one_round(False), one_round(True)) for _ in range(mlflow_pairs)]
        off = float(np.median([a["wall_s"] for a, _ in pairs]))
        on = float(np.median([b["wall_s"] for _, b in pairs]))
        report["mlflow"] = {
            "pairs": mlflow_pairs,
            "store": "file",
            "off_s_median": off,
            "on_s_median": on,
            "ratio": on / off,
            "logging_s_median": float(np.median([b["timings"]["mlflow"] for _, b in pairs])),
            # The logging step's share of its own round: steadier than the ratio on a busy machine.
            "logging_share_median": float(np.median([b["timings"]["mlflow"] / b["wall_s"] for _, b in pairs])),
        }
    return report


def _round_loop(url: str, home: str, project: str, stop_file: str, count_file: str) -> None:
    os.nice(WORKER_NICENESS)  # as `workbench worker` does
    os.environ["WORKBENCH_HOME"] = home
    wb = Workbench(make_engine(url, migrate=False))
    done = 0
    while not os.path.exists(stop_file):
        wb.rounds.run_retrain(project, actor=OPERATOR)
        done += 1
        Path(count_file).write_text(str(done))


def bench_claims(
    *,
    pool: int = 1_000_000,
    annotators: int = 16,
    submits: int = 100,
    database_url: str | None = None,
    think_ms: tuple[float, float] = (20.0, 50.0),
    during_rounds: bool = False,
    round_pool: int = 100_000,
    round_labels: int = 5_000,
) -> dict:
    """Claim and submit latency with `annotators` processes on a `pool`-item project; idle, and
    (during_rounds) again while another process runs retrain rounds back to back on a text project."""
    home = Path(tempfile.mkdtemp(prefix="workbench-claims-"))
    os.environ["WORKBENCH_HOME"] = str(home)
    url = database_url or f"sqlite:///{home / 'claims.db'}"
    behaviour = Behaviour(
        think_ms=think_ms, p_skip=0.0, p_abandon=0.0, p_double_submit=0.0, lease_ttl_s=600, max_submits=submits
    )

    def phase() -> dict:
        report = run_stress(annotators=annotators, items=pool, database_url=url, behaviour=behaviour)
        return {key: report[key] for key in ("claim_ms", "submit_ms", "submits_per_s", "wall_s")} | {
            "invariants_ok": report["invariants"]["ok"]
        }

    result: dict[str, Any] = {
        "pool": pool,
        "annotators": annotators,
        "submits_per_annotator": submits,
        "think_ms": think_ms,
        "idle": phase(),
    }
    if during_rounds:
        wb = Workbench(make_engine(url))
        seed_text_project(wb, "rounds-under-load", round_pool, round_labels)
        wb.rounds.run_retrain("rounds-under-load", actor=OPERATOR)  # features cached: later rounds are the steady state
        stop, count = home / "stop", home / "rounds"
        looper = mp.get_context("spawn").Process(
            target=_round_loop, args=(url, str(home), "rounds-under-load", str(stop), str(count))
        )
        looper.start()
        try:
            deadline = time.monotonic() + 300
            while not count.exists() and looper.is_alive() and time.monotonic() < deadline:
                time.sleep(0.1)  # measure once rounds are really running, not while the process starts
            result["during_rounds"] = phase()
        finally:
            stop.touch()
            looper.join()
        result["during_rounds"]["rounds_completed"] = int(count.read_text()) if count.exists() else 0
        idle, busy = result["idle"], result["during_rounds"]
        result["p95_ratio"] = {
            kind: busy[f"{kind}_ms"]["p95"] / idle[f"{kind}_ms"]["p95"] for kind in ("claim", "submit")
        }
    return result


def add_round_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pool", type=int, default=100_000, help="pool items (default 100000)")
    parser.add_argument("--labels", type=int, default=5_000, help="labeled pool items (default 5000)")
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    parser.add_argument(
        "--mlflow",
        type=int,
        nargs="?",
        const=5,
        default=0,
        metavar="PAIRS",
        help="then PAIRS (default 5) pairs of rounds with MLflow tracking off and on (a local file store)",
    )
    parser.add_argument("--json", type=Path, help="write the figures here")


def run_round(args: argparse.Namespace) -> int:
    result = bench_round(args.pool, args.labels, args.db, mlflow_pairs=args.mlflow)
    print(
        f"{result['database']}: {result['n_pool']} pool items, {result['n_labels']} labels, "
        f"{result['n_eval']} eval items"
    )
    print(f"first round (features computed): {result['first_round_s']:.2f} s")
    print(
        f"next rounds (features cached):   median {result['warm_round_s_median']:.2f} s, "
        f"max {result['warm_round_s_max']:.2f} s"
    )
    for index, r in enumerate(result["rounds"]):
        steps = ", ".join(f"{k} {v:.2f}" for k, v in r["timings"].items())
        print(f"  round {index + 1}: {r['wall_s']:.2f} s ({steps}); eval accuracy {r['accuracy']:.3f}")
    if "mlflow" in result:
        m = result["mlflow"]
        print(
            f"MLflow ({m['pairs']} pairs of rounds, local file store; "
            f"import mlflow once {result['mlflow_import_s']:.2f} s):"
        )
        print(
            f"  tracking off: median {m['off_s_median']:.2f} s; on: median {m['on_s_median']:.2f} s "
            f"(logging {m['logging_s_median']:.2f} s, {m['logging_share_median']:.1%} of its round); "
            f"on/off {m['ratio']:.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


def add_claims_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pool", type=int, default=1_000_000, help="pool items (default 1000000)")
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--submits", type=int, default=100, help="submits per annotator (default 100)")
    parser.add_argument("--think-ms", type=float, nargs=2, default=(20.0, 50.0), metavar=("MIN", "MAX"))
    parser.add_argument(
        "--during-rounds",
        action="store_true",
        help="measure again while another process runs retrain rounds back to back",
    )
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--json", type=Path, help="write the figures here")


def run_claims(args: argparse.Namespace) -> int:
    result = bench_claims(
        pool=args.pool,
        annotators=args.annotators,
        submits=args.submits,
        database_url=args.db,
        think_ms=tuple(args.think_ms),
        during_rounds=args.during_rounds,
    )
    phases = [("idle", result["idle"])]
    if "during_rounds" in result:
        phases.append((f"during {result['during_rounds']['rounds_completed']} rounds", result["during_rounds"]))
    print(f"{args.annotators} annotators, {args.pool} pool items, think {args.think_ms[0]:g}-{args.think_ms[1]:g} ms")
    print(f"{'phase':<22}{'claim p50':>10}{'claim p95':>10}{'submit p50':>11}{'submit p95':>11}{'submits/s':>10}")
    for name, phase in phases:
        print(
            f"{name:<22}{phase['claim_ms']['p50']:>10.2f}{phase['claim_ms']['p95']:>10.2f}"
            f"{phase['submit_ms']['p50']:>11.2f}{phase['submit_ms']['p95']:>11.2f}{phase['submits_per_s']:>10.1f}"
        )
    if "p95_ratio" in result:
        print(
            f"p95 during rounds / idle: claim {result['p95_ratio']['claim']:.2f}x, "
            f"submit {result['p95_ratio']['submit']:.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0
