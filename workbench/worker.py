"""The job worker: takes queued jobs (retrain, rescore, version) and runs them, one at a time.

Runs as its own process (`workbench worker`, or beside the app under `workbench serve`) with its
own engine; never inside the Streamlit server.

Liveness: the worker registers a row in `worker_process` and a pulse thread refreshes it (and the
running job's lease) every HEARTBEAT_S. The same thread gives back, every SWEEP_S, any running job
whose lease went stale because its worker died, so a dead worker's round is requeued within
a minute even while this worker is busy with a long job.

Stopping: SIGTERM, SIGINT or SIGHUP end the worker cleanly. Between jobs it simply stops; during a
job the signal interrupts the job (a BaseException, so no handler swallows it). The round writes
its results in one transaction at the end, so nothing is half-written; the job goes back to the
queue without charging the attempt, and the worker exits.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from typing import TYPE_CHECKING

from workbench.config import database_url as configured_url
from workbench.db.engine import make_engine
from workbench.domain import Actor, JobInfo, JobKind
from workbench.errors import storage_fault
from workbench.services import Workbench

if TYPE_CHECKING:
    from types import FrameType

HEARTBEAT_S = 5.0
SWEEP_S = 15.0
AUTO_VERSION_CHECK_S = 10.0
ALERT_RETRY_CHECK_S = 2.0  # how often the worker looks for alert deliveries due for another attempt
ORPHAN_SWEEP_S = 600.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
OPERATOR = Actor.operator()
log = logging.getLogger("workbench.worker")


def _run_job(wb: Workbench, job: JobInfo) -> None:
    """Run one claimed job as the local operator; its project is loaded once, by the job's id."""
    actor = Actor.operator()
    payload = wb.jobs.payload(job.id, actor=Actor.operator())
    project = wb.rounds.resolve(payload.project_id, actor=actor)

    def progress(pct: float, message: str) -> None:
        wb.jobs.heartbeat(job.id, progress=pct, message=message, worker=job.worker, actor=Actor.operator())

    if job.kind == JobKind.RETRAIN:
        wb.rounds.run_retrain(project, actor=actor, job_id=job.id, seed=payload.seed, progress=progress)
    elif job.kind == JobKind.RESCORE:
        wb.rounds.run_rescore(project, actor=actor, job_id=job.id, seed=payload.seed, progress=progress)
    elif job.kind == JobKind.VERSION:
        wb.rounds.run_version(project, actor=actor, job_id=job.id)
    elif job.kind == JobKind.ALERT:
        wb.alerts.run_check(project, actor=actor, job_id=job.id)
    elif job.kind == JobKind.ADVISE:
        wb.advisor.run(project, actor=actor, job_id=job.id, progress=progress)


def queue_auto_versions(wb: Workbench) -> None:
    """Queue a version job for each project whose final labels grew by its `version_every`."""
    for project in wb.projects.list(actor=Actor.operator()):
        every = int(project.settings.get("version_every") or 0)
        if every > 0:
            final, versioned = wb.versions.final_label_count(project.name, actor=Actor.operator())
            if final - versioned >= every:
                wb.jobs.enqueue(project.name, JobKind.VERSION, actor=Actor.operator())


def refresh_due_quality(wb: Workbench) -> None:
    """Re-estimate annotator quality in each project whose `quality_refresh_labels` new human
    labels have come in since its last estimate (QualityService.refresh_if_due decides)."""
    from workbench.services.quality import QualityService

    quality = QualityService(wb.engine)
    for project in wb.projects.list(actor=Actor.operator()):
        if int(project.settings.get("quality_refresh_labels") or 0) > 0:
            quality.refresh_if_due(project.name, actor=Actor.operator())


WORKER_NICENESS = 10  # rounds yield the CPU to the app's claims and submits


class WorkerInterrupted(BaseException):
    """Raised in the worker's main thread by a stop signal that arrives while a job runs."""


