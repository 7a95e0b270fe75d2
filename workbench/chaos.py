"""`workbench chaos`: SIGKILL real workbench processes at random points, then check what is left.

Fault points (each `--runs` times, on a fresh project in the given database, default a new SQLite
file):

- import:   `workbench import` of a 200,000-row CSV, killed at a random moment of the import.
            Checked: the project holds all rows or none.
- annotate: four annotator processes claim and submit; each writes an annotation's id to its own
            file only after `submit` returned (the acknowledgement). All are killed at a random
            moment. Checked: every acknowledged id is stored; no item has more labels than its
            overlap.
- round:    a worker runs a retrain round (a slow model, so every step is hit) and is killed at a
            random moment; the step it was in is recorded. Checked: no model run without its file,
            no finished round without a model run (half_published); a new worker finishes or fails
            the round within 90 s (else stuck_jobs); after `sweep` no unreferenced model file or
            .tmp file is left (orphan_files).
- export:   `workbench export` and `workbench version export` killed at a random moment. Checked:
            the output file is absent or complete, never truncated under its final name.

Every run also checks the database: SQLite's `PRAGMA integrity_check` and `foreign_key_check`.
"""

from __future__ import annotations

import csv
import json
import os
import random
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TextIO

POINTS = ("import", "annotate", "round", "export")
SLOW_MODEL = {"type": "mlp", "hidden": 256, "epochs": 400}


@dataclass
class ChaosReport:
    database: str
    runs: dict[str, int] = field(default_factory=dict)
    killed: dict[str, int] = field(default_factory=dict)  # runs where the process was still alive at the kill
    integrity_failures: int = 0
    lost_acknowledged: int = 0
    half_published: int = 0
    stuck_jobs: int = 0
    orphan_files: int = 0
    truncated_exports: int = 0  # also counted in integrity_failures
    acknowledged: int = 0  # annotations acknowledged before a kill, all checked
    orphans_swept: int = 0  # files a killed round left, removed by the sweep (not failures)
    steps_hit: dict[str, int] = field(default_factory=dict)  # round step at the moment of the kill
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return (
            self.integrity_failures + self.lost_acknowledged + self.half_published + self.stuck_jobs + self.orphan_files
        )

    def save(self, path: Path) -> None:
        """Write the report as JSON, atomically (a stopped run keeps what it had measured)."""
        from workbench.services.exports import write_text_atomically

        write_text_atomically(path, json.dumps({**asdict(self), "failures": self.failures}, indent=1))


