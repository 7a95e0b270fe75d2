"""User accounts: argon2id password hashes, roles, and slowed-down repeated failed sign-ins."""

from __future__ import annotations

import functools
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine
from sqlmodel import Session, select

from workbench.db.models import User, utcnow
from workbench.domain import Actor, Role, UserInfo, role_allows
from workbench.errors import Conflict, NotFound, PermissionDenied, WorkbenchError
from workbench.services._tx import audit, reading, write

_HASHER = PasswordHasher()
MIN_PASSWORD_LENGTH = 8
FREE_FAILURES = 3
MAX_LOCK = timedelta(minutes=15)


def _info(user: User) -> UserInfo:
    return UserInfo(id=user.id, name=user.name, role=Role(user.role), active=user.active,
                    created_at=user.created_at)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WorkbenchError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")


def require_role(actor: Actor | None, role: Role) -> None:
    """Refuse unless the actor's role is at least `role` (None is the local operator, e.g. the CLI)."""
    if actor is not None and not role_allows(actor.role, role):
        raise PermissionDenied(f"this needs the {role.value} role; {actor.name} is {actor.role.value}")


class UserService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, name: str, role: Role | str, password: str, *, actor: Actor | None = None) -> UserInfo:
        """Create a user; the password is stored only as an argon2id hash."""
        require_role(actor, Role.ADMIN)
        name = name.strip()
        if not name:
            raise WorkbenchError("user name must not be empty")
        try:
            role = Role(role)
        except ValueError:
            raise WorkbenchError(f"unknown role {role!r}; use one of: {', '.join(Role)}") from None
        _check_password(password)
        password_hash = _HASHER.hash(password)

        def work(session: Session) -> UserInfo:
            if session.exec(select(User).where(User.name == name)).first():
                raise Conflict(f"user {name!r} already exists")
            user = User(name=name, role=role.value, password_hash=password_hash)
            session.add(user)
            session.flush()
            audit(session, "user.add", actor_id=actor.id if actor else None, user=name, role=role.value)
            return _info(user)

        return write(self.engine, work)

    def authenticate(self, name: str, password: str) -> Actor:
        """The actor for a correct name and password; repeated failures lock the account for a
        time that doubles with each failure past the first few."""
        now = utcnow()
        with reading(self.engine) as session:
            user = session.exec(select(User).where(User.name == name.strip())).first()
        if user is None:
            _verify(_dummy_hash(), password)
            raise PermissionDenied("unknown user or wrong password")
        if user.locked_until is not None and user.locked_until > now:
            wait = int((user.locked_until - now).total_seconds()) + 1
            raise PermissionDenied(f"too many failed sign-ins; try again in {wait} s")
        ok = user.active and _verify(user.password_hash, password)

        def record(session: Session) -> None:
            row = session.get(User, user.id)
            if ok:
                row.failed_logins = 0
                row.locked_until = None
                if _HASHER.check_needs_rehash(row.password_hash):
                    row.password_hash = _HASHER.hash(password)
            else:
                row.failed_logins += 1
                extra = row.failed_logins - FREE_FAILURES
                if extra > 0:
                    row.locked_until = utcnow() + min(timedelta(seconds=2**extra), MAX_LOCK)
            audit(session, "user.sign_in" if ok else "user.sign_in_failed", actor_id=row.id)

        write(self.engine, record)
        if not ok:
            raise PermissionDenied("unknown user or wrong password")
        return Actor(id=user.id, name=user.name, role=Role(user.role))

    def list(self, *, actor: Actor | None = None) -> list[UserInfo]:
        require_role(actor, Role.ADMIN)
        with reading(self.engine) as session:
            return [_info(u) for u in session.exec(select(User).order_by(User.name))]

    def get(self, name: str) -> UserInfo:
        with reading(self.engine) as session:
            user = session.exec(select(User).where(User.name == name)).first()
        if user is None:
            raise NotFound(f"no user named {name!r}")
        return _info(user)

    def set_role(self, name: str, role: Role | str, *, actor: Actor | None = None) -> UserInfo:
        require_role(actor, Role.ADMIN)
        role = Role(role)
        return self._update(name, actor, "user.set_role", role=role.value)

    def set_password(self, name: str, password: str, *, actor: Actor | None = None) -> UserInfo:
        require_role(actor, Role.ADMIN)
        _check_password(password)
        return self._update(name, actor, "user.reset_password", password_hash=_HASHER.hash(password),
                            failed_logins=0, locked_until=None)

    def set_active(self, name: str, active: bool, *, actor: Actor | None = None) -> UserInfo:
        require_role(actor, Role.ADMIN)
        return self._update(name, actor, "user.set_active", active=active)

    def _update(self, name: str, actor: Actor | None, action: str, **changes) -> UserInfo:
        def work(session: Session) -> UserInfo:
            user = session.exec(select(User).where(User.name == name)).first()
            if user is None:
                raise NotFound(f"no user named {name!r}")
            for key, value in changes.items():
                setattr(user, key, value)
            shown = {k: v for k, v in changes.items() if k in ("role", "active")}
            audit(session, action, actor_id=actor.id if actor else None, user=name, **shown)
            return _info(user)

        return write(self.engine, work)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a wrong name costs as long as a wrong
    password. Made on first use: hashing at import would cost every CLI command ~0.2 s."""
    return _HASHER.hash("workbench-dummy-password")


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
