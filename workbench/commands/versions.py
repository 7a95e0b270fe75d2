"""`workbench version`: cut, list, diff and export dataset versions."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.commands._common import open_workbench, operator
from workbench.domain import ExportFormat, ExportKind
from workbench.errors import WorkbenchError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "version", help="dataset versions", description="Immutable, content-hashed snapshots of the final labels."
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    create = verbs.add_parser("create", help="cut a version now")
    create.add_argument("project")
    create.set_defaults(func=run_create)
    listing = verbs.add_parser("list", help="list versions")
    listing.add_argument("project")
    listing.set_defaults(func=run_list)
    diff = verbs.add_parser("diff", help="added, removed and relabeled items between two versions")
    diff.add_argument("project")
    diff.add_argument("a", type=int)
    diff.add_argument("b", type=int)
    diff.set_defaults(func=run_diff)
    export = verbs.add_parser(
        "export",
        help="write a version and its manifest",
        description="csv/jsonl/parquet: one file and FILE.manifest.json beside it. hf: a Hugging Face "
        "dataset folder (data/train-*.parquet for the pool, data/test-*.parquet for eval, the label a "
        "ClassLabel; README.md dataset card with the hash, counts and agreement). The folder is given "
        "as DIR (positional) or --out.",
    )
    export.add_argument("project")
    export.add_argument("number", type=int)
    export.add_argument(
        "--format", choices=[f.value for f in ExportKind.VERSION.formats], default=ExportFormat.CSV.value
    )
    export.add_argument("dir", nargs="?", type=Path, metavar="DIR", help="where to write (same as --out)")
    export.add_argument("--out", type=Path, metavar="FILE_OR_DIR")
    export.set_defaults(func=run_export, _trailing="dir")


def run_create(args: argparse.Namespace) -> int:
    version = open_workbench(args).versions.create(args.project, actor=operator())
    print(f"version {version.number}: {version.n_items} items, sha256 {version.content_hash}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    for v in open_workbench(args).versions.list(args.project, actor=operator()):
        print(f"{v.number}\t{v.n_items} items\t{v.trigger}\t{v.created_at:%Y-%m-%d %H:%M}\t{v.content_hash[:16]}")
    return 0


def run_diff(args: argparse.Namespace) -> int:
    diff = open_workbench(args).versions.diff(args.project, args.a, args.b, actor=operator())
    print(f"added {len(diff.added)}, removed {len(diff.removed)}, relabeled {len(diff.relabeled)}")
    for external_id, old, new in diff.relabeled:
        print(f"  {external_id}: {old} -> {new}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    out = args.out or (Path(args.dir) if args.dir else None)
    if out is None or (args.out and args.dir):
        raise WorkbenchError("give where to write once: DIR or --out")
    wb = open_workbench(args)
    result = wb.exports.version(args.project, args.number, args.format, out, actor=operator())
    print(
        f"wrote {result.rows} rows to {result.path} ({result.format}, sha256 {result.sha256[:12]}…) "
        f"and {result.manifest_path}"
    )
    return 0
