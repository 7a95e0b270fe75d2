"""Retrain and rescore rounds, worker side: small named steps, then one publish transaction.

    featurize -> cut version -> train -> evaluate -> predict -> rank -> publish

(Featurizing comes first so that an item whose content cannot be featurized is quarantined before
the version is cut, and the version leaves it out.)

A round runs in a worker process (``workbench worker``), never in the Streamlit server. The steps
before ``publish`` only read the database (and write content-addressed files: the feature cache
and the model artifact). ``publish`` writes the dataset version, the model run with its eval
predictions, every scored item's latest prediction, the new ranking and the job's completion in
ONE transaction, so a killed or failed
round leaves none of them; its retry cuts the same version again (equal labels give an equal
content hash, and an equal hash reuses the latest version) rather than another one.

Ranking goes through :func:`strategies.rank_pool`, which owns the cold-start, linear-head,
MC-dropout and committee cases; this module never names a strategy.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import delete, insert, select, update
from sqlmodel import Session, col

import strategies
from workbench.db.bulk import insert_rows
from workbench.db.models import (
    DatasetVersion,
    DatasetVersionItem,
    EvalPrediction,
    Item,
    ItemPrediction,
    Lease,
    ModelRun,
    RankEntry,
    StopPrediction,
    utcnow,
)
from workbench.domain import Actor, ClaimReason, ItemState, LeaseState, ProjectInfo, ProjectKind, Role, Split
from workbench.domain.rounds import EvalMetrics, RoundResult, TrackingOutcome, VersionJobResult
from workbench.domain.stopping import STOP_SET_SIZE, Stability, cohen_kappa
from workbench.errors import WorkbenchError
from workbench.health.drift import PredictionDrift, prediction_drift
from workbench.services._home import HomeBound
from workbench.services._tx import audit, reading, write
from workbench.services.jobs import complete_job
from workbench.services.projects import check_strategy
from workbench.services.users import require_role
from workbench.services.versions import Snapshot, _latest, store_version, take_snapshot
from workbench.training import FeatureStore, evaluate, load_model, make_featurizer, make_model, save_model

ProgressFn = Callable[[float, str], None]
log = logging.getLogger(__name__)
T = TypeVar("T")

PREDICT_CHUNK = 50_000  # rows per predict_proba call: bounds the memory of a large pool
RANK_SIZE = 2000  # candidates kept in rank_entry; claims take from the top
MIN_PER_LABEL = 2  # below this many labels of some class, the model is not used to rank (cold start)
SEEDS_PER_LABEL = 10  # a cold-start seed set has this many items per label (a k-means cluster each)
ARTIFACTS = "artifacts"  # under WORKBENCH_HOME


def _quiet(_: float, __: str) -> None:
    return None


@dataclass(frozen=True)
class PoolData:
    """Every item of a project in id order (the feature matrix's row order), with split and state."""

    ids: np.ndarray
    splits: np.ndarray
    states: np.ndarray

    def rows(self, item_ids: Any) -> np.ndarray:
        """Row positions of the given item ids."""
        return np.searchsorted(self.ids, np.asarray(item_ids, dtype=np.int64))

    def candidates(self) -> np.ndarray:
        """Rows a strategy may choose from: open pool items."""
        return np.flatnonzero((self.splits == Split.POOL.value) & (self.states == ItemState.OPEN.value))

    def eval_rows(self) -> np.ndarray:
        """Rows of the eval split (labeled or not): every run predicts all of them."""
        return np.flatnonzero(self.splits == Split.EVAL.value)


@dataclass(frozen=True)
class LabeledSet:
    """A snapshot's final labels, split into training (pool) and held-out (eval) items."""

    train_ids: tuple[int, ...]
    train_labels: tuple[str, ...]
    eval_ids: tuple[int, ...]
    eval_labels: tuple[str, ...]
    counts: dict[str, int]

    @classmethod
    def of(cls, snapshot: Snapshot, labels: tuple[str, ...]) -> LabeledSet:
        train = [(item_id, label) for item_id, _, split, label in snapshot.items if split == Split.POOL]
        held = [(item_id, label) for item_id, _, split, label in snapshot.items if split == Split.EVAL]
        train_labels = tuple(label for _, label in train)
        return cls(
            tuple(i for i, _ in train),
            train_labels,
            tuple(i for i, _ in held),
            tuple(label for _, label in held),
            {label: train_labels.count(label) for label in labels},
        )


@dataclass(frozen=True)
class Trained:
    """The train step's outcome: the fitted model (None if fewer than 2 labels) and whether it is
    good enough to rank with (at least MIN_PER_LABEL labels of every class)."""

    model: Any
    config: dict[str, Any]
    usable: bool


@dataclass(frozen=True)
class Evaluated:
    metrics: EvalMetrics
    predictions: tuple[tuple[int, str], ...]  # (eval item id, predicted label), every eval-split item


@dataclass(frozen=True)
class Stable:
    """The stability step's outcome: this run's stop-set predictions and how it compares with the
    previous run (stored with the run)."""

    predictions: tuple[tuple[int, str], ...] = ()
    stability: Stability = Stability()


@dataclass(frozen=True)
class Predicted:
    """The model's predicted label (an index into the project's labels) and confidence (the
    largest class probability) for every item it scored: the pool and eval items not quarantined,
    in id order; with the prediction drift of the new batch (None: not measured)."""

    item_ids: np.ndarray
    label_index: np.ndarray
    confidence: np.ndarray
    drift: PredictionDrift | None = None

    def rows(self, labels: tuple[str, ...], run_id: int, project_id: int) -> Any:
        """item_prediction rows, in its column order (ITEM_PREDICTION_COLUMNS)."""
        names = [str(label) for label in labels]
        for item_id, k, p in zip(self.item_ids.tolist(), self.label_index.tolist(), self.confidence.tolist()):
            yield (item_id, project_id, run_id, names[k], p)


ITEM_PREDICTION_COLUMNS = ("item_id", "project_id", "model_run_id", "predicted", "confidence")


@dataclass(frozen=True)
class Ranked:
    entries: tuple[tuple[int, float], ...]  # (item id, score), best first
    strategy: str
    model_free: bool  # the ranking was made without the model (cold start, random)


class _Clock:
    """Times each step; the job's message names the step in progress, its percentage how far the
    round got (``pct`` is where the step ends)."""

    def __init__(self, progress: ProgressFn) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}
        self.done_pct = 0.0

    def step(self, name: str, pct: float, work: Callable[..., T], *args: Any) -> T:
        self.progress(self.done_pct, name)
        started = time.perf_counter()
        value = work(*args)
        self.timings[name] = round(time.perf_counter() - started, 4)
        self.done_pct = pct
        return value


