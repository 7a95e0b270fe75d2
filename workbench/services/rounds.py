"""Retrain rounds: queue them, run them (worker side), and read what they produced.

``wb.rounds`` is the one entry for callers (app, CLI, worker, benchmarks):

- ``start`` / ``rescore`` queue a job (the app and the CLI);
- ``run_retrain`` / ``run_rescore`` run one in this process (the worker; scripts and tests), through
  :class:`workbench.services.round_pipeline.RoundPipeline` (imported on first use: it pulls in
  scikit-learn, the featurizers and the strategies, which the app's pages never need);
- ``runs`` / ``learning_curve`` / ``compare`` / ``ranked_by`` / ``stopping`` read, through
  :class:`workbench.services.round_queries.RoundQueries` (no model is loaded in the app process).

Jobs and dataset versions have their own services (``wb.jobs``, ``wb.versions``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from workbench.domain import Actor, JobInfo, JobKind, ProjectInfo, Role, RunInfo
from workbench.domain.rounds import LearningCurvePoint, RankedBy, RoundResult, RunComparison, VersionJobResult
from workbench.domain.stopping import StoppingAdvice
from workbench.services._auth import requires
from workbench.services._tx import reading
from workbench.services.jobs import JobService
from workbench.services.members import check_member
from workbench.services.projects import load_project, load_project_by_id
from workbench.services.round_queries import RoundQueries

if TYPE_CHECKING:
    from workbench.services.round_pipeline import ProgressFn, RoundPipeline


def _quiet(_: float, __: str) -> None:
    return None


class RoundService:
    def __init__(self, engine: Engine, home: Path | None = None) -> None:
        self.engine = engine
        self._home = home
        self._queries = RoundQueries(engine)
        self._pipeline: RoundPipeline | None = None

    @property
    def pipeline(self) -> RoundPipeline:
        if self._pipeline is None:
            from workbench.services.round_pipeline import RoundPipeline

            self._pipeline = RoundPipeline(self.engine, self._home)
        return self._pipeline

    # -- queue (app, CLI) ---------------------------------------------------------------------
    @requires(Role.REVIEWER)
    def start(self, project_name: str, *, actor: Actor, seed: int = 0) -> JobInfo:
        """Queue a retrain round (an identical pending round is returned instead)."""
        return JobService(self.engine).enqueue(project_name, JobKind.RETRAIN, actor=actor, payload={"seed": seed})

    @requires(Role.REVIEWER)
    def rescore(self, project_name: str, *, actor: Actor) -> JobInfo:
        """Queue a re-ranking of the open pool with the latest model."""
        return JobService(self.engine).enqueue(project_name, JobKind.RESCORE, actor=actor)

    # -- run (worker side) --------------------------------------------------------------------
    @requires(Role.ADMIN)
    def run_retrain(
        self,
        project: ProjectInfo | str | int,
        *,
        actor: Actor,
        job_id: int | None = None,
        seed: int = 0,
        progress: ProgressFn = _quiet,
    ) -> RoundResult:
        """Version, train, evaluate, rank; publish the version, run and ranking in one transaction."""
        return self.pipeline.retrain(
            self.resolve(project, actor=actor), actor=actor, job_id=job_id, seed=seed, progress=progress
        )

    @requires(Role.ADMIN)
    def run_rescore(
        self,
        project: ProjectInfo | str | int,
        *,
        actor: Actor,
        job_id: int | None = None,
        seed: int = 0,
        progress: ProgressFn = _quiet,
    ) -> RoundResult:
        """Re-rank the open pool with the latest registered model (hash-checked), or cold start."""
        return self.pipeline.rescore(
            self.resolve(project, actor=actor), actor=actor, job_id=job_id, seed=seed, progress=progress
        )

    @requires(Role.REVIEWER)
    def run_version(
        self, project: ProjectInfo | str | int, *, actor: Actor, job_id: int | None = None
    ) -> VersionJobResult:
        """Cut a dataset version as a job (the auto-version job)."""
        return self.pipeline.version_job(self.resolve(project, actor=actor), actor=actor, job_id=job_id)

    @requires(Role.ANNOTATOR)
    def resolve(self, project: ProjectInfo | str | int, *, actor: Actor) -> ProjectInfo:
        """The project, loaded once at the edge: by name (CLI, scripts) or id (a job's payload)."""
        with reading(self.engine) as session:
            if not isinstance(project, ProjectInfo):
                project = (
                    load_project_by_id(session, project) if isinstance(project, int) else load_project(session, project)
                )
            check_member(session, actor, project)
            return project

    # -- read (pages) -------------------------------------------------------------------------
    @requires(Role.REVIEWER)
    def runs(self, project_name: str, *, actor: Actor) -> list[RunInfo]:
        return self._queries.runs(project_name, actor=actor)

    @requires(Role.REVIEWER)
    def learning_curve(self, project_name: str, *, actor: Actor) -> list[LearningCurvePoint]:
        return self._queries.learning_curve(project_name, actor=actor)

    @requires(Role.REVIEWER)
    def compare(self, project_name: str, run_a: int, run_b: int, *, actor: Actor) -> RunComparison:
        return self._queries.compare(project_name, run_a, run_b, actor=actor)

    @requires(Role.REVIEWER)
    def stopping(self, project_name: str, *, actor: Actor) -> StoppingAdvice:
        return self._queries.stopping(project_name, actor=actor)

    @requires(Role.ANNOTATOR)
    def ranked_by(self, project: ProjectInfo, *, actor: Actor) -> RankedBy | None:
        return self._queries.ranked_by(project, actor=actor)
