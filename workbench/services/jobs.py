"""Background jobs: durable state in the database, claimed atomically by worker processes.

A worker heartbeats while it runs a job; a job whose heartbeat goes stale (the worker was killed)
returns to the queue and is retried, up to MAX_ATTEMPTS. Job handlers write their results in one
transaction at the end, so a killed job leaves nothing half-registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, case, delete, or_, select, update
from sqlmodel import Session, col

from workbench.db.models import Job, WorkerProcess, utcnow
from workbench.domain import Actor, JobInfo, JobKind, JobState, Role
from workbench.domain.alerts import AlertJobResult
from workbench.domain.rounds import JobPayload, JobResult, RoundResult, VersionJobResult
from workbench.errors import NotFound
from workbench.services._auth import requires
from workbench.services._tx import audit, reading, write
from workbench.services.members import check_member, load_member_project

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_ATTEMPTS = 3
STALE_AFTER = timedelta(seconds=30)  # a running job whose heartbeat is older than this lost its worker
WORKER_ALIVE = timedelta(seconds=20)  # a worker whose registry heartbeat is older than this is gone


@dataclass(frozen=True)
class WorkerInfo:
    """A registered worker process, as its last heartbeat described it."""

    name: str
    host: str
    pid: int
    job_id: int | None
    started_at: datetime
    heartbeat_at: datetime


def _give_back(session: Session, job: Job, reason: str, *, counts: bool) -> JobState:
    """Return a running job to the queue, or fail it when it has used its attempts.

    `counts=False` is a clean interruption (the worker was asked to stop): that attempt is not
    charged, so a job is only failed for deaths it may have caused itself.
    """
    if not counts:
        job.attempts = max(0, job.attempts - 1)
    gave_up = counts and job.attempts >= MAX_ATTEMPTS
    job.state = JobState.FAILED if gave_up else JobState.QUEUED
    job.error = reason + (f" (after {job.attempts} attempts; giving up)" if gave_up else "")
    job.message = "failed" if gave_up else "queued again"
    job.finished_at = utcnow() if gave_up else None
    job.heartbeat_at = None
    audit(
        session,
        "job.failed" if gave_up else "job.requeued",
        project_id=job.project_id,
        job_id=job.id,
        worker=job.worker,
        reason=reason,
    )
    return JobState(job.state)


# The strategy advisor's replay is background work nobody waits for: claimed after every other
# kind (a round, a rescore, a version, an alert check), whatever their age.
_BACKGROUND_LAST = case((col(Job.kind) == JobKind.ADVISE, 1), else_=0)


def _sweep_stale(session: Session, stale_after: timedelta) -> list[int]:
    now = utcnow()
    dead = or_(col(Job.heartbeat_at).is_(None), col(Job.heartbeat_at) < now - stale_after)
    swept: list[int] = []
    for job in session.execute(
        select(Job).where(col(Job.state) == JobState.RUNNING, dead).with_for_update(skip_locked=True)
    ).scalars():
        _give_back(session, job, f"worker {job.worker} stopped responding", counts=True)
        assert job.id is not None  # a loaded row
        swept.append(job.id)
    return swept


def job_result(kind: JobKind, stored: dict | None) -> JobResult | None:
    """A job's typed result from its stored JSON (None until the job is done)."""
    if not stored:
        return None
    if kind == JobKind.VERSION:
        return VersionJobResult.from_json(stored)
    if kind == JobKind.ALERT:
        return AlertJobResult.from_json(stored)
    if kind == JobKind.ADVISE:
        from workbench.domain.advice import Advice

        return Advice.from_json(stored)
    return RoundResult.from_json(stored)


def job_info(job: Job) -> JobInfo:
    kind = JobKind(job.kind)
    assert job.id is not None  # flushed or loaded
    return JobInfo(
        id=job.id,
        project_id=job.project_id,
        kind=kind,
        state=JobState(job.state),
        progress=job.progress,
        message=job.message,
        error=job.error,
        attempts=job.attempts,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        result=job_result(kind, job.result),
        worker=job.worker,
    )