class RoundPipeline(HomeBound):
    """The worker side of rounds. Every entry takes the loaded project (resolved once, at the edge)."""

    # -- the rounds -------------------------------------------------------------------------
    def retrain(
        self,
        project: ProjectInfo,
        *,
        actor: Actor,
        job_id: int | None = None,
        seed: int = 0,
        progress: ProgressFn = _quiet,
    ) -> RoundResult:
        """Cut a version, featurize, train, evaluate, rank; publish all of it in one transaction."""
        require_role(actor, Role.ADMIN)
        check_strategy(project.strategy, project.settings.get("model"))
        clock = _Clock(progress)
        # Featurize first: items that cannot be featurized are quarantined, so the version cut next
        # leaves them out. Item ids (hence feature rows) do not change, only states.
        with reading(self.engine) as session:
            screened = _load_pool(session, project)
        X = clock.step(
            "features",
            30,
            self.featurize,
            project,
            screened,
            lambda done, total: progress(30 * done / max(total, 1), f"features {done:,}/{total:,}"),
        )
        snapshot, pool = clock.step("version", 35, self.cut_version, project)
        labeled = LabeledSet.of(snapshot, project.labels)
        trained = clock.step("train", 65, self.train, project, X, pool, labeled, seed)
        evaluated = clock.step("evaluate", 75, self.evaluate, project, X, pool, labeled, trained.model, seed)
        stable = clock.step("stability", 80, self.stability, project, X, pool, labeled, trained.model)
        predicted = clock.step("predict", 85, self.predict, project, X, pool, trained.model)
        if predicted is not None:
            predicted = clock.step("prediction drift", 86, self.prediction_drift, project, pool, predicted)
        ranked = clock.step("rank", 90, self.rank, project, X, pool, trained.model if trained.usable else None, seed)
        artifact = clock.step("artifact", 95, self.save_artifact, trained.model)
        progress(clock.done_pct, "publish")
        result = self.publish(
            project,
            actor=actor,
            job_id=job_id,
            seed=seed,
            snapshot=snapshot,
            labeled=labeled,
            trained=trained,
            evaluated=evaluated,
            ranked=ranked,
            artifact=artifact,
            timings=clock.timings,
            stable=stable,
            predicted=predicted,
        )
        # MLflow, after the commit: a failure is recorded on the model run, never raised.
        tracking = self.track(project, result, job_id=job_id, seed=seed, trained=trained, evaluated=evaluated)
        if tracking is not None:
            result = replace(result, tracking=tracking)
            result.timings["mlflow"] = tracking.seconds
        # After every round: annotator quality (Dawid-Skene), posteriors, the label-error queue.
        from workbench.services.quality import after_round

        started = time.perf_counter()
        after_round(self.engine, project.name, home=self._home, seed=seed)
        result.timings["quality"] = round(time.perf_counter() - started, 4)
        from workbench.services.alerts import AlertEvent, queue_check

        queue_check(self.engine, project.id, AlertEvent.ROUND)  # the next job: evaluate and send alerts
        from workbench.services.advisor import queue_if_due

        queue_if_due(self.engine, project.id)  # the strategy advisor, once enough new labels came in
        return result

    def track(
        self,
        project: ProjectInfo,
        result: RoundResult,
        *,
        job_id: int | None,
        seed: int,
        trained: Trained,
        evaluated: Evaluated,
    ) -> TrackingOutcome | None:
        """Log the published round to MLflow when a tracking URI is set (None: tracking off, or no
        model run to log), and record the outcome on the model run."""
        from workbench.integrations import mlflow_tracking

        uri = mlflow_tracking.tracking_uri(project.settings)
        if uri is None or result.run_id is None:
            return None
        with reading(self.engine) as session:
            run = session.get(ModelRun, result.run_id)
        if run is None or run.id is None or result.version is None or result.version_hash is None:
            return None  # not a retrain's run (a rescore publishes no version), or the run is gone
        run_id = run.id
        record = mlflow_tracking.RoundRecord(
            project=project.name,
            model_run_id=run.id,
            job_id=job_id,
            seed=seed,
            version_id=run.version_id,
            version_number=result.version,
            version_hash=result.version_hash,
            featurizer=run.featurizer,
            featurizer_settings=self.featurizer_params(project),
            model_config=dict(trained.config),
            strategy=project.strategy,
            ranked_by=result.strategy,
            overlap=project.overlap,
            overlap_policy=str(project.settings.get("overlap_policy", "fixed")),
            labels=project.labels,
            label_counts=dict(result.label_counts),
            metrics=evaluated.metrics,
            predictions=evaluated.predictions,
            artifact_file=self.home / run.artifact_path,
            artifact_sha256=run.artifact_sha256,
        )
        outcome = mlflow_tracking.log_round(record, uri)
        try:
            write(
                self.engine,
                lambda session: session.execute(
                    update(ModelRun).where(col(ModelRun.id) == run_id).values(tracking=outcome.to_json())
                ),
            )
        except Exception as exc:  # the round is committed; a lost note about MLflow must not fail it
            log.warning("model run %s: could not record the MLflow outcome: %s", run_id, exc)
        return outcome

    def rescore(
        self,
        project: ProjectInfo,
        *,
        actor: Actor,
        job_id: int | None = None,
        seed: int = 0,
        progress: ProgressFn = _quiet,
    ) -> RoundResult:
        """Re-rank the open pool with the latest registered model (hash-checked), or cold start."""
        require_role(actor, Role.ADMIN)
        check_strategy(project.strategy, project.settings.get("model"))
        clock = _Clock(progress)
        with reading(self.engine) as session:
            pool = _load_pool(session, project)
            run = session.execute(
                select(ModelRun)
                .where(col(ModelRun.project_id) == project.id)
                .order_by(col(ModelRun.id).desc())
                .limit(1)
            ).scalar_one_or_none()
        X = clock.step(
            "features",
            10,
            self.featurize,
            project,
            pool,
            lambda done, total: progress(10 * done / max(total, 1), f"features {done:,}/{total:,}"),
        )
        model = self.load(run) if run is not None else None
        # The latest model's predictions for items imported since its round, too (the browser's filter).
        predicted = clock.step("predict", 30, self.predict, project, X, pool, model)
        ranked = clock.step("rank", 50, self.rank, project, X, pool, model, seed)
        run_id = run.id if run is not None else None
        result = RoundResult(
            strategy=ranked.strategy,
            project_strategy=project.strategy,
            ranked=len(ranked.entries),
            run_id=run_id,
            model_free=ranked.model_free,
            timings=clock.timings,
        )

        def publish(session: Session) -> RoundResult:
            if predicted is not None and run_id is not None:
                started = time.perf_counter()
                _replace_predictions(session, project, predicted, run_id)
                result.timings["predictions"] = round(time.perf_counter() - started, 4)
            _replace_ranking(session, project.id, ranked, run_id)
            audit(
                session,
                "round.rescored",
                actor_id=actor.id,
                project_id=project.id,
                model_run_id=run_id,
                strategy=ranked.strategy,
            )
            if job_id is not None:
                complete_job(session, job_id, result)
            return result

        return write(self.engine, publish)

    def version_job(
        self, project: ProjectInfo, *, actor: Actor, job_id: int | None = None, trigger: str = "auto"
    ) -> VersionJobResult:
        """Cut a dataset version (the auto-version job), completing the job in the same transaction."""
        require_role(actor, Role.REVIEWER)
        with reading(self.engine) as session:
            snapshot = take_snapshot(session, project)

        def publish(session: Session) -> VersionJobResult:
            version = store_version(session, project, snapshot, trigger=trigger, actor_id=actor.id)
            result = VersionJobResult(version=version.number, version_hash=version.content_hash)
            if job_id is not None:
                complete_job(session, job_id, result)
            return result

        return write(self.engine, publish)

    # -- the steps --------------------------------------------------------------------------
    def cut_version(self, project: ProjectInfo) -> tuple[Snapshot, PoolData]:
        """The final labels as they are now (read only: the version is stored at publish)."""
        with reading(self.engine) as session:
            return take_snapshot(session, project), _load_pool(session, project)

    def featurize(
        self, project: ProjectInfo, pool: PoolData, progress: Callable[[int, int], None] | None = None
    ) -> Any:
        """The project's feature matrix, computed once and cached as memory-mapped arrays.

        Item contents never change after import, so the item ids identify the contents.
        Sentence embeddings report ``progress(done, total)`` per chunk of texts and cache each
        chunk by the hash of its texts.
        """
        featurizer = self.featurizer(project, progress)
        ids_hash = hashlib.sha256(pool.ids.tobytes()).hexdigest()[:24]
        key = f"project-{project.id}|{featurizer.key()}|ids-{len(pool.ids)}-{ids_hash}"

        def compute() -> Any:
            with reading(self.engine) as session:
                contents = (
                    session.execute(
                        select(col(Item.content)).where(col(Item.project_id) == project.id).order_by(col(Item.id))
                    )
                    .scalars()
                    .all()
                )
            if hasattr(featurizer, "collect_failures"):
                featurizer.collect_failures = True
            X = featurizer.fit_transform(contents)
            failures = getattr(featurizer, "failures_", None)
            if failures:  # items that cannot be featurized leave the queue and the rounds
                from workbench.services.quarantine import QuarantineService

                QuarantineService(self.engine).quarantine_many(
                    project.id, {int(pool.ids[row]): reason for row, reason in failures.items()}, actor=Actor.operator()
                )
            return X

        return FeatureStore(self.home / "features").get_or_compute(key, compute)

    def train(self, project: ProjectInfo, X: Any, pool: PoolData, labeled: LabeledSet, seed: int) -> Trained:
        """The project's own model (never replaced) on the version's pool labels."""
        config = dict(project.settings.get("model") or {"type": "logreg"})
        if len(set(labeled.train_labels)) < 2:
            return Trained(None, config, usable=False)
        model = make_model(config, seed, classes=list(project.labels))
        model.fit(X[pool.rows(labeled.train_ids)], np.asarray(labeled.train_labels, dtype=object))
        return Trained(model, config, usable=min(labeled.counts.values()) >= MIN_PER_LABEL)

    def evaluate(
        self, project: ProjectInfo, X: Any, pool: PoolData, labeled: LabeledSet, model: Any, seed: int
    ) -> Evaluated:
        """Metrics on the labeled eval items, and a predicted label for every eval-split item."""
        n_train = len(labeled.train_ids)
        if model is None:
            return Evaluated(EvalMetrics(n_train=n_train), ())
        rows = pool.eval_rows()
        proba = model.predict_proba(X[rows]) if len(rows) else np.zeros((0, len(project.labels)))
        labels = np.asarray(project.labels, dtype=object)
        eval_ids = pool.ids[rows]
        predictions = tuple((int(item_id), str(labels[k])) for item_id, k in zip(eval_ids, proba.argmax(axis=1)))
        if not labeled.eval_ids:
            return Evaluated(EvalMetrics(n_train=n_train), predictions)
        positions = np.searchsorted(eval_ids, np.asarray(labeled.eval_ids, dtype=np.int64))
        metrics = evaluate(list(labeled.eval_labels), proba[positions], list(project.labels), rng_seed=seed)
        return Evaluated(replace(metrics, n_train=n_train), predictions)

    def stability(self, project: ProjectInfo, X: Any, pool: PoolData, labeled: LabeledSet, model: Any) -> Stable:
        """Stopping advice's inputs: predict the stop set (the first STOP_SET_SIZE pool items by
        their fixed random key, gold items left out), Cohen's kappa against the previous run's
        stop-set predictions, and the previous model's error on the pool items labeled since that
        run, ranked picks against the control arm (read only; stored at publish)."""
        if model is None:
            return Stable()
        labels = np.asarray(project.labels, dtype=object)
        with reading(self.engine) as session:
            stop_ids = (
                session.execute(
                    select(col(Item.id))
                    .where(
                        col(Item.project_id) == project.id,
                        col(Item.split) == Split.POOL,
                        col(Item.gold_label).is_(None),
                        col(Item.state) != ItemState.QUARANTINED,
                    )
                    .order_by(col(Item.random_key), col(Item.id))
                    .limit(STOP_SET_SIZE)
                )
                .scalars()
                .all()
            )
            known = set(pool.ids.tolist())
            stop_ids = sorted(i for i in stop_ids if i in known)
            previous = session.execute(
                select(ModelRun)
                .where(col(ModelRun.project_id) == project.id)
                .order_by(col(ModelRun.id).desc())
                .limit(1)
            ).scalar_one_or_none()
            before: dict[int, str] = {}
            seen: set[int] = set()
            picked: dict[int, str] = {}
            if previous is not None:
                before = dict(
                    session.execute(
                        select(col(StopPrediction.item_id), col(StopPrediction.predicted)).where(
                            col(StopPrediction.model_run_id) == previous.id
                        )
                    ).all()
                )
                seen = set(
                    session.execute(
                        select(col(DatasetVersionItem.item_id)).where(
                            col(DatasetVersionItem.version_id) == previous.version_id
                        )
                    ).scalars()
                )
                new_ids = [i for i in labeled.train_ids if i not in seen]
                rows = (
                    session.execute(
                        select(col(Lease.item_id), col(Lease.reason))
                        .where(
                            col(Lease.project_id) == project.id,
                            col(Lease.state) == LeaseState.SUBMITTED,
                            col(Lease.item_id).in_(new_ids),
                        )
                        .order_by(col(Lease.id))
                    ).all()
                    if new_ids
                    else []
                )
                for item_id, reason in rows:
                    picked.setdefault(int(item_id), str(reason))  # the claim that brought the item in
        predictions: tuple[tuple[int, str], ...] = ()
        if stop_ids:
            proba = model.predict_proba(X[pool.rows(stop_ids)])
            predictions = tuple((int(i), str(labels[k])) for i, k in zip(stop_ids, proba.argmax(axis=1)))
        if previous is None:
            return Stable(predictions, Stability(stop_n=len(predictions)))
        shared = [(before[i], label) for i, label in predictions if i in before]
        kappa = agreement = None
        if shared:
            kappa, agreement = cohen_kappa([a for a, _ in shared], [b for _, b in shared])
        arms: dict[str, list[int]] = {}
        truth = dict(zip(labeled.train_ids, labeled.train_labels))
        groups = {
            "ranked": [i for i, r in picked.items() if r == ClaimReason.RANKED],
            "control": [i for i, r in picked.items() if r == ClaimReason.CONTROL],
        }
        if any(groups.values()):
            try:
                old_model = self.load(previous)
            except Exception:  # a missing or changed artifact: no arm comparison this round
                old_model = None
            if old_model is not None:
                for arm, ids in groups.items():
                    if ids:
                        guess = labels[old_model.predict_proba(X[pool.rows(ids)]).argmax(axis=1)]
                        arms[arm] = [len(ids), int(sum(g != truth[i] for g, i in zip(guess, ids)))]
        return Stable(
            predictions,
            Stability(stop_n=len(shared), kappa=kappa, agreement=agreement, previous_run_id=previous.id, arms=arms),
        )

    def predict(self, project: ProjectInfo, X: Any, pool: PoolData, model: Any) -> Predicted | None:
        """The model's predicted label and confidence for every pool and eval item not quarantined
        (None without a model)."""
        if model is None:
            return None
        rows = np.flatnonzero(pool.states != ItemState.QUARANTINED.value)
        index = np.empty(len(rows), dtype=np.int64)
        confidence = np.empty(len(rows), dtype=np.float64)
        for start in range(0, len(rows), PREDICT_CHUNK):
            part = rows[start : start + PREDICT_CHUNK]
            proba = np.asarray(model.predict_proba(X[part]))
            index[start : start + len(part)] = proba.argmax(axis=1)
            confidence[start : start + len(part)] = proba.max(axis=1)
        return Predicted(pool.ids[rows], index, confidence)

    def prediction_drift(self, project: ProjectInfo, pool: PoolData, predicted: Predicted) -> Predicted:
        """Issue 15: predicted-label shares on the new batch (pool items imported since the version
        of the previous round; every pool item before the first round) against the eval split."""
        with reading(self.engine) as session:
            since = session.execute(
                select(col(DatasetVersion.created_at))
                .join(ModelRun, col(ModelRun.version_id) == col(DatasetVersion.id))
                .where(col(ModelRun.project_id) == project.id)
                .order_by(col(ModelRun.id).desc())
                .limit(1)
            ).scalar_one_or_none()
            batch = np.asarray(
                session.execute(
                    select(col(Item.id)).where(
                        col(Item.project_id) == project.id,
                        col(Item.split) == Split.POOL.value,
                        *([col(Item.created_at) > since] if since is not None else []),
                    )
                )
                .scalars()
                .all(),
                dtype=np.int64,
            )
        labels = np.asarray(project.labels, dtype=object)
        split = pool.splits[pool.rows(predicted.item_ids)]
        in_batch = np.isin(predicted.item_ids, batch) & (split == Split.POOL.value)
        drift = prediction_drift(
            project.labels,
            labels[predicted.label_index[split == Split.EVAL.value]],
            labels[predicted.label_index[in_batch]],
        )
        return replace(predicted, drift=drift)

    def rank(self, project: ProjectInfo, X: Any, pool: PoolData, model: Any, seed: int) -> Ranked:
        """The best open pool items, by the project's strategy on the model, or a cold-start seed set
        of SEEDS_PER_LABEL items per label when there is no usable model (``model is None``)."""
        candidates = pool.candidates()
        if len(candidates) == 0:
            return Ranked((), project.strategy, model_free=model is None)
        try:
            chosen = strategies.rank_pool(
                X[candidates],
                model,
                project.strategy,
                RANK_SIZE,
                np.random.default_rng(seed),
                seed_set_size=SEEDS_PER_LABEL * len(project.labels),
            )
        except strategies.UnservableStrategy as exc:
            raise WorkbenchError(str(exc)) from None
        name = chosen.strategy or project.strategy  # rank_pool always names the strategy it used
        used = strategies.REGISTRY[name]
        entries = tuple((int(pool.ids[candidates[i]]), float(score)) for i, score in zip(chosen.indices, chosen.scores))
        return Ranked(entries, name, model_free=model is None or not used.needs_model)

    def save_artifact(self, model: Any) -> tuple[str, str] | None:
        """The fitted model's file (content-addressed, written atomically) before it is registered."""
        if model is None:
            return None
        name, sha256 = save_model(model, self.home / ARTIFACTS)
        return f"{ARTIFACTS}/{name}", sha256

    @staticmethod
    def featurizer_params(project: ProjectInfo) -> dict[str, Any]:
        """The settings the project's featurizer is built from."""
        params = dict(project.settings.get("featurizer") or {})
        if project.kind == ProjectKind.TABULAR and not project.settings.get("sensitive_as_features"):
            from workbench.services.health import sensitive_columns

            # Sensitive columns measure the model per group; they are features only when asked.
            if sensitive_columns(project.settings):
                params.setdefault("exclude_columns", sensitive_columns(project.settings))
        return params

    def featurizer(self, project: ProjectInfo, progress: Callable[[int, int], None] | None = None) -> Any:
        return make_featurizer(
            project.kind.value,
            self.featurizer_params(project),
            image_root=project.settings.get("image_root"),
            cache_dir=self.home / "features" / "embedding-chunks",
            progress=progress,
        )

    def load(self, run: ModelRun) -> Any:
        """A registered model, loaded only after its file's sha256 matches the database."""
        return load_model(self.home / run.artifact_path, run.artifact_sha256, root=self.home)

    def publish(
        self,
        project: ProjectInfo,
        *,
        actor: Actor,
        job_id: int | None,
        seed: int,
        snapshot: Snapshot,
        labeled: LabeledSet,
        trained: Trained,
        evaluated: Evaluated,
        ranked: Ranked,
        artifact: tuple[str, str] | None,
        timings: dict[str, float],
        stable: Stable = Stable(),
        predicted: Predicted | None = None,
    ) -> RoundResult:
        """Version, model run, eval predictions, the latest predictions, ranking and job completion:
        one transaction or none."""
        started = time.perf_counter()
        featurizer_key = self.featurizer(project).key()

        def work(session: Session) -> RoundResult:
            latest = _latest(session, project.id)
            version = store_version(session, project, snapshot, trigger="round", actor_id=actor.id)
            reused = latest is not None and latest.id == version.id
            run_id = None
            if artifact is not None:
                run_id = session.execute(
                    insert(ModelRun)
                    .values(
                        project_id=project.id,
                        version_id=version.id,
                        job_id=job_id,
                        config=trained.config,
                        seed=seed,
                        featurizer=featurizer_key,
                        metrics=evaluated.metrics.to_json(),
                        artifact_path=artifact[0],
                        artifact_sha256=artifact[1],
                        duration_s=round(sum(timings.values()), 4),
                        created_at=utcnow(),
                        stability=stable.stability.to_json(),
                        prediction_drift=(
                            predicted.drift.to_json() if predicted is not None and predicted.drift else {}
                        ),
                    )
                    .returning(col(ModelRun.id))
                ).scalar_one()
                if evaluated.predictions:
                    session.execute(
                        insert(EvalPrediction),
                        [
                            {"model_run_id": run_id, "item_id": item_id, "predicted": label}
                            for item_id, label in evaluated.predictions
                        ],
                    )
                if stable.predictions:
                    session.execute(
                        insert(StopPrediction),
                        [
                            {"model_run_id": run_id, "item_id": item_id, "predicted": label}
                            for item_id, label in stable.predictions
                        ],
                    )
            if run_id is not None and predicted is not None:
                _replace_predictions(session, project, predicted, run_id)
            _replace_ranking(session, project.id, ranked, run_id)
            audit(
                session,
                "round.registered",
                actor_id=actor.id,
                project_id=project.id,
                model_run_id=run_id,
                version=version.number,
                strategy=ranked.strategy,
                accuracy=evaluated.metrics.accuracy,
            )
            result = RoundResult(
                strategy=ranked.strategy,
                project_strategy=project.strategy,
                ranked=len(ranked.entries),
                run_id=run_id,
                model_free=ranked.model_free,
                version=version.number,
                version_hash=version.content_hash,
                version_reused=reused,
                n_train=len(labeled.train_ids),
                n_eval=len(labeled.eval_ids),
                label_counts=dict(labeled.counts),
                metrics=evaluated.metrics if run_id is not None else None,
                timings={**timings, "publish": round(time.perf_counter() - started, 4)},
            )
            if job_id is not None:
                complete_job(session, job_id, result)
            return result

        return write(self.engine, work)


