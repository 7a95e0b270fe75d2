"""`workbench simulate FILE --label-col L ...`: replay a labeled file through the workbench's own
loop with simulated annotators (or real crowd answers) and compare query strategies.

Example (the SMS Spam Collection: headerless, `label<TAB>message`):

    workbench simulate ../shared/datasets/sms_spam_collection/SMSSpamCollection --format tsv \\
        --no-header --columns label,text --label-col label --text-col text \\
        --strategies random,margin,entropy,least_confidence,qbc_vote --seeds 5 --budget 500 \\
        --out report.json --plot curves.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.simulate import SimulationConfig
    from workbench.simulate.data import CrowdData, LabeledData


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="replay a labeled dataset through the loop with simulated annotators",
        description="Replay a labeled file through the workbench's own loop (import, blind double-labeling "
        "queue, review, dataset versions, retrain rounds, query strategies) with simulated "
        "annotators, and report learning curves per strategy: accuracy on the eval split's true "
        "labels against labeled pool items, mean ± std over seeds. Each run has its own SQLite "
        "file; runs go in parallel processes.",
    )
    data = parser.add_argument_group("the labeled file")
    data.add_argument("file", help="CSV, TSV, JSONL or Parquet file with a label column")
    data.add_argument("--label-col", required=True, help="column holding the true label")
    data.add_argument("--id-col", help="item id column (default: the 1-based row number)")
    data.add_argument("--text-col", help="text column; several (a,b) are joined with --text-sep")
    data.add_argument("--text-sep", default=" [SEP] ", help="joins several text columns (default ' [SEP] ')")
    data.add_argument(
        "--feature-cols",
        help="tabular feature columns a,b,c (default: every column but the id, the label and --where columns)",
    )
    data.add_argument("--image-col", help="image path column (relative to --image-root)")
    data.add_argument("--image-root", help="folder the image paths are relative to")
    data.add_argument(
        "--format", choices=("csv", "tsv", "jsonl", "parquet"), help="file format (default: from the extension)"
    )
    data.add_argument("--no-header", action="store_true", help="the CSV/TSV has no header line (give --columns)")
    data.add_argument(
        "--columns",
        help="column names a,b,... for a headerless CSV/TSV (TSV lines are split on their first n-1 tabs only)",
    )
    data.add_argument("--delimiter", help="CSV delimiter (default ',')")
    data.add_argument("--skip-initial-space", action="store_true", help="CSV: ignore spaces after the delimiter")
    data.add_argument(
        "--label-map",
        help='JSON object mapping raw labels to labels, e.g. \'{">50K.": ">50K"}\' '
        "(or @file.json); applies to crowd labels too",
    )
    data.add_argument(
        "--strip-label-suffix",
        default="",
        metavar="CHARS",
        help="strip these trailing characters from every label, e.g. '.' for '>50K.'",
    )
    data.add_argument(
        "--where", action="append", metavar="COL=VALUE", help="keep only rows whose COL equals VALUE (repeatable)"
    )
    data.add_argument("--max-items", type=int, help="a seeded random subset of this many items")
    data.add_argument("--name", help="dataset name in the report (default: the file name)")

    crowd = parser.add_argument_group("real annotators (optional)")
    crowd.add_argument("--crowd", metavar="FILE", help="file of real judgments: one (item, worker, label) per row")
    crowd.add_argument("--crowd-item-col", help="column with the item id (matches --id-col)")
    crowd.add_argument("--crowd-worker-col", help="column with the worker id")
    crowd.add_argument("--crowd-label-col", help="column with the worker's label")
    crowd.add_argument("--crowd-format", choices=("csv", "tsv", "jsonl", "parquet"))

    sim = parser.add_argument_group("the simulation")
    sim.add_argument(
        "--strategies", default="random,margin", help="comma list of registered strategies (default random,margin)"
    )
    sim.add_argument("--seeds", default="5", help="N (seeds 0..N-1) or a comma list, e.g. 3,7 (default 5)")
    sim.add_argument("--budget", default="500", help="labeled pool items per run, or 'all' (default 500)")
    sim.add_argument(
        "--batch-size",
        default="25",
        help="labels between retrain rounds (default 25); a schedule like 25,500:100,1000:250 "
        "switches to 100 from 500 labels and to 250 from 1000",
    )
    sim.add_argument(
        "--initial",
        type=int,
        help="seed-set size before the first model, taken from the workbench's cold-start ranking "
        "(default: one cold-start set, 10 per label)",
    )
    sim.add_argument("--eval-fraction", type=float, default=0.2, help="share of items set aside for eval (0.2)")
    sim.add_argument("--split-seed", type=int, default=0, help="seed of the pool/eval split, the same for all runs")
    sim.add_argument("--overlap", type=int, default=2, help="annotations per item (default 2)")
    sim.add_argument("--annotators", type=int, help="simulated annotators (default: the overlap)")
    sim.add_argument(
        "--annotator-accuracy",
        default="1.0",
        help="P, or P1,P2,... per annotator: the chance of the true label; errors are uniform over "
        "the other labels (default 1.0)",
    )
    sim.add_argument(
        "--adjudicator",
        choices=("gold", "majority"),
        default="gold",
        help="how the simulated reviewer settles disagreements (default gold)",
    )
    sim.add_argument(
        "--model",
        help='model config as JSON ({"type": "logreg", "C": 10}) or a type name (default: the project default)',
    )
    sim.add_argument(
        "--featurizer",
        help='featurizer setting as JSON, e.g. \'{"method": "tfidf"}\' or '
        '\'{"method": "embeddings", "pair_separator": " [SEP] "}\' (default: the project '
        "default: sentence embeddings for text when installed)",
    )
    sim.add_argument(
        "--until",
        type=float,
        metavar="SHARE",
        help="label past the budget until each run reaches SHARE (e.g. 0.99) of the full-pool "
        "accuracy, so labels-to-99%% is always measured",
    )
    sim.add_argument(
        "--random-share",
        type=float,
        default=0.0,
        help="the queue's random control arm (default 0: strategies compared undiluted)",
    )
    sim.add_argument("--jobs", type=int, default=0, help="parallel processes (default: one per core)")

    pol = parser.add_argument_group("labeling policies (the live queue's code: workbench.domain.overlap)")
    pol.add_argument(
        "--overlap-policy",
        choices=("fixed", "adaptive"),
        default="fixed",
        help="fixed: every item gets --overlap labels; adaptive: after each label the policy decides "
        "from annotator reliability and agreement whether another is needed (default fixed)",
    )
    pol.add_argument("--min-labels", type=int, default=1, help="adaptive: labels per item at least (1)")
    pol.add_argument("--max-labels", type=int, default=3, help="adaptive: labels per item at most (3)")
    pol.add_argument(
        "--overlap-confidence", type=float, default=0.9, help="adaptive: the posterior that makes a label final (0.9)"
    )
    pol.add_argument(
        "--lookahead-reliability",
        type=float,
        default=0.8,
        help="adaptive: send an item to review as soon as agreeing labels from annotators this reliable, "
        "up to --max-labels, could not settle it (0.8; 0 turns it off)",
    )
    pol.add_argument(
        "--aggregation",
        choices=("majority", "dawid_skene"),
        default="majority",
        help="how labels become final labels (default majority)",
    )
    pol.add_argument(
        "--posterior-accept",
        type=float,
        help="dawid_skene: items in review whose posterior reaches this take it without review",
    )
    pol.add_argument(
        "--pause-flagged",
        action="store_true",
        help="the project setting pause_flagged: quality pauses every annotator it flags, when it "
        "re-estimates (after each round, and every --quality-refresh-labels labels)",
    )
    pol.add_argument(
        "--quality-refresh-labels",
        type=int,
        default=0,
        metavar="N",
        help="the project setting quality_refresh_labels: also re-estimate annotator quality every N "
        "new human labels (0: after rounds only)",
    )
    pol.add_argument(
        "--no-prefer-reliable",
        action="store_true",
        help="adaptive: do not serve new items first to annotators reliable enough to settle one alone",
    )
    pol.add_argument(
        "--no-model-prior",
        action="store_true",
        help="adaptive: leave the latest model's predictions out of the decision (they are a prior, "
        "trusted at the lower end of the model's eval-accuracy interval, by default)",
    )
    pol.add_argument(
        "--crowd-arrival",
        choices=("proportional", "uniform"),
        default="proportional",
        help="with --crowd: workers come in proportion to their real label counts (default), or the "
        "first release's uniform draw among an item's judges",
    )
    pol.add_argument(
        "--gold-share",
        type=float,
        default=0.0,
        help="share of claims that serve a gold item (default 0); gold labels count as spent",
    )
    pol.add_argument(
        "--gold-items", type=int, help="pool items with a known answer (default: 5%% of the pool, at least 10)"
    )
    pol.add_argument(
        "--label-error-review",
        type=int,
        default=0,
        metavar="K",
        help="after the budget, the label-error queue sends the K likeliest wrong labels to review "
        "(default 0; with --inject-label-noise, 0 means K = the number of flips)",
    )
    pol.add_argument(
        "--inject-label-noise",
        type=float,
        default=0.0,
        metavar="F",
        help="flip this share of the final pool labels at random before the label-error pass",
    )

    out = parser.add_argument_group("output")
    out.add_argument("--out", help="write the report as JSON here")
    out.add_argument("--plot", help="write the learning curves as PNG here")
    out.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    out.add_argument("--work-dir", help="where the run databases go (default: a temporary folder)")
    out.add_argument("--keep-dbs", action="store_true", help="keep every run's database and home")
    out.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def _cols(text: str | None) -> tuple[str, ...] | None:
    from workbench.simulate.data import parse_cols

    cols = parse_cols(text)
    return tuple(cols) if cols else None


def parse_seeds(text: str) -> tuple[int, ...]:
    try:
        if "," in text:
            seeds = tuple(int(part) for part in text.split(",") if part.strip())
        else:
            n = int(text)
            if n < 1:
                raise WorkbenchError("--seeds N needs N >= 1")
            seeds = tuple(range(n))
    except ValueError:
        raise WorkbenchError(f"--seeds must be a count or a comma list of integers, got {text!r}") from None
    return seeds


def parse_batch(text: str) -> dict:
    """'25' or '25,500:100,1000:250' → batch_size and batch_schedule."""
    parts = [part.strip() for part in str(text).split(",") if part.strip()]
    try:
        size = int(parts[0])
        schedule = tuple((int(a), int(b)) for a, b in (part.split(":") for part in parts[1:]))
    except (ValueError, IndexError):
        raise WorkbenchError(f"--batch-size must be N or N,FROM:N,..., got {text!r}") from None
    return {"batch_size": size, "batch_schedule": schedule}


def parse_model(text: str | None) -> dict | None:
    if not text:
        return None
    if text.lstrip().startswith("{"):
        try:
            model = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WorkbenchError(f"--model is not valid JSON: {exc.msg}") from None
        if not isinstance(model, dict):
            raise WorkbenchError("--model must be a JSON object or a model type name")
        return model
    return {"type": text.strip()}


def parse_featurizer(text: str | None) -> dict | None:
    if not text:
        return None
    if not text.lstrip().startswith("{"):
        return {"method": text.strip()}
    try:
        featurizer = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkbenchError(f"--featurizer is not valid JSON: {exc.msg}") from None
    if not isinstance(featurizer, dict):
        raise WorkbenchError("--featurizer must be a JSON object or a text method name")
    return featurizer


def config_from_args(args: argparse.Namespace) -> SimulationConfig:
    from workbench.simulate import SimulationConfig

    budget = None if str(args.budget).lower() == "all" else _int(args.budget, "--budget")
    try:
        accuracy = tuple(float(p) for p in str(args.annotator_accuracy).split(",") if p.strip())
    except ValueError:
        raise WorkbenchError(f"--annotator-accuracy must be numbers, got {args.annotator_accuracy!r}") from None
    return SimulationConfig(
        strategies=tuple(s.strip() for s in args.strategies.split(",") if s.strip()),
        seeds=parse_seeds(args.seeds),
        budget=budget,
        **parse_batch(args.batch_size),
        initial=args.initial,
        overlap=args.overlap,
        annotators=args.annotators,
        annotator_accuracy=accuracy,
        adjudicator=args.adjudicator,
        eval_fraction=args.eval_fraction,
        split_seed=args.split_seed,
        model=parse_model(args.model),
        featurizer=parse_featurizer(args.featurizer),
        until=args.until,
        random_share=args.random_share,
        jobs=args.jobs,
        work_dir=args.work_dir,
        keep_dbs=args.keep_dbs,
        overlap_policy=args.overlap_policy,
        min_labels=args.min_labels,
        max_labels=args.max_labels,
        overlap_confidence=args.overlap_confidence,
        lookahead_reliability=args.lookahead_reliability,
        aggregation=args.aggregation,
        posterior_accept=args.posterior_accept,
        pause_flagged=args.pause_flagged,
        quality_refresh_labels=args.quality_refresh_labels,
        prefer_reliable=not args.no_prefer_reliable,
        model_prior=not args.no_model_prior,
        crowd_arrival=args.crowd_arrival,
        label_error_review=args.label_error_review,
        inject_label_noise=args.inject_label_noise,
        gold_share=args.gold_share,
        gold_items=args.gold_items,
    )


def _int(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise WorkbenchError(f"{option} must be an integer or 'all', got {text!r}") from None


def load_inputs(args: argparse.Namespace, overlap: int) -> tuple[LabeledData, CrowdData | None]:
    """(labeled data, crowd data or None) from the parsed arguments."""
    from workbench.simulate.data import (
        LabelRules,
        TableOptions,
        load_crowd,
        load_labeled,
        parse_cols,
        parse_label_map,
        parse_where,
        restrict_to_crowd,
    )

    if args.no_header and not args.columns:
        raise WorkbenchError("--no-header needs --columns a,b,... to name the columns")
    rules = LabelRules(mapping=parse_label_map(args.label_map), strip_suffix=args.strip_label_suffix or "")
    table = TableOptions(
        format=args.format,
        header=not args.no_header,
        columns=_cols(args.columns),
        delimiter=args.delimiter,
        skip_initial_space=args.skip_initial_space,
    )
    data = load_labeled(
        args.file,
        label_col=args.label_col,
        id_col=args.id_col,
        text_col=args.text_col,
        feature_cols=parse_cols(args.feature_cols),
        image_col=args.image_col,
        image_root=args.image_root,
        table=table,
        rules=rules,
        where=parse_where(args.where),
        text_sep=args.text_sep,
        max_items=args.max_items,
        name=args.name,
    )
    crowd_options = (args.crowd_item_col, args.crowd_worker_col, args.crowd_label_col)
    if args.crowd is None:
        if any(crowd_options):
            raise WorkbenchError("--crowd-item-col/--crowd-worker-col/--crowd-label-col need --crowd FILE")
        return data, None
    if not all(crowd_options):
        raise WorkbenchError("--crowd needs --crowd-item-col, --crowd-worker-col and --crowd-label-col")
    if args.annotator_accuracy not in ("1.0", "1"):
        raise WorkbenchError("--annotator-accuracy does not apply with --crowd: the workers answer as they did")
    crowd = load_crowd(
        args.crowd,
        item_col=args.crowd_item_col,
        worker_col=args.crowd_worker_col,
        label_col=args.crowd_label_col,
        table=TableOptions(format=args.crowd_format),
        rules=rules,
    )
    return restrict_to_crowd(data, crowd, overlap), crowd


def run(args: argparse.Namespace) -> int:
    from workbench.simulate import markdown_table, simulate, summary_table
    from workbench.simulate.plot import plot_curves

    config = config_from_args(args)
    config.check()
    for target in (args.out, args.plot):
        if target and not Path(target).expanduser().resolve().parent.is_dir():
            raise WorkbenchError(f"no such folder for {target}")
    data, crowd = load_inputs(args, config.overlap)
    report = simulate(data, config, crowd, show_progress=not args.quiet, log=lambda line: print(line, file=sys.stderr))
    if args.out:
        Path(args.out).expanduser().write_text(json.dumps(report, indent=1) + "\n")
    if args.plot:
        plot_curves(report, Path(args.plot).expanduser())
    print(summary_table(report))
    if args.markdown:
        print()
        print(markdown_table(report))
    if args.out:
        print(f"report written to {args.out}")
    if args.plot:
        print(f"curves written to {args.plot}")
    return 0
