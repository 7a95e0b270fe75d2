"""Aggregation over every judgment of a crowd file: Dawid–Skene (the quality service's own
`estimate`, crowd-kit underneath) against majority vote, scored on the gold labels.

    python -m workbench.bench.aggregate_all [--crowd FILE]

Issue 13's target on RTE: Dawid–Skene over all ten labels per item >= 0.92 (majority gives 0.90).
Majority ties are broken by a seeded coin, as the simulate reviewer does.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from pathlib import Path

import pandas as pd

from workbench.services.quality import estimate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--crowd", type=Path, default=Path("../shared/datasets/crowd_snow2008_rte_temp/rte.standardized.tsv")
    )
    parser.add_argument("--item-col", default="orig_id")
    parser.add_argument("--worker-col", default="!amt_worker_ids")
    parser.add_argument("--label-col", default="response")
    parser.add_argument("--gold-col", default="gold")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = pd.read_csv(args.crowd, sep="\t" if args.crowd.suffix == ".tsv" else ",")
    items, workers = data[args.item_col].astype(str), data[args.worker_col].astype(str)
    answers = data[args.label_col].astype(str)
    truth = dict(zip(items, data[args.gold_col].astype(str)))
    labels = sorted(set(answers))
    judgments = list(zip(items, workers, answers))
    _, posteriors, _ = estimate(judgments, labels)
    rng = random.Random(args.seed)
    votes: dict[str, Counter] = {}
    for item, _, answer in judgments:
        votes.setdefault(item, Counter())[answer] += 1
    majority = {}
    for item, counts in votes.items():
        top = max(counts.values())
        majority[item] = rng.choice(sorted(label for label, n in counts.items() if n == top))
    ds = sum(posteriors[i][0] == truth[i] for i in truth) / len(truth)
    mv = sum(majority[i] == truth[i] for i in truth) / len(truth)
    per_item = len(judgments) / len(truth)
    print(f"{args.crowd.name}: {len(truth)} items, {len(set(workers))} workers, {per_item:.1f} judgments per item")
    print(f"  Dawid-Skene (workbench.services.quality.estimate): {ds:.4f}")
    print(f"  majority vote (ties by a seeded coin):             {mv:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
