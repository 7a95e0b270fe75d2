"""Replaying a labeled dataset through the workbench's own loop, with simulated people.

One *template* database is built per simulation: the project is created, the items are imported
by the import service (split once into pool and eval with a fixed seed, so every strategy and seed
is measured on the same eval items), the eval items are double-labeled with their true labels by
two "gold oracle" annotators through the real queue (not counted as spent labels: the simulation
measures models against the truth, it does not simulate the cost of the eval set), and the feature
matrix is computed once into a feature cache shared by every run of the simulation.

Each *run* (one strategy, one seed) then copies the template into its own SQLite file and its own
WORKBENCH_HOME (the feature cache linked in, artifacts its own) and loops, in a process of its own
(spawn context, nothing shared across a fork):

    cold-start rescore → annotators claim/submit the seed set → review queue → run_retrain
    → annotators claim/submit a batch → review queue → run_retrain → ... until the budget

Every label goes through QueueService.claim/submit (or skip), every disagreement through
ReviewService.queue/adjudicate, every round through RoundService.run_retrain (version → train →
evaluate on the eval split → rescore); the curve is what run_retrain measured.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue as queue_module
import random
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
from sqlalchemy import insert, select
from sqlmodel import Session, col

import strategies
from workbench.db.bulk import insert_members
from workbench.db.engine import make_engine
from workbench.db.models import Item, Project, User
from workbench.domain import Actor, Decision, ItemState, Role, Split
from workbench.errors import WorkbenchError
from workbench.services import Workbench
from workbench.services.queue import QueueService
from workbench.services.round_pipeline import SEEDS_PER_LABEL
from workbench.services.rounds import RoundService
from workbench.simulate.annotators import ADJUDICATORS, SKIP_REASON, Adjudicator, CrowdReplay, NoisyAnnotator
from workbench.simulate.data import CrowdData, LabeledData, restrict_to_crowd, write_import_file
from workbench.training import evaluate, make_featurizer, make_model

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from tqdm import tqdm

    from workbench.domain import ClaimedItem
    from workbench.services.quality import QualityService

PROJECT = "simulation"
OPERATOR = Actor.operator()  # rounds run as the local operator, as the worker runs them
REVIEWER = "sim-reviewer"
ORACLE_PREFIX = "gold-oracle-"
ANNOTATOR_PREFIX = "sim-annotator-"
UNUSABLE_PASSWORD_HASH = "!simulated-account-cannot-sign-in"


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. budget/initial are labeled pool items; None means the defaults below."""

    strategies: tuple[str, ...] = ("random", "margin")
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    budget: int | None = 500  # None: the whole pool
    batch_size: int = 25
    batch_schedule: tuple[tuple[int, int], ...] = ()  # (from labels, batch size): bigger batches later
    initial: int | None = None  # None: one cold-start seed set (SEEDS_PER_LABEL per label)
    overlap: int = 2
    annotators: int | None = None  # simulated annotators (default: overlap); ignored with a crowd file
    annotator_accuracy: tuple[float, ...] = (1.0,)  # one per annotator, cycled
    adjudicator: str = "gold"
    eval_fraction: float = 0.2
    split_seed: int = 0
    model: dict[str, Any] | None = None  # None: the project default
    featurizer: dict[str, Any] | None = None  # None: the project default (embeddings for text when installed)
    # Keep labeling past the budget until a run's accuracy reaches this share of the full-pool
    # accuracy (or the pool runs out), so labels_to_99 is measured, never left open. None: stop at
    # the budget.
    until: float | None = None
    random_share: float = 0.0  # the queue's control arm; 0 compares strategies undiluted
    # Issue 13: labeling policies, run through the same code as the live queue.
    overlap_policy: str = "fixed"  # fixed | adaptive (workbench.domain.overlap)
    min_labels: int = 1
    max_labels: int = 3
    overlap_confidence: float = 0.9
    lookahead_reliability: float = 0.8  # adaptive: review now when agreeing labels at this reliability cannot settle
    aggregation: str = "majority"  # majority | dawid_skene
    posterior_accept: float | None = None  # dawid_skene: review items at/above this posterior take it
    pause_flagged: bool = False  # the project setting pause_flagged: quality pauses whom it flags
    quality_refresh_labels: int = 0  # the project setting: re-estimate quality every N new human labels
    prefer_reliable: bool = True  # the project setting: reliable annotators start new items (adaptive)
    model_prior: bool = True  # the project setting: the latest model's prediction is a prior (adaptive)
    crowd_arrival: str = "proportional"  # proportional (to real label counts) | uniform (the first release's)
    label_error_review: int = 0  # K: after the budget, the K likeliest label errors go back to review
    inject_label_noise: float = 0.0  # share of final pool labels flipped at random before that pass
    gold_share: float = 0.0  # share of claims that serve a gold item
    gold_items: int | None = None  # pool items with a known answer (None: 5% of the pool when gold_share > 0)
    jobs: int = 0  # 0: one process per core
    work_dir: str | None = None
    keep_dbs: bool = False

    def batch_at(self, labels: int) -> int:
        """The batch size once `labels` items are labeled."""
        size = self.batch_size
        for start, later in sorted(self.batch_schedule):
            if labels >= start:
                size = later
        return size

    def check(self) -> None:
        unknown = [name for name in self.strategies if name not in strategies.REGISTRY]
        if unknown:
            raise WorkbenchError(f"unknown strategy {unknown[0]!r}; choose from {', '.join(strategies.REGISTRY)}")
        if not self.strategies:
            raise WorkbenchError("give at least one strategy")
        if len(set(self.strategies)) != len(self.strategies):
            raise WorkbenchError("a strategy is listed twice")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise WorkbenchError("give one or more distinct seeds")
        if self.adjudicator not in ADJUDICATORS:
            raise WorkbenchError(f"unknown adjudicator {self.adjudicator!r}; use {' or '.join(ADJUDICATORS)}")
        if not 1 <= self.overlap <= 10:
            raise WorkbenchError("--overlap must be between 1 and 10")
        if self.annotators is not None and self.annotators < self.overlap:
            raise WorkbenchError(
                f"--annotators must be at least the overlap ({self.overlap}): an item needs "
                "that many distinct annotators"
            )
        if any(not 0.0 <= a <= 1.0 for a in self.annotator_accuracy) or not self.annotator_accuracy:
            raise WorkbenchError("--annotator-accuracy must be within 0..1")
        if self.batch_size < 1 or any(size < 1 or start < 0 for start, size in self.batch_schedule):
            raise WorkbenchError("--batch-size must be at least 1")
        if self.budget is not None and self.budget < 1:
            raise WorkbenchError("--budget must be at least 1")
        if self.initial is not None and self.initial < 0:
            raise WorkbenchError("--initial must not be negative")
        if not 0.0 < self.eval_fraction < 1.0:
            raise WorkbenchError("--eval-fraction must be strictly between 0 and 1")
        if not 0.0 <= self.random_share <= 1.0:
            raise WorkbenchError("--random-share must be within 0..1")
        if self.model is not None:
            make_model(self.model, 0)  # ModelConfigError is a WorkbenchError: one line, exit 1
        if self.until is not None and not 0.0 < self.until <= 1.0:
            raise WorkbenchError("--until must be within 0..1 (a share of the full-pool accuracy)")
        if self.featurizer is not None and not isinstance(self.featurizer, dict):
            raise WorkbenchError("--featurizer must be a JSON object")
        from workbench.services.projects import check_quality_settings

        check_quality_settings(self.overlap, self.policy_settings())
        if self.crowd_arrival not in ("proportional", "uniform"):
            raise WorkbenchError("--crowd-arrival must be proportional or uniform")
        if not 0.0 <= self.inject_label_noise < 1.0:
            raise WorkbenchError("--inject-label-noise must be within [0, 1)")
        if self.label_error_review < 0:
            raise WorkbenchError("--label-error-review must not be negative")

    def policy_settings(self) -> dict[str, Any]:
        """The project settings a run labels under."""
        return {
            "overlap_policy": self.overlap_policy,
            "min_labels": self.min_labels,
            "max_labels": self.max_labels,
            "overlap_confidence": self.overlap_confidence,
            "lookahead_reliability": self.lookahead_reliability,
            "aggregation": self.aggregation,
            "posterior_accept": self.posterior_accept,
            "gold_share": self.gold_share,
            "pause_flagged": self.pause_flagged,
            "quality_refresh_labels": self.quality_refresh_labels,
            "prefer_reliable": self.prefer_reliable,
            "model_prior": self.model_prior,
        }


