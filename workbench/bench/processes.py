"""Shutdown and worker-crash figures for `workbench serve` (issue 11's process targets).

    python -m workbench.bench.processes [--shutdown-runs 20] [--kill-runs 10] [--json FILE]

Shutdown: for each of SIGTERM, SIGINT and SIGHUP, `--shutdown-runs` times: start `workbench
serve` on a free port (fresh SQLite home), wait until the app answers its health check, send
the signal to serve, and measure until serve has exited, no process of the children's process
groups is left and the port accepts a new bind. Target: all of that within 10 s, exit code 0.

Worker kill: `--kill-runs` times: a fresh home with a slow retrain round queued, `workbench
serve`, wait until the worker runs the round, SIGKILL the worker, and measure until (a) a new
worker is registered and heartbeating and (b) the round is no longer held by the dead worker
(queued again, or running under the new one). Target: within 60 s. Then serve is stopped with
SIGTERM mid-round, which must give the round back uncharged.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.ui.launch import wait_healthy

if TYPE_CHECKING:
    from collections.abc import Callable

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STOP_TARGET_S, BACK_TARGET_S = 10.0, 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether a server could listen on the port now (as servers do, with SO_REUSEADDR, so the
    TIME_WAIT of connections that just closed does not count; a listener still does)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def group_members(pgids: set[int]) -> list[int]:
    """Live (non-zombie) processes whose process group is one of `pgids` (scans /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # state ppid pgrp ...
        if fields[0] != "Z" and int(fields[2]) in pgids:
            members.append(int(entry.name))
    return members


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class Serve:
    """`workbench serve` as a subprocess on a fresh home (or a given one)."""

    def __init__(
        self, home: Path, port: int | None = None, database_url: str | None = None, extra: list[str] | None = None
    ) -> None:
        self.home, self.port, self.extra = home, port or free_port(), extra or []
        self.env = {**os.environ, "WORKBENCH_HOME": str(home)}
        self.env.pop("WORKBENCH_DATABASE_URL", None)
        if database_url:
            self.env["WORKBENCH_DATABASE_URL"] = database_url
        self.log = open(home / "serve.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workbench.cli", "serve", "--port", str(self.port), *(extra or [])],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 120.0) -> list[int]:
        """Wait for the health check and for both children; returns the children's pids."""
        wait_healthy("127.0.0.1", self.port, self.process, timeout=timeout)
        deadline = time.monotonic() + 10
        expect = 1 if "--no-worker" in self.extra else 2
        while len(kids := children_of(self.process.pid)) < expect and time.monotonic() < deadline:
            time.sleep(0.05)
        return kids

    def output(self) -> str:
        self.log.flush()
        return (self.home / "serve.log").read_text()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pid in group_members(set(children_of(self.process.pid))):
            os.kill(pid, signal.SIGKILL)
        self.log.close()


@dataclass
class StopRun:
    signal: str
    exit_code: int | None
    exited_s: float  # until serve exited
    clean_s: float | None  # until serve exited, no child-group process left and the port free
    leftover: list[int]
    port_free: bool

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.clean_s is not None and self.clean_s <= STOP_TARGET_S


def stop_run(serve: Serve, signum: int, children: list[int]) -> StopRun:
    """Signal serve and measure until everything is gone (or 15 s pass)."""
    start = time.monotonic()
    serve.process.send_signal(signum)
    exited = clean = None
    pgids = set(children)  # each child leads its own process group
    while time.monotonic() - start < 15:
        if exited is None and serve.process.poll() is not None:
            exited = time.monotonic() - start
        if exited is not None and not group_members(pgids) and port_is_free(serve.port):
            clean = time.monotonic() - start
            break
        time.sleep(0.02)
    if serve.process.poll() is None:
        try:
            serve.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    leftover = group_members(pgids)
    return StopRun(
        signal=signal.Signals(signum).name,
        exit_code=serve.process.returncode,
        exited_s=round(exited if exited is not None else time.monotonic() - start, 3),
        clean_s=None if clean is None else round(clean, 3),
        leftover=leftover,
        port_free=port_is_free(serve.port),
    )


def one_shutdown(signum: int, root: Path) -> StopRun:
    home = Path(tempfile.mkdtemp(prefix="stop-", dir=root))
    serve = Serve(home)
    try:
        children = serve.wait_ready()
        return stop_run(serve, signum, children)
    finally:
        serve.close()


# -- worker kill ----------------------------------------------------------------------------
# Long enough (a few seconds on a quiet machine) that the restarted worker is still in the round when
# serve is stopped: at 400 epochs a quiet machine finished the retry first, and the round was done.
SLOW_MODEL = {"type": "mlp", "hidden": 256, "epochs": 3000}


def prepare_slow_round(home: Path) -> tuple[str, int]:
    """A SQLite home with a project whose retrain takes several seconds; returns (url, job id)."""
    from sqlalchemy import update
    from sqlmodel import Session, col

    from workbench.db.bulk import insert_items
    from workbench.db.models import Item
    from workbench.domain import Actor
    from workbench.services import Workbench

    url = f"sqlite:///{home / 'workbench.db'}"
    wb = Workbench.open(url)
    info = wb.projects.create("slow", "text", ["ham", "spam"], settings={"model": SLOW_MODEL}, actor=Actor.operator())
    with Session(wb.engine) as session, session.begin():
        insert_items(
            session,
            info.id,
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
            .where(col(Item.project_id) == info.id)
            .values(state="final", final_label="ham", n_annotations=2, slots_taken=2)
        )
        session.execute(
            update(Item)
            .where(col(Item.project_id) == info.id, col(Item.external_id).in_([f"t{i}" for i in range(0, 300, 3)]))
            .values(final_label="spam")
        )
    job = (
        wb.rounds.start("slow", actor=Actor.operator())
        if _takes_actor(wb.rounds.start)
        else wb.rounds.start("slow", actor=Actor.operator())
    )
    wb.engine.dispose()
    return url, job.id


