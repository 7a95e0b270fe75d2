"""`workbench quality PROJECT [--json FILE]`: each annotator's estimated quality (Dawid-Skene from
every human label, gold items as anchors), the flags, and pausing an annotator."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.commands._common import open_workbench, operator

if TYPE_CHECKING:
    from workbench.services.quality import QualityReport


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "quality",
        help="annotator quality: estimated accuracy with an interval, gold, adjudications, flags",
        description="Re-estimate every annotator's confusion matrix with Dawid-Skene (crowd-kit) from all "
        "human labels of the project, with gold items as anchors, and print each annotator's "
        "estimated accuracy with its 95% interval, accuracy on gold, agreement with adjudicated "
        "labels, and whether they are flagged (at least 30 labels, not measurably above chance). "
        "--pause/--resume NAME pauses an annotator: they get no claims and their labels stop "
        "counting toward overlap.",
    )
    parser.add_argument("project")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON here")
    parser.add_argument("--pause", metavar="ANNOTATOR", help="pause this annotator in the project")
    parser.add_argument("--resume", metavar="ANNOTATOR", help="resume a paused annotator")
    parser.set_defaults(func=run)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def format_report(report: QualityReport) -> str:
    lines = [
        f"{report.project}: {report.n_labels} human labels on {report.n_items} items, "
        f"{report.n_gold_items} gold items; chance (always the commonest label) "
        f"{_pct(report.chance)}"
    ]
    header = ["annotator", "labels", "checked", "accuracy", "95% interval", "gold", "adjudicated", "flag"]
    rows = []
    for a in sorted(report.annotators, key=lambda a: (-a.n_labels, a.annotator)):
        interval = "—" if a.accuracy_low is None else f"{a.accuracy_low:.3f}-{a.accuracy_high:.3f}"
        gold = "—" if a.gold_accuracy is None else f"{a.gold_accuracy:.3f} of {a.n_gold}"
        adj = "—" if a.adjudication_agreement is None else f"{a.adjudication_agreement:.3f} of {a.n_adjudicated}"
        flag = ("NOT ABOVE CHANCE" if a.flagged else "") + (" paused" if a.paused else "")
        rows.append(
            [a.annotator, str(a.n_labels), str(a.n_checked), _pct(a.accuracy), interval, gold, adj, flag.strip()]
        )
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i]) for i in range(len(header))]
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in rows]
    flagged = [a.annotator for a in report.annotators if a.flagged and not a.paused]
    if flagged:
        lines.append(f"flagged and not paused: {', '.join(flagged)} (pause with --pause NAME)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from workbench.services.quality import QualityService

    wb = open_workbench(args)
    quality = QualityService(wb.engine)
    for name, paused in ((args.pause, True), (args.resume, False)):
        if name:
            quality.set_paused(args.project, name, paused, actor=operator())
            print(f"{name} {'paused' if paused else 'resumed'} in {args.project}")
    report = quality.report(args.project, actor=operator())
    print(format_report(report))
    if args.json:
        args.json.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
        print(f"report written to {args.json}")
    return 0
