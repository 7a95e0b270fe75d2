"""Project members: which annotators and reviewers work on which project.

An annotator sees, claims from and reads the guidelines of only the projects they are a member of;
a reviewer reviews, browses and exports only the projects they are a reviewer member of. Admins
(and the local operator) see every project and need no row. The checks are the functions below,
called by every service that touches a project, inside that service's own session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Engine, Label, SQLColumnExpression, delete
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from workbench.db.models import Project, ProjectMember, User
from workbench.domain import Actor, ProjectInfo, Role
from workbench.errors import Conflict, NotFound, PermissionDenied, WorkbenchError
from workbench.services._auth import requires
from workbench.services._tx import audit, reading, write

MEMBER_ROLES = (Role.ANNOTATOR, Role.REVIEWER)


@dataclass(frozen=True)
class MemberInfo:
    project: str
    user: str
    role: Role  # what the user does on this project (annotator or reviewer)
    user_role: Role  # the user's own role
    added_at: datetime


def _a(role: Role) -> str:
    return f"{'an' if role.value[0] in 'aeiou' else 'a'} {role.value}"


def sees_everything(actor: Actor) -> bool:
    return Role(actor.role) is Role.ADMIN


def member_role(session: Session, actor: Actor, project_id: int) -> Role | None:
    """The actor's role on the project, or None when they are not a member (admins: ADMIN)."""
    if sees_everything(actor):
        return Role.ADMIN
    role = session.exec(
        select(ProjectMember.role).where(ProjectMember.project_id == project_id, ProjectMember.user_id == actor.id)
    ).first()
    return Role(role) if role else None


def check_member(session: Session, actor: Actor, project: ProjectInfo | int, needed: Role = Role.ANNOTATOR) -> None:
    """Refuse unless the actor is an admin or a member of the project whose project role allows `needed`
    (a reviewer member may also label; an annotator member may not review)."""
    if sees_everything(actor):
        return
    project_id = project.id if isinstance(project, ProjectInfo) else project
    role = member_role(session, actor, project_id)
    if role is Role.REVIEWER or (role is not None and needed is not Role.REVIEWER):
        return
    if isinstance(project, ProjectInfo):
        label = project.name
    else:
        row = session.get(Project, project_id)
        assert row is not None  # a project id the caller read
        label = row.name
    if role is None:
        raise PermissionDenied(f"{actor.name} is not a member of project {label!r}; an admin can add them")
    if needed is Role.REVIEWER and role is not Role.REVIEWER:
        raise PermissionDenied(f"{actor.name} is an annotator on project {label!r}, not a reviewer")


def member_role_column(
    project_id: SQLColumnExpression[int] | int, user_id: SQLColumnExpression[int] | int
) -> Label[str]:
    """The user's role on the project as a scalar subquery, for a hot path to read the membership
    in a statement it runs anyway (then :func:`refuse_unless` decides, with no query of its own)."""
    return (
        select(col(ProjectMember.role))
        .where(col(ProjectMember.project_id) == project_id, col(ProjectMember.user_id) == user_id)
        .scalar_subquery()
        .label("member_role")
    )


def refuse_unless(actor: Actor, project: ProjectInfo, role: str | None, needed: Role = Role.ANNOTATOR) -> None:
    """check_member's decision on an already-read member role (None: not a member)."""
    if sees_everything(actor) or role == Role.REVIEWER or (role is not None and needed is not Role.REVIEWER):
        return
    if role is None:
        raise PermissionDenied(f"{actor.name} is not a member of project {project.name!r}; an admin can add them")
    raise PermissionDenied(f"{actor.name} is an annotator on project {project.name!r}, not a reviewer")


def visible_project_ids(actor: Actor) -> SelectOfScalar[int] | None:
    """The ids of the projects the actor may see, as a subquery (one statement with the caller's
    query); None means every project (admins)."""
    if sees_everything(actor):
        return None
    return select(ProjectMember.project_id).where(ProjectMember.user_id == actor.id)


def _project_and_user(session: Session, project: str, user: str) -> tuple[Project, User]:
    row = session.exec(select(Project).where(Project.name == project)).first()
    if row is None:
        raise NotFound(f"no project named {project!r}")
    account = session.exec(select(User).where(User.name == user)).first()
    if account is None:
        raise NotFound(f"no user named {user!r}")
    return row, account


