"""Backup while annotators label (issue 11's backup target).

    python -m workbench.bench.backup [--annotators 16] [--items 100000] [--seconds 40] [--database-url URL]

N annotator processes claim and submit for `--seconds`; `workbench backup` runs three times, at
1/4, 2/4 and 3/4 of the run. For each backup, the ids of every annotation committed at the moment
it started are read first (a superset of those acknowledged before it started), and the backup is
restored into an empty home (and, on PostgreSQL, an empty database) and checked to hold them all.
Claim+submit latency p95 is compared between calls that overlap a backup and calls that do not,
in the same run. Target: nothing missing; p95 during a backup within 2x of p95 without.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlmodel import col

from workbench.db.engine import make_engine
from workbench.db.models import Annotation
from workbench.domain import Actor
from workbench.errors import WorkbenchError
from workbench.services import Workbench
from workbench.services.queue import QueueService
from workbench.services.storage import backup, restore
from workbench.stress import seed_project

if TYPE_CHECKING:
    from multiprocessing.synchronize import Barrier


def _annotator(url: str, project: str, actor: Actor, seed: int, seconds: float, out: str, start: Barrier) -> None:
    engine = make_engine(url, migrate=False)
    queue = QueueService(engine, random.Random(seed))
    rng = random.Random(seed)
    calls = []  # (started at, ms) per claim or submit, on time.time()'s clock
    queue.my_stats(project, actor=actor)
    start.wait()
    until = time.time() + seconds
    try:
        while time.time() < until:
            began = time.time()
            try:
                lease = queue.claim(project, actor=actor)
            except WorkbenchError:
                continue
            calls.append((began, (time.time() - began) * 1000))
            if lease is None:
                time.sleep(0.05)
                continue
            time.sleep(rng.uniform(0.002, 0.010))
            began = time.time()
            try:
                queue.submit(lease.lease_id, "yes" if rng.random() < 0.7 else "no", actor=actor)
            except WorkbenchError:
                continue
            calls.append((began, (time.time() - began) * 1000))
    finally:
        engine.dispose()
        Path(out).write_text(json.dumps(calls))


def _empty_target(url: str, scratch: Path, index: int) -> tuple[str, Callable[[], None]]:
    if url.startswith("sqlite"):
        return f"sqlite:///{scratch / f'restored-{index}' / 'workbench.db'}", lambda: None
    parsed = make_url(url)
    name = f"wb_bench_restore_{uuid.uuid4().hex[:8]}"
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return parsed.set(database=name).render_as_string(hide_password=False), drop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--database-url", help="PostgreSQL URL of an empty database (default: a new SQLite file)")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="wb-bench-backup-"))
    home = scratch / "home"
    home.mkdir()
    url = args.database_url or f"sqlite:///{home / 'workbench.db'}"
    wb = Workbench(make_engine(url))
    project, actors = seed_project(wb, args.items, args.annotators, 60.0)
    op = Actor.operator()
    context = mp.get_context("spawn")
    start = context.Barrier(args.annotators + 1)
    outs = [scratch / f"calls-{i}.json" for i in range(args.annotators)]
    processes = [
        context.Process(target=_annotator, args=(url, project, actor, i, args.seconds, str(out), start))
        for i, (actor, out) in enumerate(zip(actors, outs))
    ]
    for process in processes:
        process.start()
    start.wait(timeout=120)  # everyone is connected: the clock starts now
    windows, findings = [], []
    first = time.time()
    for k in (1, 2, 3):
        at = first + args.seconds * k / 4
        time.sleep(max(0.0, at - time.time()))
        with wb.engine.connect() as connection:
            committed = set(connection.execute(select(col(Annotation.id))).scalars())
        started = time.time()
        report = backup(wb.engine, scratch / f"backup-{k}.tar", actor=op, home=home)
        windows.append((started, time.time()))
        findings.append((k, committed, report))
    for process in processes:
        process.join()
    calls = [tuple(c) for out in outs for c in json.loads(out.read_text())]
    during = [ms for at, ms in calls if any(a <= at <= b or a <= at + ms / 1000 <= b for a, b in windows)]
    outside = [ms for at, ms in calls if not any(a <= at <= b or a <= at + ms / 1000 <= b for a, b in windows)]
    missing_total = 0
    for k, committed, report in findings:
        target, drop = _empty_target(url, scratch, k)
        restored_home = scratch / f"restored-home-{k}"
        restored_home.mkdir()
        try:
            restore(report.path, actor=op, home=restored_home, database_url=target)
            engine = make_engine(target, migrate=False)
            with engine.connect() as connection:
                present = set(connection.execute(select(col(Annotation.id))).scalars())
            engine.dispose()
        finally:
            drop()
        missing = len(committed - present)
        missing_total += missing
        print(
            f"backup {k}: {report.bytes / 1e6:.1f} MB, database copied in {report.database_s:.2f} s, "
            f"whole backup {report.total_s:.2f} s; {len(committed)} annotations committed when it started, "
            f"{missing} missing after restore ({len(present)} restored)",
            flush=True,
        )
    p95_in = float(np.percentile(during, 95)) if during else float("nan")
    p95_out = float(np.percentile(outside, 95)) if outside else float("nan")
    print(
        f"{wb.engine.dialect.name}, {args.annotators} annotators, {args.items} items, {args.seconds:.0f} s: "
        f"{len(calls)} claim/submit calls; p95 {p95_in:.1f} ms during a backup ({len(during)} calls) vs "
        f"{p95_out:.1f} ms without ({len(outside)} calls): ratio {p95_in / p95_out:.2f}",
        flush=True,
    )
    wb.engine.dispose()
    return 1 if missing_total else 0


if __name__ == "__main__":
    sys.exit(main())
