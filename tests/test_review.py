"""Adjudication: reviewers settle disagreements, may overturn agreed labels, and everything is audited."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from tests.helpers import add_items, annotators
from workbench.db.models import AuditLog, Item
from workbench.domain import Actor
from workbench.errors import Conflict, PermissionDenied, WorkbenchError


@pytest.fixture
def setup(wb):
    project = wb.projects.create(
        "r",
        "text",
        ["cat", "dog", "bird"],
        settings={"eval_fraction": 0.0, "random_share": 0.0},
        actor=Actor.operator(),
    )
    add_items(wb.engine, project.id, 3)
    a, b = annotators(wb, 2)
    (reviewer,) = annotators(wb, 1, role="reviewer", prefix="rev")
    answers = {0: ("cat", "dog"), 1: ("cat", "cat"), 2: ("bird", "dog")}
    for _ in range(3):
        la, lb = wb.queue.claim("r", actor=a), wb.queue.claim("r", actor=b)
        assert la.item_id == lb.item_id
        first, second = answers[int(la.external_id.split("-")[1])]
        wb.queue.submit(la.lease_id, first, actor=a)
        wb.queue.submit(lb.lease_id, second, actor=b)
    return a, b, reviewer


def _audit_count(wb, action):
    with Session(wb.engine) as s:
        return s.exec(select(func.count()).select_from(AuditLog).where(AuditLog.action == action)).scalar_one()


def test_disagreements_reach_the_review_queue(wb, setup):
    a, b, reviewer = setup
    cases = wb.review.queue("r", actor=reviewer)
    assert [c.external_id for c in cases] == ["item-0", "item-2"]
    assert [(x.annotator, x.label) for x in cases[0].answers] == [("ann0", "cat"), ("ann1", "dog")]
    assert [c.external_id for c in wb.review.queue("r", actor=reviewer, label_pair=("dog", "bird"))] == ["item-2"]
    assert wb.review.count_waiting("r", actor=reviewer) == 2


def test_annotators_cannot_open_the_review_queue(wb, setup):
    a, _, _ = setup
    with pytest.raises(PermissionDenied, match="reviewer role"):
        wb.review.queue("r", actor=a)
    with pytest.raises(PermissionDenied):
        wb.review.adjudicate(1, "label", actor=a, label="cat", reason="mine")


def test_adjudicate_label_ambiguous_excluded(wb, setup):
    _, _, reviewer = setup
    first, third = wb.review.queue("r", actor=reviewer)
    decided = wb.review.adjudicate(first.item_id, "label", actor=reviewer, label="dog", reason="ears")
    assert decided.previous_state == "review" and decided.label == "dog"
    wb.review.adjudicate(third.item_id, "ambiguous", actor=reviewer, reason="blurry")
    with Session(wb.engine) as s:
        states = dict(s.exec(select(Item.external_id, Item.state)).all())
    assert states == {"item-0": "final", "item-1": "final", "item-2": "ambiguous"}
    assert wb.review.queue("r", actor=reviewer) == []
    assert _audit_count(wb, "adjudication.decide") == 2


def test_overturning_an_agreed_label_is_audited(wb, setup):
    _, _, reviewer = setup
    agreed = wb.review.case("r", "item-1", actor=reviewer)
    assert agreed.state == "final" and agreed.final_label == "cat"
    result = wb.review.adjudicate(agreed.item_id, "excluded", actor=reviewer, reason="not an animal photo")
    assert result.previous_label == "cat"
    assert _audit_count(wb, "adjudication.overturn") == 1
    assert wb.review.history("r", actor=reviewer)[0].decision == "excluded"


def test_adjudication_refusals(wb, setup):
    a, _, reviewer = setup
    case = wb.review.queue("r", actor=reviewer)[0]
    with pytest.raises(WorkbenchError, match="needs a reason"):
        wb.review.adjudicate(case.item_id, "label", actor=reviewer, label="cat", reason="  ")
    with pytest.raises(WorkbenchError, match="not in the label set"):
        wb.review.adjudicate(case.item_id, "label", actor=reviewer, label="cow", reason="x")
    with pytest.raises(WorkbenchError, match="exactly when"):
        wb.review.adjudicate(case.item_id, "excluded", actor=reviewer, label="cat", reason="x")
    wb.users.set_role("ann0", "reviewer", actor=Actor.operator())
    promoted = wb.users.authenticate("ann0", "password-123")
    with pytest.raises(PermissionDenied, match="labeled themselves"):
        wb.review.adjudicate(case.item_id, "label", actor=promoted, label="cat", reason="x")


def test_open_items_cannot_be_adjudicated(wb):
    project = wb.projects.create("o", "text", ["x", "y"], actor=Actor.operator())
    add_items(wb.engine, project.id, 1)
    (reviewer,) = annotators(wb, 1, role="reviewer", prefix="rv")
    with Session(wb.engine) as s:
        item_id = s.exec(select(Item.id)).scalar_one()
    with pytest.raises(Conflict, match="waits for annotations"):
        wb.review.adjudicate(item_id, "label", actor=reviewer, label="x", reason="early")
