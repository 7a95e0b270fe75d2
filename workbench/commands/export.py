"""`workbench export`: items with their final labels, or every human annotation, to a file.

Formats: csv, jsonl, parquet (default: from the --out extension). CSV cells that a spreadsheet
would run as formulas (a string beginning with = + - @, tab or CR) get a leading quote.
"""

from __future__ import annotations

import argparse

from workbench.commands._common import operator
from workbench.domain import ExportFormat


def register(subparsers) -> None:  # noqa: ANN001
    parser = subparsers.add_parser(
        "export",
        help="export items with final labels, or annotations, as csv/jsonl/parquet",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("project", help="the project to export")
    parser.add_argument(
        "--format", choices=[f.value for f in ExportFormat], help="output format (default: from --out's extension)"
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
    what = "annotations" if args.annotations else "items"
    print(f"exported {result.rows} {what} to {result.path} ({result.format}, sha256 {result.sha256[:12]}…)")
    return 0
