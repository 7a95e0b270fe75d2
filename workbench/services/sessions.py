"""Server-side sign-in sessions: an opaque random token in the browser, only its hash here.

A session ends when its user signs out, changes their password or is disabled (revoked here, so
every tab and browser holding it loses access at its next request), after `idle` without activity
(default 8 h) or `absolute` after sign-in (default 7 days). Both are settings:
$WORKBENCH_SESSION_IDLE_HOURS and $WORKBENCH_SESSION_MAX_DAYS.

Signing in happens over the app's websocket, which cannot set a cookie. So the session is created
bound to the browser's binding cookie (a random value the server set on an earlier page load, kept
here only as a hash) and the browser's next page load `adopt`s it: a fresh token is made, its hash
replaces the binding, and the HTTP response sets it as an HttpOnly cookie. Until then the tab that
signed in uses the session by its id, which lives only in server memory.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, update
from sqlmodel import Session, col, select

from workbench.db.models import User, UserSession, utcnow
from workbench.domain import Actor, Role
from workbench.errors import NotFound, PermissionDenied, WorkbenchError
from workbench.services._auth import requires, unauthenticated
from workbench.services._tx import audit, reading, write
from workbench.services.users import UserService

IDLE_ENV = "WORKBENCH_SESSION_IDLE_HOURS"
ABSOLUTE_ENV = "WORKBENCH_SESSION_MAX_DAYS"
TOUCH_EVERY = timedelta(seconds=60)  # last_seen is written at most this often per session

# Why a session ended, as stored in revoke_reason, and what the person is told.
SIGNED_OUT = "signed out"
PASSWORD_CHANGED = "password changed"
DISABLED = "account disabled"
IDLE = "idle"
ABSOLUTE = "expired"
_TOLD = {
    SIGNED_OUT: "you signed out",
    PASSWORD_CHANGED: "the password was changed",
    DISABLED: "this account was disabled",
    IDLE: "it was idle too long",
    ABSOLUTE: "it reached its time limit",
}


class SessionEnded(PermissionDenied):
    """A session that existed but is over (the message says why; `reason` is the stored code)."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


def ended_message(reason: str) -> str:
    """What a person is told about a session that ended for `reason` (a stored code)."""
    return f"your session has ended: {_TOLD.get(reason, 'it is no longer valid')}; sign in again"


def token_hash(token: str) -> str:
    """SHA-256 of a token (tokens are 256 random bits, so a fast hash is enough)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _hours(env: str, default: float, unit: timedelta) -> timedelta:
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default * unit
    try:
        value = float(raw)
    except ValueError:
        raise WorkbenchError(f"{env} must be a number, not {raw!r}") from None
    if value <= 0:
        raise WorkbenchError(f"{env} must be positive")
    return value * unit


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(hours=8)
    absolute: timedelta = timedelta(days=7)

    @classmethod
    def from_env(cls) -> SessionPolicy:
        return cls(idle=_hours(IDLE_ENV, 8, timedelta(hours=1)), absolute=_hours(ABSOLUTE_ENV, 7, timedelta(days=1)))


@dataclass(frozen=True)
class SignedIn:
    """Who a live session belongs to (refreshed from the user row: role changes apply at once)."""

    actor: Actor
    session_id: int
    expires_at: datetime


@dataclass(frozen=True)
class IssuedToken:
    """A fresh token for the browser's cookie; the only place the token ever exists in clear."""

    token: str
    max_age_s: int


@dataclass(frozen=True)
class SessionInfo:
    id: int
    user: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ended: str | None  # why it ended, None while it is live


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def revoke_user_sessions(session: Session, user_id: int, reason: str, now: datetime, *, keep: int | None = None) -> int:
    """End every live session of a user inside the caller's transaction (all but `keep`)."""
    statement = update(UserSession).where(col(UserSession.user_id) == user_id, col(UserSession.revoked_at).is_(None))
    if keep is not None:
        statement = statement.where(col(UserSession.id) != keep)
    result = session.execute(statement.values(revoked_at=now, revoke_reason=reason, bind_hash=None))
    return cast(CursorResult[Any], result).rowcount  # an UPDATE's result is a cursor result