def _takes_actor(method: Callable[..., object]) -> bool:
    import inspect

    return "actor" in inspect.signature(method).parameters


@dataclass
class KillRun:
    job_id: int
    dead_worker: str
    requeued_s: float | None  # until the round was no longer held by the dead worker
    back_s: float | None  # until a new worker was registered and heartbeating
    attempts_after: int | None
    restart_logged: bool
    stop: StopRun | None  # serve stopped with SIGTERM while the new worker runs the round
    state_after_stop: str | None
    attempts_after_stop: int | None

    @property
    def ok(self) -> bool:
        return (
            self.requeued_s is not None
            and self.back_s is not None
            and max(self.requeued_s, self.back_s) <= BACK_TARGET_S
            and self.restart_logged
            and (self.stop is None or self.stop.ok)
        )


def one_kill(root: Path, *, stop_after: bool = True) -> KillRun:
    from workbench.db.engine import make_engine
    from workbench.domain import Actor, JobState
    from workbench.services.jobs import JobService

    home = Path(tempfile.mkdtemp(prefix="kill-", dir=root))
    url, job_id = prepare_slow_round(home)
    jobs = JobService(make_engine(url, migrate=False))
    op = Actor.operator()
    serve = Serve(home, database_url=url)
    try:
        children = serve.wait_ready()
        deadline = time.monotonic() + 120
        while (job := jobs.get(job_id, actor=Actor.operator())).state != JobState.RUNNING or not job.worker:
            if time.monotonic() > deadline:
                raise TimeoutError("the worker never started the round")
            time.sleep(0.05)
        dead = job.worker
        dead_pid = int(dead.rpartition(":")[2])
        os.kill(dead_pid, signal.SIGKILL)
        killed = time.monotonic()
        requeued = back = None
        attempts = None
        while time.monotonic() - killed < 90 and (requeued is None or back is None):
            job = jobs.get(job_id, actor=Actor.operator())
            if requeued is None and (job.state != JobState.RUNNING or job.worker != dead):
                requeued = time.monotonic() - killed
            if back is None and any(w.pid != dead_pid for w in jobs.live_workers(actor=op)):
                back = time.monotonic() - killed
            time.sleep(0.05)
        restart_logged = "was killed by SIGKILL" in serve.output()
        stop = state_after = attempts_after_stop = None
        if stop_after:
            # Let the new worker take the round, then stop serve mid-round: the round goes back uncharged.
            deadline = time.monotonic() + 60
            while (
                job := jobs.get(job_id, actor=Actor.operator())
            ).state == JobState.QUEUED and time.monotonic() < deadline:
                time.sleep(0.05)
            attempts = job.attempts
            stop = stop_run(
                serve,
                signal.SIGTERM,
                [p for p in children if p != dead_pid]
                + [int(w.rpartition(":")[2]) for w in [job.worker] if w and w != dead],
            )
            after = jobs.get(job_id, actor=Actor.operator())
            state_after, attempts_after_stop = after.state.value, after.attempts
        return KillRun(
            job_id=job_id,
            dead_worker=dead,
            requeued_s=None if requeued is None else round(requeued, 3),
            back_s=None if back is None else round(back, 3),
            attempts_after=attempts,
            restart_logged=restart_logged,
            stop=stop,
            state_after_stop=state_after,
            attempts_after_stop=attempts_after_stop,
        )
    finally:
        serve.close()
        jobs.engine.dispose()


def _summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"median {statistics.median(values):.2f} s, max {max(values):.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shutdown-runs", type=int, default=20, help="runs per signal")
    parser.add_argument("--kill-runs", type=int, default=10)
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="wb-bench-processes-"))
    report: dict = {"shutdown": {}, "kill": []}
    failures = 0
    for signum in SIGNALS:
        runs = [one_shutdown(signum, root) for _ in range(args.shutdown_runs)]
        name = signal.Signals(signum).name
        report["shutdown"][name] = [asdict(r) for r in runs]
        bad = [r for r in runs if not r.ok]
        failures += len(bad)
        print(
            f"{name}: {len(runs) - len(bad)}/{len(runs)} clean within {STOP_TARGET_S:.0f} s "
            f"(exit 0, no child left, port free); all clear {_summary([r.clean_s for r in runs if r.clean_s])}",
            flush=True,
        )
        for r in bad:
            print(f"  failed: {r}", flush=True)
    kills = [one_kill(root) for _ in range(args.kill_runs)]
    report["kill"] = [asdict(r) for r in kills]
    bad_kills = [k for k in kills if not k.ok]
    failures += len(bad_kills)
    print(
        f"worker SIGKILL: {len(kills) - len(bad_kills)}/{len(kills)} back with the round requeued within "
        f"{BACK_TARGET_S:.0f} s; new worker {_summary([r.back_s for r in kills if r.back_s])}, round requeued "
        f"{_summary([r.requeued_s for r in kills if r.requeued_s])}",
        flush=True,
    )
    stops = [r.stop for r in kills if r.stop]
    print(
        f"  then SIGTERM mid-round: {sum(s.ok for s in stops)}/{len(stops)} clean, all clear "
        f"{_summary([s.clean_s for s in stops if s.clean_s])}; round afterwards: "
        + ", ".join(sorted({f"{r.state_after_stop} (attempts {r.attempts_after_stop})" for r in kills})),
        flush=True,
    )
    for k in bad_kills:
        print(f"  failed: {k}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