@dataclass
class Template:
    """The database every run starts from, and what the simulation knows that the workbench doesn't."""

    work_dir: Path
    db_path: Path
    features_dir: Path
    shared_path: Path  # JSON: truth, splits, crowd judgments, people
    kind: str
    labels: list[str]
    n_items: int
    n_pool: int
    n_eval: int
    eval_label_counts: dict[str, int]
    full_pool_accuracy: float
    annotators: list[str]
    eval_annotations: int
    n_gold: int = 0
    featurizer: str = ""
    full_pool_accuracy_by_featurizer: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RunTask:
    strategy: str
    seed: int
    template_db: str
    features_dir: str
    shared_path: str
    run_dir: str
    config: SimulationConfig
    budget: int
    initial: int
    stop_accuracy: float | None = None  # with --until: continue past the budget until this accuracy
    pool_size: int = 0


# -- the template ------------------------------------------------------------------------------


def _add_people(engine: Engine, names_roles: list[tuple[str, str]]) -> dict[str, Actor]:
    """Simulated accounts, inserted directly with an unusable password hash (they can never sign
    in). UserService.add would argon2-hash a password per account: ~0.4 s each, minutes for a
    crowd of 164 workers, for accounts nobody signs in to."""
    with Session(engine) as session, session.begin():
        session.execute(
            insert(User),
            [{"name": name, "role": role, "password_hash": UNUSABLE_PASSWORD_HASH} for name, role in names_roles],
        )
        # Everyone simulated works on every project of the simulation's own database.
        names = {name for name, _ in names_roles}
        people = [
            (i, r) for i, n, r in session.execute(select(col(User.id), col(User.name), col(User.role))) if n in names
        ]
        for project_id in session.execute(select(col(Project.id))).scalars().all():
            insert_members(session, project_id, people)
    return _actors(engine)


def _actors(engine: Engine) -> dict[str, Actor]:
    with Session(engine) as session:
        rows = session.execute(select(col(User.id), col(User.name), col(User.role))).all()
    return {name: Actor(id=user_id, name=name, role=Role(role)) for user_id, name, role in rows}


