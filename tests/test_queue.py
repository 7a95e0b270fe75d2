"""The double-labeling queue on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlmodel import Session

from tests.helpers import add_items, annotators
from workbench.db.models import Annotation, AuditLog, Item, Lease, RankEntry, utcnow
from workbench.domain import Actor
from workbench.errors import Conflict, NotFound, WorkbenchError
from workbench.services.queue import QueueService


@pytest.fixture
def project(wb):
    return wb.projects.create(
        "q", "text", ["pos", "neg"], settings={"eval_fraction": 0.0, "random_share": 0.0}, actor=Actor.operator()
    )


def test_item_gets_two_labels_from_distinct_annotators(wb, project):
    add_items(wb.engine, project.id, 1)
    a, b, c = annotators(wb, 3)
    first = wb.queue.claim("q", actor=a)
    assert first.slot == 1 and first.labels == ("pos", "neg")
    assert wb.queue.claim("q", actor=a).lease_id == first.lease_id  # a live lease is handed back
    second = wb.queue.claim("q", actor=b)
    assert second.item_id == first.item_id and second.slot == 2
    assert wb.queue.claim("q", actor=c) is None  # both slots are spoken for
    wb.queue.submit(first.lease_id, "pos", actor=a)
    assert wb.queue.claim("q", actor=a) is None  # never the same item twice
    result = wb.queue.submit(second.lease_id, "pos", actor=b)
    assert result.item_state == "final"
    with Session(wb.engine) as s:
        item = s.exec(select(Item)).scalar_one()
    assert (item.state, item.final_label, item.n_annotations, item.slots_taken) == ("final", "pos", 2, 2)


def test_disagreement_goes_to_review(wb, project):
    add_items(wb.engine, project.id, 1)
    a, b = annotators(wb, 2)
    la, lb = wb.queue.claim("q", actor=a), wb.queue.claim("q", actor=b)
    wb.queue.submit(la.lease_id, "pos", actor=a)
    assert wb.queue.submit(lb.lease_id, "neg", actor=b).item_state == "review"


def test_submit_is_idempotent(wb, project):
    add_items(wb.engine, project.id, 1)
    (a,) = annotators(wb, 1)
    lease = wb.queue.claim("q", actor=a)
    first = wb.queue.submit(lease.lease_id, "pos", actor=a)
    again = wb.queue.submit(lease.lease_id, "pos", actor=a)
    assert again.duplicate and again.annotation_id == first.annotation_id
    with Session(wb.engine) as s:
        assert s.exec(select(func.count()).select_from(Annotation)).scalar_one() == 1


def test_refusals_say_why(wb, project):
    add_items(wb.engine, project.id, 1)
    a, b, c = annotators(wb, 3)
    la = wb.queue.claim("q", actor=a)
    with pytest.raises(WorkbenchError, match="not in the label set"):
        wb.queue.submit(la.lease_id, "maybe", actor=a)
    with pytest.raises(NotFound, match="holds no claim"):
        wb.queue.submit(la.lease_id, "pos", actor=b)  # someone else's lease
    with pytest.raises(NotFound):
        wb.queue.submit(99999, "pos", actor=a)
    wb.queue.skip(la.lease_id, "unreadable", actor=a)
    with pytest.raises(Conflict, match="skipped"):
        wb.queue.submit(la.lease_id, "pos", actor=a)
    with pytest.raises(WorkbenchError, match="needs a reason"):
        wb.queue.skip(la.lease_id, " ", actor=a)


def test_skip_releases_slot_and_is_not_offered_again(wb, project):
    add_items(wb.engine, project.id, 1)
    a, b, c = annotators(wb, 3)
    la = wb.queue.claim("q", actor=a)
    wb.queue.skip(la.lease_id, "not sure", actor=a)
    assert wb.queue.claim("q", actor=a) is None
    lb, lc = wb.queue.claim("q", actor=b), wb.queue.claim("q", actor=c)
    assert {lb.slot, lc.slot} == {1, 2}
    assert wb.queue.my_stats("q", actor=a).skips_total == 1


def test_nothing_now_is_told_apart_from_done(wb, project):
    """When others hold the last slots, a claim finds nothing, but the annotator is not done:
    claim_or_wait counts what may still come back to them."""
    add_items(wb.engine, project.id, 2)
    a, b, c = annotators(wb, 3)
    la1, lb1 = wb.queue.claim("q", actor=a), wb.queue.claim("q", actor=b)
    assert la1.item_id == lb1.item_id  # pairs complete first
    wb.queue.submit(la1.lease_id, "pos", actor=a)
    la2 = wb.queue.claim("q", actor=a)  # a's second item; b still holds the first
    lc = wb.queue.claim("q", actor=c)
    assert lc.item_id == la2.item_id
    assert wb.queue.claim("q", actor=c).lease_id == lc.lease_id  # c gets its live lease back
    wb.queue.submit(lc.lease_id, "neg", actor=c)
    assert wb.queue.claim("q", actor=c) is None
    assert wb.queue.claim_or_wait("q", actor=c) == 1  # b's slot on item 1 may come back
    assert wb.queue.claim_or_wait("q", actor=a).lease_id == la2.lease_id  # a labeled item 1 and holds item 2
    wb.queue.skip(lb1.lease_id, "unsure", actor=b)
    lc2 = wb.queue.claim_or_wait("q", actor=c)
    assert lc2.item_id == lb1.item_id
    wb.queue.submit(lc2.lease_id, "pos", actor=c)
    wb.queue.submit(la2.lease_id, "pos", actor=a)
    for who in (a, b, c):
        assert wb.queue.claim_or_wait("q", actor=who) == 0  # done: nothing can come back


def test_abandoned_lease_expires_and_slot_returns(wb, project):
    add_items(wb.engine, project.id, 1)
    a, b, c = annotators(wb, 3)
    la, lb = wb.queue.claim("q", actor=a), wb.queue.claim("q", actor=b)
    with Session(wb.engine) as s, s.begin():
        s.exec(update(Lease).where(Lease.id == la.lease_id).values(expires_at=utcnow() - timedelta(seconds=1)))
    lc = wb.queue.claim("q", actor=c)
    assert lc.item_id == la.item_id and lc.slot == la.slot
    with pytest.raises(Conflict, match="expired"):
        wb.queue.submit(la.lease_id, "pos", actor=a)
    wb.queue.submit(lb.lease_id, "pos", actor=b)
    assert wb.queue.submit(lc.lease_id, "pos", actor=c).item_state == "final"


def test_renew_extends_the_lease(wb, project):
    add_items(wb.engine, project.id, 1)
    (a,) = annotators(wb, 1)
    lease = wb.queue.claim("q", actor=a)
    assert wb.queue.renew(lease.lease_id, actor=a) >= lease.expires_at


def test_partial_items_come_first_then_ranking(wb, project):
    add_items(wb.engine, project.id, 5)
    with Session(wb.engine) as s, s.begin():
        ids = s.exec(select(Item.id).order_by(Item.id)).scalars().all()
        for position, item_id in enumerate(reversed(ids)):
            s.add(
                RankEntry(
                    project_id=project.id,
                    position=position,
                    item_id=item_id,
                    score=1.0 - position / 10,
                    strategy="margin",
                )
            )
    a, b, c = annotators(wb, 3)
    la = wb.queue.claim("q", actor=a)
    assert (la.item_id, la.reason, la.strategy, la.score) == (ids[-1], "ranked", "margin", 1.0)
    wb.queue.submit(la.lease_id, "pos", actor=a)
    lb = wb.queue.claim("q", actor=b)
    assert lb.item_id == ids[-1] and lb.reason == "partial"
    lc = wb.queue.claim("q", actor=c)
    assert lc.item_id == ids[-2]


def test_eval_items_are_served_at_random_never_ranked(wb):
    wb.projects.create(
        "e", "text", ["pos", "neg"], settings={"eval_fraction": 1.0, "random_share": 0.0}, actor=Actor.operator()
    )
    project = wb.projects.get("e", actor=Actor.operator())
    add_items(wb.engine, project.id, 20, eval_every=2)
    (a,) = annotators(wb, 1)
    lease = wb.queue.claim("e", actor=a)
    assert lease.split == "eval" and lease.reason == "eval" and lease.strategy is None


def test_undo_last_hands_the_item_back_under_the_same_slot(wb, project):
    add_items(wb.engine, project.id, 2)
    a, b = annotators(wb, 2)
    first = wb.queue.claim("q", actor=a)
    wb.queue.submit(first.lease_id, "pos", actor=a)
    nxt = wb.queue.claim("q", actor=a)
    back = wb.queue.undo_last("q", actor=a)
    assert back.item_id == first.item_id and back.lease_id == first.lease_id
    assert wb.queue.claim("q", actor=a).lease_id == first.lease_id
    with Session(wb.engine) as s:
        assert s.exec(select(Lease.state).where(Lease.id == nxt.lease_id)).scalar_one() == "expired"
        assert (
            s.exec(select(func.count()).select_from(AuditLog).where(AuditLog.action == "annotation.undo")).scalar_one()
            == 1
        )


@pytest.mark.parametrize("second_label", ["pos", "neg"])
def test_undo_of_the_label_that_completed_the_item_reopens_it(wb, project, second_label):
    """The second labeler may take back the label that triggered the comparison: the item leaves
    review (or loses the agreed final label) and is theirs to answer again."""
    add_items(wb.engine, project.id, 1)
    a, b = annotators(wb, 2)
    wb.queue.submit(wb.queue.claim("q", actor=a).lease_id, "pos", actor=a)
    lb = wb.queue.claim("q", actor=b)
    state = wb.queue.submit(lb.lease_id, second_label, actor=b).item_state
    assert state == ("final" if second_label == "pos" else "review")
    back = wb.queue.undo_last("q", actor=b)
    assert back.lease_id == lb.lease_id
    with Session(wb.engine) as s:
        item = s.exec(select(Item)).scalar_one()
        assert (item.state, item.final_label, item.n_annotations, item.slots_taken) == ("open", None, 1, 2)
        undo = s.exec(select(AuditLog).where(AuditLog.action == "annotation.undo")).scalar_one()
        assert undo.details["previous_state"] == state
    assert not hasattr(back, "label") and not hasattr(back, "final_label")  # blind: no answer handed back
    again = wb.queue.submit(back.lease_id, "pos", actor=b)
    assert again.item_state == "final"


def test_undo_and_change_are_refused_once_a_reviewer_acted(wb, project):
    add_items(wb.engine, project.id, 1)
    a, b = annotators(wb, 2)
    wb.users.add("r", "reviewer", "password-123", actor=Actor.operator())
    reviewer = wb.users.authenticate("r", "password-123")
    wb.queue.submit(wb.queue.claim("q", actor=a).lease_id, "pos", actor=a)
    wb.queue.submit(wb.queue.claim("q", actor=b).lease_id, "neg", actor=b)
    (mine,) = wb.queue.recent_labels(project, actor=b)
    assert mine.changeable and mine.label == "neg"
    item_id = wb.review.queue("q", actor=reviewer)[0].item_id
    wb.review.adjudicate(item_id, "label", actor=reviewer, label="pos", reason="clear case")
    with pytest.raises(Conflict, match="reviewer has already acted"):
        wb.queue.undo_last("q", actor=b)
    with pytest.raises(Conflict, match="reviewer has already acted"):
        wb.queue.change_label(mine.annotation_id, "pos", actor=b)
    assert not wb.queue.recent_labels(project, actor=b)[0].changeable


def test_change_label_recompares_a_complete_item_and_is_audited(wb, project):
    add_items(wb.engine, project.id, 1)
    a, b = annotators(wb, 2)
    wb.queue.submit(wb.queue.claim("q", actor=a).lease_id, "pos", actor=a)
    wb.queue.submit(wb.queue.claim("q", actor=b).lease_id, "neg", actor=b)
    (mine,) = wb.queue.recent_labels(project, actor=b)
    changed = wb.queue.change_label(mine.annotation_id, "pos", actor=b)
    assert changed.label == "pos"
    with Session(wb.engine) as s:
        item = s.exec(select(Item)).scalar_one()
        assert (item.state, item.final_label) == ("final", "pos")
        row = s.exec(select(AuditLog).where(AuditLog.action == "annotation.change")).scalar_one()
        assert (row.details["label_before"], row.details["label"], row.actor_id) == ("neg", "pos", b.id)
    wb.queue.change_label(mine.annotation_id, "neg", actor=b)
    with Session(wb.engine) as s:
        assert s.exec(select(Item.state, Item.final_label)).one() == ("review", None)
    with pytest.raises(NotFound):  # nobody changes another annotator's label
        wb.queue.change_label(mine.annotation_id, "pos", actor=a)
    with pytest.raises(WorkbenchError, match="not in the label set"):
        wb.queue.change_label(mine.annotation_id, "maybe", actor=b)


def test_recent_labels_are_the_actors_own_last_fifty(wb, project):
    add_items(wb.engine, project.id, 55)
    a, b = annotators(wb, 2)
    for _ in range(53):
        claim = wb.queue.claim("q", actor=a)
        wb.queue.submit(claim.lease_id, "neg", actor=a)
    wb.queue.submit(wb.queue.claim("q", actor=b).lease_id, "pos", actor=b)
    mine = wb.queue.recent_labels(project, actor=a)
    assert len(mine) == 50 and {r.label for r in mine} == {"neg"}
    assert [r.created_at for r in mine] == sorted((r.created_at for r in mine), reverse=True)
    assert [r.label for r in wb.queue.recent_labels(project, actor=b)] == ["pos"]


def test_blind_annotator_views_carry_no_labels(wb, project):
    add_items(wb.engine, project.id, 1)
    a, b = annotators(wb, 2)
    la = wb.queue.claim("q", actor=a)
    wb.queue.submit(la.lease_id, "pos", actor=a)
    lb = wb.queue.claim("q", actor=b)
    assert "pos" not in repr(lb.content) and not hasattr(lb, "label")
    assert wb.queue.recent_labels(project, actor=b) == []
    assert wb.queue.my_stats("q", actor=b).labels_total == 0


def test_concurrent_claims_never_share_a_slot(wb, project):
    """Threads hammer one engine; the schema and the claim logic keep every invariant."""
    add_items(wb.engine, project.id, 30)
    people = annotators(wb, 6)
    errors: list[BaseException] = []

    def work(actor, seed):
        queue = QueueService(wb.engine, random.Random(seed))
        try:
            while (lease := queue.claim("q", actor=actor)) is not None:
                queue.submit(lease.lease_id, random.Random(lease.item_id).choice(["pos", "neg"]), actor=actor)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p, i)) for i, p in enumerate(people)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with Session(wb.engine) as s:
        per_item = s.exec(
            select(Annotation.item_id, func.count(), func.count(func.distinct(Annotation.annotator_id))).group_by(
                Annotation.item_id
            )
        ).all()
        assert len(per_item) == 30 and all(n == 2 and d == 2 for _, n, d in per_item)
        states = s.exec(select(Item.state, func.count()).group_by(Item.state)).all()
    assert sum(n for _, n in states) == 30 and all(state in ("final",) for state, _ in states)


def test_expiry_never_touches_a_submitted_lease(wb, project):
    """Regression: on PostgreSQL an expirer that had read a lease as active could overwrite a
    concurrent submit and free its slot. Expiry is now one conditional UPDATE."""
    add_items(wb.engine, project.id, 1)
    a, b, c = annotators(wb, 3)
    la = wb.queue.claim("q", actor=a)
    wb.queue.submit(la.lease_id, "pos", actor=a)
    with Session(wb.engine) as s, s.begin():  # submitted, and past its expiry time
        s.exec(update(Lease).where(Lease.id == la.lease_id).values(expires_at=utcnow() - timedelta(seconds=5)))
    lb = wb.queue.claim("q", actor=b)
    assert lb is not None and lb.slot == 2
    assert wb.queue.claim("q", actor=c) is None  # slot 1 still belongs to a's annotation
    assert wb.queue.claim("q", actor=a) is None  # never the item a has labeled
    with Session(wb.engine) as s:
        state, slots = s.exec(
            select(Lease.state, Item.slots_taken).join(Item, Item.id == Lease.item_id).where(Lease.id == la.lease_id)
        ).one()
    assert (state, slots) == ("submitted", 2)
