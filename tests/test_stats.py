"""Annotator statistics on SQLite and PostgreSQL: labels per hour, median seconds, skip rate,
kappa with the other labeler and agreement with adjudication, in total and per day; annotators
see only their own."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sklearn.metrics import cohen_kappa_score
from sqlalchemy import update
from sqlmodel import Session

from tests.helpers import add_items, annotators
from workbench.db.models import Annotation
from workbench.domain import Actor, Role
from workbench.errors import PermissionDenied

OP = Actor.operator()
ANN1 = ["a", "a", "b", "b"]
ANN2 = ["a", "b", "b", "b"]
WHEN = [datetime(2026, 11, 30, 10, 0, s, tzinfo=UTC) for s in (0, 10, 20)] + [datetime(2026, 12, 1, 9, 0, tzinfo=UTC)]


@pytest.fixture
def labeled(wb):
    """ann0 and ann1 label the same four items (one disagreement, adjudicated 'b'); ann0 skips one."""
    project = wb.projects.create(
        "p", "text", ["a", "b"], settings={"eval_fraction": 0.0, "random_share": 0.0}, actor=OP
    )
    add_items(wb.engine, project.id, 6)
    one, two = annotators(wb, 2)
    reviewer = annotators(wb, 1, role="reviewer", prefix="rev")[0]
    ids = []
    for i in range(4):
        first = wb.queue.claim("p", actor=one)
        ids.append(wb.queue.submit(first.lease_id, ANN1[i], actor=one, duration_ms=1000 * (i + 1)).annotation_id)
        second = wb.queue.claim("p", actor=two)
        assert second.item_id == first.item_id  # the partial item comes first
        wb.queue.submit(second.lease_id, ANN2[i], actor=two, duration_ms=5000)
        if ANN1[i] != ANN2[i]:
            wb.review.adjudicate(first.item_id, "label", label="b", reason="b fits", actor=reviewer)
    wb.queue.skip(wb.queue.claim("p", actor=one).lease_id, "unclear", actor=one)
    with Session(wb.engine) as session, session.begin():
        for annotation_id, at in zip(ids, WHEN):
            session.execute(update(Annotation).where(Annotation.id == annotation_id).values(created_at=at))
    return one, two, reviewer


def test_figures_of_one_annotator(wb, labeled):
    one, _, _ = labeled
    mine = wb.stats.annotator("p", actor=one)
    total = mine.total
    assert (total.labels, total.skips) == (4, 1)
    assert total.skip_rate == pytest.approx(0.2)
    assert total.median_seconds == pytest.approx(2.5)
    # active time: 1 s (the first item of the 30 Nov session) + 20 s between its labels + 4 s on 1 Dec
    assert total.labels_per_hour == pytest.approx(4 / (25 / 3600))
    assert total.kappa == pytest.approx(cohen_kappa_score(ANN1, ANN2)) and total.kappa == pytest.approx(0.5)
    assert total.kappa_pairs == 4
    assert (total.adjudicated, total.adjudication_agreement) == (1, 0.0)
    days = [d.day.isoformat() for d in mine.by_day]
    assert days[:2] == ["2026-11-30", "2026-12-01"] and len(days) == 3  # the skip is today
    assert [d.figures.labels for d in mine.by_day] == [3, 1, 0]
    assert mine.by_day[0].figures.kappa == pytest.approx(cohen_kappa_score(ANN1[:3], ANN2[:3]))
    assert mine.by_day[2].figures.skip_rate == 1.0


def test_blindness_annotators_see_only_their_own_figures(wb, labeled):
    one, two, reviewer = labeled
    with pytest.raises(PermissionDenied, match="annotators see only their own statistics"):
        wb.stats.annotator("p", "ann1", actor=one)
    with pytest.raises(PermissionDenied, match="needs the reviewer role"):
        wb.stats.project("p", actor=one)
    assert wb.stats.annotator("p", actor=two).total.adjudication_agreement == 1.0
    everyone = wb.stats.project("p", actor=reviewer)
    assert [a.annotator for a in everyone.annotators] == ["ann0", "ann1"]
    assert wb.stats.annotator("p", "ann0", actor=reviewer).total.labels == 4


def test_an_annotator_without_labels_gets_empty_figures(wb):
    wb.projects.create("p", "text", ["a", "b"], actor=OP)
    (ann,) = annotators(wb, 1)
    figures = wb.stats.annotator("p", actor=ann).total
    assert (figures.labels, figures.labels_per_hour, figures.kappa, figures.skip_rate) == (0, None, None, None)


@pytest.mark.explicit_members
def test_statistics_need_membership(wb):
    wb.projects.create("p", "text", ["a", "b"], actor=OP)
    wb.users.add("stranger", Role.REVIEWER, "password-123", actor=OP)
    stranger = wb.users.authenticate("stranger", "password-123")
    with pytest.raises(PermissionDenied, match="stranger is not a member of project 'p'"):
        wb.stats.project("p", actor=stranger)
