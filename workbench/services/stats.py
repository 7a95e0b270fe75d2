"""Annotator statistics: speed, skips and agreement, per annotator and per day.

Figures per annotator (on one project):

- **labels per hour**: labels divided by active time. Active time is the wall clock between
  consecutive labels within a working session (a gap over ``SESSION_GAP_S`` starts a new session),
  plus the first item's own duration in each session; pauses longer than the gap do not count.
- **median seconds per item**: the median of ``annotation.duration_ms``.
- **skip rate**: skips / (labels + skips).
- **kappa with the other labeler**: Cohen's kappa (``sklearn.metrics.cohen_kappa_score``) over every
  (item, other annotator) pair of the items both labeled; None when undefined (fewer than one pair,
  or one label throughout, where chance agreement is 1).
- **agreement with adjudication**: the share of their labels that match the reviewer's label on
  items a reviewer adjudicated with a label.

Blindness: an annotator may ask only for their own figures (refused otherwise, here in the service);
reviewers of the project and admins see everyone's.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
from sqlalchemy import Engine, select
from sqlmodel import col

from workbench.db.models import Annotation, Lease, User
from workbench.domain import Actor, AnnotationSource, LeaseState, Role, role_allows
from workbench.errors import NotFound, PermissionDenied
from workbench.services._auth import requires
from workbench.services._tx import reading
from workbench.services.agreement import adjudicated_labels
from workbench.services.members import check_member, load_member_project

SESSION_GAP_S = 15 * 60


@dataclass(frozen=True)
class Figures:
    """One annotator's figures over some span (the whole project, or one day)."""

    labels: int
    skips: int
    labels_per_hour: float | None
    median_seconds: float | None
    skip_rate: float | None
    kappa: float | None  # with the other labeler, on shared items
    kappa_pairs: int  # (item, other annotator) pairs the kappa is computed on
    adjudication_agreement: float | None
    adjudicated: int  # their labels on items a reviewer adjudicated with a label


@dataclass(frozen=True)
class DayFigures:
    day: date
    figures: Figures


@dataclass(frozen=True)
class AnnotatorStatistics:
    annotator: str
    total: Figures
    by_day: tuple[DayFigures, ...]  # oldest first; only days with a label or a skip


@dataclass(frozen=True)
class ProjectStatistics:
    project: str
    annotators: tuple[AnnotatorStatistics, ...]  # by name


@dataclass(frozen=True)
class _Label:
    item: int
    annotator: str
    label: str
    at: datetime
    duration_ms: int | None


def _active_hours(times: list[datetime], durations: list[int | None]) -> float:
    order = np.argsort(np.array([t.timestamp() for t in times]))
    stamps = np.array([times[i].timestamp() for i in order])
    first = [durations[i] for i in order]
    gaps = np.diff(stamps)
    within = gaps[gaps <= SESSION_GAP_S].sum() if gaps.size else 0.0
    starts = [0] + [i + 1 for i, gap in enumerate(gaps) if gap > SESSION_GAP_S]
    openers = sum((first[i] or 0) / 1000 for i in starts)
    return float(within + openers) / 3600


def _kappa(mine: list[str], theirs: list[str], labels: list[str]) -> float | None:
    from sklearn.metrics import cohen_kappa_score  # lazy: the label page never needs scikit-learn

    if not mine:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined (0/0) when chance agreement is 1: None below
        value = float(cohen_kappa_score(mine, theirs, labels=labels))
    return None if np.isnan(value) else value


