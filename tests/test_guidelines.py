"""Guidelines: versioned edits, per-label notes, the version each annotation was made under, the CLI."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlmodel import Session

from tests.helpers import add_items, annotators
from workbench.db.models import Annotation, AuditLog
from workbench.domain import Actor
from workbench.errors import PermissionDenied, WorkbenchError

OP = Actor.operator()


@pytest.fixture
def project(wb):
    return wb.projects.create(
        "g", "text", ["pos", "neg"], settings={"eval_fraction": 0.0, "random_share": 0.0}, actor=Actor.operator()
    )


def test_edits_are_versioned_and_each_annotation_records_its_version(wb, project):
    add_items(wb.engine, project.id, 3)
    a, b = annotators(wb, 2)
    assert wb.guidelines.current(project, actor=a) is None
    wb.queue.submit(wb.queue.claim("g", actor=a).lease_id, "pos", actor=a)  # no guidelines yet
    v1 = wb.guidelines.update(
        "g", "# Sentiment\nLabel the *overall* tone.", actor=OP, label_notes={"pos": "clearly positive"}
    )
    assert v1.version == 1 and v1.label_notes == {"pos": "clearly positive"}
    wb.queue.submit(wb.queue.claim("g", actor=b).lease_id, "pos", actor=b)
    v2 = wb.guidelines.update("g", "# Sentiment\nLabel the overall tone; sarcasm is neg.", actor=OP)
    assert v2.version == 2 and v2.label_notes == v1.label_notes  # notes carry over when not given
    wb.queue.submit(wb.queue.claim("g", actor=a).lease_id, "neg", actor=a)
    current = wb.guidelines.current(project, actor=a)
    assert (current.version, current.text) == (2, v2.text)
    assert [g.version for g in wb.guidelines.history("g", actor=OP)] == [2, 1]
    with Session(wb.engine) as s:
        versions = sorted(s.exec(select(Annotation.guidelines_version)).scalars(), key=lambda v: v or 0)
        assert versions == [None, 1, 2]
        assert s.exec(select(AuditLog).where(AuditLog.action == "guidelines.update")).all()
    usage = wb.guidelines.usage("g", actor=OP)
    assert (usage.current_version, usage.labels_under_current, usage.labels_before_current) == (2, 1, 2)


def test_only_admins_edit_and_bad_notes_are_refused(wb, project):
    (a,) = annotators(wb, 1)
    with pytest.raises(PermissionDenied):
        wb.guidelines.update("g", "text", actor=a)
    with pytest.raises(WorkbenchError, match="not a label"):
        wb.guidelines.update("g", "text", actor=OP, label_notes={"maybe": "?"})
    wb.guidelines.update("g", "text", actor=OP)
    with pytest.raises(WorkbenchError, match="nothing changed"):
        wb.guidelines.update("g", "text", actor=OP)
