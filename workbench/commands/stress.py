"""`workbench stress`: many annotator processes, misbehaving, then an invariant check."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "stress",
        help="run concurrent annotator processes and check every invariant",
        description="Start N annotator processes that claim, submit, skip, abandon and double-submit "
        "until the queue is empty, then check the double-labeling invariants in the database. "
        "Exits 1 if any invariant fails.",
    )
    parser.add_argument("--annotators", type=int, default=32)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--think-ms", type=float, nargs=2, default=(2.0, 10.0), metavar=("MIN", "MAX"))
    parser.add_argument("--max-submits", type=int, default=None, help="per annotator (default: drain the queue)")
    parser.add_argument(
        "--overlap-policy",
        choices=("fixed", "adaptive"),
        default="fixed",
        help="fixed: every item gets the overlap (2); adaptive: the overlap policy decides "
        "after each label (annotators get reliabilities 0.6-0.98)",
    )
    parser.add_argument("--min-labels", type=int, default=1, help="adaptive: labels per item at least (1)")
    parser.add_argument("--max-labels", type=int, default=3, help="adaptive: labels per item at most (3)")
    parser.add_argument("--json", type=Path, help="write the full report here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from workbench.stress import Behaviour, run_stress  # lazy: NumPy, SQLAlchemy, the services

    behaviour = Behaviour(think_ms=tuple(args.think_ms), max_submits=args.max_submits)
    report = run_stress(
        annotators=args.annotators,
        items=args.items,
        database_url=args.database_url,
        behaviour=behaviour,
        overlap_policy=args.overlap_policy,
        min_labels=args.min_labels,
        max_labels=args.max_labels,
    )
    print(format_report(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if report["invariants"]["ok"] else 1


def format_report(report: dict) -> str:
    inv = report["invariants"]
    lines = [
        f"{report['database']}: {report['annotators']} annotators, {report['items']} items, "
        f"{report['wall_s']:.1f} s, {report['submits_per_s']:.0f} submits/s",
        "latency ms      p50     p95     p99",
        *(
            f"{name:<12}{d['p50']:>8.2f}{d['p95']:>8.2f}{d['p99']:>8.2f}"
            for name, d in (("claim", report["claim_ms"]), ("submit", report["submit_ms"]))
            if d["p50"] is not None
        ),
        f"skips {report['skips']}, abandons {report['abandons']}, double submits {report['double_submits']}, "
        f"refusals {report['refusals']}",
    ]
    lines += [f"  {key}: {value}" for key, value in inv.items() if key != "ok"]
    lines.append("invariants: " + ("ALL HOLD" if inv["ok"] else "VIOLATED"))
    return "\n".join(lines)