def _figures(
    name: str,
    labels: list[_Label],
    skips: int,
    by_item: dict[int, list[_Label]],
    adjudicated: dict[int, str],
    label_set: list[str],
) -> Figures:
    mine, theirs = [], []
    matched = checked = 0
    for own in labels:
        for other in by_item.get(own.item, ()):
            if other.annotator != name:
                mine.append(own.label)
                theirs.append(other.label)
        if own.item in adjudicated:
            checked += 1
            matched += own.label == adjudicated[own.item]
    durations = [x.duration_ms for x in labels if x.duration_ms is not None]
    hours = _active_hours([x.at for x in labels], [x.duration_ms for x in labels]) if labels else 0.0
    return Figures(
        labels=len(labels),
        skips=skips,
        labels_per_hour=len(labels) / hours if hours > 0 else None,
        median_seconds=float(np.median(durations)) / 1000 if durations else None,
        skip_rate=skips / (len(labels) + skips) if labels or skips else None,
        kappa=_kappa(mine, theirs, label_set),
        kappa_pairs=len(mine),
        adjudication_agreement=matched / checked if checked else None,
        adjudicated=checked,
    )


class StatsService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @requires(Role.REVIEWER)
    def project(self, project_name: str, *, actor: Actor) -> ProjectStatistics:
        """Every annotator's figures on the project, in total and per day (reviewers of it, admins)."""
        return self._compute(project_name, actor, None)

    @requires(Role.ANNOTATOR)
    def annotator(self, project_name: str, annotator: str | None = None, *, actor: Actor) -> AnnotatorStatistics:
        """One annotator's figures (default: the caller's). An annotator sees only their own:
        asking for anyone else's needs the reviewer role on the project."""
        name = annotator or actor.name
        if name != actor.name and not role_allows(actor.role, Role.REVIEWER):
            raise PermissionDenied(f"annotators see only their own statistics; {actor.name} asked for {name}'s")
        stats = self._compute(project_name, actor, name)
        if not stats.annotators:
            if name == actor.name:
                return AnnotatorStatistics(name, _figures(name, [], 0, {}, {}, []), ())
            raise NotFound(f"{name} has no labels or skips on {project_name!r}")
        return stats.annotators[0]

    def _compute(self, project_name: str, actor: Actor, only: str | None) -> ProjectStatistics:
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor)
            if only is None or only != actor.name:
                check_member(session, actor, project, Role.REVIEWER)
            rows = session.execute(
                select(
                    col(Annotation.item_id),
                    col(User.name),
                    col(Annotation.label),
                    col(Annotation.created_at),
                    col(Annotation.duration_ms),
                )
                .join(User, col(User.id) == Annotation.annotator_id)
                .where(col(Annotation.project_id) == project.id, col(Annotation.source) == AnnotationSource.HUMAN)
            ).all()
            skip_rows = session.execute(
                select(col(User.name), col(Lease.closed_at))
                .join(User, col(User.id) == Lease.annotator_id)
                .where(col(Lease.project_id) == project.id, col(Lease.state) == LeaseState.SKIPPED)
            ).all()
            latest = adjudicated_labels(session, project.id)
        adjudicated = {item: label for item, label in latest.items() if label is not None}
        labels = [_Label(*row) for row in rows]
        by_item: dict[int, list[_Label]] = defaultdict(list)
        by_annotator: dict[str, list[_Label]] = defaultdict(list)
        for x in labels:
            by_item[x.item].append(x)
            by_annotator[x.annotator].append(x)
        skips: dict[str, list[date | None]] = defaultdict(list)
        for name, closed_at in skip_rows:
            skips[name].append(closed_at.date() if closed_at else None)
        label_set = list(project.labels)
        names = sorted(set(by_annotator) | set(skips))
        if only is not None:
            names = [n for n in names if n == only]
        result = []
        for name in names:
            own = by_annotator.get(name, [])
            days = sorted({x.at.date() for x in own} | {d for d in skips.get(name, []) if d is not None})
            series = tuple(
                DayFigures(
                    day,
                    _figures(
                        name,
                        [x for x in own if x.at.date() == day],
                        sum(d == day for d in skips.get(name, [])),
                        by_item,
                        adjudicated,
                        label_set,
                    ),
                )
                for day in days
            )
            total = _figures(name, own, len(skips.get(name, [])), by_item, adjudicated, label_set)
            result.append(AnnotatorStatistics(name, total, series))
        return ProjectStatistics(project.name, tuple(result))
