"""Review: the disagreement queue and adjudication (choose a label, or mark ambiguous/excluded)."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from workbench.db.models import Adjudication, Annotation, Item, Lease, User, utcnow
from workbench.domain import (
    Actor,
    AdjudicationInfo,
    AnnotationSource,
    Answer,
    Decision,
    ItemState,
    LeaseState,
    ReviewCase,
    Role,
    SkipInfo,
    Split,
)
from workbench.errors import Conflict, NotFound, PermissionDenied, WorkbenchError
from workbench.services._auth import requires
from workbench.services._tx import audit, reading, write
from workbench.services.members import check_member, load_member_project
from workbench.services.projects import load_project_by_id, unoffered

if TYPE_CHECKING:
    from workbench.domain import ProjectInfo

_DECIDED_STATE = {
    Decision.LABEL: ItemState.FINAL,
    Decision.AMBIGUOUS: ItemState.AMBIGUOUS,
    Decision.EXCLUDED: ItemState.EXCLUDED,
}


def _answers(session: Session, item_ids: list[int]) -> dict[int, list[Answer]]:
    rows = session.execute(
        select(
            col(Annotation.item_id),
            col(User.name),
            col(Annotation.label),
            col(Annotation.created_at),
            col(Annotation.duration_ms),
        )
        .join(User, col(User.id) == col(Annotation.annotator_id))
        .where(col(Annotation.item_id).in_(item_ids), col(Annotation.source) == AnnotationSource.HUMAN)
        .order_by(col(Annotation.item_id), col(Annotation.slot))
    ).all()
    answers: dict[int, list[Answer]] = defaultdict(list)
    for item_id, name, label, created_at, duration_ms in rows:
        answers[item_id].append(Answer(name, label, created_at, duration_ms))
    return answers


def _suggestion(project: ProjectInfo, item: Item) -> dict:
    """Why the item is in review, and the Dawid-Skene posterior when the project aggregates with it
    (shown to the reviewer as a suggestion, never preselected)."""
    dawid_skene = project.settings.get("aggregation") == "dawid_skene" and item.posterior_label is not None
    return {
        "reason": item.reason,
        "suggestion": item.posterior_label if dawid_skene else None,
        "suggestion_p": item.posterior if dawid_skene else None,
    }


class ReviewService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @requires(Role.REVIEWER)
    def queue(
        self,
        project_name: str,
        *,
        actor: Actor,
        label_pair: tuple[str, str] | None = None,
        limit: int = 100,
        state: ItemState = ItemState.REVIEW,
    ) -> list[ReviewCase]:
        """Items waiting for a reviewer (or in `state`), oldest first; optionally only those whose
        answers are exactly the two labels of `label_pair`."""
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            query = (
                select(Item).where(col(Item.project_id) == project.id, col(Item.state) == state).order_by(col(Item.id))
            )
            if label_pair is not None:
                wanted = sorted(set(label_pair))
                has = [
                    select(col(Annotation.item_id)).where(
                        col(Annotation.label) == label, col(Annotation.source) == AnnotationSource.HUMAN
                    )
                    for label in wanted
                ]
                query = query.where(*(col(Item.id).in_(h) for h in has))
                others = select(col(Annotation.item_id)).where(
                    col(Annotation.source) == AnnotationSource.HUMAN, col(Annotation.label).not_in(wanted)
                )
                query = query.where(col(Item.id).not_in(others))
            items = session.execute(query.limit(limit)).scalars().all()
            answers = _answers(session, [item.id for item in items])
        return [
            ReviewCase(
                item_id=item.id,
                external_id=item.external_id,
                split=Split(item.split),
                state=ItemState(item.state),
                content=dict(item.content),
                answers=tuple(answers[item.id]),
                final_label=item.final_label,
                **_suggestion(project, item),
            )
            for item in items
        ]

    @requires(Role.REVIEWER)
    def count_waiting(self, project_name: str, *, actor: Actor) -> int:
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            return session.execute(
                select(func.count()).where(col(Item.project_id) == project.id, col(Item.state) == ItemState.REVIEW)
            ).scalar_one()

    @requires(Role.REVIEWER)
    def case(self, project_name: str, external_id: str, *, actor: Actor) -> ReviewCase:
        """One item with its answers, whatever its state (reviewers may revisit agreed items)."""
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            item = session.execute(
                select(Item).where(col(Item.project_id) == project.id, col(Item.external_id) == external_id)
            ).scalar_one_or_none()
            if item is None:
                raise NotFound(f"no item {external_id!r} in {project_name!r}")
            answers = _answers(session, [item.id])[item.id]
        return ReviewCase(
            item.id,
            item.external_id,
            Split(item.split),
            ItemState(item.state),
            dict(item.content),
            tuple(answers),
            item.final_label,
            **_suggestion(project, item),
        )

    @requires(Role.REVIEWER)
    def adjudicate(
        self, item_id: int, decision: Decision | str, *, actor: Actor, label: str | None = None, reason: str
    ) -> AdjudicationInfo:
        """Settle an item: pick a label, or mark it ambiguous or excluded, always with a reason.

        Items in review are the usual case; overturning an agreed (final) label is allowed and
        audited as an overturn. Reviewers do not judge items they labeled themselves.
        """
        try:
            decision = Decision(decision)
        except ValueError:
            raise WorkbenchError(f"unknown decision {decision!r}; use label, ambiguous or excluded") from None
        reason = (reason or "").strip()
        if not reason:
            raise WorkbenchError("an adjudication needs a reason")
        if (decision == Decision.LABEL) != (label is not None):
            raise WorkbenchError("give a label exactly when the decision is 'label'")

        def work(session: Session) -> AdjudicationInfo:
            item = session.execute(select(Item).where(col(Item.id) == item_id).with_for_update()).scalar_one_or_none()
            if item is None:
                raise NotFound(f"no item with id {item_id}")
            project = load_project_by_id(session, item.project_id)
            check_member(session, actor, project, Role.REVIEWER)
            if label is not None and label not in project.offered:
                raise WorkbenchError(unoffered(label, project))
            if item.state == ItemState.OPEN:
                raise Conflict(f"item {item.external_id!r} still waits for annotations")
            own = session.execute(
                select(func.count()).where(col(Annotation.item_id) == item.id, col(Annotation.annotator_id) == actor.id)
            ).scalar_one()
            if own:
                raise PermissionDenied("reviewers do not adjudicate items they labeled themselves")
            if actor.id is None:  # reviewer_id is NOT NULL: the insert could never succeed
                raise PermissionDenied("an adjudication names its reviewer: the operator has no user row")
            previous_state, previous_label = ItemState(item.state), item.final_label
            row = Adjudication(
                project_id=item.project_id,
                item_id=item.id,
                reviewer_id=actor.id,
                decision=decision.value,
                label=label,
                reason=reason,
                previous_state=previous_state.value,
                previous_label=previous_label,
                created_at=utcnow(),
            )
            session.add(row)
            item.state = _DECIDED_STATE[decision]
            item.final_label = label
            item.final_by = "adjudication" if label is not None else None
            session.flush()
            assert row.id is not None  # flushed
            action = "adjudication.overturn" if previous_state == ItemState.FINAL else "adjudication.decide"
            audit(
                session,
                action,
                actor_id=actor.id,
                project_id=item.project_id,
                item_id=item.id,
                adjudication_id=row.id,
                decision=decision.value,
                label=label,
                reason=reason,
                previous_state=previous_state.value,
                previous_label=previous_label,
            )
            return AdjudicationInfo(
                row.id,
                item.id,
                actor.name,
                decision,
                label,
                reason,
                previous_state,
                previous_label,
                row.created_at,
                item.external_id,
                item.project_id,
            )

        decided = write(self.engine, work)
        assert decided.project_id is not None  # work() always sets it
        from workbench.services.alerts import AlertEvent, queue_check

        queue_check(self.engine, decided.project_id, AlertEvent.REVIEW)  # a queued check absorbs a burst
        return decided

    @requires(Role.REVIEWER)
    def history(self, project_name: str, limit: int = 100, *, actor: Actor) -> list[AdjudicationInfo]:
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            rows = session.execute(
                select(Adjudication, col(User.name), col(Item.external_id))
                .join(User, col(User.id) == col(Adjudication.reviewer_id))
                .join(Item, col(Item.id) == col(Adjudication.item_id))
                .where(col(Adjudication.project_id) == project.id)
                .order_by(col(Adjudication.id).desc())
                .limit(limit)
            ).all()
        return [
            AdjudicationInfo(
                a.id,
                a.item_id,
                name,
                Decision(a.decision),
                a.label,
                a.reason,
                ItemState(a.previous_state),
                a.previous_label,
                a.created_at,
                external_id,
            )
            for a, name, external_id in rows
        ]

    # -- skips (reviewers and admins only: annotators never see who skipped what) ----------------
    @requires(Role.REVIEWER)
    def skips(
        self, project_name: str, *, actor: Actor, external_id: str | None = None, limit: int = 200
    ) -> list[SkipInfo]:
        """Skips with who and when, newest first; only those of one item when `external_id` is given."""
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            query = (
                select(
                    col(Lease.item_id),
                    col(Item.external_id),
                    col(User.name),
                    col(Lease.skip_reason),
                    col(Lease.closed_at),
                )
                .join(Item, col(Item.id) == col(Lease.item_id))
                .join(User, col(User.id) == col(Lease.annotator_id))
                .where(col(Lease.project_id) == project.id, col(Lease.state) == LeaseState.SKIPPED)
            )
            if external_id is not None:
                query = query.where(col(Item.external_id) == external_id)
            rows = session.execute(query.order_by(col(Lease.closed_at).desc(), col(Lease.id).desc()).limit(limit)).all()
        return [SkipInfo(item_id, ext, name, reason or "", at) for item_id, ext, name, reason, at in rows]

    @requires(Role.REVIEWER)
    def skip_counts(self, project_name: str, *, actor: Actor) -> dict[str, int]:
        """How many skips gave each reason, most frequent first (for the admin overview)."""
        with reading(self.engine) as session:
            project = load_member_project(session, project_name, actor, Role.REVIEWER)
            rows = session.execute(
                select(col(Lease.skip_reason), func.count())
                .where(col(Lease.project_id) == project.id, col(Lease.state) == LeaseState.SKIPPED)
                .group_by(col(Lease.skip_reason))
                .order_by(func.count().desc(), col(Lease.skip_reason))
            ).all()
        return {reason or "": n for reason, n in rows}