def build_template(
    data: LabeledData,
    config: SimulationConfig,
    work_dir: Path,
    crowd: CrowdData | None = None,
    *,
    show_progress: bool = True,
) -> Template:
    """Create, import, gold-label the eval split, featurize; measure the full-pool reference."""
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    template_dir = work_dir / "template"
    template_dir.mkdir(parents=True, exist_ok=True)
    shared_home = work_dir / "shared-home"
    features_dir = shared_home / "features"
    features_dir.mkdir(parents=True, exist_ok=True)
    db_path = template_dir / "template.db"
    engine = make_engine(f"sqlite:///{db_path}")
    try:
        wb = Workbench(engine)
        labels = sorted(set(data.labels) | (crowd.label_set if crowd else set()))
        settings: dict[str, Any] = {
            "eval_fraction": config.eval_fraction,
            "random_share": config.random_share,
            "lease_ttl_s": 3600,
            "advisor_min_labels": 0,  # a replay's rounds never queue the strategy advisor
        }
        if config.model is not None:
            settings["model"] = config.model
        if config.featurizer is not None:
            settings["featurizer"] = config.featurizer
        strategy = config.strategies[0]
        wb.projects.create(
            PROJECT,
            data.kind,
            labels,
            overlap=config.overlap,
            strategy=strategy,
            settings=settings,
            actor=Actor.operator(),
        )
        import_path = template_dir / "items.csv"
        options = write_import_file(data, import_path)
        report = wb.imports.run(
            PROJECT, import_path, eval_fraction=config.eval_fraction, seed=config.split_seed, actor=OPERATOR, **options
        )
        if not report.ok:
            problems = report.file_errors + [str(error) for error in report.errors[:3]]
            raise WorkbenchError(f"the import refused the items: {'; '.join(problems) or report.summary()}")
        seconds["import"] = time.perf_counter() - clock

        # People: gold oracles (eval only), the simulated annotators or crowd workers, a reviewer.
        oracles = [f"{ORACLE_PREFIX}{i + 1}" for i in range(config.overlap)]
        if crowd is not None:
            annotators = crowd.workers
        else:
            annotators = [f"{ANNOTATOR_PREFIX}{i + 1}" for i in range(config.annotators or config.overlap)]
        clash = set(annotators) & (set(oracles) | {REVIEWER})
        if clash:
            raise WorkbenchError(f"a crowd worker id clashes with a simulation account name: {sorted(clash)[0]}")
        actors = _add_people(
            engine, [(name, Role.ANNOTATOR.value) for name in oracles + annotators] + [(REVIEWER, Role.REVIEWER.value)]
        )

        with Session(engine) as session:
            rows = session.execute(
                select(col(Item.id), col(Item.external_id), col(Item.split), col(Item.content))
                .where(col(Item.project_id) == wb.projects.get(PROJECT, actor=Actor.operator()).id)
                .order_by(col(Item.id))
            ).all()
        truth = data.truth()
        eval_ids = [external_id for _, external_id, split, _ in rows if split == Split.EVAL]
        pool_ids = [external_id for _, external_id, split, _ in rows if split == Split.POOL]
        if len(eval_ids) < 2 or len(pool_ids) < 2:
            raise WorkbenchError(
                f"{len(rows)} items split into {len(pool_ids)} pool and {len(eval_ids)} eval items; "
                "the simulation needs at least 2 of each"
            )

        # The eval split: labeled once, with the truth, by the oracles through the real queue.
        clock = time.perf_counter()
        wb.projects.update_settings(PROJECT, eval_fraction=1.0, actor=Actor.operator())  # claims serve eval items first
        oracle_queue = QueueService(engine, random.Random(config.split_seed))
        bar = _bar(len(eval_ids), "eval split, gold labels", show_progress)
        for _ in range(len(eval_ids)):
            for name in oracles:
                claimed = oracle_queue.claim(PROJECT, actor=actors[name])
                if claimed is None or claimed.split != Split.EVAL:
                    raise WorkbenchError("internal: the queue did not serve an eval item to the gold oracle")
                oracle_queue.submit(claimed.lease_id, truth[claimed.external_id], actor=actors[name])
            bar.update(1)
        bar.close()
        wb.projects.update_settings(PROJECT, eval_fraction=0.0, actor=Actor.operator())
        progress = wb.projects.progress(PROJECT, actor=Actor.operator())
        if progress.count(Split.EVAL, ItemState.FINAL) != len(eval_ids):
            raise WorkbenchError("internal: the eval split did not end fully labeled")
        seconds["eval_gold_labels"] = time.perf_counter() - clock

        # Gold items: a seeded random set of pool items, given their true label (the same in every run).
        gold_ids: list[str] = []
        if config.gold_share > 0:
            n_gold = config.gold_items if config.gold_items is not None else max(10, round(0.05 * len(pool_ids)))
            gold_ids = sorted(
                random.Random(f"gold|{config.split_seed}").sample(pool_ids, min(n_gold, len(pool_ids) // 2))
            )
            from workbench.services.quality import mark_gold

            mark_gold(engine, PROJECT, {i: truth[i] for i in gold_ids}, actor=OPERATOR)

        # Features, once, into the shared cache (the cold-start ranking computed alongside is
        # replaced by each run's own).
        clock = time.perf_counter()
        RoundService(engine, home=shared_home).run_rescore(PROJECT, actor=OPERATOR, seed=config.split_seed)
        seconds["features"] = time.perf_counter() - clock

        # The reference: the same model on every pool item with its true label, same eval items.
        clock = time.perf_counter()
        project = wb.projects.get(PROJECT, actor=Actor.operator())
        featurizer = make_featurizer(
            data.kind,
            project.settings.get("featurizer") or {},
            image_root=project.settings.get("image_root"),
            cache_dir=features_dir / "embedding-chunks",
        )  # the rescore's chunks
        X = featurizer.fit_transform([content for *_, content in rows])
        position = {external_id: i for i, (_, external_id, _, _) in enumerate(rows)}
        model = make_model(project.settings["model"], 0, classes=labels)
        model.fit(X[[position[i] for i in pool_ids]], np.asarray([truth[i] for i in pool_ids], dtype=object))
        proba = model.predict_proba(X[[position[i] for i in eval_ids]])
        full_pool = evaluate([truth[i] for i in eval_ids], proba, labels).accuracy
        references = {featurizer.key(): float(full_pool)}
        if data.kind == "text" and not featurizer.name.startswith("text-tfidf/"):
            # TF-IDF's full-pool accuracy on the same split, for the representation comparison.
            tfidf = make_featurizer("text", {"method": "tfidf"})
            X_tfidf = tfidf.fit_transform([content for *_, content in rows])
            reference = make_model(project.settings["model"], 0, classes=labels)
            reference.fit(
                X_tfidf[[position[i] for i in pool_ids]], np.asarray([truth[i] for i in pool_ids], dtype=object)
            )
            references[tfidf.key()] = float(
                evaluate(
                    [truth[i] for i in eval_ids],
                    reference.predict_proba(X_tfidf[[position[i] for i in eval_ids]]),
                    labels,
                ).accuracy
            )
        seconds["full_pool_reference"] = time.perf_counter() - clock
    finally:
        engine.dispose()  # the last connection's close checkpoints the WAL into the file: safe to copy

    shared_path = template_dir / "shared.json"
    shared_path.write_text(
        json.dumps(
            {
                "truth": {i: truth[i] for i in pool_ids + eval_ids},
                "eval_ids": eval_ids,
                "pool_ids": pool_ids,
                "labels": labels,
                "annotators": annotators,
                "gold_ids": gold_ids,
                "crowd": {i: crowd.judgments[i] for i in pool_ids if i in crowd.judgments} if crowd else None,
            }
        )
    )
    return Template(
        work_dir=work_dir,
        db_path=db_path,
        features_dir=features_dir,
        shared_path=shared_path,
        kind=data.kind,
        labels=labels,
        n_items=len(rows),
        n_pool=len(pool_ids),
        n_eval=len(eval_ids),
        eval_label_counts=dict(Counter(truth[i] for i in eval_ids)),
        full_pool_accuracy=float(full_pool),
        annotators=annotators,
        eval_annotations=len(eval_ids) * config.overlap,
        n_gold=len(gold_ids),
        featurizer=featurizer.key(),
        full_pool_accuracy_by_featurizer=references,
        seconds=seconds,
    )


def _bar(total: int, desc: str, enabled: bool) -> tqdm:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="item", disable=not enabled, leave=False, dynamic_ncols=True)


# -- one run -------------------------------------------------------------------------------------

_SHARED_CACHE: dict[str, dict] = {}


def _shared(path: str) -> dict:
    if path not in _SHARED_CACHE:
        _SHARED_CACHE[path] = json.loads(Path(path).read_text())
    return _SHARED_CACHE[path]


_T = TypeVar("_T")


class ProgressSink(Protocol):
    """Where a run reports each label it spends: a manager queue (process pool) or the bar."""

    def put(self, item: int, /) -> None: ...


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.counts: Counter = Counter()

    def __call__(self, name: str, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.seconds[name] += time.perf_counter() - started
            self.counts[name] += 1


class _Run:
    """One strategy × seed through the services. Not thread-safe; one per process at a time."""

    def __init__(self, engine: Engine, home: Path, task: RunTask, progress: ProgressSink | None) -> None:
        self.task, self.config, self.seed = task, task.config, task.seed
        self.progress = progress
        shared = _shared(task.shared_path)
        self.truth: dict[str, str] = shared["truth"]
        self.eval_truth = [self.truth[i] for i in shared["eval_ids"]]
        self.labels: list[str] = shared["labels"]
        self.wb = Workbench(engine)
        self.rounds = RoundService(engine, home=home)
        self.queue = QueueService(engine, random.Random(task.seed))
        self.actors = _actors(engine)
        self.reviewer = self.actors[REVIEWER]
        self.adjudicator = Adjudicator(self.config.adjudicator, self.truth, task.seed)
        self.rng = random.Random(f"dispatch|{task.seed}")
        names: list[str] = shared["annotators"]
        self.crowd: CrowdReplay | None
        if shared["crowd"] is not None:
            self.crowd = CrowdReplay(shared["crowd"])
            weights = Counter(worker for answers in shared["crowd"].values() for worker in answers)
            self.weights = weights
            self.workers = [name for name in names if weights[name]]  # workers who judged a pool item
            self.simulated = []
        else:
            self.crowd = None
            accuracy = self.config.annotator_accuracy
            self.simulated = [
                NoisyAnnotator(name, accuracy[i % len(accuracy)], self.labels, task.seed)
                for i, name in enumerate(names)
            ]
        self.timer = _Timer()
        self.completed = 0  # pool items whose annotations are all in (final, or waiting for review)
        self.spent = 0  # annotations submitted by simulated annotators / workers
        self.skips = 0
        self.adjudications = 0
        self.claim_reasons: Counter = Counter()
        self.round_steps: dict[str, float] = defaultdict(float)
        self.curve: list[dict[str, Any]] = []
        self.pending: set[int] = set()  # items whose last claim ended in a skip or a partial submit
        self.had: dict[int, set[str]] = defaultdict(set)
        self.external: dict[int, str] = {}
        self._next_annotator = 0
        self._exhausted: set[str] = set()  # workers the queue had nothing left for
        self.last_version: int | None = None
        self.reviews = 0  # items a reviewer decided because their labels did not settle them
        self.issue_reviews = 0  # items a reviewer decided because the label-error queue sent them back
        self.first_flagged: dict[str, int] = {}  # worker → their labels when quality first flagged them
        self.paused: list[str] = []
        self.labels_by: Counter = Counter()
        self.label_issues: dict[str, Any] | None = None
        self.gold_ids: set[str] = set(shared.get("gold_ids") or [])
        self.gold_spent = 0
        self.quality = self.wb_quality()

    def wb_quality(self) -> QualityService:
        from workbench.services.quality import QualityService

        return QualityService(self.wb.engine)

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        started, cpu = time.perf_counter(), time.process_time()
        self.wb.projects.update_settings(
            PROJECT, strategy=self.task.strategy, actor=OPERATOR, **self.config.policy_settings()
        )
        while self.completed < self.task.initial:  # the seed set: the workbench's cold-start ranking
            ranked = self.timer("rescore", self.rounds.run_rescore, PROJECT, actor=OPERATOR, seed=self.seed).ranked
            if not ranked or not self._label(min(ranked, self.task.initial - self.completed)):
                break
        self._round()
        while self.completed < self.task.budget:
            if not self._label(min(self.config.batch_at(self.completed), self.task.budget - self.completed)):
                break
            self._round()
        stop = self.task.stop_accuracy
        if stop is not None and self.completed >= self.task.budget:  # --until: on to the target
            while self.curve[-1]["accuracy"] < stop - 1e-12 and self.completed < self.task.pool_size:
                if not self._label(min(self.config.batch_at(self.completed), self.task.pool_size - self.completed)):
                    break
                self._round()
        if self.config.inject_label_noise > 0 or self.config.label_error_review > 0:
            self._label_error_pass()
        rows = self.wb.versions.rows(PROJECT, self.last_version, actor=Actor.operator()) if self.last_version else None
        # A DataFrame (pandas ships no types: Any), or [] when no version was cut.
        pool_rows: Any = rows[rows["split"] == Split.POOL.value] if rows is not None else []
        if len(pool_rows) and self.gold_ids:  # gold items are right by construction: not counted
            pool_rows = pool_rows[~pool_rows["external_id"].isin(self.gold_ids)]
        correct = (
            sum(self.truth[e] == label for e, label in zip(pool_rows["external_id"], pool_rows["label"]))
            if len(pool_rows)
            else 0
        )
        by: Counter = Counter(pool_rows["aggregation"]) if len(pool_rows) and "aggregation" in pool_rows else Counter()
        return {
            "strategy": self.task.strategy,
            "seed": self.seed,
            "curve": self.curve,
            "labels": self.completed,
            "labels_spent": self.spent,
            "skips": self.skips,
            "adjudications": self.adjudications,
            "n_final": len(pool_rows),
            "final_label_accuracy": correct / len(pool_rows) if len(pool_rows) else None,
            "labels_per_item": self.spent / self.completed if self.completed else None,
            "review_share": self.reviews / self.completed if self.completed else None,
            "reviews": self.reviews,
            "gold_labels_spent": self.gold_spent,
            "gold_items": len(self.gold_ids),
            "final_by": {str(k): int(v) for k, v in by.items()},
            "first_flagged": self.first_flagged,
            "paused": self.paused,
            "labels_by_worker": dict(self.labels_by) if self.crowd is not None else {},
            "label_issues": self.label_issues,
            "claim_reasons": dict(self.claim_reasons),
            "seconds": time.perf_counter() - started,
            "cpu_seconds": time.process_time() - cpu,
            "timings": {
                name: {"calls": self.timer.counts[name], "seconds": round(s, 4)}
                for name, s in self.timer.seconds.items()
            },
            "round_steps": {name: round(s, 4) for name, s in self.round_steps.items()},
        }

    def _round(self) -> None:
        result = self.timer("retrain", self.rounds.run_retrain, PROJECT, actor=OPERATOR, seed=self.seed)
        for name, seconds in result.timings.items():
            self.round_steps[name] += seconds
        self.last_version = result.version
        self._after_quality()
        accuracy = result.metrics.accuracy if result.run_id is not None and result.metrics is not None else None
        if accuracy is None:  # no model yet (one label only): predict the majority label seen so far
            accuracy = self._baseline()
        self.curve.append(
            {
                "labels": int(result.n_train),
                "accuracy": float(accuracy),
                "n_eval": int(result.n_eval),
                "model": result.run_id is not None,
                "ranking": result.strategy,
            }
        )
        if self.progress is not None:
            self.progress.put(1)

    @property
    def _replay(self) -> CrowdReplay:
        assert self.crowd is not None  # _label takes the crowd steps only when a crowd file is replayed
        return self.crowd

    def _version(self) -> int:
        """The version the last retrain round cut (a retrain cuts one, or reuses the latest)."""
        assert self.last_version is not None, "no retrain round has run yet"
        return self.last_version

    def _baseline(self) -> float:
        labeled: Counter = Counter()
        if self.last_version:
            rows = self.wb.versions.rows(PROJECT, self.last_version, actor=Actor.operator())
            labeled = Counter(rows.loc[rows["split"] == Split.POOL.value, "label"])
        guess = labeled.most_common(1)[0][0] if labeled else self.labels[0]
        return sum(label == guess for label in self.eval_truth) / len(self.eval_truth)

    # -- labeling ----------------------------------------------------------------------------
    def _label(self, n: int) -> bool:
        """Bring n more pool items to the end of double-labeling, then settle the review queue.
        False when the queue ran dry first."""
        target = self.completed + n
        label_one = (
            self._simulated_step
            if self.crowd is None
            else self._arrival_step
            if self.config.crowd_arrival == "proportional"
            else self._crowd_step
        )
        while self.completed < target:
            if not label_one():
                break
        if self.config.aggregation == "dawid_skene" and self.config.posterior_accept is not None:
            # Dawid-Skene may settle review items before a reviewer sees them (on demand, as a
            # round would).
            self.timer("quality", self.quality.refresh, PROJECT, actor=self.reviewer)
        self._review()
        return self.completed == target

    def _after_quality(self) -> None:
        """Record when each annotator was first flagged and when they were paused (the project's
        pause_flagged setting has QualityService.refresh pause them; nothing here pauses anyone)."""
        for info in self.quality.stored(PROJECT, actor=self.reviewer):
            if info.flagged and info.annotator not in self.first_flagged:
                self.first_flagged[info.annotator] = self.labels_by[info.annotator]
            if info.paused and info.annotator not in self.paused:
                self.paused.append(info.annotator)

    def _claim(self, actor: Actor) -> ClaimedItem | None:
        claimed = self.timer("claim", self.queue.claim, PROJECT, actor=actor)
        if claimed is not None:
            self.claim_reasons[claimed.reason] += 1
            if claimed.split != Split.POOL:
                raise WorkbenchError("internal: an eval item was served during the simulation")
            self.external[claimed.item_id] = claimed.external_id
            self.had[claimed.item_id].add(actor.name)
        return claimed

    def _submit(self, claimed: ClaimedItem, label: str, actor: Actor) -> None:
        result = self.timer("submit", self.queue.submit, claimed.lease_id, label, actor=actor)
        self.spent += 1
        self.labels_by[actor.name] += 1
        if self.config.quality_refresh_labels:  # the worker's between-jobs check, at label pace
            if self.timer("quality", self.quality.refresh_if_due, PROJECT, actor=self.reviewer) is not None:
                self._after_quality()
        if claimed.external_id in self.gold_ids:  # a check of the annotator, not a new final label
            self.gold_spent += 1
            return
        if result.item_state == ItemState.OPEN:
            self.pending.add(claimed.item_id)
        else:
            self.pending.discard(claimed.item_id)
            self.completed += 1

    def _simulated_step(self) -> bool:
        """The next annotator in turn claims and answers (partial items come back first, so the
        item's other annotators follow)."""
        for _ in range(len(self.simulated)):
            annotator = self.simulated[self._next_annotator % len(self.simulated)]
            self._next_annotator += 1
            actor = self.actors[annotator.name]
            claimed = self._claim(actor)
            if claimed is None:
                continue
            self._submit(claimed, annotator.answer(claimed.external_id, self.truth[claimed.external_id]), actor)
            return True
        return False

    def _crowd_step(self) -> bool:
        """A worker claims. For an item in flight (partly labeled, or just skipped) the claimer is
        drawn uniformly from the workers who judged it and have not had it; otherwise uniformly from
        all workers. A worker served an item they did not judge skips it with a reason, so every
        submitted label is a real judgment, and the item's next claimer is one of its judges.

        Uniform draws make each item's annotators a uniform random set of the workers who judged it
        (first slot: 1/W + (1 - J/W)/J = 1/J per judge). Drawing the first claimer by how much each
        worker worked would over-weight prolific workers twice (they are drawn more often and have
        judged more of the items they are served); on RTE the most prolific workers are the least
        accurate.
        """
        in_flight = sorted(self.pending)
        if in_flight:
            item_id = in_flight[0]
            candidates = [w for w in self._replay.judges(self.external[item_id]) if w not in self.had[item_id]]
            if not candidates:
                raise WorkbenchError(
                    f"item {self.external[item_id]!r}: every worker who judged it has had it, and it still lacks labels"
                )
            worker = self.rng.choice(candidates)
        else:
            worker = self.rng.choice(self.workers)
        actor = self.actors[worker]
        claimed = self._claim(actor)
        if claimed is None:
            if in_flight:
                raise WorkbenchError(f"internal: worker {worker} was offered nothing while an item was in flight")
            self._exhausted.add(worker)
            return len(self._exhausted) < len(self.workers)
        answer = self._replay.answer(worker, claimed.external_id)
        if answer is None:
            self.timer("skip", self.queue.skip, claimed.lease_id, SKIP_REASON, actor=actor)
            self.skips += 1
            if claimed.external_id not in self.gold_ids:
                self.pending.add(claimed.item_id)  # its next claimer is one of its judges
        else:
            self._submit(claimed, answer, actor)
        return True

    def _arrival_step(self) -> bool:
        """A worker comes to the queue with probability proportional to how many judgments they
        made in the crowd file, claims, and answers what they answered for that item, or skips it
        when they did not judge it (a claim, not a label). See docs/simulate for the model."""
        active = [w for w in self.workers if w not in self._exhausted]
        if not active:
            return False
        worker = self.rng.choices(active, weights=[self.weights[w] for w in active])[0]
        actor = self.actors[worker]
        claimed = self._claim(actor)
        if claimed is None:  # nothing this worker has not had (or paused): permanent in a replay
            self._exhausted.add(worker)
            return len(self._exhausted) < len(self.workers)
        answer = self._replay.answer(worker, claimed.external_id)
        if answer is None:
            self.timer("skip", self.queue.skip, claimed.lease_id, SKIP_REASON, actor=actor)
            self.skips += 1
        else:
            self._submit(claimed, answer, actor)
        return True

    def _label_error_pass(self) -> None:
        """After the budget: flip a share of the final pool labels at random (recorded as
        adjudications with the reason "simulated label noise"), cut a round, run the label-error
        queue (the same find_label_issues a live round runs), let the simulated reviewer settle
        what it sent back, and cut a last round whose version diff holds the corrections."""
        from workbench.services.quality import find_label_issues

        rows = self.wb.versions.rows(PROJECT, self._version(), actor=Actor.operator())
        pool = rows[rows["split"] == Split.POOL.value]
        rng = random.Random(f"noise|{self.seed}")
        n_flip = int(round(self.config.inject_label_noise * len(pool)))
        flipped: set[int] = set()
        for item_id, label in rng.sample(list(zip(pool["item_id"], pool["label"])), n_flip):
            flip_to = rng.choice([other for other in self.labels if other != label])
            self.wb.review.adjudicate(
                int(item_id), Decision.LABEL, actor=self.reviewer, label=flip_to, reason="simulated label noise"
            )
            flipped.add(int(item_id))
        self._round()
        before = self._version()
        noisy = self.wb.versions.rows(PROJECT, before, actor=Actor.operator())
        noisy = noisy[noisy["split"] == Split.POOL.value]
        wrong = {
            int(i) for i, e, lab in zip(noisy["item_id"], noisy["external_id"], noisy["label"]) if self.truth[e] != lab
        }
        k = self.config.label_error_review or n_flip
        result = self.timer(
            "label_issues",
            find_label_issues,
            self.wb.engine,
            PROJECT,
            k=k,
            actor=self.reviewer,
            home=self.rounds.pipeline.home,
            seed=self.seed,
        )
        sent = [issue.item_id for issue in result.sent_to_review]
        self._review(label_issues=True)
        self._round()
        diff = self.wb.versions.diff(PROJECT, before, self._version(), actor=Actor.operator())
        self.label_issues = {
            "flipped": len(flipped),
            "k": k,
            "found": result.n_issues,
            "sent_to_review": len(sent),
            "label_issue_precision_at_k": (sum(i in flipped for i in sent) / len(sent)) if sent else None,
            "label_issue_recall": (sum(i in flipped for i in result.issue_item_ids) / len(flipped))
            if flipped
            else None,
            "recall_at_k": (sum(i in flipped for i in sent) / len(flipped)) if flipped else None,
            "wrong_labels_before": len(wrong),
            "corrected_in_diff": len(diff.relabeled),
            "folds": result.folds,
            "examples": [issue.reason for issue in result.sent_to_review[:3]],
        }

    def _review(self, label_issues: bool = False) -> None:
        """The simulated reviewer settles every item waiting in the review queue."""
        while True:
            cases = self.timer("review_queue", self.wb.review.queue, PROJECT, actor=self.reviewer, limit=500)
            if not cases:
                return
            for case in cases:
                label, reason = self.adjudicator.decide(case)
                self.timer(
                    "adjudicate",
                    self.wb.review.adjudicate,
                    case.item_id,
                    Decision.LABEL,
                    actor=self.reviewer,
                    label=label,
                    reason=reason,
                )
                self.adjudications += 1
                if label_issues:
                    self.issue_reviews += 1
                else:
                    self.reviews += 1


def _limit_threads() -> None:
    """Worker processes: one BLAS/OpenMP thread each (the processes already fill the cores)."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - comes with scikit-learn
        pass


def run_task(task: RunTask, progress: ProgressSink | None = None) -> dict[str, Any]:
    """One run in this process: its own SQLite copy and its own WORKBENCH_HOME."""
    run_dir = Path(task.run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    home = run_dir / "home"
    home.mkdir(parents=True)
    (home / "features").symlink_to(Path(task.features_dir).resolve(), target_is_directory=True)
    db_path = run_dir / "workbench.db"
    shutil.copyfile(task.template_db, db_path)
    previous_home = os.environ.get("WORKBENCH_HOME")
    os.environ["WORKBENCH_HOME"] = str(home)
    engine = make_engine(f"sqlite:///{db_path}")
    try:
        return _Run(engine, home, task, progress).run()
    finally:
        engine.dispose()
        if previous_home is None:
            os.environ.pop("WORKBENCH_HOME", None)
        else:
            os.environ["WORKBENCH_HOME"] = previous_home
        if not task.config.keep_dbs:
            shutil.rmtree(run_dir, ignore_errors=True)


def _run_task_guarded(task: RunTask, progress: ProgressSink | None = None) -> dict[str, Any]:
    try:
        return run_task(task, progress)
    except WorkbenchError as exc:
        return {"strategy": task.strategy, "seed": task.seed, "error": str(exc)}
    except Exception as exc:  # reported per run, as one line, by the parent
        return {"strategy": task.strategy, "seed": task.seed, "error": f"{type(exc).__name__}: {exc}"}


# -- the whole simulation ------------------------------------------------------------------------


def plan(config: SimulationConfig, template: Template) -> tuple[int, int]:
    """(budget, initial) in labeled pool items, capped to the pool."""
    labelable = template.n_pool - template.n_gold  # gold items are final from the start
    budget = labelable if config.budget is None else min(config.budget, labelable)
    initial = SEEDS_PER_LABEL * len(template.labels) if config.initial is None else config.initial
    return budget, min(initial, budget)


def simulate(
    data: LabeledData,
    config: SimulationConfig,
    crowd: CrowdData | None = None,
    *,
    show_progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every strategy × seed and return the report (see workbench.simulate.report)."""
    from workbench.simulate.report import build_report

    config.check()
    if crowd is not None:
        if config.annotators is not None:
            raise WorkbenchError("--annotators does not apply with --crowd: the annotators are the crowd's workers")
        need = max(config.overlap, config.max_labels if config.overlap_policy == "adaptive" else 1)
        data = restrict_to_crowd(data, crowd, need)  # only items that many real workers judged
    started = time.perf_counter()
    owned = config.work_dir is None
    work_dir = Path(config.work_dir or tempfile.mkdtemp(prefix="workbench-simulate-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        template = build_template(data, config, work_dir, crowd, show_progress=show_progress)
        budget, initial = plan(config, template)
        stop = None if config.until is None else config.until * template.full_pool_accuracy
        tasks = [
            RunTask(
                strategy=name,
                seed=seed,
                template_db=str(template.db_path),
                features_dir=str(template.features_dir),
                shared_path=str(template.shared_path),
                run_dir=str(work_dir / "runs" / f"{name}-seed{seed}"),
                config=config,
                budget=budget,
                initial=initial,
                stop_accuracy=stop,
                pool_size=template.n_pool,
            )
            for seed in config.seeds
            for name in config.strategies
        ]
        rounds_per_run, labels = 1, initial
        while labels < budget:
            labels += min(config.batch_at(labels), budget - labels)
            rounds_per_run += 1
        runs = _run_all(tasks, config, rounds_per_run, show_progress)
        failed = [run for run in runs if "error" in run]
        if failed:
            raise WorkbenchError(f"run {failed[0]['strategy']} seed {failed[0]['seed']} failed: {failed[0]['error']}")
        return build_report(
            data,
            config,
            template,
            runs,
            budget=budget,
            initial=initial,
            crowd=crowd,
            wall_seconds=time.perf_counter() - started,
        )
    finally:
        if owned and not config.keep_dbs:
            shutil.rmtree(work_dir, ignore_errors=True)
        elif config.keep_dbs:
            log(f"databases kept under {work_dir}")


def _run_all(
    tasks: list[RunTask], config: SimulationConfig, rounds_per_run: int, show_progress: bool
) -> list[dict[str, Any]]:
    from tqdm import tqdm

    jobs = min(config.jobs or os.cpu_count() or 1, len(tasks))
    bar = tqdm(
        total=len(tasks) * rounds_per_run,
        desc=f"{len(tasks)} runs on {jobs} process(es)",
        unit="round",
        disable=not show_progress,
        dynamic_ncols=True,
    )
    results: list[dict[str, Any]] = []
    try:
        if jobs == 1:
            for task in tasks:
                results.append(_run_task_guarded(task, _BarQueue(bar)))
            return results
        context = multiprocessing.get_context("spawn")
        with (
            context.Manager() as manager,
            ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_limit_threads) as pool,
        ):
            progress = manager.Queue()
            futures = {pool.submit(_run_task_guarded, task, progress) for task in tasks}
            while futures:
                done, futures = wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(progress, bar)
                for future in done:
                    results.append(future.result())
                    bar.set_postfix_str(f"{len(results)}/{len(tasks)} runs done")
            _drain(progress, bar)
        return results
    finally:
        bar.close()


class _BarQueue:
    def __init__(self, bar: tqdm) -> None:
        self.bar = bar

    def put(self, n: int) -> None:
        self.bar.update(n)


def _drain(progress: queue_module.Queue[int], bar: tqdm) -> None:
    while True:
        try:
            bar.update(progress.get_nowait())
        except queue_module.Empty:
            return


def config_dict(config: SimulationConfig) -> dict[str, Any]:
    out = asdict(config)
    out.pop("work_dir", None)
    out.pop("keep_dbs", None)
    out.pop("jobs", None)
    return out
