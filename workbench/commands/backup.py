"""`workbench backup --out FILE`, `workbench restore FILE` (a consistent copy while people label)
and `workbench sweep` (orphaned files of killed rounds)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = subparsers.add_parser(
        "backup",
        help="back up the database and the model/feature files",
        description="Write one file holding the database (SQLite: online backup API; PostgreSQL: pg_dump) and "
        "the artifact and feature stores. Safe while people label.",
    )
    backup.add_argument("--out", required=True, type=Path, metavar="FILE", help="the backup file to write")
    backup.set_defaults(func=run_backup)
    restore = subparsers.add_parser(
        "restore",
        help="restore a backup into an empty home",
        description="Restore a backup made by `workbench backup` into an empty WORKBENCH_HOME (and, for a "
        "PostgreSQL backup, the empty database named by --database-url).",
    )
    restore.add_argument("file", type=Path)
    restore.set_defaults(func=run_restore)
    sweep = subparsers.add_parser(
        "sweep",
        help="remove orphaned model files and .tmp leftovers",
        description="Remove model files no model run references and .tmp leftovers of killed rounds, once they "
        "are older than the grace time. Workers also do this every 10 minutes.",
    )
    sweep.add_argument("--grace-minutes", type=float, default=60.0, help="only files older than this (default 60)")
    sweep.add_argument("--dry-run", action="store_true", help="list what would go; remove nothing")
    sweep.set_defaults(func=run_sweep)


def run_backup(args: argparse.Namespace) -> int:
    from workbench.commands._common import open_workbench
    from workbench.domain import Actor
    from workbench.services.storage import backup

    wb = open_workbench(args)
    report = backup(wb.engine, args.out, actor=Actor.operator())
    print(
        f"backup written to {report.path}: {report.backend} database (schema {report.revision}) and "
        f"{report.files} files, {report.bytes / 1e6:.1f} MB in {report.total_s:.1f} s "
        f"(database copied in {report.database_s:.2f} s)"
    )
    return 0


def run_restore(args: argparse.Namespace) -> int:
    from workbench.domain import Actor
    from workbench.services.storage import restore

    report = restore(args.file, actor=Actor.operator(), database_url=args.database_url)
    print(
        f"restored {report.backend} database into {report.database_url} (schema {report.revision}) and "
        f"{report.files} files into {report.home}"
    )
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from workbench.commands._common import open_workbench
    from workbench.domain import Actor
    from workbench.services.storage import StorageService

    wb = open_workbench(args)
    report = StorageService(wb.engine).sweep_orphans(
        actor=Actor.operator(), dry_run=args.dry_run, grace=timedelta(minutes=args.grace_minutes)
    )
    verb = "would remove" if report.dry_run else "removed"
    for name in (*report.models, *report.temporaries):
        print(f"  {name}")
    print(
        f"{verb} {len(report.models)} unreferenced model file(s) and {len(report.temporaries)} temporary "
        f"file(s), {report.bytes_freed / 1e6:.1f} MB"
    )
    return 0
