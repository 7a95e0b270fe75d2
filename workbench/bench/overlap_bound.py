"""An upper bound for adaptive overlap on RTE: the same policy (workbench.domain.overlap.decide)
with every worker's *true* accuracy as its reliability (an oracle no estimate can beat), the
chance-level workers (true accuracy < 0.6) removed after --waste labels each, no gold labels
spent, workers arriving in proportion to their judgment counts (docs/simulate's arrival model),
and either partly labeled items first for everyone or "reliable annotators start new items".

    python -m workbench.bench.overlap_bound [--seeds 3] [--waste 30]

It answers whether the issue's RTE target (>= 0.91 final-label accuracy at <= 1.5 labels per item,
<= 30 % reviewed) is reachable by the policy at all, before estimation error and gold costs.
A review is counted as a right answer (the gold adjudicator).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import pandas as pd

from workbench.domain.overlap import GivenLabel, Next, OverlapPolicy, OverlapSettings, decide

CHANCE = 0.6


def load(path: Path) -> tuple[dict, dict, dict, dict]:
    d = pd.read_csv(path, sep="\t")
    d["ok"] = d.response == d.gold
    by = d.groupby("!amt_worker_ids").ok.agg(["count", "mean"])
    answers = {(w, i): str(r) for w, i, r in zip(d["!amt_worker_ids"], d.orig_id, d.response)}
    judged: dict[str, set] = {}
    for w, i in zip(d["!amt_worker_ids"], d.orig_id):
        judged.setdefault(w, set()).add(i)
    truth = {i: str(g) for i, g in zip(d.orig_id, d.gold)}
    return by["mean"].to_dict(), by["count"].to_dict(), answers, {"judged": judged, "truth": truth}


def run(data, *, confidence: float, max_labels: int, prefer: bool, seed: int, waste: int, n_pool: int) -> dict:
    accuracy, counts, answers, rest = data
    judged, truth = rest["judged"], rest["truth"]
    rng = random.Random(seed)
    pool = set(rng.sample(sorted(truth), n_pool))
    settings = OverlapSettings(
        policy=OverlapPolicy.ADAPTIVE, min_labels=1, max_labels=max_labels, confidence=confidence
    )
    given: dict = {i: [] for i in pool}
    done: dict = {}
    by_worker: dict[str, int] = {}
    workers = sorted(counts)
    weights = [counts[w] for w in workers]
    gone: set[str] = set()
    while len(done) < len(pool) and len(gone) < len(workers):
        w = rng.choices(workers, weights)[0]
        if w in gone:
            continue
        if accuracy[w] < CHANCE and by_worker.get(w, 0) >= waste:
            gone.add(w)  # flagged and paused
            continue
        mine = [i for i in judged[w] & pool if i not in done and all(g.annotator != w for g in given[i])]
        if not mine:
            gone.add(w)
            continue
        partial = [i for i in mine if given[i]]
        fresh = [i for i in mine if not given[i]]
        if prefer and accuracy[w] >= confidence:
            choice = fresh or partial
        else:
            choice = partial or mine
        item = rng.choice(sorted(choice))
        given[item].append(GivenLabel(w, answers[(w, item)], accuracy[w]))
        by_worker[w] = by_worker.get(w, 0) + 1
        decision = decide(given[item], settings=settings, label_set=["0", "1"])
        if decision.next != Next.MORE or len(given[item]) >= sum(1 for ww in judged if item in judged[ww]):
            done[item] = decision
    right = sum(1 if d.next != Next.FINAL else d.label == truth[i] for i, d in done.items())
    labels = sum(len(v) for v in given.values())
    return {
        "final_label_accuracy": right / len(done),
        "labels_per_item": labels / len(done),
        "review_share": sum(d.next == Next.REVIEW for d in done.values()) / len(done),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--crowd", type=Path, default=Path("../shared/datasets/crowd_snow2008_rte_temp/rte.standardized.tsv")
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--waste", type=int, default=30, help="labels a chance-level worker gives before the pause")
    parser.add_argument("--pool", type=int, default=646, help="pool items (the simulate split's 646)")
    args = parser.parse_args(argv)
    data = load(args.crowd)
    print("confidence  max  reliable-start-new  accuracy  labels/item  reviewed   (mean over seeds)")
    for confidence, max_labels in ((0.9, 2), (0.9, 3), (0.88, 2), (0.85, 2)):
        for prefer in (False, True):
            rows = [
                run(
                    data,
                    confidence=confidence,
                    max_labels=max_labels,
                    prefer=prefer,
                    seed=s,
                    waste=args.waste,
                    n_pool=args.pool,
                )
                for s in range(args.seeds)
            ]
            mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
            print(
                f"{confidence:<10}  {max_labels:<3}  {str(prefer):<18}  {mean['final_label_accuracy']:.3f}     "
                f"{mean['labels_per_item']:.3f}        {mean['review_share']:.1%}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
