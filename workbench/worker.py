"""The job worker: takes queued jobs (retrain, rescore, version) and runs them, one at a time.

Runs as its own process (`workbench worker`, or beside the app under `workbench serve`) with its
own engine; never inside the Streamlit server. While a job runs, a thread heartbeats so that other
workers can tell a live job from one whose worker was killed.
"""

from __future__ import annotations

import os
import socket
import threading
import time

from workbench.db.engine import make_engine
from workbench.domain import JobInfo, JobKind
from workbench.services import Workbench

HEARTBEAT_S = 5.0
AUTO_VERSION_CHECK_S = 10.0


def _run_job(wb: Workbench, job: JobInfo) -> None:
    project, payload = wb.jobs.payload(job.id)

    def progress(pct: float, message: str) -> None:
        wb.jobs.heartbeat(job.id, progress=pct, message=message)

    if job.kind == JobKind.RETRAIN:
        wb.rounds.run_retrain(project, job_id=job.id, seed=int(payload.get("seed", 0)), progress=progress)
    elif job.kind == JobKind.RESCORE:
        wb.rounds.run_rescore(project, job_id=job.id, progress=progress)
    elif job.kind == JobKind.VERSION:
        version = wb.versions.create(project, trigger="auto")
        wb.jobs.finish(job.id, {"version": version.number, "version_hash": version.content_hash})


def queue_auto_versions(wb: Workbench) -> None:
    """Queue a version job for each project whose final labels grew by its `version_every`."""
    for project in wb.projects.list():
        every = int(project.settings.get("version_every") or 0)
        if every > 0:
            final, versioned = wb.versions.final_label_count(project.name)
            if final - versioned >= every:
                wb.jobs.enqueue(project.name, JobKind.VERSION)


WORKER_NICENESS = 10  # rounds yield the CPU to the app's claims and submits


def run_worker(database_url: str | None = None, *, once: bool = False, poll_s: float = 1.0,
               stop: threading.Event | None = None, name: str | None = None, nice: bool = False) -> int:
    """Process jobs until stopped (or, with once=True, until the queue is empty). Returns jobs run.

    With nice=True (the `workbench worker` process) the process lowers its CPU priority first.
    """
    if nice:
        os.nice(WORKER_NICENESS)
    wb = Workbench(make_engine(database_url))
    import skops.io  # noqa: F401 - a long-lived worker pays this import once, not in its first round

    worker = name or f"{socket.gethostname()}:{os.getpid()}"
    stop = stop or threading.Event()
    done = 0
    next_version_check = 0.0
    while not stop.is_set():
        if time.monotonic() >= next_version_check:
            queue_auto_versions(wb)
            next_version_check = time.monotonic() + AUTO_VERSION_CHECK_S
        job = wb.jobs.claim_next(worker)
        if job is None:
            if once:
                break
            stop.wait(poll_s)
            continue
        beating = threading.Event()
        beat = threading.Thread(target=_heartbeat, args=(wb, job.id, beating), daemon=True)
        beat.start()
        try:
            _run_job(wb, job)
        except Exception as exc:  # noqa: BLE001 - a failed job records why and the worker goes on
            wb.jobs.fail(job.id, f"{type(exc).__name__}: {exc}")
        finally:
            beating.set()
            beat.join()
        done += 1
    wb.engine.dispose()
    return done


def _heartbeat(wb: Workbench, job_id: int, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        wb.jobs.heartbeat(job_id)