class SessionService:
    def __init__(
        self, engine: Engine, *, policy: SessionPolicy | None = None, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.engine = engine
        self.policy = policy or SessionPolicy.from_env()
        self.clock = clock

    # -- starting ---------------------------------------------------------------------------------
    @unauthenticated("signing in is how an actor comes to be")
    def sign_in(self, name: str, password: str, *, bind: str | None = None) -> SignedIn:
        """Check the password (with the lockout) and start a session for it. `bind` is the
        browser's binding-cookie value: the browser's next page load then receives the session's
        cookie (see `adopt`). This establishes who acts, so it takes no actor."""
        actor = UserService(self.engine, clock=self.clock).authenticate(name, password)
        now = self.clock()
        bound = token_hash(bind) if bind else None
        assert actor.id is not None  # a user, signed in by password
        user_id = actor.id

        def work(session: Session) -> SignedIn:
            if bound is not None:  # an earlier sign-in in this browser that no page load took yet
                session.execute(update(UserSession).where(col(UserSession.bind_hash) == bound).values(bind_hash=None))
            row = UserSession(
                user_id=user_id,
                token_hash=token_hash(secrets.token_urlsafe(32)),
                bind_hash=bound,
                created_at=now,
                last_seen_at=now,
                expires_at=now + self.policy.absolute,
            )
            session.add(row)
            session.flush()
            assert row.id is not None  # flushed
            audit(session, "session.start", actor_id=actor.id, session_id=row.id)
            return SignedIn(actor=actor, session_id=row.id, expires_at=row.expires_at)

        return write(self.engine, work)

    @unauthenticated("a browser tab takes over the session its sign-in form bound, before it knows who it is")
    def adopt(self, bind: str) -> IssuedToken | None:
        """The cookie for a session signed in from this browser and not yet handed to it: a new
        random token whose hash replaces the binding. None when nothing waits for this browser."""
        if not bind:
            return None
        now = self.clock()
        token = secrets.token_urlsafe(32)

        def work(session: Session) -> IssuedToken | None:
            row = session.exec(
                select(UserSession).where(UserSession.bind_hash == token_hash(bind)).with_for_update()
            ).first()
            if row is None:
                return None
            row.bind_hash = None
            if self._ended(session, row, now) is not None:
                return None
            row.token_hash = token_hash(token)
            return IssuedToken(token=token, max_age_s=max(1, int((_aware(row.expires_at) - now).total_seconds())))

        return write(self.engine, work)

    # -- checking ---------------------------------------------------------------------------------
    @unauthenticated("the session token is what says who acts")
    def resolve(self, token: str) -> SignedIn | None:
        """The live session a cookie token names, touched (idle expiry restarts). None for a token
        that names no session; SessionEnded, saying why, for one that has ended."""
        if not token:
            return None
        with reading(self.engine) as session:
            row = session.exec(select(UserSession).where(col(UserSession.token_hash) == token_hash(token))).first()
        if row is None:
            return None
        assert row.id is not None  # a stored row
        return self._check(row.id, None)

    @requires(Role.ANNOTATOR)
    def current(self, session_id: int, *, actor: Actor) -> SignedIn:
        """The session a tab signed in with, checked and touched at every rerun: SessionEnded when
        it is over, with the user's role as it is now."""
        if not isinstance(actor, Actor):
            raise PermissionDenied("no actor: sign in first")
        return self._check(session_id, actor)

    def _check(self, session_id: int, actor: Actor | None) -> SignedIn:
        now = self.clock()
        with reading(self.engine, snapshot=False) as session:  # one statement
            found = session.execute(
                select(UserSession, User)
                .join(User, col(User.id) == UserSession.user_id)
                .where(col(UserSession.id) == session_id)
            ).first()
        if found is None:
            raise SessionEnded("your session has ended; sign in again")
        row, user = found
        if actor is not None and actor.id != row.user_id:
            raise SessionEnded("your session has ended; sign in again")
        ended = self._why_ended(row, user, now)
        if ended is not None:
            if row.revoked_at is None:  # record the lapse, so the reason stays what it was
                write(
                    self.engine,
                    lambda s: s.execute(
                        update(UserSession)
                        .where(col(UserSession.id) == row.id, col(UserSession.revoked_at).is_(None))
                        .values(revoked_at=now, revoke_reason=ended, bind_hash=None)
                    ),
                )
            raise SessionEnded(ended_message(ended), reason=ended)
        if now - _aware(row.last_seen_at) >= TOUCH_EVERY:
            write(
                self.engine,
                lambda s: s.execute(update(UserSession).where(col(UserSession.id) == row.id).values(last_seen_at=now)),
            )
        return SignedIn(
            actor=Actor(id=user.id, name=user.name, role=Role(user.role)),
            session_id=row.id,
            expires_at=_aware(row.expires_at),
        )

    def _why_ended(self, row: UserSession, user: User, now: datetime) -> str | None:
        if row.revoked_at is not None:
            return row.revoke_reason or SIGNED_OUT
        if not user.active:
            return DISABLED
        if now >= _aware(row.expires_at):
            return ABSOLUTE
        if now - _aware(row.last_seen_at) >= self.policy.idle:
            return IDLE
        return None

    def _ended(self, session: Session, row: UserSession, now: datetime) -> str | None:
        user = session.get(User, row.user_id)
        assert user is not None  # the session's user (a foreign key)
        return self._why_ended(row, user, now)

    # -- ending -----------------------------------------------------------------------------------
    @requires(Role.ANNOTATOR)
    def sign_out(self, session_id: int, *, actor: Actor) -> None:
        """End this session now (every tab and browser holding it loses access at its next step)."""
        now = self.clock()

        def work(session: Session) -> None:
            row = session.get(UserSession, session_id)
            if row is None or (row.user_id != actor.id and not actor.is_operator):
                raise NotFound("no such session")
            if row.revoked_at is None:
                row.revoked_at, row.revoke_reason, row.bind_hash = now, SIGNED_OUT, None
                audit(session, "session.end", actor_id=actor.id, session_id=row.id, why=SIGNED_OUT)

        write(self.engine, work)

    @requires(Role.ADMIN)
    def end_all(self, user: str, *, actor: Actor, reason: str = SIGNED_OUT) -> int:
        """Admin: end every session of `user`; returns how many were live."""
        now = self.clock()

        def work(session: Session) -> int:
            row = session.exec(select(User).where(User.name == user)).first()
            if row is None:
                raise NotFound(f"no user named {user!r}")
            assert row.id is not None  # a stored row
            ended = revoke_user_sessions(session, row.id, reason, now)
            audit(session, "session.end_all", actor_id=actor.id, user=user, sessions_ended=ended)
            return ended

        return write(self.engine, work)

    @requires(Role.ADMIN)
    def list(self, *, actor: Actor, live_only: bool = True) -> list[SessionInfo]:
        """Admin: sessions (live ones by default), newest first. Never carries a token or hash."""
        now = self.clock()
        with reading(self.engine) as session:
            rows = session.execute(
                select(UserSession, User)
                .join(User, col(User.id) == UserSession.user_id)
                .order_by(col(UserSession.created_at).desc())
            ).all()
        found = [
            SessionInfo(
                id=s.id,
                user=u.name,
                created_at=_aware(s.created_at),
                last_seen_at=_aware(s.last_seen_at),
                expires_at=_aware(s.expires_at),
                ended=self._why_ended(s, u, now),
            )
            for s, u in rows
        ]
        return [s for s in found if s.ended is None] if live_only else found
