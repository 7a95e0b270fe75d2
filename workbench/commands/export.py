"""`workbench export`: items with their final labels, or every human annotation, to a file.

Formats: csv, jsonl, parquet (default: from the --out extension; .json is label-studio), and:
  label-studio  a JSON list of Label Studio tasks, one per item, each human annotation in
                annotations[] (one Choices result, completed_by {"email": NAME@workbench.invalid}),
                prelabels in predictions[]; `workbench import --format label-studio` reads it back
  prodigy       JSONL, one line per human annotation: text, label, answer, _annotator_id, meta
CSV cells that a spreadsheet would run as formulas (a string beginning with = + - @, tab or CR)
get a leading quote. Dataset versions: `workbench version export` (csv, jsonl, parquet, hf).
"""

from __future__ import annotations

import argparse

from workbench.commands._common import operator
from workbench.domain import ExportKind


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export items with final labels, or annotations, as csv/jsonl/parquet/label-studio/prodigy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("project", help="the project to export")
    parser.add_argument(
        "--format",
        choices=[f.value for f in ExportKind.ITEMS.formats],
        help="output format (default: from --out's extension)",
    )
    parser.add_argument("--out", required=True, metavar="FILE", help="the file to write (replaced if it exists)")
    parser.add_argument(
        "--annotations", action="store_true", help="export one row per human annotation instead of one row per item"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from workbench.services import Workbench

    wb = Workbench.open(args.database_url)
    try:
        export = wb.exports.annotations if args.annotations else wb.exports.items
        result = export(args.project, args.format, args.out, actor=operator())
    finally:
        wb.engine.dispose()
    what = "annotations" if args.annotations or result.format.value == "prodigy" else "items"
    what = "tasks" if result.format.value == "label-studio" else what
    print(f"exported {result.rows} {what} to {result.path} ({result.format}, sha256 {result.sha256[:12]}…)")
    return 0
