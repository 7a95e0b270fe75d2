"""Margin vs random on every labeled dataset in ../shared/datasets, through `workbench simulate`.

    python -m workbench.bench.simulate_all [--seeds 5] [--budget 300] [--out docs/simulate/all_datasets.json]

Each dataset runs the real `workbench simulate` command (printed, so it can be re-run alone) with
perfect simulated annotators and the dataset's true labels, and the table compares the default
strategy's (margin) area under the budget curve with random sampling's. Overlap 1: with perfect
annotators a second label would only repeat the first, and overlap 1 halves the queue calls (the
curves can still differ slightly from overlap 2 where the queue falls back to random picks, e.g.
when a cold-start ranking runs out: those draws come from the queue's seeded stream, which
advances once per claim).

Datasets and their quirks (see each PROVENANCE.md):

- sms_spam_collection: headerless ``label<TAB>message``, split on the first tab.
- adult_census_income: ``adult.test``, no header, ``, `` separated, ``?`` missing (the import reads
  it as null), labels with a trailing period (``>50K.``) normalised by ``--strip-label-suffix .``;
  a seeded subsample of 5,000 rows keeps the run modest.
- crowd_snow2008_rte_temp: ``rte1.tsv`` (800 text/hypothesis pairs, read without quote
  processing), true label ``value`` (equal to the crowd file's gold for every item).
- weather_sentiment_crowdflower: ``weather-evaluated-agg-DFE.csv``; no expert gold, so the proxy
  the Snorkel tutorial used: the aggregated ``sentiment`` where ``correct_category_conf == 1``
  (632 tweets, 4 classes).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT.parent / "shared" / "datasets"
ADULT_COLUMNS = ("age,workclass,fnlwgt,education,education-num,marital-status,occupation,relationship,race,sex,"
                 "capital-gain,capital-loss,hours-per-week,native-country,income")


def dataset_args(datasets: Path) -> dict[str, list[str]]:
    """`workbench simulate` arguments per dataset (file first)."""
    sms = datasets / "sms_spam_collection"
    adult = datasets / "adult_census_income"
    rte = datasets / "crowd_snow2008_rte_temp"
    weather = datasets / "weather_sentiment_crowdflower"
    return {
        "sms_spam_collection": [str(sms / "SMSSpamCollection"), "--format", "tsv", "--no-header",
                                "--columns", "label,text", "--label-col", "label", "--text-col", "text"],
        "adult_census_income": [str(adult / "adult.test"), "--format", "csv", "--no-header", "--columns", ADULT_COLUMNS,
                                "--skip-initial-space", "--label-col", "income", "--strip-label-suffix", ".",
                                "--max-items", "5000"],
        "crowd_snow2008_rte_temp": [str(rte / "rte1.tsv"), "--id-col", "id", "--label-col", "value",
                                    "--text-col", "text,hypothesis"],
        "weather_sentiment_crowdflower": [str(weather / "weather-evaluated-agg-DFE.csv"), "--id-col", "tweet_id",
                                          "--label-col", "sentiment", "--text-col", "tweet_body",
                                          "--where", "correct_category_conf=1"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=Path, default=DATASETS, help="the shared datasets folder")
    parser.add_argument("--only", help="comma list of dataset folders to run (default: all)")
    parser.add_argument("--seeds", default="5")
    parser.add_argument("--budget", default="300")
    parser.add_argument("--batch-size", default="25")
    parser.add_argument("--jobs", default="0")
    parser.add_argument("--out", type=Path, help="write every dataset's summary as JSON here")
    parser.add_argument("--reports", type=Path, help="keep each dataset's full report.json in this folder")
    args = parser.parse_args(argv)

    from workbench.cli import main as workbench_main

    wanted = set(args.only.split(",")) if args.only else None
    table = []
    with tempfile.TemporaryDirectory(prefix="simulate-all-") as tmp:
        for name, file_args in dataset_args(args.datasets).items():
            if wanted and name not in wanted:
                continue
            if not Path(file_args[0]).is_file():
                print(f"{name}: {file_args[0]} is missing; skipped", file=sys.stderr)
                continue
            report_path = (args.reports or Path(tmp)) / f"{name}.json"
            report_path.parent.mkdir(parents=True, exist_ok=True)
            argv_sim = ["simulate", *file_args, "--name", name, "--strategies", "margin,random", "--seeds", args.seeds,
                        "--budget", args.budget, "--batch-size", args.batch_size, "--overlap", "1",
                        "--jobs", args.jobs, "--out", str(report_path), "--quiet"]
            print("$ workbench " + shlex.join(argv_sim[:-3] + ["--out", report_path.name]), flush=True)
            started = time.perf_counter()
            code = workbench_main(argv_sim)
            if code != 0:
                print(f"{name}: workbench simulate exited {code}", file=sys.stderr)
                return code
            report = json.loads(report_path.read_text())
            st = report["strategies"]
            table.append({
                "dataset": name, "n_items": report["n_items"], "n_eval": report["n_eval"],
                "labels": len(report["labels_set"]), "budget": report["settings"]["budget"],
                "full_pool_accuracy": report["full_pool_accuracy"],
                "margin_aubc": st["margin"]["aubc"], "random_aubc": st["random"]["aubc"],
                "margin_final": st["margin"]["final_accuracy_mean"], "random_final": st["random"]["final_accuracy_mean"],
                "paired": report["against_random"]["margin"],
                "model_above_majority": report["model_signal"]["above_majority"],
                "majority_baseline": report["model_signal"]["majority_baseline"],
                "seconds": round(time.perf_counter() - started, 1),
            })
            print()
    print(format_table(table))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"seeds": args.seeds, "budget": args.budget, "batch_size": args.batch_size,
                                        "overlap": 1, "datasets": table}, indent=1) + "\n")
        print(f"written to {args.out}")
    return 0


def format_table(rows: list[dict]) -> str:
    lines = ["| dataset | items (eval) | labels | budget | full-pool acc. | margin AUBC | random AUBC | "
             "margin − random | margin ≥ random | paired by seed, 95% interval | model above majority label? | "
             "margin acc. at budget | random acc. at budget | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        delta = r["margin_aubc"] - r["random_aubc"]
        low, high = r["paired"]["aubc_minus_random_ci95"]
        interval = f"[{low:+.4f}, {high:+.4f}] {r['paired']['verdict']}" if low is not None else r["paired"]["verdict"]
        lines.append(f"| {r['dataset']} | {r['n_items']} ({r['n_eval']}) | {r['labels']} | {r['budget']} | "
                     f"{r['full_pool_accuracy']:.4f} | {r['margin_aubc']:.4f} | {r['random_aubc']:.4f} | "
                     f"{delta:+.4f} | {'yes' if delta >= 0 else 'NO'} | {interval} | "
                     f"{'yes' if r['model_above_majority'] else 'NO (majority ' + format(r['majority_baseline'], '.3f') + ')'} | "
                     f"{r['margin_final']:.4f} | {r['random_final']:.4f} | {r['seconds']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
