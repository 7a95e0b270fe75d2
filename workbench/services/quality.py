"""Annotator quality: Dawid-Skene confusion matrices from every human label, gold items as anchors.

crowd-kit's DawidSkene does the EM (``fit(df[task, worker, label], true_labels=gold)``). What is
ours, and why:

- **Which items it is fitted on.** Only items that can check a label: two or more counting labels,
  or a known answer (a gold item, or a reviewer's adjudication, both passed to crowd-kit as
  ``true_labels``). On an item with one label, EM confirms the annotator by their own label, so a
  chance-level annotator whose labels are mostly alone would look perfect. Posteriors for every
  item (single-labeled ones included) are then the E-step with the fitted matrices and priors.
- **The interval.** crowd-kit gives a point estimate only. Each annotator's accuracy (the diagonal
  of their confusion matrix weighted by the class priors) over ``n_checked`` checkable labels gets
  a Beta(1 + acc·n, 1 + (1-acc)·n) 95 % interval (a Bayesian interval with a uniform prior, read as
  "acc·n of n labels right").
- **Chance** is the rate of always answering the most common label (the largest class prior):
  an annotator who is not above it tells a reviewer nothing the prior did not.
- **Flag**: at least 30 labels, and the interval's lower end at or below chance (not measurably
  above it), or its upper end below chance + 0.15 (measurably barely above it: on RTE a worker
  right 57.6 % of the time over 700 labels is above chance, and still adds almost nothing).
- **Reliability** (what the adaptive overlap policy uses) is the estimate shrunk toward a prior of
  0.7 with 4 pseudo-labels, so two lucky labels do not make an annotator trusted.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sqlalchemy import Engine, bindparam, delete, func, insert, select, update
from sqlmodel import Session, col

from workbench.db.models import Adjudication, Annotation, AnnotatorQuality, Item, User, utcnow
from workbench.domain import Actor, AnnotationSource, Decision, ItemState, Role
from workbench.domain.overlap import DEFAULT_RELIABILITY, Aggregation
from workbench.errors import NotFound, WorkbenchError
from workbench.services._auth import require_role, requires
from workbench.services._tx import audit, reading, write
from workbench.services.members import load_member_project
from workbench.services.projects import load_project

if TYPE_CHECKING:
    from pathlib import Path

    from scipy.sparse import spmatrix

_SET_POSTERIOR = (
    update(Item)
    .where(col(Item.id) == bindparam("b_id"))
    .values(posterior_label=bindparam("b_label"), posterior=bindparam("b_p"))
)
MIN_LABELS_TO_FLAG = 30
NEAR_CHANCE = 0.15
PRIOR_STRENGTH = 4.0
REFRESH_GROWTH = 10  # refresh_if_due: at least a 1/10 growth of the labels between estimates
Z95 = 0.95


@dataclass(frozen=True)
class AnnotatorQualityInfo:
    """One annotator's estimated quality in a project."""

    annotator: str
    n_labels: int
    n_checked: int
    accuracy: float | None
    accuracy_low: float | None
    accuracy_high: float | None
    reliability: float
    n_gold: int
    gold_accuracy: float | None
    n_adjudicated: int
    adjudication_agreement: float | None
    flagged: bool
    paused: bool
    confusion: dict[str, dict[str, float]] = field(default_factory=dict)  # true → given → P


