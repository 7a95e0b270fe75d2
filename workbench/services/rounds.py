"""Retrain rounds: version → features → train → evaluate on the eval split → register → rescore.

A round runs in a worker process (`workbench worker`), never in the Streamlit server. Everything it
registers — the model run and the new ranking — is written in one transaction at the end, with the
job's completion, so a killed round leaves nothing half-registered and can simply be retried.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, delete, insert, select
from sqlmodel import Session

import strategies
from workbench.config import workbench_home
from workbench.db.models import DatasetVersion, DatasetVersionItem, Item, ModelRun, RankEntry, utcnow
from workbench.domain import Actor, ItemState, JobInfo, JobKind, ProjectInfo, Role, RunInfo, Split
from workbench.errors import NotFound, WorkbenchError
from workbench.services._tx import audit, reading, write
from workbench.services.jobs import JobService, complete_job
from workbench.services.projects import load_project
from workbench.services.users import require_role
from workbench.services.versions import VersionService, cut_version
from workbench.training import (
    FeatureStore,
    compare_runs,
    evaluate,
    linear_head,
    load_model,
    make_featurizer,
    make_model,
    save_model,
)

Progress = Callable[[float, str], None]
RANK_SIZE = 2000  # candidates kept in rank_entry; claims take from the top
MIN_PER_LABEL = 2  # below this many labels of some class, rank by cold start instead of a model
SEEDS_PER_LABEL = 10  # a cold-start seed set has this many items per label (a k-means cluster each)
ARTIFACTS = "artifacts"  # under WORKBENCH_HOME


def _quiet(_: float, __: str) -> None:
    return None


class PoolData:
    """Every item of a project in id order (the feature matrix's row order), with split and state."""

    def __init__(self, ids: np.ndarray, splits: np.ndarray, states: np.ndarray, slots: np.ndarray) -> None:
        self.ids, self.splits, self.states, self.slots = ids, splits, states, slots

    def rows(self, item_ids) -> np.ndarray:  # noqa: ANN001
        """Row positions of the given item ids."""
        return np.searchsorted(self.ids, np.asarray(item_ids, dtype=np.int64))

    def candidates(self) -> np.ndarray:
        """Rows a strategy may choose from: open pool items."""
        return np.flatnonzero((self.splits == Split.POOL.value) & (self.states == ItemState.OPEN.value))


class RoundService:
    def __init__(self, engine: Engine, home: Path | None = None) -> None:
        self.engine = engine
        self._home = home
        self.jobs = JobService(engine)
        self.versions_service = VersionService(engine)

    @property
    def home(self) -> Path:
        return self._home or workbench_home()

    # -- what the app and the CLI call ------------------------------------------------------
    def start(self, project_name: str, actor: Actor | None = None, *, seed: int = 0) -> JobInfo:
        """Queue a retrain round (an identical pending round is returned instead)."""
        return self.jobs.enqueue(project_name, JobKind.RETRAIN, actor=actor, payload={"seed": seed})

    def rescore(self, project_name: str, actor: Actor | None = None) -> JobInfo:
        return self.jobs.enqueue(project_name, JobKind.RESCORE, actor=actor)

    def job(self, job_id: int) -> JobInfo:
        return self.jobs.get(job_id)

    def jobs_of(self, project_name: str, limit: int = 20) -> list[JobInfo]:
        return self.jobs.list(project_name, limit)

    def versions(self, project_name: str):  # noqa: ANN201
        return self.versions_service.list(project_name)

    def diff(self, project_name: str, a: int, b: int):  # noqa: ANN201
        return self.versions_service.diff(project_name, a, b)

    def export_version(self, project_name: str, number: int, fmt: str, *, actor: Actor | None = None) -> bytes:
        return self.versions_service.export(project_name, number, fmt, actor=actor)[0]

    def runs(self, project_name: str) -> list[RunInfo]:
        with reading(self.engine) as session:
            project = load_project(session, project_name)
            rows = session.execute(
                select(ModelRun, DatasetVersion.number).join(DatasetVersion, DatasetVersion.id == ModelRun.version_id)
                .where(ModelRun.project_id == project.id).order_by(ModelRun.id)
            ).all()
        return [RunInfo(id=run.id, version_number=number, n_train=int(run.metrics.get("n_train", 0)),
                        config=dict(run.config), metrics=dict(run.metrics), featurizer=run.featurizer,
                        artifact_sha256=run.artifact_sha256, duration_s=run.duration_s, created_at=run.created_at)
                for run, number in rows]

    def learning_curve(self, project_name: str) -> list[dict[str, Any]]:
        """Labeled pool items against eval accuracy (with its bootstrap 95% interval), per run."""
        curve = []
        for run in self.runs(project_name):
            low, high = run.metrics.get("accuracy_ci95") or (None, None)
            curve.append({"run_id": run.id, "version_number": run.version_number, "n_labels": run.n_train,
                          "n_eval": run.metrics.get("n", 0), "accuracy": run.metrics.get("accuracy"),
                          "ci_low": low, "ci_high": high, "macro_f1": run.metrics.get("macro_f1")})
        return curve

    def compare(self, project_name: str, run_a: int, run_b: int, *, actor: Actor | None = None) -> dict[str, Any]:
        """Two runs on the same eval items: those with a final label in the latest version."""
        require_role(actor, Role.REVIEWER)
        with reading(self.engine) as session:
            project = load_project(session, project_name)
            pool = _load_pool(session, project)
            runs = {run.id: run for run in session.execute(select(ModelRun).where(
                ModelRun.project_id == project.id, ModelRun.id.in_([run_a, run_b]))).scalars()}
            latest = session.execute(select(DatasetVersion.id).where(DatasetVersion.project_id == project.id)
                                     .order_by(DatasetVersion.number.desc()).limit(1)).scalar_one_or_none()
            eval_rows = session.execute(select(DatasetVersionItem.item_id, DatasetVersionItem.label).where(
                DatasetVersionItem.version_id == latest, DatasetVersionItem.split == Split.EVAL)).all() if latest else []
        missing = {run_a, run_b} - runs.keys()
        if missing:
            raise NotFound(f"no model run {sorted(missing)[0]} in {project_name!r}")
        if not eval_rows:
            raise WorkbenchError("no eval item has a final label yet; label some eval items first")
        X = self._features(project, pool)
        rows = pool.rows([item_id for item_id, _ in eval_rows])
        y = [label for _, label in eval_rows]
        probas = [self._load(runs[r]).predict_proba(X[rows]) for r in (run_a, run_b)]
        return {"run_a": run_a, "run_b": run_b, "n_eval": len(y),
                **compare_runs(y, probas[0], probas[1], list(project.labels))}

    def _load(self, run: ModelRun):  # noqa: ANN202
        """A registered model, loaded only after its file's sha256 matches the database."""
        return load_model(self.home / run.artifact_path, run.artifact_sha256, root=self.home)

    # -- the round itself (worker side) -------------------------------------------------------
    def run_retrain(self, project_name: str, *, job_id: int | None = None, seed: int = 0,
                    progress: Progress = _quiet) -> dict[str, Any]:
        """Version, train, evaluate, rescore; register the run and the ranking in one transaction."""
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        def step(name: str, pct: float) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[name] = round(now - clock, 4)
            clock = now
            progress(pct, name)

        with reading(self.engine) as session:
            screened = load_project(session, project_name)
            screened_pool = _load_pool(session, screened)
        # Featurize first: items that cannot be featurized are quarantined, so the version cut
        # next leaves them out (the features are cached, the second call below reads them back).
        self._features(screened, screened_pool)
        version = cut_version(self.engine, project_name, trigger="round", actor_id=None)
        with reading(self.engine) as session:
            project = load_project(session, project_name)
            pool = _load_pool(session, project)
            labeled = session.execute(select(DatasetVersionItem.item_id, DatasetVersionItem.split,
                                             DatasetVersionItem.label)
                                      .where(DatasetVersionItem.version_id == version.id)).all()
        step("version", 15)
        X = self._features(project, pool, progress=lambda done, total: progress(
            15 + 20 * done / max(total, 1), f"features {done:,}/{total:,}"))
        step("features", 35)
        train = [(item_id, label) for item_id, split, label in labeled if split == Split.POOL]
        held_out = [(item_id, label) for item_id, split, label in labeled if split == Split.EVAL]
        y_train = [label for _, label in train]
        counts = {label: y_train.count(label) for label in project.labels}
        trainable = len(set(y_train)) >= 2
        result: dict[str, Any] = {"version": version.number, "version_hash": version.content_hash,
                                  "n_train": len(train), "n_eval": len(held_out), "label_counts": counts}
        model = None
        config = self._model_config(project)
        if trainable:
            model = make_model(config, seed, classes=list(project.labels))
            model.fit(X[pool.rows([i for i, _ in train])], np.asarray(y_train, dtype=object))
        step("train", 65)
        metrics: dict[str, Any] = {"n": 0, "n_train": len(train)}
        if model is not None and held_out:
            eval_proba = model.predict_proba(X[pool.rows([i for i, _ in held_out])])
            metrics = {**evaluate([label for _, label in held_out], eval_proba, list(project.labels), rng_seed=seed),
                       "n_train": len(train)}
        step("evaluate", 75)
        cold = model is None or min(counts.values()) < MIN_PER_LABEL
        strategy = "cold_start" if cold else project.strategy
        ranking = self._rank(project, pool, X, model, strategy, seed)
        step("rescore", 90)
        artifact = save_model(model, self.home / ARTIFACTS) if model is not None else None
        step("artifact", 95)
        started = time.perf_counter()

        def register(session: Session) -> int | None:
            run_id = None
            if artifact is not None:
                run_id = session.execute(insert(ModelRun).values(
                    project_id=project.id, version_id=version.id, job_id=job_id, config=config, seed=seed,
                    featurizer=self._featurizer(project).key(), metrics=metrics,
                    artifact_path=f"{ARTIFACTS}/{artifact[0]}",
                    artifact_sha256=artifact[1], duration_s=sum(timings.values()), created_at=utcnow(),
                ).returning(ModelRun.id)).scalar_one()
            _replace_ranking(session, project.id, ranking, strategy, run_id)
            audit(session, "round.registered", project_id=project.id, model_run_id=run_id, version=version.number,
                  strategy=strategy, accuracy=metrics.get("accuracy"))
            result.update(run_id=run_id, strategy=strategy, ranked=len(ranking), metrics=metrics)
            if job_id is not None:
                complete_job(session, job_id, result)
            return run_id

        write(self.engine, register)
        timings["register"] = round(time.perf_counter() - started, 4)
        result["timings"] = timings
        return result

    def run_rescore(self, project_name: str, *, job_id: int | None = None, seed: int = 0,
                    progress: Progress = _quiet) -> dict[str, Any]:
        """Re-rank the open pool with the latest registered model (hash-checked), or cold start."""
        with reading(self.engine) as session:
            project = load_project(session, project_name)
            pool = _load_pool(session, project)
            run = session.execute(select(ModelRun).where(ModelRun.project_id == project.id)
                                  .order_by(ModelRun.id.desc()).limit(1)).scalar_one_or_none()
        progress(10, "features")
        X = self._features(project, pool, progress=lambda done, total: progress(
            10 + 40 * done / max(total, 1), f"features {done:,}/{total:,}"))
        model = self._load(run) if run is not None else None
        strategy = project.strategy if model is not None else "cold_start"
        progress(50, "rescore")
        ranking = self._rank(project, pool, X, model, strategy, seed)
        result = {"run_id": run.id if run else None, "strategy": strategy, "ranked": len(ranking)}

        def register(session: Session) -> None:
            _replace_ranking(session, project.id, ranking, strategy, run.id if run else None)
            if job_id is not None:
                complete_job(session, job_id, result)

        write(self.engine, register)
        return result

    # -- pieces ------------------------------------------------------------------------------
    def _featurizer(self, project: ProjectInfo, progress=None):  # noqa: ANN001, ANN202
        return make_featurizer(project.kind.value, project.settings.get("featurizer") or {},
                               image_root=project.settings.get("image_root"),
                               cache_dir=self.home / "features" / "embedding-chunks", progress=progress)

    def _features(self, project: ProjectInfo, pool: PoolData, progress=None):  # noqa: ANN001, ANN202
        """The project's feature matrix, computed once and cached as memory-mapped arrays.

        Item contents never change after import, so the item ids identify the contents.
        Sentence embeddings report ``progress(done, total)`` per chunk of texts and cache each
        chunk by the hash of its texts.
        """
        featurizer = self._featurizer(project, progress)
        ids_hash = hashlib.sha256(pool.ids.tobytes()).hexdigest()[:24]
        key = f"project-{project.id}|{featurizer.key()}|ids-{len(pool.ids)}-{ids_hash}"

        def compute():  # noqa: ANN202
            with reading(self.engine) as session:
                contents = session.execute(select(Item.content).where(Item.project_id == project.id)
                                           .order_by(Item.id)).scalars().all()
            if hasattr(featurizer, "collect_failures"):
                featurizer.collect_failures = True
            X = featurizer.fit_transform(contents)
            failures = getattr(featurizer, "failures_", None)
            if failures:  # items that cannot be featurized leave the queue and the rounds
                from workbench.services.quarantine import QuarantineService

                QuarantineService(self.engine).quarantine_many(
                    project.id, {int(pool.ids[row]): reason for row, reason in failures.items()},
                    actor=Actor.operator())
            return X

        return FeatureStore(self.home / "features").get_or_compute(key, compute)

    @staticmethod
    def _model_config(project: ProjectInfo) -> dict[str, Any]:
        config = dict(project.settings.get("model") or {"type": "logreg"})
        strategy = strategies.REGISTRY.get(project.strategy)
        if strategy is not None and strategy.input == "committee" and config.get("type") != "committee":
            config = {"type": "committee", "size": 5}
        return config

    @staticmethod
    def _rank(project: ProjectInfo, pool: PoolData, X, model, strategy: str, seed: int) -> list[tuple[int, float]]:  # noqa: ANN001
        """The best open pool items by the strategy, as (item id, score): the top RANK_SIZE, or a
        cold-start seed set of SEEDS_PER_LABEL items per label while there is no usable model."""
        candidates = pool.candidates()
        if len(candidates) == 0:
            return []
        rng = np.random.default_rng(seed)
        X_pool = X[candidates]
        if strategy == "cold_start" or model is None:
            n = min(SEEDS_PER_LABEL * len(project.labels), len(candidates))
            chosen = strategies.cold_start(X_pool, n, rng=rng)
        else:
            spec = strategies.REGISTRY.get(strategy)
            if spec is None:
                raise WorkbenchError(f"unknown strategy {strategy!r}; choose one of {', '.join(strategies.REGISTRY)}")
            if spec.input == "committee":
                head = list(model.members_)
            else:
                weights = linear_head(model)
                head = strategies.LinearHead(*weights) if weights is not None else model
            chosen = strategies.score_pool(X_pool, head, strategy, min(RANK_SIZE, len(candidates)), rng=rng)
        return [(int(pool.ids[candidates[i]]), float(score)) for i, score in zip(chosen.indices, chosen.scores)]


def _load_pool(session: Session, project: ProjectInfo) -> PoolData:
    rows = session.execute(select(Item.id, Item.split, Item.state, Item.slots_taken)
                           .where(Item.project_id == project.id).order_by(Item.id)).all()
    if not rows:
        raise WorkbenchError(f"project {project.name!r} has no items; import some first")
    ids, splits, states, slots = zip(*rows)
    return PoolData(np.asarray(ids, dtype=np.int64), np.asarray(splits), np.asarray(states), np.asarray(slots))


def _replace_ranking(session: Session, project_id: int, ranking: list[tuple[int, float]], strategy: str,
                     run_id: int | None) -> None:
    session.execute(delete(RankEntry).where(RankEntry.project_id == project_id))
    if ranking:
        session.execute(insert(RankEntry), [
            {"project_id": project_id, "position": position, "item_id": item_id, "score": score,
             "strategy": strategy, "model_run_id": run_id}
            for position, (item_id, score) in enumerate(ranking)
        ])

