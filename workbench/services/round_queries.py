"""Read-only views of rounds for the pages: model runs, the learning curve, run comparisons, and
which strategy made the ranking in force. Nothing here loads a model or computes features: runs
are compared from the eval predictions stored with each run."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlmodel import col

from workbench.db.models import DatasetVersion, DatasetVersionItem, EvalPrediction, ModelRun, RankEntry
from workbench.domain import Actor, ProjectInfo, Role, RunInfo, Split
from workbench.domain.rounds import EvalMetrics, LearningCurvePoint, RankedBy, RunComparison, TrackingOutcome
from workbench.domain.stopping import Stability, StoppingAdvice, advise, stopping_round
from workbench.errors import NotFound, WorkbenchError
from workbench.services._tx import reading
from workbench.services.members import check_member, load_member_project
from workbench.services.users import require_role


class RoundQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def runs(self, project_name: str, *, actor: Actor) -> list[RunInfo]:
        """Every model run of the project, oldest first, with its typed metrics."""
        require_role(actor, Role.REVIEWER)
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            rows = session.execute(
                select(ModelRun, col(DatasetVersion.number))
                .join(DatasetVersion, col(DatasetVersion.id) == ModelRun.version_id)
                .where(col(ModelRun.project_id) == project.id)
                .order_by(col(ModelRun.id))
            ).all()
        runs = []
        for run, number in rows:
            metrics = EvalMetrics.from_json(run.metrics)
            runs.append(
                RunInfo(
                    id=run.id,
                    version_number=number,
                    n_train=metrics.n_train,
                    config=dict(run.config),
                    metrics=metrics,
                    featurizer=run.featurizer,
                    artifact_sha256=run.artifact_sha256,
                    duration_s=run.duration_s,
                    created_at=run.created_at,
                    tracking=TrackingOutcome.from_json(run.tracking),
                )
            )
        return runs

    def learning_curve(self, project_name: str, *, actor: Actor) -> list[LearningCurvePoint]:
        """Training labels against eval accuracy (with its bootstrap 95% interval), per run."""
        curve = []
        for run in self.runs(project_name, actor=actor):
            m = run.metrics
            low, high = m.accuracy_ci95 or (None, None)
            curve.append(
                LearningCurvePoint(
                    run_id=run.id,
                    version_number=run.version_number,
                    n_labels=run.n_train,
                    n_eval=m.n,
                    accuracy=m.accuracy,
                    ci_low=low,
                    ci_high=high,
                    macro_f1=m.macro_f1,
                )
            )
        return curve

    def stopping(self, project_name: str, *, actor: Actor) -> StoppingAdvice:
        """Stopping advice from what each round stored (stop-set kappa against the previous run,
        eval accuracy with its interval, strategy against the control arm): nothing is computed
        here but the sentence."""
        require_role(actor, Role.REVIEWER)
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            rows = session.execute(
                select(col(ModelRun.id), col(ModelRun.metrics), col(ModelRun.stability), col(DatasetVersion.number))
                .join(DatasetVersion, col(DatasetVersion.id) == ModelRun.version_id)
                .where(col(ModelRun.project_id) == project.id)
                .order_by(col(ModelRun.id))
            ).all()
        rounds = []
        for run_id, metrics_json, stability_json, number in rows:
            metrics = EvalMetrics.from_json(metrics_json)
            rounds.append(
                stopping_round(
                    run_id,
                    number,
                    metrics.n_train,
                    metrics.accuracy,
                    metrics.accuracy_ci95,
                    Stability.from_json(stability_json),
                )
            )
        return advise(rounds)

    def compare(self, project_name: str, run_a: int, run_b: int, *, actor: Actor) -> RunComparison:
        """Two runs on the same eval items (those with a final label in the latest version), from the
        predictions stored with each run."""
        from workbench.training.evaluation import compare_predictions

        require_role(actor, Role.REVIEWER)
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            found = set(
                session.execute(
                    select(col(ModelRun.id)).where(
                        col(ModelRun.project_id) == project.id, col(ModelRun.id).in_([run_a, run_b])
                    )
                ).scalars()
            )
            missing = sorted({run_a, run_b} - found)
            if missing:
                raise NotFound(f"no model run {missing[0]} in {project_name!r}")
            latest = session.execute(
                select(col(DatasetVersion.id))
                .where(col(DatasetVersion.project_id) == project.id)
                .order_by(col(DatasetVersion.number).desc())
                .limit(1)
            ).scalar_one_or_none()
            truth = (
                dict(
                    session.execute(
                        select(col(DatasetVersionItem.item_id), col(DatasetVersionItem.label)).where(
                            col(DatasetVersionItem.version_id) == latest, col(DatasetVersionItem.split) == Split.EVAL
                        )
                    ).all()
                )
                if latest
                else {}
            )
            predicted = {
                run: dict(
                    session.execute(
                        select(col(EvalPrediction.item_id), col(EvalPrediction.predicted)).where(
                            col(EvalPrediction.model_run_id) == run
                        )
                    ).all()
                )
                for run in (run_a, run_b)
            }
        if not truth:
            raise WorkbenchError("no eval item has a final label yet; label some eval items first")
        for run in (run_a, run_b):
            if not predicted[run]:
                raise WorkbenchError(
                    f"model run {run} has no stored eval predictions (it predates them); start a new round to compare"
                )
        items = sorted(truth.keys() & predicted[run_a].keys() & predicted[run_b].keys())
        if not items:
            raise WorkbenchError("the two runs share no labeled eval item")
        result = compare_predictions(
            [truth[i] for i in items], [predicted[run_a][i] for i in items], [predicted[run_b][i] for i in items]
        )
        return RunComparison(**{**result.__dict__, "run_a": run_a, "run_b": run_b})

    def ranked_by(self, project: ProjectInfo, *, actor: Actor) -> RankedBy | None:
        """Which strategy made the ranking the queue serves now (None: no ranking yet)."""
        require_role(actor, Role.ANNOTATOR)
        with reading(self.engine) as session:
            check_member(session, actor, project)
            top = session.execute(
                select(col(RankEntry.strategy), col(RankEntry.model_run_id))
                .where(col(RankEntry.project_id) == project.id)
                .order_by(col(RankEntry.position))
                .limit(1)
            ).first()
        if top is None:
            return None
        strategy, model_run_id = top
        return RankedBy(
            strategy=strategy,
            project_strategy=project.strategy,
            model_run_id=model_run_id,
            model_free=model_run_id is None,
        )
