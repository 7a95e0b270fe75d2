"""Quarantine: items that cannot be shown or featurized (a broken or hostile image found at run
time) are taken out of the queue and the rounds, with the reason, for an admin to look at.

A quarantined item has the state ``quarantined``: claims take only open items, strategies rank
only open items, and versions hold only final ones, so it is out of all three at once. Its live
leases are closed (their slots freed) and its ranking entries dropped in the same transaction.
``release`` puts it back in the state it had.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlmodel import Session, col

from workbench.db.models import Item, Lease, Quarantine, RankEntry, User, utcnow
from workbench.domain import (
    Actor,
    ItemState,
    LeaseState,
    ProjectInfo,
    QuarantinedItem,
    QuarantineSource,
    Role,
)
from workbench.errors import Conflict, NotFound, PermissionDenied, WorkbenchError
from workbench.services._auth import require_role, requires
from workbench.services._home import HomeBound
from workbench.services._tx import audit, reading, write
from workbench.services.members import check_member
from workbench.services.projects import load_project

MAX_REASON = 1000


def _require(actor: Actor, role: Role) -> None:
    if not isinstance(actor, Actor):
        raise PermissionDenied("an actor is required")
    require_role(actor, role)


def quarantine_item(
    session: Session, project_id: int, item_id: int, reason: str, source: QuarantineSource, reported_by: int | None
) -> bool:
    """Inside the caller's transaction: take the item out of the queue and rounds. False when it
    was already quarantined (nothing changes). Its live leases are closed as expired (not as the
    annotator's skip), so after a release anyone may get it again."""
    item = session.execute(
        select(col(Item.state)).where(col(Item.id) == item_id, col(Item.project_id) == project_id).with_for_update()
    ).scalar_one_or_none()
    if item is None:
        raise NotFound(f"no item {item_id} in this project")
    if item == ItemState.QUARANTINED:
        return False
    now = utcnow()
    reason = " ".join(str(reason).split())[:MAX_REASON] or "no reason given"
    closed = (
        session.execute(
            update(Lease)
            .where(col(Lease.item_id) == item_id, col(Lease.state) == LeaseState.ACTIVE)
            .values(state=LeaseState.EXPIRED, closed_at=now, skip_reason=f"quarantined: {reason}"[:500])
            .returning(col(Lease.id))
        )
        .scalars()
        .all()
    )
    values: dict[str, Any] = {"state": ItemState.QUARANTINED}
    if closed:
        values["slots_taken"] = col(Item.slots_taken) - len(closed)
    session.execute(update(Item).where(col(Item.id) == item_id).values(**values))
    session.execute(delete(RankEntry).where(col(RankEntry.item_id) == item_id))
    session.add(
        Quarantine(
            project_id=project_id,
            item_id=item_id,
            reason=reason,
            source=source.value,
            previous_state=item,
            reported_by=reported_by,
            created_at=now,
        )
    )
    audit(
        session,
        "item.quarantine",
        actor_id=reported_by,
        project_id=project_id,
        item_id=item_id,
        reason=reason,
        source=source.value,
        previous_state=item,
        leases_closed=list(closed),
    )
    session.flush()
    return True


class QuarantineService(HomeBound):
    @requires(Role.ANNOTATOR)
    def quarantine_claim(self, lease_id: int, reason: str, *, actor: Actor) -> None:
        """The annotator holding this lease could not be shown its item: quarantine the item (the
        lease is closed with it), so the next claim gets another item."""

        def work(session: Session) -> None:
            lease = session.execute(
                select(col(Lease.project_id), col(Lease.item_id), col(Lease.annotator_id)).where(
                    col(Lease.id) == lease_id
                )
            ).one_or_none()
            if lease is None or lease.annotator_id != actor.id:
                raise NotFound("no such claim of yours")
            check_member(session, actor, lease.project_id)
            quarantine_item(session, lease.project_id, lease.item_id, reason, QuarantineSource.RENDER, actor.id)

        write(self.engine, work)

    @requires(Role.ADMIN)
    def quarantine(
        self,
        project: str,
        item_id: int,
        reason: str,
        *,
        actor: Actor,
        source: QuarantineSource = QuarantineSource.ADMIN,
    ) -> bool:
        """Take an item out of the queue and the rounds (admin, or the worker as the operator)."""
        if not str(reason).strip():
            raise WorkbenchError("a quarantine needs a reason")

        def work(session: Session) -> bool:
            info = load_project(session, project)
            return quarantine_item(session, info.id, item_id, reason, QuarantineSource(source), actor.id)

        return write(self.engine, work)

    @requires(Role.ADMIN)
    def quarantine_many(
        self,
        project_id: int,
        reasons: dict[int, str],
        *,
        actor: Actor,
        source: QuarantineSource = QuarantineSource.FEATURIZE,
    ) -> int:
        """Quarantine several items of a project at once (a round that could not featurize them)."""

        def work(session: Session) -> int:
            return sum(
                quarantine_item(session, project_id, item_id, reason, source, actor.id)
                for item_id, reason in sorted(reasons.items())
            )

        return write(self.engine, work) if reasons else 0

    @requires(Role.ADMIN)
    def list_quarantined(self, project: str, *, actor: Actor) -> list[QuarantinedItem]:
        """The project's quarantined items, newest first, with why (admins)."""
        with reading(self.engine) as session:
            info = load_project(session, project)
            rows = session.execute(
                select(Quarantine, col(Item.external_id), col(User.name))
                .join(Item, col(Item.id) == col(Quarantine.item_id))
                .outerjoin(User, col(User.id) == col(Quarantine.reported_by))
                .where(col(Quarantine.project_id) == info.id, col(Quarantine.released_at).is_(None))
                .order_by(col(Quarantine.created_at).desc(), col(Quarantine.id).desc())
            ).all()
        return [
            QuarantinedItem(
                item_id=q.item_id,
                external_id=external_id,
                reason=q.reason,
                source=QuarantineSource(q.source),
                previous_state=ItemState(q.previous_state),
                reported_by=name,
                created_at=q.created_at,
            )
            for q, external_id, name in rows
        ]

    @requires(Role.ADMIN)
    def release(self, project: str, item_id: int, *, actor: Actor) -> ItemState:
        """Put a quarantined item back in the state it had (e.g. after the file was fixed)."""

        def work(session: Session) -> ItemState:
            info = load_project(session, project)
            record = session.execute(
                select(Quarantine)
                .where(
                    col(Quarantine.project_id) == info.id,
                    col(Quarantine.item_id) == item_id,
                    col(Quarantine.released_at).is_(None),
                )
                .order_by(col(Quarantine.id).desc())
                .limit(1)
            ).scalar_one_or_none()
            if record is None:
                raise Conflict(f"item {item_id} is not quarantined")
            state = ItemState(record.previous_state)
            session.execute(update(Item).where(col(Item.id) == item_id).values(state=state))
            record.released_at = utcnow()
            audit(session, "item.release", actor_id=actor.id, project_id=info.id, item_id=item_id, state=state)
            return state

        return write(self.engine, work)

    # -- what the UI shows instead of an original image ---------------------------------------
    @requires(Role.ANNOTATOR)
    def rendition(self, project: ProjectInfo, relative: str, *, actor: Actor) -> Path:
        """A bounded-size PNG of an item's image (long side at most 1600 px), cached under
        WORKBENCH_HOME by content hash; the original is never served. WorkbenchError says why
        when it cannot be made (missing, outside the image root, broken, too many pixels)."""
        from workbench.importing.images import ImageRefused, rendition
        from workbench.importing.limits import Limits

        with reading(self.engine) as session:
            check_member(session, actor, project)
        path = image_path(project.settings, relative)
        try:
            limits = Limits.from_settings(project.settings.get("limits"))
        except ValueError:
            limits = Limits()
        try:
            return rendition(path, self.home / "renditions", max_pixels=limits.max_image_pixels)
        except ImageRefused as exc:
            raise ImageUnavailable(f"the image cannot be shown: {exc}") from None
        except OSError as exc:
            raise ImageUnavailable(f"the image cannot be shown: {exc.strerror or type(exc).__name__}") from None


class ImageUnavailable(WorkbenchError):
    """An item's image cannot be shown (missing, outside its root, broken, too large).
    `per_item` is False when the project, not the item, is at fault (no image_root setting)."""

    def __init__(self, message: str, *, per_item: bool = True) -> None:
        super().__init__(message)
        self.per_item = per_item


def image_path(settings: dict, relative: str | None) -> Path:
    """The image file of an item: `relative` under the project's image_root, refusing any path
    that resolves outside the root (absolute paths, '..', symlinks pointing out)."""
    root_setting = settings.get("image_root")
    if not root_setting:
        raise ImageUnavailable("the image cannot be shown: the project has no image_root setting", per_item=False)
    root = Path(root_setting).expanduser().resolve()
    rel = Path(str(relative or ""))
    if not str(relative or "").strip():
        raise ImageUnavailable("the item has no image path")
    if rel.is_absolute():
        raise ImageUnavailable("the image path is absolute; it must be relative to image_root")
    path = (root / rel).resolve()
    if not path.is_relative_to(root):
        raise ImageUnavailable("the image path leaves image_root")
    if not path.is_file():
        raise ImageUnavailable("the image file is missing")
    return path
