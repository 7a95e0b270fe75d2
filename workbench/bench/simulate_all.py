"""The default (sentence embeddings + margin with diversity) against margin and random on every
labeled dataset in ../shared/datasets, through `workbench simulate`.

    python -m workbench.bench.simulate_all [--seeds 3] [--budget 300] [--out docs/simulate/all_datasets.json]

Each dataset runs the real `workbench simulate` command (printed, so it can be re-run alone) with
perfect simulated annotators and the dataset's true labels, double-labeled (overlap 2) unless
``--overlap`` says otherwise. Every strategy's runs go on past the budget until they reach 99 % of
the full-pool accuracy (``--until 0.99``), so ``labels_to_99`` is always measured, random's
included. The table compares each strategy's AUBC with random's (paired by seed, up to the
budget), its labels to 99 % with random's, and, per dataset, the full-pool accuracy of each
representation on the same split.

Representations (``--representation``): ``default`` is what a new project gets (sentence
embeddings for text when the embeddings extra is installed; RTE's text/hypothesis pairs embedded
field by field and combined as [u, v, |u-v|, u*v]); ``tfidf`` pins TF-IDF. Embeddings are cached
by content hash under ``--embedding-cache`` (default: a folder in the system's temp directory), so
a dataset is embedded once across runs and invocations.

Datasets and their quirks (see each PROVENANCE.md):

- sms_spam_collection: headerless ``label<TAB>message``, split on the first tab.
- adult_census_income: ``adult.test``, no header, ``, `` separated, ``?`` missing (the import reads
  it as null), labels with a trailing period (``>50K.``) normalised by ``--strip-label-suffix .``;
  a seeded subsample of 5,000 rows keeps the run modest. Tabular: the representation does not apply.
- crowd_snow2008_rte_temp: ``rte1.tsv`` (800 text/hypothesis pairs, read without quote
  processing), true label ``value`` (equal to the crowd file's gold for every item).
- weather_sentiment_crowdflower: ``weather-evaluated-agg-DFE.csv``; no expert gold, so the proxy
  the Snorkel tutorial used: the aggregated ``sentiment`` where ``correct_category_conf == 1``
  (632 tweets, 4 classes).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT.parent / "shared" / "datasets"
ADULT_COLUMNS = (
    "age,workclass,fnlwgt,education,education-num,marital-status,occupation,relationship,race,sex,"
    "capital-gain,capital-loss,hours-per-week,native-country,income"
)
DEFAULT_STRATEGIES = "margin_diversity,margin,random"
PAIR_SEPARATOR = " [SEP] "
TEXT_DATASETS = ("sms_spam_collection", "crowd_snow2008_rte_temp", "weather_sentiment_crowdflower")


def dataset_args(datasets: Path) -> dict[str, list[str]]:
    """`workbench simulate` arguments per dataset (file first)."""
    sms = datasets / "sms_spam_collection"
    adult = datasets / "adult_census_income"
    rte = datasets / "crowd_snow2008_rte_temp"
    weather = datasets / "weather_sentiment_crowdflower"
    return {
        "sms_spam_collection": [
            str(sms / "SMSSpamCollection"),
            "--format",
            "tsv",
            "--no-header",
            "--columns",
            "label,text",
            "--label-col",
            "label",
            "--text-col",
            "text",
        ],
        "adult_census_income": [
            str(adult / "adult.test"),
            "--format",
            "csv",
            "--no-header",
            "--columns",
            ADULT_COLUMNS,
            "--skip-initial-space",
            "--label-col",
            "income",
            "--strip-label-suffix",
            ".",
            "--max-items",
            "5000",
        ],
        "crowd_snow2008_rte_temp": [
            str(rte / "rte1.tsv"),
            "--id-col",
            "id",
            "--label-col",
            "value",
            "--text-col",
            "text,hypothesis",
            "--text-sep",
            PAIR_SEPARATOR,
        ],
        "weather_sentiment_crowdflower": [
            str(weather / "weather-evaluated-agg-DFE.csv"),
            "--id-col",
            "tweet_id",
            "--label-col",
            "sentiment",
            "--text-col",
            "tweet_body",
            "--where",
            "correct_category_conf=1",
        ],
    }


def featurizer_args(name: str, representation: str) -> list[str]:
    """The --featurizer of a dataset under a representation ([] for the project default)."""
    if name not in TEXT_DATASETS:
        return []
    if representation == "tfidf":
        return ["--featurizer", json.dumps({"method": "tfidf"})]
    if name == "crowd_snow2008_rte_temp":  # text and hypothesis embedded apart, then combined
        return ["--featurizer", json.dumps({"method": "embeddings", "pair_separator": PAIR_SEPARATOR})]
    return ["--featurizer", json.dumps({"method": "embeddings"})]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=Path, default=DATASETS, help="the shared datasets folder")
    parser.add_argument("--only", help="comma list of dataset folders to run (default: all)")
    parser.add_argument(
        "--strategies",
        default=DEFAULT_STRATEGIES,
        help=f"comma list; must include random (default {DEFAULT_STRATEGIES})",
    )
    parser.add_argument("--representation", choices=("default", "tfidf"), default="default")
    parser.add_argument("--seeds", default="3")
    parser.add_argument("--budget", default="300")
    parser.add_argument("--batch-size", default="25,500:100,1000:250")
    parser.add_argument("--overlap", default="2")
    parser.add_argument("--until", default="0.99", help="runs go on until this share of full-pool accuracy")
    parser.add_argument("--jobs", default="0")
    parser.add_argument(
        "--embedding-cache", type=Path, default=Path(tempfile.gettempdir()) / "workbench-embedding-cache"
    )
    parser.add_argument("--out", type=Path, help="write every dataset's summary as JSON here")
    parser.add_argument("--reports", type=Path, help="keep each dataset's full report.json in this folder")
    args = parser.parse_args(argv)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if "random" not in strategies:
        parser.error("--strategies must include random (the comparison is against it)")

    from workbench.cli import main as workbench_main

    os.environ["WORKBENCH_EMBEDDING_CACHE"] = str(args.embedding_cache)
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
            argv_sim = [
                "simulate",
                *file_args,
                *featurizer_args(name, args.representation),
                "--name",
                name,
                "--strategies",
                ",".join(strategies),
                "--seeds",
                args.seeds,
                "--budget",
                args.budget,
                "--batch-size",
                args.batch_size,
                "--overlap",
                args.overlap,
                "--until",
                args.until,
                "--jobs",
                args.jobs,
                "--out",
                str(report_path),
                "--quiet",
            ]
            print("$ workbench " + shlex.join(argv_sim[:-3] + ["--out", report_path.name]), flush=True)
            started = time.perf_counter()
            code = workbench_main(argv_sim)
            if code != 0:
                print(f"{name}: workbench simulate exited {code}", file=sys.stderr)
                return code
            report = json.loads(report_path.read_text())
            table.append(summarize(name, report, strategies, time.perf_counter() - started))
            print()
    print(format_table(table))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {
                    "seeds": args.seeds,
                    "budget": args.budget,
                    "batch_size": args.batch_size,
                    "overlap": int(args.overlap),
                    "until": float(args.until),
                    "representation": args.representation,
                    "datasets": table,
                },
                indent=1,
            )
            + "\n"
        )
        print(f"written to {args.out}")
    return 0


def summarize(name: str, report: dict, strategies: list[str], seconds: float) -> dict:
    st = report["strategies"]
    random_to_99 = st["random"]["labels_to_99"]
    rows = {}
    for strategy in strategies:
        s = st[strategy]
        paired = report["against_random"].get(strategy)
        rows[strategy] = {
            "aubc": s["aubc"],
            "final_accuracy": s["final_accuracy_mean"],
            "labels_to_99": s["labels_to_99"],
            "labels_to_99_vs_random": (
                s["labels_to_99"] / random_to_99 if s["labels_to_99"] is not None and random_to_99 else None
            ),
            "labels_to_99_past_budget": s.get("labels_to_99_past_budget", False),
            "max_labels": s.get("max_labels"),
            "paired": paired,
        }
    by_featurizer = report.get("full_pool_accuracy_by_featurizer") or {}
    return {
        "dataset": name,
        "n_items": report["n_items"],
        "n_eval": report["n_eval"],
        "labels": len(report["labels_set"]),
        "budget": report["settings"]["budget"],
        "featurizer": report.get("featurizer", ""),
        "full_pool_accuracy": report["full_pool_accuracy"],
        "full_pool_accuracy_by_featurizer": by_featurizer,
        "model_above_majority": report["model_signal"]["above_majority"],
        "majority_baseline": report["model_signal"]["majority_baseline"],
        "strategies": rows,
        "seconds": round(seconds, 1),
    }


def _f(value: float | None, spec: str = ".4f") -> str:
    return "—" if value is None else format(value, spec)


def format_table(rows: list[dict]) -> str:
    lines = [
        "| dataset | features | full-pool acc. (TF-IDF) | strategy | AUBC | − random, paired 95% interval | "
        "labels to 99% | ÷ random's | acc. at budget |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        tfidf = next((v for k, v in r["full_pool_accuracy_by_featurizer"].items() if k.startswith("text-tfidf/")), None)
        features = r["featurizer"].split(":")[0] or "—"
        if "pair_separator" in r["featurizer"]:
            features += " (pairs)"
        first = True
        for strategy, s in r["strategies"].items():
            paired = s["paired"]
            if paired is None:
                interval = ""
            else:
                low, high = paired["aubc_minus_random_ci95"]
                interval = (
                    f"{paired['aubc_minus_random_mean']:+.4f} [{_f(low, '+.4f')}, {_f(high, '+.4f')}] "
                    f"{paired['verdict']}"
                )
            to99 = (
                "—"
                if s["labels_to_99"] is None
                else str(s["labels_to_99"]) + ("*" if s["labels_to_99_past_budget"] else "")
            )
            head = (
                (
                    f"| {r['dataset']} ({r['n_items']}, {r['labels']} labels) | {features} | "
                    f"{r['full_pool_accuracy']:.4f} ({_f(tfidf)}) |"
                )
                if first
                else "| | | |"
            )
            lines.append(
                f"{head} {strategy} | {_f(s['aubc'])} | {interval} | {to99} | "
                f"{_f(s['labels_to_99_vs_random'], '.2f')} | {_f(s['final_accuracy'])} |"
            )
            first = False
    lines.append("")
    lines.append(
        "\\* reached past the budget (runs go on until they reach 99 % of full-pool accuracy; a run that "
        "stopped is carried forward at its last accuracy)."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