@dataclass(frozen=True)
class QualityReport:
    project: str
    labels: tuple[str, ...]
    chance: float | None
    n_labels: int
    n_items: int
    n_gold_items: int
    annotators: tuple[AnnotatorQualityInfo, ...]
    # item → (posterior label, its probability): the Dawid-Skene suggestion for a reviewer
    posteriors: Mapping[int, tuple[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "project": self.project,
            "labels": list(self.labels),
            "chance": self.chance,
            "n_labels": self.n_labels,
            "n_items": self.n_items,
            "n_gold_items": self.n_gold_items,
            "annotators": [a.__dict__ for a in self.annotators],
        }


def beta_interval(correct: float, n: float, level: float = Z95) -> tuple[float, float]:
    from scipy import stats

    a, b = 1.0 + correct, 1.0 + max(0.0, n - correct)
    tail = (1 - level) / 2
    return float(stats.beta.ppf(tail, a, b)), float(stats.beta.ppf(1 - tail, a, b))


def estimate(
    judgments: Sequence[tuple[object, str, str]],
    labels: Sequence[str],
    *,
    gold: Mapping[object, str] | None = None,
    adjudicated: Mapping[object, str | None] | None = None,
    paused: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[AnnotatorQualityInfo], dict, float | None]:
    """(per-annotator quality, item → (posterior label, p), chance) from (item, annotator, label)
    judgments. Paused annotators are estimated too, but their labels do not inform posteriors."""
    gold = dict(gold or {})
    adjudicated = dict(adjudicated or {})
    label_list = list(labels)
    k = len(label_list)
    index = {lab: i for i, lab in enumerate(label_list)}
    by_item: dict = defaultdict(list)
    by_worker: dict = defaultdict(list)
    for item, worker, label in judgments:
        by_item[item].append((worker, label))
        by_worker[worker].append((item, label))
    counting = {item: [(w, lab) for w, lab in answers if w not in paused] for item, answers in by_item.items()}
    # Known answers anchor the fit: gold items, and items a reviewer decided (a reviewer's label is
    # the project's ground truth; gold wins where both exist).
    anchors = {t: lab for t, lab in adjudicated.items() if lab is not None and lab in index} | {
        t: lab for t, lab in gold.items() if lab in index
    }
    checkable = {item for item, answers in counting.items() if len(answers) >= 2} | (set(anchors) & set(by_item))
    fit_rows = [(item, w, lab) for item in checkable for w, lab in by_item[item]]
    priors: dict[str, float] = {}
    matrices: dict[str, np.ndarray] = {}
    if fit_rows:
        from crowdkit.aggregation import DawidSkene

        fit_frame = pd.DataFrame(fit_rows, columns=["task", "worker", "label"])
        true = pd.Series({t: g for t, g in anchors.items() if t in checkable}, dtype=object)
        true.index.name = "task"
        with warnings.catch_warnings():  # crowd-kit 1.4.2 still passes pandas 3's deprecated copy=/inplace=
            warnings.simplefilter("ignore")
            ds = DawidSkene(n_iter=100).fit(fit_frame, true_labels=true if len(true) else None)
        assert ds.priors_ is not None and ds.errors_ is not None  # set by fit
        priors = {lab: float(ds.priors_.get(lab, 0.0)) for lab in label_list}
        errors = ds.errors_.reindex(columns=label_list).fillna(0.0)
        values = errors.to_numpy(dtype=float, copy=True)
        for (worker, given), row in zip(errors.index, values):
            if given in index:
                matrices.setdefault(worker, np.zeros((k, k)))[index[given]] = row
        for matrix in matrices.values():  # columns: P(given | true); a true class never seen: uniform
            sums = matrix.sum(axis=0)
            matrix[:, sums <= 0] = 1.0 / k
            matrix[:, sums > 0] /= sums[sums > 0]
    if not priors or sum(priors.values()) <= 0:
        priors = {lab: 1.0 / k for lab in label_list}
    chance = max(priors.values()) if matrices else None
    log_prior = np.log(np.clip(np.asarray([priors[lab] for lab in label_list]), 1e-12, None))
    default_rows = np.full((k, k), (1 - DEFAULT_RELIABILITY) / max(k - 1, 1))
    np.fill_diagonal(default_rows, DEFAULT_RELIABILITY)
    log_matrices = {w: np.log(np.clip(m, 1e-12, None)) for w, m in matrices.items()}
    log_default = np.log(default_rows)

    # Posteriors for every item: the E-step with the fitted matrices (gold items are their answer).
    posteriors: dict = {}
    for item, answers in counting.items():
        if item in gold and gold[item] in index:
            posteriors[item] = (gold[item], 1.0)
            continue
        log_post = log_prior.copy()
        for worker, label in answers:
            log_post += log_matrices.get(worker, log_default)[index[label]]
        post = np.exp(log_post - log_post.max())
        post /= post.sum()
        best = int(post.argmax())
        posteriors[item] = (label_list[best], float(post[best]))

    out: list[AnnotatorQualityInfo] = []
    for worker, mine in sorted(by_worker.items(), key=lambda kv: str(kv[0])):
        m = matrices.get(worker)
        n_checked = sum(1 for item, _ in mine if item in checkable)
        accuracy: float | None
        low: float | None
        high: float | None
        if m is not None and n_checked:
            accuracy = float(sum(priors[lab] * m[index[lab], index[lab]] for lab in label_list))
            low, high = beta_interval(accuracy * n_checked, n_checked)
        else:
            accuracy = low = high = None
        reliability = ((accuracy or 0.0) * n_checked + PRIOR_STRENGTH * DEFAULT_RELIABILITY) / (
            n_checked + PRIOR_STRENGTH
        )
        on_gold = [lab == gold[t] for t, lab in mine if t in gold]
        on_adj = [lab == adjudicated[t] for t, lab in mine if adjudicated.get(t) is not None]
        out.append(
            AnnotatorQualityInfo(
                annotator=str(worker),
                n_labels=len(mine),
                n_checked=n_checked,
                accuracy=accuracy,
                accuracy_low=low,
                accuracy_high=high,
                reliability=float(reliability),
                n_gold=len(on_gold),
                gold_accuracy=float(np.mean(on_gold)) if on_gold else None,
                n_adjudicated=len(on_adj),
                adjudication_agreement=float(np.mean(on_adj)) if on_adj else None,
                flagged=is_flagged(len(mine), low, high, chance),
                paused=str(worker) in paused,
                confusion=(
                    {
                        true: {given: round(float(m[index[given], index[true]]), 4) for given in label_list}
                        for true in label_list
                    }
                    if m is not None
                    else {}
                ),
            )
        )
    return out, posteriors, chance


def is_flagged(n_labels: int, low: float | None, high: float | None, chance: float | None) -> bool:
    """At least 30 labels, and accuracy either not measurably above chance (the interval reaches
    down to it) or measurably within NEAR_CHANCE of it (the interval ends below chance + 0.15)."""
    if n_labels < MIN_LABELS_TO_FLAG or low is None or high is None or chance is None:
        return False
    return low <= chance or high < chance + NEAR_CHANCE


class QualityService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _inputs(
        self, session: Session, project_id: int
    ) -> tuple[Sequence[tuple[int, str, str]], dict[object, str], dict[object, str | None], set[str], dict[str, int]]:
        """(item, annotator, label) of every human label, gold answers, adjudicated labels (None
        for "no label"), paused annotators, and user ids by name."""
        rows = session.execute(
            select(col(Annotation.item_id), col(User.name), col(Annotation.label))
            .join(User, col(User.id) == col(Annotation.annotator_id))
            .where(col(Annotation.project_id) == project_id, col(Annotation.source) == AnnotationSource.HUMAN)
        ).all()
        gold = dict(
            session.execute(
                select(col(Item.id), col(Item.gold_label)).where(
                    col(Item.project_id) == project_id, col(Item.gold_label).is_not(None)
                )
            ).all()
        )
        decisions = session.execute(
            select(col(Adjudication.item_id), col(Adjudication.decision), col(Adjudication.label))
            .where(col(Adjudication.project_id) == project_id)
            .order_by(col(Adjudication.id))
        ).all()
        adjudicated = {i: (label if d == Decision.LABEL else None) for i, d, label in decisions}
        paused = set(
            session.execute(
                select(col(User.name))
                .join(AnnotatorQuality, col(AnnotatorQuality.user_id) == col(User.id))
                .where(col(AnnotatorQuality.project_id) == project_id, col(AnnotatorQuality.paused).is_(True))
            ).scalars()
        )
        users = dict(session.execute(select(col(User.name), col(User.id))).all())
        return rows, gold, adjudicated, paused, users

    @requires(Role.REVIEWER)
    def refresh(self, project_name: str, *, actor: Actor) -> QualityReport:
        """Re-estimate every annotator (after a round, or on demand) and store the estimates and
        each item's posterior; pauses are kept."""
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            rows, gold, adjudicated, paused, users = self._inputs(session, project.id)
        annotators, posteriors, chance = estimate(
            rows, project.labels, gold=gold, adjudicated=adjudicated, paused=paused
        )
        now = utcnow()
        auto_paused = []
        if project.settings.get("pause_flagged"):  # the project lets quality pause whom it flags
            auto_paused = [a.annotator for a in annotators if a.flagged and not a.paused]
            annotators = [replace(a, paused=True) if a.annotator in auto_paused else a for a in annotators]

        def work(session: Session) -> None:
            session.execute(delete(AnnotatorQuality).where(col(AnnotatorQuality.project_id) == project.id))
            if annotators:
                session.execute(
                    insert(AnnotatorQuality),
                    [
                        {
                            "project_id": project.id,
                            "user_id": users[a.annotator],
                            "n_labels": a.n_labels,
                            "n_checked": a.n_checked,
                            "accuracy": a.accuracy,
                            "accuracy_low": a.accuracy_low,
                            "accuracy_high": a.accuracy_high,
                            "reliability": a.reliability,
                            "n_gold": a.n_gold,
                            "gold_accuracy": a.gold_accuracy,
                            "n_adjudicated": a.n_adjudicated,
                            "adjudication_agreement": a.adjudication_agreement,
                            "flagged": a.flagged,
                            "confusion": a.confusion,
                            "paused": a.paused,
                            "paused_at": now if a.annotator in auto_paused else None,
                            "updated_at": now,
                        }
                        for a in annotators
                    ],
                )
            audit(
                session,
                "quality.refresh",
                actor_id=actor.id,
                project_id=project.id,
                annotators=len(annotators),
                flagged=sum(a.flagged for a in annotators),
            )
            for name in auto_paused:
                audit(
                    session,
                    "annotator.pause",
                    actor_id=actor.id,
                    project_id=project.id,
                    annotator=name,
                    why="flagged: estimated accuracy not above chance (project setting pause_flagged)",
                )

        accept = project.settings.get("posterior_accept")
        by_posterior = project.settings.get("aggregation") == Aggregation.DAWID_SKENE and accept is not None

        def store_posteriors(session: Session) -> int:
            if posteriors:
                session.connection().execute(
                    _SET_POSTERIOR,
                    [{"b_id": item_id, "b_label": label, "b_p": p} for item_id, (label, p) in posteriors.items()],
                )
            if not by_posterior or accept is None:  # by_posterior already implies accept is set
                return 0
            accepted = (
                session.connection()
                .execute(
                    update(Item)
                    .where(
                        col(Item.project_id) == project.id,
                        col(Item.state) == ItemState.REVIEW,
                        col(Item.posterior) >= float(accept),
                        col(Item.gold_label).is_(None),
                    )
                    .values(
                        state=ItemState.FINAL,
                        final_label=col(Item.posterior_label),
                        final_by=Aggregation.DAWID_SKENE.value,
                        reason=f"Dawid-Skene posterior at or above {float(accept):.2f}: taken without review",
                    )
                )
                .rowcount
            )
            if accepted:
                audit(
                    session,
                    "aggregation.accept_posterior",
                    actor_id=actor.id,
                    project_id=project.id,
                    items=accepted,
                    threshold=float(accept),
                )
            return accepted

        write(self.engine, work)
        write(self.engine, store_posteriors)
        return QualityReport(
            project.name,
            project.labels,
            chance,
            len(rows),
            len({r[0] for r in rows}),
            len(gold),
            tuple(annotators),
            posteriors,
        )

    @requires(Role.REVIEWER)
    def refresh_if_due(self, project_name: str, *, actor: Actor) -> QualityReport | None:
        """Re-estimate when the project's `quality_refresh_labels` new human labels have come in
        since the last estimate, or a tenth of the labels it saw, whichever is more (often early,
        when a chance-level annotator must be caught after about 30 labels, and rarely later, when
        one more fit changes little); None when not due. The job worker calls this between jobs and
        `workbench simulate` after every label: the same rule in both."""
        with reading(self.engine) as session:
            project = load_project(session, project_name)
            every = int(project.settings.get("quality_refresh_labels") or 0)
            if every <= 0:
                return None
            labels = session.execute(
                select(func.count())
                .select_from(Annotation)
                .where(col(Annotation.project_id) == project.id, col(Annotation.source) == AnnotationSource.HUMAN)
            ).scalar_one()
            seen = session.execute(
                select(func.coalesce(func.sum(col(AnnotatorQuality.n_labels)), 0)).where(
                    col(AnnotatorQuality.project_id) == project.id
                )
            ).scalar_one()
        if labels - int(seen) < max(every, int(seen) // REFRESH_GROWTH):
            return None
        return self.refresh(project_name, actor=actor)

    @requires(Role.REVIEWER)
    def report(self, project_name: str, *, actor: Actor) -> QualityReport:
        """A fresh estimate (what `workbench quality` and the overview show)."""
        return self.refresh(project_name, actor=actor)

    @requires(Role.REVIEWER)
    def stored(self, project_name: str, *, actor: Actor) -> list[AnnotatorQualityInfo]:
        """The estimates stored by the last refresh (cheap: no re-estimation), annotators by name."""
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            rows = session.execute(
                select(AnnotatorQuality, col(User.name))
                .join(User, col(User.id) == col(AnnotatorQuality.user_id))
                .where(col(AnnotatorQuality.project_id) == project.id)
                .order_by(col(User.name))
            ).all()
        return [
            AnnotatorQualityInfo(
                annotator=name,
                n_labels=q.n_labels,
                n_checked=q.n_checked,
                accuracy=q.accuracy,
                accuracy_low=q.accuracy_low,
                accuracy_high=q.accuracy_high,
                reliability=q.reliability if q.reliability is not None else DEFAULT_RELIABILITY,
                n_gold=q.n_gold,
                gold_accuracy=q.gold_accuracy,
                n_adjudicated=q.n_adjudicated,
                adjudication_agreement=q.adjudication_agreement,
                flagged=q.flagged,
                paused=q.paused,
                confusion=dict(q.confusion),
            )
            for q, name in rows
        ]

    @requires(Role.ADMIN)
    def set_paused(self, project_name: str, annotator: str, paused: bool, *, actor: Actor) -> None:
        """Pause (or resume) an annotator in a project: a paused annotator gets no claims and their
        labels stop counting toward overlap."""

        def work(session: Session) -> None:
            project = load_project(session, project_name)
            user_id = session.execute(select(col(User.id)).where(col(User.name) == annotator)).scalar_one_or_none()
            if user_id is None:
                raise NotFound(f"no user named {annotator!r}")
            row = session.get(AnnotatorQuality, (project.id, user_id))
            if row is None:
                row = AnnotatorQuality(project_id=project.id, user_id=user_id, confusion={})
                session.add(row)
            row.paused, row.paused_at = paused, utcnow() if paused else None
            audit(
                session,
                "annotator.pause" if paused else "annotator.resume",
                actor_id=actor.id,
                project_id=project.id,
                annotator=annotator,
            )

        write(self.engine, work)


def mark_gold(engine: Engine, project_name: str, answers: Mapping[str, str], *, actor: Actor) -> int:
    """Give pool items a known answer (external id → label): they become final with that label
    (final_by "gold"), are served at the project's gold_share of claims to annotators who have not
    had them, anchor annotator quality, and stay out of rankings (never open) and eval metrics
    (pool only). Returns how many items were marked."""
    require_role(actor, Role.ADMIN)

    def work(session: Session) -> int:
        project = load_project(session, project_name)
        rows = dict(
            session.execute(
                select(col(Item.external_id), col(Item.split)).where(
                    col(Item.project_id) == project.id, col(Item.external_id).in_(list(answers))
                )
            ).all()
        )
        missing = sorted(set(answers) - set(rows))
        if missing:
            raise NotFound(f"no item {missing[0]!r} in {project_name!r}")
        bad = sorted(e for e, label in answers.items() if label not in project.labels)
        if bad:
            raise WorkbenchError(f"gold label {answers[bad[0]]!r} of item {bad[0]!r} is not in the label set")
        in_eval = sorted(e for e, split in rows.items() if split != "pool")
        if in_eval:
            raise WorkbenchError(f"item {in_eval[0]!r} is in the eval split; gold items must be pool items")
        for external_id, label in answers.items():
            session.connection().execute(
                update(Item)
                .where(col(Item.project_id) == project.id, col(Item.external_id) == external_id)
                .values(
                    gold_label=label,
                    state=ItemState.FINAL,
                    final_label=label,
                    final_by="gold",
                    reason="gold item: known answer",
                )
            )
        audit(session, "gold.mark", actor_id=actor.id, project_id=project.id, items=len(answers))
        return len(answers)

    return write(engine, work)


def reliabilities(session: Session, project_id: int) -> tuple[dict[int, float], set[int]]:
    """(user id → reliability, paused user ids) for the overlap policy, inside the caller's session."""
    rows = session.execute(
        select(col(AnnotatorQuality.user_id), col(AnnotatorQuality.reliability), col(AnnotatorQuality.paused)).where(
            col(AnnotatorQuality.project_id) == project_id
        )
    ).all()
    return ({u: r for u, r, _ in rows if r is not None}, {u for u, _, p in rows if p})


# -- the label-error queue ---------------------------------------------------------------------

LABEL_ISSUE_PREFIX = "label issue"


@dataclass(frozen=True)
class LabelIssue:
    item_id: int
    external_id: str
    label: str  # the final label
    suggested: str  # the label the out-of-sample model prefers
    p_suggested: float
    p_label: float
    reason: str


@dataclass(frozen=True)
class LabelIssueResult:
    version: int | None
    n_checked: int
    n_issues: int  # every issue cleanlab found
    issue_item_ids: tuple[int, ...]  # all of them, most likely wrong first
    sent_to_review: tuple[LabelIssue, ...]  # the top K
    folds: int


def out_of_sample_proba(
    X: np.ndarray | spmatrix,
    y: np.ndarray,
    labels: Sequence[str],
    model_config: dict,
    *,
    seed: int = 0,
    folds: int = 5,
) -> tuple[np.ndarray, int]:
    """Cross-validated predicted probabilities (columns in `labels` order) with the project's model."""
    from sklearn.model_selection import StratifiedKFold

    from workbench.training import make_model

    counts = pd.Series(y).value_counts()
    folds = int(max(2, min(folds, counts.min()))) if len(counts) >= 2 else 0
    proba = np.zeros((len(y), len(labels)))
    if folds < 2:
        return proba, 0
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(len(y)), y):
        model = make_model(model_config, seed, classes=list(labels))
        model.fit(X[train], y[train])
        proba[test] = model.predict_proba(X[test])
    return proba, folds


def find_label_issues(
    engine: Engine,
    project_name: str,
    *,
    k: int,
    actor: Actor,
    home: Path | None = None,
    seed: int = 0,
    send: bool = True,
) -> LabelIssueResult:
    """Confident learning (cleanlab.filter.find_label_issues) on out-of-sample probabilities,
    cross-validated on the latest version's pool labels with the project's model; the K likeliest
    wrong final labels go back to review with the reason. Items already sent back once, and gold
    items, are not sent again."""
    from cleanlab.filter import find_label_issues as cl_find

    from workbench.db.models import DatasetVersion, DatasetVersionItem
    from workbench.services.round_pipeline import RoundPipeline, _load_pool

    require_role(actor, Role.REVIEWER)
    rounds = RoundPipeline(engine, home)
    with reading(engine) as session:
        project = load_project(session, project_name)
        version = session.execute(
            select(DatasetVersion)
            .where(col(DatasetVersion.project_id) == project.id)
            .order_by(col(DatasetVersion.number).desc())
            .limit(1)
        ).scalar_one_or_none()
        if version is None:
            raise WorkbenchError(f"{project_name!r} has no dataset version yet; run a round first")
        rows = session.execute(
            select(
                col(DatasetVersionItem.item_id),
                col(Item.external_id),
                col(DatasetVersionItem.label),
                col(Item.reason),
                col(Item.gold_label),
                col(Item.state),
            )
            .join(Item, col(Item.id) == col(DatasetVersionItem.item_id))
            .where(col(DatasetVersionItem.version_id) == version.id, col(DatasetVersionItem.split) == "pool")
            .order_by(col(DatasetVersionItem.item_id))
        ).all()
        pool = _load_pool(session, project)
    labels = list(project.labels)
    index = {lab: i for i, lab in enumerate(labels)}
    if not rows:
        return LabelIssueResult(version.number, 0, 0, (), (), 0)
    X = rounds.featurize(project, pool)
    item_ids = [r.item_id for r in rows]
    y = np.asarray([r.label for r in rows], dtype=object)
    proba, folds = out_of_sample_proba(
        X[pool.rows(item_ids)], y, labels, dict(project.settings.get("model") or {"type": "logreg"}), seed=seed
    )
    if folds < 2:
        return LabelIssueResult(version.number, len(rows), 0, (), (), 0)
    y_int = np.asarray([index[label] for label in y])
    found = cl_find(labels=y_int, pred_probs=proba, return_indices_ranked_by="self_confidence")
    issue_ids = tuple(int(item_ids[i]) for i in found)
    # The ranking: cleanlab's issues first (most likely wrong first), then every other label by
    # its self-confidence, so the top K is defined for any K.
    from cleanlab.rank import get_label_quality_scores

    quality = get_label_quality_scores(y_int, proba, method="self_confidence")
    flagged = set(int(i) for i in found)
    ranked = [int(i) for i in found] + [int(i) for i in np.argsort(quality, kind="stable") if int(i) not in flagged]
    eligible = [
        i
        for i in ranked
        if not (rows[i].reason or "").startswith(LABEL_ISSUE_PREFIX)
        and rows[i].gold_label is None
        and rows[i].state == ItemState.FINAL
    ]
    top: list[LabelIssue] = []
    for i in eligible[: max(0, k)]:
        best = int(proba[i].argmax())
        suggested, p_s, p_l = labels[best], float(proba[i, best]), float(proba[i, y_int[i]])
        reason = (
            f"{LABEL_ISSUE_PREFIX}: model gives P({suggested!r}) = {p_s:.2f}, final label {y[i]!r} "
            f"(P = {p_l:.2f}; {folds}-fold out-of-sample, version {version.number})"
        )
        top.append(LabelIssue(int(item_ids[i]), rows[i].external_id, str(y[i]), suggested, p_s, p_l, reason))

    def work(session: Session) -> None:
        for issue in top:
            session.connection().execute(
                update(Item)
                .where(col(Item.id) == issue.item_id, col(Item.state) == ItemState.FINAL)
                .values(state=ItemState.REVIEW, reason=issue.reason)
            )
            audit(
                session,
                "label_issue.review",
                actor_id=actor.id,
                project_id=project.id,
                item_id=issue.item_id,
                reason=issue.reason,
            )

    if send and top:
        write(engine, work)
    return LabelIssueResult(version.number, len(rows), len(issue_ids), issue_ids, tuple(top), folds)


def after_round(engine: Engine, project_name: str, *, home: Path | None = None, seed: int = 0) -> dict:
    """What runs after every round: re-estimate annotator quality (and, with Dawid-Skene
    aggregation, the posteriors), then the label-error queue when the project asks for it."""
    operator = Actor.operator()
    report = QualityService(engine).refresh(project_name, actor=operator)
    out: dict = {"annotators": len(report.annotators), "flagged": sum(a.flagged for a in report.annotators)}
    with reading(engine) as session:
        k = int(load_project(session, project_name).settings.get("label_issue_k") or 0)
    if k > 0:
        issues = find_label_issues(engine, project_name, k=k, actor=operator, home=home, seed=seed)
        out["label_issues"] = {"found": issues.n_issues, "sent_to_review": len(issues.sent_to_review)}
    return out
