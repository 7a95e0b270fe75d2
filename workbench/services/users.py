"""User accounts: argon2id password hashes, a password policy, roles, an atomic sign-in lockout,
and disabling an account (which ends its sessions and gives its items back).

Lockout: every password check first reserves an attempt in the database (one write transaction:
BEGIN IMMEDIATE on SQLite, a row lock on PostgreSQL), counting it as a failure until the password
proves right. The attempt that reaches FREE_FAILURES also sets the lock, before its own check, so
any number of parallel attempts gets at most FREE_FAILURES password checks before the lock holds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from workbench.db.models import User, utcnow
from workbench.domain import Actor, Role, UserInfo
from workbench.domain.passwords import check_password
from workbench.errors import Conflict, NotFound, PermissionDenied, WorkbenchError
from workbench.services._auth import require_role, requires, unauthenticated
from workbench.services._tx import audit, reading, write

_HASHER = PasswordHasher()
FREE_FAILURES = 4  # password checks in a row without success before the account locks
FIRST_LOCK = timedelta(seconds=5)  # then doubling with each further failure
MAX_LOCK = timedelta(minutes=15)
WRONG = "unknown user or wrong password"


def _info(user: User) -> UserInfo:
    assert user.id is not None  # a stored user
    return UserInfo(id=user.id, name=user.name, role=Role(user.role), active=user.active, created_at=user.created_at)


_require_actor = require_role  # fails closed (refuses None) like every check now; kept for its callers


def lock_for(failures: int) -> timedelta | None:
    """How long the account locks once `failures` checks in a row have failed (None: not yet)."""
    extra = failures - FREE_FAILURES
    if extra < 0:
        return None
    return min(FIRST_LOCK * 2**extra, MAX_LOCK)


class UserService:
    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    @requires(Role.ADMIN)
    def add(self, name: str, role: Role | str, password: str, *, actor: Actor) -> UserInfo:
        """Create a user; the password is stored only as an argon2id hash."""
        name = name.strip()
        if not name:
            raise WorkbenchError("user name must not be empty")
        try:
            role = Role(role)
        except ValueError:
            raise WorkbenchError(f"unknown role {role!r}; use one of: {', '.join(Role)}") from None
        check_password(password, user_name=name, admin=role is Role.ADMIN)
        password_hash = _HASHER.hash(password)

        def work(session: Session) -> UserInfo:
            if session.exec(select(User).where(User.name == name)).first():
                raise Conflict(f"user {name!r} already exists")
            user = User(name=name, role=role.value, password_hash=password_hash)
            session.add(user)
            session.flush()
            audit(session, "user.add", actor_id=actor.id, user=name, role=role.value)
            return _info(user)

        return write(self.engine, work)

    # -- signing in -------------------------------------------------------------------------------
    @unauthenticated("signing in is how an actor comes to be")
    def authenticate(self, name: str, password: str) -> Actor:
        """The actor for a correct name and password (this establishes who acts, so it takes no
        actor). Failures in a row lock the account for a time that doubles with each one."""
        name = name.strip()
        reserved = write(self.engine, lambda session: self._reserve(session, name))
        if reserved is None:
            _verify(_dummy_hash(), password)  # a wrong name costs as long as a wrong password
            raise PermissionDenied(WRONG)
        if isinstance(reserved, timedelta):
            raise PermissionDenied(f"too many failed sign-ins; try again in {math.ceil(reserved.total_seconds())} s")
        user_id, password_hash, role, active = reserved
        ok = _verify(password_hash, password) and active

        def record(session: Session) -> None:
            if ok:
                values: dict = {"failed_logins": 0, "locked_until": None}
                if _HASHER.check_needs_rehash(password_hash):
                    values["password_hash"] = _HASHER.hash(password)
                session.execute(update(User).where(col(User.id) == user_id).values(**values))
            audit(session, "user.sign_in" if ok else "user.sign_in_failed", actor_id=user_id)

        write(self.engine, record)
        if not ok:
            raise PermissionDenied(WRONG)
        return Actor(id=user_id, name=name, role=Role(role))

    def _reserve(self, session: Session, name: str) -> tuple[int, str, str, bool] | timedelta | None:
        """Count one attempt before the password is checked; lock the account when this attempt
        is the FREE_FAILURES-th in a row. A locked account returns how long it stays locked."""
        row = session.execute(
            sa.select(
                col(User.id),
                col(User.password_hash),
                col(User.role),
                col(User.active),
                col(User.failed_logins),
                col(User.locked_until),
            )
            .where(col(User.name) == name)
            .with_for_update()
        ).first()
        if row is None:
            return None
        now = self.clock()
        if row.locked_until is not None and row.locked_until > now:
            return row.locked_until - now
        failures = row.failed_logins + 1
        lock = lock_for(failures)
        session.execute(
            update(User)
            .where(col(User.id) == row.id)
            .values(failed_logins=failures, locked_until=now + lock if lock else None)
        )
        return row.id, row.password_hash, row.role, row.active

    # -- reading ----------------------------------------------------------------------------------
    @requires(Role.ADMIN)
    def list(self, *, actor: Actor) -> list[UserInfo]:
        with reading(self.engine) as session:
            return [_info(u) for u in session.exec(select(User).order_by(User.name))]

    @requires(Role.ANNOTATOR)
    def get(self, name: str, *, actor: Actor) -> UserInfo:
        """A user's account; anyone may read their own, only an admin someone else's."""
        if name != actor.name:
            require_role(actor, Role.ADMIN)
        with reading(self.engine) as session:
            user = session.exec(select(User).where(User.name == name)).first()
        if user is None:
            raise NotFound(f"no user named {name!r}")
        return _info(user)

    # -- changing ---------------------------------------------------------------------------------
    @requires(Role.ADMIN)
    def set_role(self, name: str, role: Role | str, *, actor: Actor) -> UserInfo:
        role = Role(role)
        return self._update(name, actor, "user.set_role", role=role.value)

    @requires(Role.ADMIN)
    def reset_password(self, name: str, password: str, *, actor: Actor) -> UserInfo:
        """Admin: set a new password for `name`, clear the lockout and end every session of theirs."""
        return self._new_password(name, password, actor, "user.reset_password", keep_session=None)

    @requires(Role.ADMIN)
    def set_password(self, name: str, password: str, *, actor: Actor) -> UserInfo:
        """Admin reset (kept for existing callers); see reset_password."""
        return self._new_password(name, password, actor, "user.reset_password", keep_session=None)

    @requires(Role.ANNOTATOR)
    def change_password(self, current: str, new: str, *, actor: Actor, keep_session: int | None = None) -> None:
        """Any user: change their own password, proving the current one first. Every other session
        of theirs ends; `keep_session` (the one asking) stays signed in."""
        if actor.id is None:
            raise WorkbenchError("the local operator has no password; use `workbench user reset-password`")
        try:
            self.authenticate(actor.name, current)
        except PermissionDenied as exc:
            if str(exc) == WRONG:
                raise PermissionDenied("the current password is wrong") from None
            raise
        if new == current:
            raise WorkbenchError("the new password must differ from the current one")
        self._new_password(actor.name, new, actor, "user.change_password", keep_session=keep_session)

    def _new_password(
        self, name: str, password: str, actor: Actor, action: str, *, keep_session: int | None
    ) -> UserInfo:
        from workbench.services.sessions import revoke_user_sessions

        user = self.get(name, actor=actor)
        check_password(password, user_name=name, admin=user.role is Role.ADMIN)
        password_hash = _HASHER.hash(password)

        def work(session: Session) -> UserInfo:
            row = self._row(session, name)
            assert row.id is not None  # a stored user
            row.password_hash, row.failed_logins, row.locked_until = password_hash, 0, None
            ended = revoke_user_sessions(session, row.id, "password changed", self.clock(), keep=keep_session)
            audit(session, action, actor_id=actor.id, user=name, sessions_ended=ended)
            return _info(row)

        return write(self.engine, work)

    @requires(Role.ADMIN)
    def disable(self, name: str, *, actor: Actor) -> UserInfo:
        """Admin: the account can no longer sign in; its sessions end and its items go back to the
        queue at once."""
        if actor.name == name and actor.id is not None:
            raise WorkbenchError("you cannot disable your own account")
        return write(self.engine, lambda session: self._disable(session, name, actor))

    def _disable(self, session: Session, name: str, actor: Actor) -> UserInfo:
        from workbench.services.queue import release_user_leases
        from workbench.services.sessions import revoke_user_sessions

        row = self._row(session, name)
        assert row.id is not None  # a stored user
        now = self.clock()
        row.active = False
        ended = revoke_user_sessions(session, row.id, "account disabled", now)
        released = release_user_leases(session, row.id, now, why="account disabled", actor_id=actor.id)
        audit(
            session,
            "user.disable",
            actor_id=actor.id,
            user=name,
            active=False,
            sessions_ended=ended,
            leases_released=released,
        )
        return _info(row)

    @requires(Role.ADMIN)
    def enable(self, name: str, *, actor: Actor) -> UserInfo:
        """Admin: the account may sign in again (with its existing password)."""
        return self._update(name, actor, "user.enable", active=True, failed_logins=0, locked_until=None)

    @requires(Role.ADMIN)
    def set_active(self, name: str, active: bool, *, actor: Actor) -> UserInfo:
        """Kept for existing callers: disable (ending sessions, releasing leases) or enable."""
        if active:
            return self._update(name, actor, "user.enable", active=True, failed_logins=0, locked_until=None)
        return write(self.engine, lambda session: self._disable(session, name, actor))

    @staticmethod
    def _row(session: Session, name: str) -> User:
        user = session.exec(select(User).where(User.name == name).with_for_update()).first()
        if user is None:
            raise NotFound(f"no user named {name!r}")
        return user

    def _update(self, name: str, actor: Actor, action: str, **changes) -> UserInfo:
        def work(session: Session) -> UserInfo:
            user = self._row(session, name)
            for key, value in changes.items():
                setattr(user, key, value)
            shown = {k: v for k, v in changes.items() if k in ("role", "active")}
            audit(session, action, actor_id=actor.id, user=name, **shown)
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
