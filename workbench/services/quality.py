"""Annotator quality: Dawid-Skene confusion matrices from every human label, gold items as anchors.

crowd-kit's DawidSkene does the EM (``fit(df[task, worker, label], true_labels=gold)``). What is
ours, and why:

- **Which items it is fitted on.** Only items that can check a label: two or more counting labels,
  or a gold answer. On an item with one label, EM confirms the annotator by their own label, so a
  chance-level annotator whose labels are mostly alone would look perfect. Posteriors for every
  item (single-labeled ones included) are then the E-step with the fitted matrices and priors.
- **The interval.** crowd-kit gives a point estimate only. Each annotator's accuracy (the diagonal
  of their confusion matrix weighted by the class priors) over ``n_checked`` checkable labels gets
  a Beta(1 + acc·n, 1 + (1-acc)·n) 95 % interval (a Bayesian interval with a uniform prior, read as
  "acc·n of n labels right").
- **Chance** is the rate of always answering the most common label (the largest class prior):
  an annotator who is not above it tells a reviewer nothing the prior did not.
- **Flag**: at least 30 labels and the interval's lower end at or below chance.
- **Reliability** (what the adaptive overlap policy uses) is the estimate shrunk toward a prior of
  0.7 with 4 pseudo-labels, so two lucky labels do not make an annotator trusted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import Engine, delete, insert, select, update
from sqlmodel import Session

from workbench.db.models import Adjudication, Annotation, AnnotatorQuality, Item, User, utcnow
from workbench.domain import Actor, Decision, ItemState, Role
from workbench.domain.overlap import DEFAULT_RELIABILITY
from workbench.errors import NotFound, WorkbenchError
from workbench.services._tx import audit, reading, write
from workbench.services.projects import load_project
from workbench.services.users import require_role

MIN_LABELS_TO_FLAG = 30
PRIOR_STRENGTH = 4.0
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
        return {"project": self.project, "labels": list(self.labels), "chance": self.chance,
                "n_labels": self.n_labels, "n_items": self.n_items, "n_gold_items": self.n_gold_items,
                "annotators": [a.__dict__ for a in self.annotators]}


def beta_interval(correct: float, n: float, level: float = Z95) -> tuple[float, float]:
    from scipy import stats

    a, b = 1.0 + correct, 1.0 + max(0.0, n - correct)
    tail = (1 - level) / 2
    return float(stats.beta.ppf(tail, a, b)), float(stats.beta.ppf(1 - tail, a, b))


def estimate(judgments: Sequence[tuple[object, str, str]], labels: Sequence[str], *,
             gold: Mapping[object, str] | None = None, adjudicated: Mapping[object, str | None] | None = None,
             paused: set[str] | frozenset[str] = frozenset()) -> tuple[list[AnnotatorQualityInfo], dict, float | None]:
    """(per-annotator quality, item → (posterior label, p), chance) from (item, annotator, label)
    judgments. Paused annotators are estimated too, but their labels do not inform posteriors."""
    gold = dict(gold or {})
    adjudicated = dict(adjudicated or {})
    frame = pd.DataFrame(list(judgments), columns=["task", "worker", "label"])
    label_list = list(labels)
    per_worker = frame.groupby("worker").size().to_dict() if len(frame) else {}
    counting = frame[~frame.worker.isin(paused)] if paused else frame
    n_per_item = counting.groupby("task").size()
    checkable_items = set(n_per_item[n_per_item >= 2].index) | (set(gold) & set(frame.task))
    fit_frame = frame[frame.task.isin(checkable_items)]
    priors: dict[str, float] = {}
    errors: pd.DataFrame | None = None
    if len(fit_frame) and fit_frame.label.nunique() >= 1:
        from crowdkit.aggregation import DawidSkene

        true = pd.Series({t: g for t, g in gold.items() if t in checkable_items}, dtype=object)
        true.index.name = "task"
        ds = DawidSkene(n_iter=100).fit(fit_frame, true_labels=true if len(true) else None)
        errors = ds.errors_
        priors = {lab: float(ds.priors_.get(lab, 0.0)) for lab in label_list}
    if not priors or sum(priors.values()) <= 0:
        priors = {lab: 1.0 / len(label_list) for lab in label_list}
    chance = max(priors.values()) if errors is not None else None

    def cm(worker: str) -> np.ndarray | None:
        """P(given = row | true = column) over label_list, or None when never fitted."""
        if errors is None or worker not in errors.index.get_level_values(0):
            return None
        m = errors.loc[worker].reindex(index=label_list, columns=label_list).fillna(0.0).to_numpy(dtype=float, copy=True)
        col = m.sum(axis=0)
        k = len(label_list)
        for j in range(k):
            if col[j] <= 0:  # never saw this true class: uniform
                m[:, j] = 1.0 / k
            else:
                m[:, j] /= col[j]
        return m

    matrices = {w: cm(w) for w in per_worker}
    prior_vec = np.asarray([priors[lab] for lab in label_list])
    index = {lab: i for i, lab in enumerate(label_list)}

    # Posteriors for every item: the E-step with the fitted matrices (gold items are their answer).
    posteriors: dict = {}
    for task, group in counting.groupby("task"):
        if task in gold and gold[task] in index:
            posteriors[task] = (gold[task], 1.0)
            continue
        log_post = np.log(np.clip(prior_vec, 1e-12, None))
        for worker, label in zip(group.worker, group.label):
            m = matrices.get(worker)
            if m is None:
                r = DEFAULT_RELIABILITY
                k = len(label_list)
                row = np.full(k, (1 - r) / max(k - 1, 1))
                row[index[label]] = r
            else:
                row = m[index[label]]
            log_post += np.log(np.clip(row, 1e-12, None))
        post = np.exp(log_post - log_post.max())
        post /= post.sum()
        best = int(post.argmax())
        posteriors[task] = (label_list[best], float(post[best]))

    checked = fit_frame.groupby("worker").size().to_dict() if len(fit_frame) else {}
    out: list[AnnotatorQualityInfo] = []
    for worker, n in sorted(per_worker.items()):
        mine = frame[frame.worker == worker]
        m = matrices.get(worker)
        n_checked = int(checked.get(worker, 0))
        if m is not None and n_checked:
            accuracy = float(sum(priors[lab] * m[index[lab], index[lab]] for lab in label_list))
            low, high = beta_interval(accuracy * n_checked, n_checked)
        else:
            accuracy = low = high = None
        reliability = ((accuracy or 0.0) * n_checked + PRIOR_STRENGTH * DEFAULT_RELIABILITY) / (n_checked + PRIOR_STRENGTH)
        on_gold = [(lab == gold[t]) for t, lab in zip(mine.task, mine.label) if t in gold]
        on_adj = [(lab == adjudicated[t]) for t, lab in zip(mine.task, mine.label) if adjudicated.get(t) is not None]
        flagged = bool(n >= MIN_LABELS_TO_FLAG and low is not None and chance is not None and low <= chance)
        confusion = ({true: {given: round(float(m[index[given], index[true]]), 4) for given in label_list}
                      for true in label_list} if m is not None else {})
        out.append(AnnotatorQualityInfo(
            annotator=str(worker), n_labels=int(n), n_checked=n_checked, accuracy=accuracy, accuracy_low=low,
            accuracy_high=high, reliability=float(reliability), n_gold=len(on_gold),
            gold_accuracy=float(np.mean(on_gold)) if on_gold else None, n_adjudicated=len(on_adj),
            adjudication_agreement=float(np.mean(on_adj)) if on_adj else None, flagged=flagged,
            paused=str(worker) in paused, confusion=confusion))
    return out, posteriors, chance


class QualityService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _inputs(self, session: Session, project_id: int):  # noqa: ANN202
        rows = session.execute(
            select(Annotation.item_id, User.name, Annotation.label)
            .join(User, User.id == Annotation.annotator_id)
            .where(Annotation.project_id == project_id, Annotation.source == "human")
        ).all()
        gold = dict(session.execute(select(Item.id, Item.gold_label).where(
            Item.project_id == project_id, Item.gold_label.is_not(None))).all())
        decisions = session.execute(
            select(Adjudication.item_id, Adjudication.decision, Adjudication.label)
            .where(Adjudication.project_id == project_id).order_by(Adjudication.id)).all()
        adjudicated = {i: (label if d == Decision.LABEL else None) for i, d, label in decisions}
        paused = set(session.execute(
            select(User.name).join(AnnotatorQuality, AnnotatorQuality.user_id == User.id)
            .where(AnnotatorQuality.project_id == project_id, AnnotatorQuality.paused.is_(True))).scalars())
        users = dict(session.execute(select(User.name, User.id)).all())
        return rows, gold, adjudicated, paused, users

    def refresh(self, project_name: str, *, actor: Actor) -> QualityReport:
        """Re-estimate every annotator (after a round, or on demand) and store the estimates and
        each item's posterior; pauses are kept."""
        require_role(actor, Role.REVIEWER)
        with reading(self.engine) as session:
            project = load_project(session, project_name)
            rows, gold, adjudicated, paused, users = self._inputs(session, project.id)
        annotators, posteriors, chance = estimate(rows, project.labels, gold=gold, adjudicated=adjudicated,
                                                  paused=paused)
        now = utcnow()

        def work(session: Session) -> None:
            session.execute(delete(AnnotatorQuality).where(AnnotatorQuality.project_id == project.id))
            if annotators:
                session.execute(insert(AnnotatorQuality), [
                    {"project_id": project.id, "user_id": users[a.annotator], "n_labels": a.n_labels,
                     "n_checked": a.n_checked, "accuracy": a.accuracy, "accuracy_low": a.accuracy_low,
                     "accuracy_high": a.accuracy_high, "reliability": a.reliability, "n_gold": a.n_gold,
                     "gold_accuracy": a.gold_accuracy, "n_adjudicated": a.n_adjudicated,
                     "adjudication_agreement": a.adjudication_agreement, "flagged": a.flagged,
                     "confusion": a.confusion, "paused": a.paused, "paused_at": None, "updated_at": now}
                    for a in annotators])
            audit(session, "quality.refresh", actor_id=actor.id, project_id=project.id,
                  annotators=len(annotators), flagged=sum(a.flagged for a in annotators))

        write(self.engine, work)
        return QualityReport(project.name, project.labels, chance, len(rows), len({r[0] for r in rows}),
                             len(gold), tuple(annotators), posteriors)

    def report(self, project_name: str, *, actor: Actor) -> QualityReport:
        """The stored estimates (refresh first if there are none)."""
        require_role(actor, Role.REVIEWER)
        return self.refresh(project_name, actor=actor)

    def set_paused(self, project_name: str, annotator: str, paused: bool, *, actor: Actor) -> None:
        """Pause (or resume) an annotator in a project: a paused annotator gets no claims and their
        labels stop counting toward overlap."""
        require_role(actor, Role.ADMIN)

        def work(session: Session) -> None:
            project = load_project(session, project_name)
            user_id = session.execute(select(User.id).where(User.name == annotator)).scalar_one_or_none()
            if user_id is None:
                raise NotFound(f"no user named {annotator!r}")
            row = session.get(AnnotatorQuality, (project.id, user_id))
            if row is None:
                row = AnnotatorQuality(project_id=project.id, user_id=user_id, confusion={})
                session.add(row)
            row.paused, row.paused_at = paused, utcnow() if paused else None
            audit(session, "annotator.pause" if paused else "annotator.resume", actor_id=actor.id,
                  project_id=project.id, annotator=annotator)

        write(self.engine, work)


def reliabilities(session: Session, project_id: int) -> tuple[dict[int, float], set[int]]:
    """(user id → reliability, paused user ids) for the overlap policy, inside the caller's session."""
    rows = session.execute(select(AnnotatorQuality.user_id, AnnotatorQuality.reliability, AnnotatorQuality.paused)
                           .where(AnnotatorQuality.project_id == project_id)).all()
    return ({u: r for u, r, _ in rows if r is not None}, {u for u, _, p in rows if p})
