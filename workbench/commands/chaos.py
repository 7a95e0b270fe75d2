"""`workbench chaos --runs N [--database-url URL] --json FILE`: fault injection by SIGKILL."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "chaos",
        help="SIGKILL imports, annotators, workers and exports at random; check what is left",
        description="Kill real workbench processes at random points (an import of 200,000 rows, annotators "
        "submitting, a worker mid-round, exports) and check the database and files. Use a scratch "
        "database: it creates projects and users there.",
    )
    parser.add_argument("--runs", type=int, default=30, help="runs per fault point (default 30)")
    parser.add_argument(
        "--points", default="import,annotate,round,export", help="which fault points, comma-separated (default all)"
    )
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the import (default 200,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the report here (rewritten after every run)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from workbench.chaos import POINTS, run_chaos
    from workbench.errors import WorkbenchError

    points = [p.strip() for p in args.points.split(",") if p.strip()]
    unknown = sorted(set(points) - set(POINTS))
    if unknown:
        raise WorkbenchError(f"unknown fault point {unknown[0]!r}; choose from {', '.join(POINTS)}")
    report = run_chaos(
        args.runs, database_url=args.database_url, points=points, seed=args.seed, rows=args.rows, save_to=args.json
    )
    if args.json:
        report.save(args.json)
    print(f"{report.database}: runs {report.runs}, killed mid-way {report.killed}")
    for key in ("integrity_failures", "lost_acknowledged", "half_published", "stuck_jobs", "orphan_files"):
        print(f"  {key}: {getattr(report, key)}")
    print(
        f"  ({report.acknowledged} acknowledged annotations checked; {report.orphans_swept} leftover files "
        f"swept; round steps hit: {report.steps_hit})"
    )
    for note in report.notes:
        print(f"  note: {note}")
    return 1 if report.failures else 0