class MemberService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @requires(Role.ADMIN)
    def add(self, project: str, user: str, *, actor: Actor, role: Role | str | None = None) -> MemberInfo:
        """Make `user` a member of `project` as annotator or reviewer (default: their user role);
        adding an existing member again changes their project role."""

        def work(session: Session) -> MemberInfo:
            row, account = _project_and_user(session, project, user)
            assert row.id is not None and account.id is not None  # stored rows
            user_role = Role(account.role)
            if user_role is Role.ADMIN:
                raise WorkbenchError(f"{user} is an admin and sees every project; admins are not members")
            try:
                wanted = Role(role) if role is not None else user_role
            except ValueError:
                raise WorkbenchError(f"unknown member role {role!r}; use annotator or reviewer") from None
            if wanted not in MEMBER_ROLES:
                raise WorkbenchError(f"unknown member role {wanted.value!r}; use annotator or reviewer")
            if wanted is Role.REVIEWER and user_role is not Role.REVIEWER:
                raise WorkbenchError(f"{user} is an annotator; only a reviewer can be a reviewer member")
            member = session.get(ProjectMember, (row.id, account.id))
            if member is None:
                member = ProjectMember(project_id=row.id, user_id=account.id, role=wanted.value)
                session.add(member)
            elif member.role == wanted.value:
                raise Conflict(f"{user} is already {_a(wanted)} member of {project!r}")
            else:
                member.role = wanted.value
            audit(session, "project.member.add", actor_id=actor.id, project_id=row.id, user=user, role=wanted.value)
            session.flush()
            return MemberInfo(row.name, account.name, wanted, user_role, member.added_at)

        return write(self.engine, work)

    @requires(Role.ADMIN)
    def remove(self, project: str, user: str, *, actor: Actor) -> None:
        """Take `user` off `project`; their past labels stay, their active leases there end."""
        from workbench.db.models import utcnow

        def work(session: Session) -> None:
            row, account = _project_and_user(session, project, user)
            assert row.id is not None and account.id is not None  # stored rows
            if session.get(ProjectMember, (row.id, account.id)) is None:
                raise NotFound(f"{user} is not a member of {project!r}")
            session.execute(
                delete(ProjectMember).where(
                    col(ProjectMember.project_id) == row.id, col(ProjectMember.user_id) == account.id
                )
            )
            released = _release_leases(session, row.id, account.id, utcnow())
            audit(session, "project.member.remove", actor_id=actor.id, project_id=row.id, user=user, released=released)

        write(self.engine, work)

    @requires(Role.ADMIN)
    def list(self, project: str | None = None, *, actor: Actor, user: str | None = None) -> list[MemberInfo]:
        """Members of one project (or of every project), optionally of one user."""
        with reading(self.engine) as session:
            query = (
                sa.select(
                    col(Project.name),
                    col(User.name),
                    col(ProjectMember.role),
                    col(User.role),
                    col(ProjectMember.added_at),
                )
                .join(Project, col(Project.id) == ProjectMember.project_id)
                .join(User, col(User.id) == ProjectMember.user_id)
                .order_by(col(Project.name), col(User.name))
            )
            if project is not None:
                if session.exec(select(Project.id).where(Project.name == project)).first() is None:
                    raise NotFound(f"no project named {project!r}")
                query = query.where(col(Project.name) == project)
            if user is not None:
                query = query.where(col(User.name) == user)
            return [MemberInfo(p, u, Role(r), Role(ur), at) for p, u, r, ur, at in session.execute(query).all()]


def _release_leases(session: Session, project_id: int, user_id: int, now: datetime) -> int:
    """End the user's active leases on the project and give their slots back (as an expiry would)."""
    from workbench.db.models import Lease
    from workbench.domain import LeaseState
    from workbench.services.queue import _release

    held = session.exec(
        select(col(Lease.id), col(Lease.item_id)).where(
            Lease.project_id == project_id, Lease.annotator_id == user_id, Lease.state == LeaseState.ACTIVE
        )
    ).all()
    return sum(
        _release(session, lease_id, item_id, LeaseState.EXPIRED, now)
        for lease_id, item_id in held
        if lease_id is not None  # a primary key: never NULL (the filter tells the type checker)
    )


def load_member_project(session: Session, name: str, actor: Actor, needed: Role = Role.ANNOTATOR) -> ProjectInfo:
    """The named project (as load_project), refused unless the actor may work on it as `needed`."""
    from workbench.services.projects import load_project

    project = load_project(session, name)
    check_member(session, actor, project, needed)
    return project