class _Stopper:
    """Signal handling for the worker process: a stop flag, and an interrupt while a job runs."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.in_job = False
        self.signal_name: str | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name
        self.stop.set()
        if self.in_job:
            self.in_job = False  # one interrupt per job; a second signal only repeats the stop
            raise WorkerInterrupted(self.signal_name)

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self)


def worker_name(pid: int | None = None) -> str:
    """How a worker process is named in the job table and the registry: host:pid."""
    return f"{socket.gethostname()}:{pid or os.getpid()}"


def run_worker(
    database_url: str | None = None,
    *,
    once: bool = False,
    poll_s: float = 1.0,
    stop: threading.Event | None = None,
    name: str | None = None,
    nice: bool = False,
    handle_signals: bool = False,
) -> int:
    """Process jobs until stopped (or, with once=True, until the queue is empty). Returns jobs run.

    With nice=True (the `workbench worker` process) the process lowers its CPU priority first.
    With handle_signals=True (only in a process's main thread) SIGTERM, SIGINT and SIGHUP stop it
    cleanly, interrupting and requeueing a running job.
    """
    if nice:
        os.nice(WORKER_NICENESS)
    url = configured_url(database_url)
    stop = stop or threading.Event()
    stopper = _Stopper(stop)
    if handle_signals:
        stopper.install()
    wb = Workbench(make_engine(url))
    worker = name or worker_name()
    _requeue_dead_local(wb, starting=True)
    wb.jobs.register_worker(worker, socket.gethostname(), os.getpid(), actor=OPERATOR)
    pulse = _Pulse(wb, worker)
    pulse.start()
    done = 0
    try:
        stopper.in_job = True  # a stop during this slow import ends the worker at once
        import skops.io  # noqa: F401 - a long-lived worker pays this import once, not in its first round

        stopper.in_job = False

        next_version_check = next_alert_check = 0.0
        while not stop.is_set():
            if time.monotonic() >= next_version_check:
                queue_auto_versions(wb)
                refresh_due_quality(wb)
                next_version_check = time.monotonic() + AUTO_VERSION_CHECK_S
            if time.monotonic() >= next_alert_check:
                next_alert_check = time.monotonic() + ALERT_RETRY_CHECK_S
                try:
                    wb.alerts.queue_due(actor=OPERATOR)
                except Exception as exc:  # a busy database must not end the worker
                    log.warning("could not look for due alert deliveries: %s: %s", type(exc).__name__, exc)
            job = wb.jobs.claim_next(worker, actor=Actor.operator())
            if job is None:
                if once:
                    break
                stop.wait(poll_s)
                continue
            pulse.job_id = job.id
            try:
                stopper.in_job = True
                if stop.is_set():  # the stop came between the claim and here
                    raise WorkerInterrupted(stopper.signal_name or "stop")
                _run_job(wb, job)
                stopper.in_job = False
                done += 1
            except WorkerInterrupted as why:
                stopper.in_job = False
                _give_back(url, job, worker, str(why))
                break
            except Exception as exc:  # a failed job records why and the worker goes on
                stopper.in_job = False
                fault = storage_fault(exc, "the round")  # a full disk: one sentence, no server path
                wb.jobs.fail(
                    job.id, str(fault) if fault is not None else f"{type(exc).__name__}: {exc}", actor=Actor.operator()
                )
                done += 1
            finally:
                pulse.job_id = None
    except WorkerInterrupted:  # a signal that raced past the in_job flag; nothing was running
        pass
    finally:
        stopper.in_job = False
        pulse.halt()
        try:
            wb.jobs.unregister_worker(worker, actor=OPERATOR)
        except Exception:  # the registry row then simply goes stale
            log.warning("could not unregister worker %s", worker)
        wb.engine.dispose()
    return done


def _give_back(url: str, job: JobInfo, worker: str, signal_name: str) -> None:
    """Requeue the interrupted job through a fresh engine (the old one may hold a connection the
    interrupt left mid-statement)."""
    engine = make_engine(url, migrate=False)
    try:
        Workbench(engine).jobs.release(
            job.id, worker, f"worker {worker} was stopped ({signal_name}) during the job", actor=OPERATOR
        )
        print(f"worker: job {job.id} interrupted by {signal_name}; it is queued again", flush=True)
    finally:
        engine.dispose()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _requeue_dead_local(wb: Workbench, *, starting: bool = False) -> None:
    """Requeue what dead workers on this host held (e.g. the one this worker replaces). While
    starting, a job held under this process's own pid predates it (a reused pid), so is dead too."""
    me = os.getpid()

    def alive(pid: int) -> bool:
        return not (starting and pid == me) and _pid_alive(pid)

    for job_id in wb.jobs.requeue_dead_local(socket.gethostname(), alive, actor=OPERATOR):
        print(f"worker: job {job_id} was held by a worker that is gone; queued again", flush=True)


class _Pulse(threading.Thread):
    """Heartbeats the registry row and the running job's lease; sweeps stale jobs and old orphans."""

    def __init__(self, wb: Workbench, worker: str) -> None:
        super().__init__(name="worker-pulse", daemon=True)
        self.wb, self.worker = wb, worker
        self.job_id: int | None = None
        self._halt = threading.Event()

    def halt(self) -> None:
        self._halt.set()
        self.join(timeout=HEARTBEAT_S * 2)

    def run(self) -> None:
        next_sweep = time.monotonic() + SWEEP_S
        next_orphans = time.monotonic() + 60.0
        while not self._halt.wait(HEARTBEAT_S):
            try:
                job_id = self.job_id
                if job_id is not None:
                    self.wb.jobs.heartbeat(job_id, worker=self.worker, actor=Actor.operator())
                self.wb.jobs.worker_beat(self.worker, job_id=job_id, actor=OPERATOR)
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + SWEEP_S
                    _requeue_dead_local(self.wb)
                    for requeued in self.wb.jobs.requeue_stale(actor=OPERATOR):
                        log.warning("job %s lost its worker; requeued (or failed after its attempts)", requeued)
                if time.monotonic() >= next_orphans:
                    next_orphans = time.monotonic() + ORPHAN_SWEEP_S
                    self._sweep_files()
            except Exception as exc:  # a busy database must not end the heartbeat
                log.warning("worker heartbeat failed: %s: %s", type(exc).__name__, exc)

    def _sweep_files(self) -> None:
        from workbench.services.storage import StorageService

        StorageService(self.wb.engine).sweep_orphans(actor=OPERATOR)
