"""A round's model outside the Workbench: register it in the MLflow model registry, or export it
for serving (the model file, the fitted featurizer, the label set, metrics and a predict.py).

Before an export is put in place it is loaded back from its own files (hash-checked) and must
reproduce the run's stored eval predictions exactly; otherwise nothing is written.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session, col

from workbench.db.models import DatasetVersion, EvalPrediction, Item, ModelRun
from workbench.domain import Actor, ModelExport, ProjectInfo, RegisteredModel, Role, TrackingOutcome
from workbench.errors import NotFound, WorkbenchError
from workbench.services._auth import requires
from workbench.services._home import HomeBound
from workbench.services._tx import reading
from workbench.services.projects import load_project


class ModelService(HomeBound):
    def _run(self, session: Session, project: ProjectInfo, run_id: int) -> ModelRun:
        run = session.execute(
            select(ModelRun).where(col(ModelRun.project_id) == project.id, col(ModelRun.id) == run_id)
        ).scalar_one_or_none()
        if run is None:
            raise NotFound(f"no model run {run_id} in {project.name!r}")
        return run

    @requires(Role.ADMIN)
    def register(self, project_name: str, run_id: int, *, actor: Actor, name: str | None = None) -> RegisteredModel:
        """A new version of the registered model ``name`` (default: the project's name) from the
        run as it was logged to MLflow after its round."""
        from workbench.integrations import mlflow_tracking

        with reading(self.engine) as session:
            project = load_project(session, project_name)
            run = self._run(session, project, run_id)
        outcome = TrackingOutcome.from_json(run.tracking)
        if outcome is None or not outcome.logged:
            why = outcome.describe() if outcome is not None else "tracking was off for its round"
            raise WorkbenchError(
                f"model run {run_id} was not logged to MLflow ({why}); set mlflow_tracking_uri or "
                "MLFLOW_TRACKING_URI and start a round, then register that run"
            )
        return mlflow_tracking.register(outcome, name or project.name, model_run_id=run_id)

    @requires(Role.ADMIN)
    def export(self, project_name: str, run_id: int, out: Path | str, *, actor: Actor) -> ModelExport:
        """Write run ``run_id`` into the new (or empty) directory ``out`` for serving."""
        import numpy as np

        from workbench.services.round_pipeline import RoundPipeline
        from workbench.training.export import load_export, write_export

        out = Path(out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise WorkbenchError(f"{out} exists and is not an empty directory; choose a new one")
        with reading(self.engine) as session:
            project = load_project(session, project_name)
            run = self._run(session, project, run_id)
            version = session.get(DatasetVersion, run.version_id)
            assert version is not None  # the run's version (a foreign key)
            # The round fitted its featurizer on every item the project had then, in id order.
            rows = session.execute(
                select(col(Item.id), col(Item.content))
                .where(col(Item.project_id) == project.id, col(Item.created_at) <= run.created_at)
                .order_by(col(Item.id))
            ).all()
            stored = dict(
                session.execute(
                    select(col(EvalPrediction.item_id), col(EvalPrediction.predicted)).where(
                        col(EvalPrediction.model_run_id) == run.id
                    )
                ).all()
            )
        pipeline = RoundPipeline(self.engine, self._home)
        featurizer = pipeline.featurizer(project)
        if featurizer.key() != run.featurizer:
            raise WorkbenchError(
                f"the project's featurizer is now {featurizer.key()}, run {run_id} used {run.featurizer}: "
                "its features cannot be rebuilt for the export"
            )
        ids = np.asarray([row[0] for row in rows], dtype=np.int64)
        contents = [row[1] for row in rows]
        featurizer.fit_transform(contents)
        settings = dict(pipeline.featurizer_params(project))
        manifest = {
            "project": project.name,
            "kind": project.kind.value,
            "model_run_id": run.id,
            "version": version.number,
            "version_hash": version.content_hash,
            "labels": list(project.labels),
            "model_config": dict(run.config),
            "metrics": dict(run.metrics),
            "featurizer": {"settings": settings, "image_root": project.settings.get("image_root")},
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            files = write_export(
                staging,
                model_file=self.home / run.artifact_path,
                model_sha256=run.artifact_sha256,
                featurizer=featurizer,
                manifest=manifest,
            )
            # The export, loaded back from its own files, must give the run's eval predictions.
            exported = load_export(staging)
            checked = sorted(stored)
            positions = np.searchsorted(ids, np.asarray(checked, dtype=np.int64))
            predicted = exported.predict([contents[p] for p in positions]) if checked else []
            differ = [item for item, label in zip(checked, predicted) if stored[item] != label]
            if differ:
                raise WorkbenchError(
                    f"the export predicts {len(differ)} of run {run_id}'s {len(checked)} eval items differently "
                    "from the round (were items imported right after it?); nothing written"
                )
            if out.exists():
                out.rmdir()
            staging.rename(out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        manifest_data = exported.manifest
        return ModelExport(
            directory=str(out),
            files=files,
            model_sha256=run.artifact_sha256,
            featurizer_sha256=manifest_data["featurizer"]["state_sha256"],
            n_eval_checked=len(checked),
        )
