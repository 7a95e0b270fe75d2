"""The admin's project overview: progress, agreement, the latest round and the review queue, as
one typed result (the page renders it; it holds no SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlmodel import col

from workbench.db.models import DatasetVersion, Item, Job, ModelRun
from workbench.domain import Actor, ItemState, JobKind, JobState, Progress, Role
from workbench.services._auth import requires
from workbench.services._tx import reading
from workbench.services.agreement import AgreementService
from workbench.services.projects import ProjectService, load_project


@dataclass(frozen=True)
class AgreementSummary:
    n_paired_items: int
    percent_agreement: float | None
    krippendorff_alpha: float | None
    n_annotators: int


@dataclass(frozen=True)
class LatestRound:
    job_state: JobState
    job_message: str
    job_error: str | None
    started_at: datetime | None
    finished_at: datetime | None
    version_number: int | None
    accuracy: float | None
    accuracy_ci95: tuple[float, float] | None
    n_train: int | None


@dataclass(frozen=True)
class ReviewSummary:
    waiting: int
    oldest: tuple[str, ...]  # external ids of the items waiting longest (at most 5)


@dataclass(frozen=True)
class ProjectOverview:
    project: str
    progress: Progress
    agreement: AgreementSummary
    latest_round: LatestRound | None
    review: ReviewSummary


@dataclass(frozen=True)
class ProjectLine:
    """One row of the all-projects table."""

    project: str
    pool_done: int
    pool_total: int
    eval_done: int
    eval_total: int
    in_review: int


class OverviewService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @requires(Role.REVIEWER)
    def projects(self, *, actor: Actor) -> list[ProjectLine]:
        """Every project's progress in one line (admins; a reviewer sees the projects they belong to)."""
        projects = ProjectService(self.engine)
        lines = []
        for project in projects.list(actor=actor):
            progress = projects.progress(project.name, actor=actor)
            lines.append(
                ProjectLine(
                    project=project.name,
                    pool_done=progress.done("pool"),
                    pool_total=progress.total("pool"),
                    eval_done=progress.done("eval"),
                    eval_total=progress.total("eval"),
                    in_review=sum(c.get(ItemState.REVIEW.value, 0) for c in progress.counts.values()),
                )
            )
        return lines

    @requires(Role.REVIEWER)
    def project(self, name: str, *, actor: Actor) -> ProjectOverview:
        """One project: progress, agreement, the latest round and the review queue (admins, and
        reviewers of the project: the agreement report checks the membership)."""
        progress = ProjectService(self.engine).progress(name, actor=actor)
        report = AgreementService(self.engine).report(name, actor=actor)
        agreement = AgreementSummary(
            n_paired_items=report.n_paired_items,
            percent_agreement=report.percent_agreement,
            krippendorff_alpha=report.krippendorff_alpha,
            n_annotators=report.n_annotators,
        )
        with reading(self.engine) as session:
            project = load_project(session, name)
            job = (
                session.execute(
                    select(Job)
                    .where(col(Job.project_id) == project.id, col(Job.kind) == JobKind.RETRAIN)
                    .order_by(col(Job.id).desc())
                    .limit(1)
                )
                .scalars()
                .first()
            )
            run = session.execute(
                select(ModelRun, col(DatasetVersion.number))
                .join(DatasetVersion, col(DatasetVersion.id) == ModelRun.version_id)
                .where(col(ModelRun.project_id) == project.id)
                .order_by(col(ModelRun.id).desc())
                .limit(1)
            ).first()
            waiting = session.execute(
                select(func.count()).where(col(Item.project_id) == project.id, col(Item.state) == ItemState.REVIEW)
            ).scalar_one()
            oldest = (
                session.execute(
                    select(col(Item.external_id))
                    .where(col(Item.project_id) == project.id, col(Item.state) == ItemState.REVIEW)
                    .order_by(col(Item.id))
                    .limit(5)
                )
                .scalars()
                .all()
            )
        latest = None
        if job is not None or run is not None:
            metrics = dict(run[0].metrics) if run is not None else {}
            ci = metrics.get("accuracy_ci95")
            latest = LatestRound(
                job_state=JobState(job.state) if job is not None else JobState.DONE,
                job_message=job.message if job is not None else "",
                job_error=job.error if job is not None else None,
                started_at=job.started_at if job is not None else None,
                finished_at=job.finished_at if job is not None else (run[0].created_at if run else None),
                version_number=run[1] if run is not None else None,
                accuracy=_float(metrics.get("accuracy")),
                accuracy_ci95=(float(ci[0]), float(ci[1])) if isinstance(ci, (list, tuple)) and len(ci) == 2 else None,
                n_train=int(metrics["n_train"]) if isinstance(metrics.get("n_train"), (int, float)) else None,
            )
        return ProjectOverview(
            project=name,
            progress=progress,
            agreement=agreement,
            latest_round=latest,
            review=ReviewSummary(waiting=waiting, oldest=tuple(oldest)),
        )


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None