def complete_job(session: Session, job_id: int, result: JobResult) -> None:
    """Mark a job done inside the caller's transaction (so results and completion land together)."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    job.state, job.progress, job.message = JobState.DONE, 100.0, "done"
    job.result, job.finished_at, job.error = result.to_json(), utcnow(), None
    audit(session, "job.done", project_id=job.project_id, job_id=job.id, kind=job.kind)


class JobService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @requires(Role.REVIEWER)
    def enqueue(self, project_name: str, kind: JobKind | str, *, actor: Actor, payload: dict | None = None) -> JobInfo:
        """Queue a job; an identical job already queued or running is returned instead."""
        kind = JobKind(kind)

        def work(session: Session) -> JobInfo:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            pending = session.execute(
                select(Job)
                .where(
                    col(Job.project_id) == project.id,
                    col(Job.kind) == kind,
                    col(Job.state).in_([JobState.QUEUED, JobState.RUNNING]),
                )
                .limit(1)
            ).scalar_one_or_none()
            if pending is not None:
                return job_info(pending)
            job = Job(
                project_id=project.id,
                kind=kind,
                payload=payload or {},
                created_at=utcnow(),
                requested_by=actor.id if actor else None,
                message="queued",
            )
            session.add(job)
            session.flush()
            audit(
                session,
                "job.enqueue",
                actor_id=actor.id if actor else None,
                project_id=project.id,
                job_id=job.id,
                kind=kind.value,
            )
            return job_info(job)

        return write(self.engine, work)

    @requires(Role.ADMIN)
    def claim_next(self, worker: str, *, stale_after: timedelta = STALE_AFTER, actor: Actor) -> JobInfo | None:
        """Take the oldest queued job (or one whose worker died) for this worker; the strategy
        advisor's replays come after every other kind, so a round never waits behind one."""

        def work(session: Session) -> JobInfo | None:
            now = utcnow()
            _sweep_stale(session, stale_after)
            job = session.execute(
                select(Job)
                .where(col(Job.state) == JobState.QUEUED)
                .order_by(_BACKGROUND_LAST, col(Job.created_at), col(Job.id))
                .limit(1)
                .with_for_update(skip_locked=True)
            ).scalar_one_or_none()
            if job is None:
                return None
            job.state, job.worker, job.attempts = JobState.RUNNING, worker, job.attempts + 1
            job.started_at = job.heartbeat_at = now
            job.progress, job.message = 0.0, "started"
            return job_info(job)

        return write(self.engine, work)

    @requires(Role.ADMIN)
    def requeue_stale(self, *, actor: Actor, stale_after: timedelta = STALE_AFTER) -> list[int]:
        """Give back every running job whose heartbeat is stale (its worker died); returns their ids.

        Any live worker calls this periodically (also while busy), and so does the supervisor.
        """
        return write(self.engine, lambda session: _sweep_stale(session, stale_after))

    @requires(Role.ADMIN)
    def requeue_worker(self, worker: str, reason: str, *, actor: Actor, counts: bool = True) -> list[int]:
        """Give back the running jobs of one worker that is known to be gone (the supervisor saw it
        die, or it was interrupted); returns their ids. `counts=False` does not charge the attempt."""

        def work(session: Session) -> list[int]:
            jobs = (
                session.execute(
                    select(Job).where(col(Job.state) == JobState.RUNNING, col(Job.worker) == worker).with_for_update()
                )
                .scalars()
                .all()
            )
            for job in jobs:
                _give_back(session, job, reason, counts=counts)
            return [job.id for job in jobs if job.id is not None]  # loaded rows: all have ids

        return write(self.engine, work)

    @requires(Role.ADMIN)
    def release(self, job_id: int, worker: str, reason: str, *, actor: Actor) -> bool:
        """A worker that was asked to stop hands its running job back (uncharged). False when the
        job was no longer this worker's (finished, or already taken back)."""

        def work(session: Session) -> bool:
            job = session.get(Job, job_id, with_for_update=True)
            if job is None or job.state != JobState.RUNNING or job.worker != worker:
                return False
            _give_back(session, job, reason, counts=False)
            return True

        return write(self.engine, work)

    @requires(Role.ADMIN)
    def requeue_dead_local(self, host: str, is_alive: Callable[[int], bool], *, actor: Actor) -> list[int]:
        """Give back running jobs held by workers on `host` whose process is gone (`is_alive(pid)`
        is False), without waiting for their lease to go stale; drops their registry rows."""

        def work(session: Session) -> list[int]:
            given: list[int] = []
            for job in (
                session.execute(
                    select(Job).where(col(Job.state) == JobState.RUNNING, col(Job.worker).like(f"{host}:%"))
                )
                .scalars()
                .all()
            ):
                pid = (job.worker or "").rpartition(":")[2]
                if pid.isdigit() and not is_alive(int(pid)):
                    _give_back(session, job, f"worker {job.worker} is gone (its process ended)", counts=True)
                    assert job.id is not None  # a loaded row
                    given.append(job.id)
            for row in session.execute(select(WorkerProcess).where(col(WorkerProcess.host) == host)).scalars().all():
                if not is_alive(row.pid):
                    session.delete(row)
            return given

        return write(self.engine, work)

    # -- the worker registry ---------------------------------------------------------------
    @requires(Role.ADMIN)
    def register_worker(self, name: str, host: str, pid: int, *, actor: Actor) -> None:

        def work(session: Session) -> None:
            session.execute(delete(WorkerProcess).where(col(WorkerProcess.name) == name))
            session.add(WorkerProcess(name=name, host=host, pid=pid, started_at=utcnow(), heartbeat_at=utcnow()))

        write(self.engine, work)

    @requires(Role.ADMIN)
    def worker_beat(self, name: str, *, job_id: int | None, actor: Actor) -> None:
        """Refresh a worker's registry row (re-creating it if someone pruned it)."""

        def work(session: Session) -> None:
            row = session.get(WorkerProcess, name)
            if row is None:
                host, _, pid = name.rpartition(":")
                row = WorkerProcess(name=name, host=host, pid=int(pid) if pid.isdigit() else 0)
                session.add(row)
            row.heartbeat_at, row.job_id = utcnow(), job_id

        write(self.engine, work)

    @requires(Role.ADMIN)
    def unregister_worker(self, name: str, *, actor: Actor) -> None:
        write(
            self.engine, lambda session: session.execute(delete(WorkerProcess).where(col(WorkerProcess.name) == name))
        )

    @requires(Role.ANNOTATOR)
    def live_workers(self, *, actor: Actor, within: timedelta = WORKER_ALIVE) -> list[WorkerInfo]:
        """Workers whose registry heartbeat is fresh."""
        with reading(self.engine) as session:
            rows = (
                session.execute(
                    select(WorkerProcess)
                    .where(col(WorkerProcess.heartbeat_at) >= utcnow() - within)
                    .order_by(col(WorkerProcess.started_at))
                )
                .scalars()
                .all()
            )
        return [
            WorkerInfo(
                name=r.name,
                host=r.host,
                pid=r.pid,
                job_id=r.job_id,
                started_at=r.started_at,
                heartbeat_at=r.heartbeat_at,
            )
            for r in rows
        ]

    @requires(Role.ADMIN)
    def heartbeat(
        self,
        job_id: int,
        *,
        progress: float | None = None,
        message: str | None = None,
        worker: str | None = None,
        actor: Actor,
    ) -> None:
        """Renew a running job's lease (only while it is still `worker`'s, when given)."""
        values: dict[str, Any] = {"heartbeat_at": utcnow()}
        if progress is not None:
            values["progress"] = max(0.0, min(100.0, progress))
        if message is not None:
            values["message"] = message
        mine = [col(Job.worker) == worker] if worker is not None else []
        write(
            self.engine,
            lambda session: session.execute(
                update(Job).where(col(Job.id) == job_id, col(Job.state) == JobState.RUNNING, *mine).values(**values)
            ),
        )

    @requires(Role.ADMIN)
    def finish(self, job_id: int, result: JobResult, *, actor: Actor) -> None:
        write(self.engine, lambda session: complete_job(session, job_id, result))

    @requires(Role.ADMIN)
    def fail(self, job_id: int, reason: str, *, actor: Actor) -> None:
        def work(session: Session) -> None:
            job = session.get(Job, job_id)
            if job is None:
                raise NotFound(f"no job {job_id}")
            job.state, job.error, job.finished_at = JobState.FAILED, reason, utcnow()
            job.message = "failed"
            audit(session, "job.failed", project_id=job.project_id, job_id=job.id, kind=job.kind, reason=reason)

        write(self.engine, work)

    @requires(Role.REVIEWER)
    def retry(self, job_id: int, *, actor: Actor) -> JobInfo:
        """Queue a failed job again."""

        def work(session: Session) -> JobInfo:
            job = session.get(Job, job_id)
            if job is None:
                raise NotFound(f"no job {job_id}")
            check_member(session, actor, job.project_id, Role.REVIEWER)
            if job.state == JobState.FAILED:
                job.state, job.error, job.finished_at, job.attempts = JobState.QUEUED, None, None, 0
                job.message = "queued again"
                audit(
                    session, "job.retry", actor_id=actor.id if actor else None, project_id=job.project_id, job_id=job.id
                )
            return job_info(job)

        return write(self.engine, work)

    @requires(Role.REVIEWER)
    def get(self, job_id: int, *, actor: Actor) -> JobInfo:
        with reading(self.engine) as session:
            job = session.get(Job, job_id)
            if job is None:
                raise NotFound(f"no job {job_id}")
            check_member(session, actor, job.project_id, Role.REVIEWER)
            return job_info(job)

    @requires(Role.REVIEWER)
    def list(self, project_name: str, limit: int = 20, *, actor: Actor) -> list[JobInfo]:
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            jobs = (
                session.execute(
                    select(Job).where(col(Job.project_id) == project.id).order_by(col(Job.id).desc()).limit(limit)
                )
                .scalars()
                .all()
            )
        return [job_info(job) for job in jobs]

    @requires(Role.ADMIN)
    def payload(self, job_id: int, *, actor: Actor) -> JobPayload:
        """What the worker needs to run the job: its project id and parameters."""
        with reading(self.engine) as session:
            job = session.get(Job, job_id)
            if job is None:
                raise NotFound(f"no job {job_id}")
            return JobPayload.from_json(job.project_id, JobKind(job.kind), job.payload)
