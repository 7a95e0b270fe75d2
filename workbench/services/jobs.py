"""Background jobs: durable state in the database, claimed atomically by worker processes.

A worker heartbeats while it runs a job; a job whose heartbeat goes stale (the worker was killed)
returns to the queue and is retried, up to MAX_ATTEMPTS. Job handlers write their results in one
transaction at the end, so a killed job leaves nothing half-registered.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, or_, select, update
from sqlmodel import Session

from workbench.db.models import Job, Project, utcnow
from workbench.domain import Actor, JobInfo, JobKind, JobState, Role
from workbench.errors import NotFound
from workbench.services._tx import audit, reading, write
from workbench.services.projects import load_project
from workbench.services.users import require_role

MAX_ATTEMPTS = 3
STALE_AFTER = timedelta(seconds=30)


def job_info(job: Job) -> JobInfo:
    return JobInfo(id=job.id, project_id=job.project_id, kind=JobKind(job.kind), state=JobState(job.state),
                   progress=job.progress, message=job.message, error=job.error, attempts=job.attempts,
                   created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
                   result=dict(job.result))


def complete_job(session: Session, job_id: int, result: dict) -> None:
    """Mark a job done inside the caller's transaction (so results and completion land together)."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    job.state, job.progress, job.message = JobState.DONE, 100.0, "done"
    job.result, job.finished_at, job.error = result, utcnow(), None
    audit(session, "job.done", project_id=job.project_id, job_id=job.id, kind=job.kind)


class JobService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def enqueue(self, project_name: str, kind: JobKind | str, *, actor: Actor | None = None,
                payload: dict | None = None) -> JobInfo:
        """Queue a job; an identical job already queued or running is returned instead."""
        require_role(actor, Role.REVIEWER)
        kind = JobKind(kind)

        def work(session: Session) -> JobInfo:
            project = load_project(session, project_name)
            pending = session.execute(select(Job).where(
                Job.project_id == project.id, Job.kind == kind, Job.state.in_([JobState.QUEUED, JobState.RUNNING])
            ).limit(1)).scalar_one_or_none()
            if pending is not None:
                return job_info(pending)
            job = Job(project_id=project.id, kind=kind, payload=payload or {}, created_at=utcnow(),
                      requested_by=actor.id if actor else None, message="queued")
            session.add(job)
            session.flush()
            audit(session, "job.enqueue", actor_id=actor.id if actor else None, project_id=project.id,
                  job_id=job.id, kind=kind.value)
            return job_info(job)

        return write(self.engine, work)

    def claim_next(self, worker: str, *, stale_after: timedelta = STALE_AFTER) -> JobInfo | None:
        """Take the oldest queued job (or one whose worker died) for this worker."""

        def work(session: Session) -> JobInfo | None:
            now = utcnow()
            dead = or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < now - stale_after)
            for job in session.execute(select(Job).where(Job.state == JobState.RUNNING, dead)
                                       .with_for_update(skip_locked=True)).scalars():
                gave_up = job.attempts >= MAX_ATTEMPTS
                job.state = JobState.FAILED if gave_up else JobState.QUEUED
                job.error = f"worker {job.worker} stopped responding" + (" (no attempts left)" if gave_up else "")
                job.finished_at = now if gave_up else None
                audit(session, "job.orphaned", project_id=job.project_id, job_id=job.id, worker=job.worker)
            job = session.execute(select(Job).where(Job.state == JobState.QUEUED).order_by(Job.created_at, Job.id)
                                  .limit(1).with_for_update(skip_locked=True)).scalar_one_or_none()
            if job is None:
                return None
            job.state, job.worker, job.attempts = JobState.RUNNING, worker, job.attempts + 1
            job.started_at = job.heartbeat_at = now
            job.progress, job.message = 0.0, "started"
            return job_info(job)

        return write(self.engine, work)

    def heartbeat(self, job_id: int, *, progress: float | None = None, message: str | None = None) -> None:
        values = {"heartbeat_at": utcnow()}
        if progress is not None:
            values["progress"] = max(0.0, min(100.0, progress))
        if message is not None:
            values["message"] = message
        write(self.engine, lambda session: session.execute(
            update(Job).where(Job.id == job_id, Job.state == JobState.RUNNING).values(**values)))

    def finish(self, job_id: int, result: dict) -> None:
        write(self.engine, lambda session: complete_job(session, job_id, result))

    def fail(self, job_id: int, reason: str) -> None:
        def work(session: Session) -> None:
            job = session.get(Job, job_id)
            job.state, job.error, job.finished_at = JobState.FAILED, reason, utcnow()
            job.message = "failed"
            audit(session, "job.failed", project_id=job.project_id, job_id=job.id, kind=job.kind, reason=reason)

        write(self.engine, work)

    def retry(self, job_id: int, *, actor: Actor | None = None) -> JobInfo:
        """Queue a failed job again."""
        require_role(actor, Role.REVIEWER)

        def work(session: Session) -> JobInfo:
            job = session.get(Job, job_id)
            if job is None:
                raise NotFound(f"no job {job_id}")
            if job.state == JobState.FAILED:
                job.state, job.error, job.finished_at, job.attempts = JobState.QUEUED, None, None, 0
                job.message = "queued again"
                audit(session, "job.retry", actor_id=actor.id if actor else None, project_id=job.project_id,
                      job_id=job.id)
            return job_info(job)

        return write(self.engine, work)

    def get(self, job_id: int) -> JobInfo:
        with reading(self.engine) as session:
            job = session.get(Job, job_id)
            if job is None:
                raise NotFound(f"no job {job_id}")
            return job_info(job)

    def list(self, project_name: str, limit: int = 20) -> list[JobInfo]:
        with reading(self.engine) as session:
            project = load_project(session, project_name)
            jobs = session.execute(select(Job).where(Job.project_id == project.id)
                                   .order_by(Job.id.desc()).limit(limit)).scalars().all()
        return [job_info(job) for job in jobs]

    def payload(self, job_id: int) -> tuple[str, dict]:
        """The job's project name and payload, for the worker."""
        with reading(self.engine) as session:
            job = session.get(Job, job_id)
            name = session.execute(select(Project.name).where(Project.id == job.project_id)).scalar_one()
            return name, dict(job.payload)