class Chaos:
    def __init__(
        self, url: str, home: Path, *, seed: int, rows: int, out: TextIO | None = None, save_to: Path | None = None
    ) -> None:
        from workbench.db.engine import make_engine
        from workbench.domain import Actor
        from workbench.services import Workbench

        self.url, self.home, self.rows = url, home, rows
        self.rng = random.Random(seed)
        self.wb = Workbench(make_engine(url))
        self.op = Actor.operator()
        self.report = ChaosReport(database=self.wb.engine.dialect.name)
        self.env = {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_DATABASE_URL": url}
        self.tag = secrets.token_hex(3)
        self.out = out or sys.stderr
        self.save_to = save_to

    def log(self, message: str) -> None:
        print(f"chaos: {message}", file=self.out, flush=True)

    # -- helpers ----------------------------------------------------------------------------
    def spawn(self, *args: str) -> subprocess.Popen:
        """A workbench command; its output goes to logs/ under the chaos home, for post-mortems."""
        logs = self.home / "logs"
        logs.mkdir(exist_ok=True)
        self._spawned = getattr(self, "_spawned", 0) + 1
        with open(logs / f"{self._spawned:04d}-{args[0]}.log", "wb") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "workbench.cli", *args], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def kill_after(self, process: subprocess.Popen, delay: float) -> bool:
        """SIGKILL `process` after `delay` seconds; False when it had already finished."""
        try:
            process.wait(timeout=delay)
            return False
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True

    def check_database(self) -> None:
        if self.report.database != "sqlite":
            return
        database = self.wb.engine.url.database
        assert database is not None  # chaos runs on a SQLite file, never in memory
        connection = sqlite3.connect(database, timeout=30)
        try:
            verdict = connection.execute("PRAGMA integrity_check").fetchone()[0]
            dangling = connection.execute("PRAGMA foreign_key_check").fetchall()
        finally:
            connection.close()
        if verdict != "ok" or dangling:
            self.report.integrity_failures += 1
            self.report.notes.append(f"integrity_check: {verdict}; foreign keys: {len(dangling)} dangling")

    def project(self, point: str, run: int, *, kind: str = "text", settings: dict | None = None) -> tuple[str, int]:
        name = f"chaos-{self.tag}-{point}-{run}"
        info = self.wb.projects.create(name, kind, ["ham", "spam"], settings=settings or {}, actor=self.op)
        return name, info.id

    def count_items(self, project_id: int) -> int:
        from sqlalchemy import func, select
        from sqlmodel import col

        from workbench.db.models import Item

        with self.wb.engine.connect() as connection:
            return connection.execute(
                select(func.count()).select_from(Item).where(col(Item.project_id) == project_id)
            ).scalar_one()

    def _tally(self, point: str, killed: bool) -> None:
        self.report.runs[point] = self.report.runs.get(point, 0) + 1
        self.report.killed[point] = self.report.killed.get(point, 0) + int(killed)
        if self.save_to is not None:
            self.report.save(self.save_to)  # after every run, so a long run stopped early still reports

    # -- import ------------------------------------------------------------------------------
    def point_import(self, runs: int) -> None:
        source = self.home / "chaos-import.csv"
        with open(source, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "text"])
            for i in range(self.rows):
                writer.writerow([f"r{i}", f"row {i}: some words to label, number {i * 7919 % 100003}"])
        name, project_id = self.project("import", 0)
        started = time.monotonic()
        self.spawn("import", name, str(source), "--no-progress", "--seed", "0").wait()
        full = time.monotonic() - started
        if self.count_items(project_id) != self.rows:
            self.report.notes.append("the calibration import did not store every row")
        self.log(f"import: an uninterrupted import of {self.rows} rows takes {full:.1f} s")
        for run in range(1, runs + 1):
            name, project_id = self.project("import", run)
            process = self.spawn("import", name, str(source), "--no-progress", "--seed", "0")
            killed = self.kill_after(process, self.rng.uniform(0.0, full * 1.1))
            stored = self.count_items(project_id)
            if stored not in (0, self.rows):
                self.report.integrity_failures += 1
                self.report.notes.append(f"import run {run}: {stored} of {self.rows} rows stored (a partial import)")
            self.check_database()
            self._tally("import", killed)

    # -- annotate ----------------------------------------------------------------------------
    def point_annotate(self, runs: int) -> None:
        from sqlalchemy import func, select
        from sqlmodel import Session, col

        from workbench.db.bulk import insert_items
        from workbench.db.models import Annotation

        for run in range(runs):
            name, project_id = self.project("annotate", run)
            with Session(self.wb.engine) as session, session.begin():
                insert_items(
                    session, project_id, ((f"a{i}", {"text": f"text {i}"}, "pool", i / 400) for i in range(400))
                )
            people = []
            for k in range(4):
                user = self.wb.users.add(
                    f"chaos-{self.tag}-{run}-{k}", "annotator", secrets.token_urlsafe(16), actor=self.op
                )
                self.wb.members.add(name, user.name, actor=self.op)
                people.append(user)
            acks = [self.home / f"acks-{self.tag}-{run}-{k}.txt" for k in range(4)]
            processes = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "workbench.chaos",
                        "annotate",
                        self.url,
                        name,
                        str(user.id),
                        user.name,
                        str(ack),
                    ],
                    env=self.env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for user, ack in zip(people, acks)
            ]
            deadline = time.monotonic() + 120
            while not all(ack.exists() for ack in acks) and time.monotonic() < deadline:
                time.sleep(0.05)  # each file appears when its annotator has connected
            time.sleep(self.rng.uniform(0.2, 4.0))
            killed = False
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGKILL)
                    killed = True
                process.wait()
            acknowledged = set()
            for ack in acks:
                if ack.exists():
                    for line in ack.read_text().splitlines():
                        if line.endswith(";"):  # a whole line; a kill mid-write leaves no ';'
                            acknowledged.add(int(line[:-1]))
            with self.wb.engine.connect() as connection:
                stored = set(
                    connection.execute(
                        select(col(Annotation.id)).where(col(Annotation.project_id) == project_id)
                    ).scalars()
                )
                over = connection.execute(
                    select(func.count()).select_from(
                        select(col(Annotation.item_id))
                        .where(col(Annotation.project_id) == project_id)
                        .group_by(col(Annotation.item_id))
                        .having(func.count() > 2)
                        .subquery()
                    )
                ).scalar_one()
            lost = acknowledged - stored
            self.report.acknowledged += len(acknowledged)
            self.report.lost_acknowledged += len(lost)
            if lost:
                self.report.notes.append(f"annotate run {run}: {len(lost)} acknowledged annotations missing")
            if over:
                self.report.integrity_failures += 1
                self.report.notes.append(f"annotate run {run}: {over} items with more than 2 labels")
            self.check_database()
            self._tally("annotate", killed)

    # -- round -------------------------------------------------------------------------------
    def point_round(self, runs: int) -> None:
        from sqlalchemy import update
        from sqlmodel import Session, col

        from workbench.db.bulk import insert_items
        from workbench.db.models import Item
        from workbench.domain import JobState

        duration = None
        for run in range(-1, runs):  # run -1 calibrates: how long an uninterrupted round takes here
            name, project_id = self.project("round", run + 1, settings={"model": SLOW_MODEL})
            with Session(self.wb.engine) as session, session.begin():
                insert_items(
                    session,
                    project_id,
                    (
                        (
                            f"t{i}",
                            {"text": f"{'win a prize now' if i % 3 == 0 else 'lunch at noon'} {i}"},
                            "eval" if i % 5 == 0 else "pool",
                            i / 300,
                        )
                        for i in range(300)
                    ),
                )
                session.execute(
                    update(Item)
                    .where(col(Item.project_id) == project_id)
                    .values(state="final", final_label="ham", n_annotations=2, slots_taken=2)
                )
                session.execute(
                    update(Item)
                    .where(
                        col(Item.project_id) == project_id,
                        col(Item.external_id).in_([f"t{i}" for i in range(0, 300, 3)]),
                    )
                    .values(final_label="spam")
                )
            job = self.wb.rounds.start(name, actor=self.op)
            worker = self.spawn("worker")
            deadline = time.monotonic() + 120
            while self.wb.jobs.get(job.id, actor=self.op).state == JobState.QUEUED and time.monotonic() < deadline:
                time.sleep(0.05)
            if duration is None:
                started = time.monotonic()
                while self.wb.jobs.get(job.id, actor=self.op).state in (JobState.QUEUED, JobState.RUNNING):
                    time.sleep(0.1)
                duration = time.monotonic() - started
                worker.send_signal(signal.SIGTERM)
                worker.wait()
                self.log(f"round: an uninterrupted round takes {duration:.1f} s")
                continue
            # Later rounds reuse the cached features, so they are shorter than the calibration one.
            killed = self.kill_after(worker, self.rng.uniform(0.0, duration * 0.7))
            at_kill = self.wb.jobs.get(job.id, actor=self.op)
            killed = killed and at_kill.state == JobState.RUNNING  # mid-round, not an idle worker after it
            step = at_kill.message if killed else "finished before the kill"
            self.report.steps_hit[step] = self.report.steps_hit.get(step, 0) + 1
            self.check_half_published(project_id, f"round run {run} (killed in {step!r})")
            self.wb.projects.update_settings(name, model={"type": "logreg"}, actor=self.op)
            recovery = self.spawn("worker")
            deadline = time.monotonic() + 90
            while (
                self.wb.jobs.get(job.id, actor=self.op).state in (JobState.QUEUED, JobState.RUNNING)
                and time.monotonic() < deadline
            ):
                time.sleep(0.2)
            final = self.wb.jobs.get(job.id, actor=self.op)
            early_exit = recovery.poll()  # not None: the recovery worker died on its own
            recovery.send_signal(signal.SIGTERM)
            try:
                recovery.wait(timeout=15)
            except subprocess.TimeoutExpired:
                recovery.kill()
                recovery.wait()
            if final.state in (JobState.QUEUED, JobState.RUNNING):
                self.report.stuck_jobs += 1
                how = "was running" if early_exit is None else f"exited early with {early_exit}"
                self.report.notes.append(
                    f"round run {run}: job {job.id} still {final.state.value} 90 s after the kill "
                    f"(recovery worker {how}; logs in {self.home / 'logs'})"
                )
            self.check_half_published(project_id, f"round run {run} after recovery")
            self.check_orphans()
            self.check_database()
            self._tally("round", killed)

    def check_half_published(self, project_id: int, where: str) -> None:
        from sqlalchemy import select
        from sqlmodel import col

        from workbench.db.models import Job, ModelRun

        with self.wb.engine.connect() as connection:
            runs = connection.execute(
                select(col(ModelRun.id), col(ModelRun.artifact_path), col(ModelRun.job_id)).where(
                    col(ModelRun.project_id) == project_id
                )
            ).all()
            jobs = {
                row.id: row
                for row in connection.execute(
                    select(col(Job.id), col(Job.state), col(Job.kind)).where(col(Job.project_id) == project_id)
                ).all()
            }
        with_run = {job_id for _, _, job_id in runs}
        bad = [run_id for run_id, path, _ in runs if not (self.home / path).is_file()]
        bad += [
            job.id for job in jobs.values() if job.kind == "retrain" and job.state == "done" and job.id not in with_run
        ]
        if bad:
            self.report.half_published += len(bad)
            self.report.notes.append(
                f"{where}: {len(bad)} half-published (model run without its file, or a "
                "finished round without a model run)"
            )

    def check_orphans(self) -> None:
        from workbench.services.storage import StorageService

        storage = StorageService(self.wb.engine, self.home)
        swept = storage.sweep_orphans(actor=self.op, grace=timedelta(0))
        self.report.orphans_swept += len(swept.models) + len(swept.temporaries)
        left = storage.sweep_orphans(actor=self.op, grace=timedelta(0), dry_run=True)
        if left.models or left.temporaries:
            self.report.orphan_files += len(left.models) + len(left.temporaries)

    # -- export ------------------------------------------------------------------------------
    def point_export(self, runs: int) -> None:
        from sqlalchemy import update
        from sqlmodel import Session, col

        from workbench.db.bulk import insert_items
        from workbench.db.models import Item

        name, project_id = self.project("export", 0)
        n = min(50_000, self.rows)
        with Session(self.wb.engine) as session, session.begin():
            insert_items(
                session,
                project_id,
                ((f"e{i}", {"text": f"exported text number {i} " * 4}, "pool", i / n) for i in range(n)),
            )
            session.execute(
                update(Item)
                .where(col(Item.project_id) == project_id)
                .values(state="final", final_label="ham", n_annotations=2, slots_taken=2)
            )
        version = self.wb.versions.create(name, actor=self.op)
        folder = self.home / "exports"
        folder.mkdir(exist_ok=True)
        commands = {
            "export": lambda out: ("export", name, "--format", "csv", "--out", str(out)),
            "version export": lambda out: (
                "version",
                "export",
                name,
                str(version.number),
                "--format",
                "csv",
                "--out",
                str(out),
            ),
        }
        timing = {}
        for what, command in commands.items():
            started = time.monotonic()
            self.spawn(*command(folder / f"calibrate-{what.replace(' ', '-')}.csv")).wait()
            timing[what] = time.monotonic() - started
        for run in range(runs):
            what = ("export", "version export")[run % 2]
            out = folder / f"{self.tag}-{run}.csv"
            process = self.spawn(*commands[what](out))
            killed = self.kill_after(process, self.rng.uniform(0.0, timing[what] * 1.1))
            if out.exists():
                with open(out, newline="", encoding="utf-8") as handle:
                    rows = sum(1 for _ in csv.reader(handle)) - 1
                if rows != n:
                    self.report.truncated_exports += 1
                    self.report.integrity_failures += 1
                    self.report.notes.append(f"{what} run {run}: {out.name} has {rows} of {n} rows")
            self._tally("export", killed)
        left = [p.name for p in folder.iterdir() if p.name.startswith(".")]
        if left:
            self.report.notes.append(
                f"export: {len(left)} hidden partial files left beside the outputs by killed "
                "exports (never under the final name)"
            )


