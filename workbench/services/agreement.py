"""Agreement between annotators for a project (reviewers and admins only: it shows labels)."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from workbench.db.models import Adjudication, Annotation, User
from workbench.domain import Actor, AnnotationSource, Decision, Role
from workbench.domain.agreement import AgreementReport, Judgment, agreement_report
from workbench.services._auth import requires
from workbench.services._tx import reading
from workbench.services.members import load_member_project


def adjudicated_labels(session: Session, project_id: int) -> dict[int, str | None]:
    """Each adjudicated item's label: the latest adjudication stands; an ambiguous or excluded
    item has None (no label to match)."""
    decisions = session.execute(
        select(col(Adjudication.item_id), col(Adjudication.decision), col(Adjudication.label))
        .where(col(Adjudication.project_id) == project_id)
        .order_by(col(Adjudication.id))
    ).all()
    return {item_id: (label if decision == Decision.LABEL else None) for item_id, decision, label in decisions}


class AgreementService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @requires(Role.REVIEWER)
    def report(self, project_name: str, *, actor: Actor) -> AgreementReport:
        """Percent agreement, kappa per pair, alpha, per-label agreement, the annotator confusion
        matrix and each annotator's agreement with adjudicated labels (annotators by name)."""
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            rows = session.execute(
                select(col(Annotation.item_id), col(User.name), col(Annotation.label))
                .join(User, col(User.id) == Annotation.annotator_id)
                .where(col(Annotation.project_id) == project.id, col(Annotation.source) == AnnotationSource.HUMAN)
            ).all()
            adjudicated = adjudicated_labels(session, project.id)
        judgments = [Judgment(item=item_id, annotator=name, label=label) for item_id, name, label in rows]
        return agreement_report(judgments, list(project.labels), adjudicated)