def _load_pool(session: Session, project: ProjectInfo) -> PoolData:
    rows = session.execute(
        select(col(Item.id), col(Item.split), col(Item.state))
        .where(col(Item.project_id) == project.id)
        .order_by(col(Item.id))
    ).all()
    if not rows:
        raise WorkbenchError(f"project {project.name!r} has no items; import some first")
    ids, splits, states = zip(*rows)
    return PoolData(np.asarray(ids, dtype=np.int64), np.asarray(splits), np.asarray(states))


def _replace_ranking(session: Session, project_id: int, ranked: Ranked, run_id: int | None) -> None:
    """The ranking in force, replaced whole; entries name the strategy that made them, and the model
    run only when that run's model was used to rank."""
    model_run_id = None if ranked.model_free else run_id
    session.execute(delete(RankEntry).where(col(RankEntry.project_id) == project_id))
    if ranked.entries:
        session.execute(
            insert(RankEntry),
            [
                {
                    "project_id": project_id,
                    "position": position,
                    "item_id": item_id,
                    "score": score,
                    "strategy": ranked.strategy,
                    "model_run_id": model_run_id,
                }
                for position, (item_id, score) in enumerate(ranked.entries)
            ],
        )


def _replace_predictions(session: Session, project: ProjectInfo, predicted: Predicted, run_id: int) -> None:
    """The project's latest predictions, replaced whole (bulk: COPY on PostgreSQL)."""
    session.execute(delete(ItemPrediction).where(col(ItemPrediction.project_id) == project.id))
    insert_rows(session, ItemPrediction, ITEM_PREDICTION_COLUMNS, predicted.rows(project.labels, run_id, project.id))