def run_chaos(
    runs: int,
    *,
    database_url: str | None = None,
    points: Sequence[str] = POINTS,
    seed: int = 0,
    rows: int = 200_000,
    home: Path | None = None,
    save_to: Path | None = None,
) -> ChaosReport:
    home = home or Path(tempfile.mkdtemp(prefix="workbench-chaos-"))
    url = database_url or f"sqlite:///{home / 'chaos.db'}"
    chaos = Chaos(url, home, seed=seed, rows=rows, save_to=save_to)
    try:
        for point in points:
            started = time.monotonic()
            getattr(chaos, f"point_{point}")(runs)
            chaos.log(f"{point}: {runs} runs in {time.monotonic() - started:.0f} s")
    finally:
        chaos.wb.engine.dispose()
    return chaos.report


def _annotate(url: str, project: str, user_id: str, name: str, ack_path: str) -> None:
    """An annotator process for the annotate point: claim, submit, then record the acknowledgement."""
    from workbench.db.engine import make_engine
    from workbench.domain import Actor, Role
    from workbench.services.queue import QueueService

    engine = make_engine(url, migrate=False)
    queue = QueueService(engine)
    actor = Actor(id=int(user_id), name=name, role=Role.ANNOTATOR)
    with open(ack_path, "a", encoding="utf-8") as acks:
        while True:
            lease = queue.claim(project, actor=actor)
            if lease is None:
                time.sleep(0.05)
                continue
            result = queue.submit(lease.lease_id, "ham" if lease.item_id % 2 else "spam", actor=actor)
            acks.write(f"{result.annotation_id};\n")
            acks.flush()  # in the kernel's page cache: survives SIGKILL of this process


if __name__ == "__main__":
    if sys.argv[1:2] == ["annotate"]:
        _annotate(*sys.argv[2:7])
