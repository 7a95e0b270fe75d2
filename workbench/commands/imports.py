"""`workbench import`: bring items into a project from a file or a folder of images.

Every row is checked; a file with any bad row imports nothing, and each bad row is listed
with its row (and line) number and the reason. Exit 0 when imported, 1 when refused.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING

from workbench.commands._common import operator
from workbench.importing.readers import FORMATS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

_FOLDER_ONLY = ("prelabel_from_folders",)
_FILE_ONLY = (
    "format",
    "id_col",
    "text_col",
    "context_cols",
    "feature_cols",
    "image_col",
    "image_root",
    "prelabel_col",
    "gold_col",
    "columns",
    "delimiter",
    "skip_initial_space",
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "import",
        help="import items from a CSV/TSV/JSONL/Parquet/Label Studio JSON file or a folder of images",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("project", help="the project to import into")
    parser.add_argument("file", nargs="?", help="the file to import (format from its extension)")
    parser.add_argument("--folder", metavar="DIR", help="import a folder of images instead of a file")
    parser.add_argument(
        "--prelabel-from-folders",
        action="store_true",
        help="with --folder: images in subfolders named like labels get that label as a prelabel",
    )
    parser.add_argument(
        "--format", choices=FORMATS, help="file format (default: from the extension; .json is label-studio)"
    )
    parser.add_argument("--id-col", help="column with the external id (default 'id', else the row number)")
    parser.add_argument("--text-col", help="text projects: column with the text (default 'text')")
    parser.add_argument(
        "--context-cols",
        metavar="A,B",
        help="text projects: columns kept as context (default: all but id/text/prelabel)",
    )
    parser.add_argument(
        "--feature-cols", metavar="A,B", help="tabular projects: feature columns (default: all but id/prelabel)"
    )
    parser.add_argument("--image-col", help="image projects: column of image paths (default 'image')")
    parser.add_argument(
        "--image-root",
        metavar="DIR",
        help="image projects: folder the image paths are relative to (saved in the "
        "project on its first import; default: the project's, else the file's folder)",
    )
    parser.add_argument("--prelabel-col", help="column of existing labels, imported as prelabels")
    parser.add_argument(
        "--gold-col",
        help="column of known answers: items with one become gold items (pool, final with that label, served "
        "at the project's gold_share of claims as checks of annotators; never shown as gold, never content)",
    )
    parser.add_argument(
        "--eval-fraction", type=float, help="share of items set aside for evaluation (default: the project setting)"
    )
    parser.add_argument("--seed", type=int, help="seed for the eval split and random keys (default: random)")
    parser.add_argument("--columns", metavar="A,B", help="column names, for a CSV/TSV without a header line")
    parser.add_argument("--delimiter", help="CSV field separator (default ',' for CSV, tab for TSV)")
    parser.add_argument(
        "--skip-initial-space",
        action="store_true",
        help="ignore spaces right after a separator (e.g. for ', '-separated files)",
    )
    parser.add_argument("--max-errors", type=int, default=1000, help="bad rows to list (default 1000)")
    parser.add_argument(
        "--on-near-duplicate",
        choices=["keep", "skip", "flag"],
        help="rows whose content repeats an earlier item's, exactly or nearly: import them unflagged "
        "(keep), leave them out (skip) or import and flag them (flag, the default)",
    )
    parser.add_argument(
        "--sensitive-cols",
        metavar="A,B",
        help="columns to report model quality per group on (never model features unless the "
        "project's sensitive_as_features setting says so); saved in the project",
    )
    parser.add_argument(
        "--on-duplicate",
        choices=("error", "skip"),
        default="error",
        help="a row whose id is already in the project: error (default) refuses it; skip leaves it "
        "alone when its content is the same (one line counts them) and still refuses it when not",
    )
    parser.add_argument("--dry-run", action="store_true", help="check everything, write nothing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.set_defaults(func=run, _import_parser=parser)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A tqdm bar on stderr (shown for imports that take more than a moment, on a terminal)."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(total=0, unit="B", unit_scale=True, file=sys.stderr, disable=None, delay=0.5, leave=False, desc="import")

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        bar.close()


def run(args: argparse.Namespace) -> int:
    from workbench.services import Workbench

    parser = args._import_parser
    if bool(args.file) == bool(args.folder):
        parser.error("give either FILE or --folder DIR")
    if args.folder:
        used = [name for name in _FILE_ONLY if getattr(args, name) not in (None, False)]
        if used:
            parser.error(f"--{used[0].replace('_', '-')} applies to a file, not to --folder")
    elif args.prelabel_from_folders:
        parser.error("--prelabel-from-folders applies to --folder only")

    wb = Workbench.open(args.database_url)
    try:
        with progress_bar(not args.no_progress) as progress:
            common = {
                "eval_fraction": args.eval_fraction,
                "seed": args.seed,
                "max_errors": args.max_errors,
                "on_near_duplicate": args.on_near_duplicate,
                "on_duplicate": args.on_duplicate,
            }
            common = {key: value for key, value in common.items() if value is not None}
            if args.folder:
                report = wb.imports.run_folder(
                    args.project,
                    args.folder,
                    dry_run=args.dry_run,
                    prelabel_from_folders=args.prelabel_from_folders,
                    progress=progress,
                    actor=operator(),
                    **common,
                )
            else:
                options = {name: getattr(args, name) for name in _FILE_ONLY if getattr(args, name) not in (None, False)}
                call = wb.imports.preview if args.dry_run else wb.imports.run
                report = call(args.project, args.file, progress=progress, actor=operator(), **common, **options)
        if report.ok and not args.dry_run and args.sensitive_cols:
            from workbench.domain import Actor

            columns = [c.strip() for c in args.sensitive_cols.split(",") if c.strip()]
            missing = [c for c in columns if c not in report.columns]
            if missing:
                print(f"workbench: warning: sensitive column(s) not in the file: {', '.join(missing)}", file=sys.stderr)
            wb.projects.update_settings(args.project, actor=Actor.operator(), sensitive_cols=columns)
    finally:
        wb.engine.dispose()
    for line in report.lines():
        print(line)
    if not report.ok:
        if report.file_errors:
            reason = report.file_errors[0]
        else:
            first = f"; {report.errors[0]}" if report.errors else ""
            reason = f"{report.n_errors} bad row(s){first}"
        print(f"workbench: error: import refused ({reason}); nothing was written", file=sys.stderr)
        return 1
    return 0
