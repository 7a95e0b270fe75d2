"""Sessions and transactions: one session per service call, writes retried on transient conflicts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Engine, bindparam, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import Session, col

from workbench.db.engine import read_only, write_gate
from workbench.db.models import AuditLog, Project, utcnow
from workbench.errors import Conflict, storage_fault

T = TypeVar("T")

# PostgreSQL: serialization_failure, deadlock_detected, lock_not_available.
_PG_RETRYABLE = {"40001", "40P01", "55P03"}


def is_transient(exc: DBAPIError) -> bool:
    """A conflict another attempt can resolve: SQLite busy/locked, a PostgreSQL serialization
    failure or deadlock, or a unique-constraint race (the loser retries and sees the winner)."""
    if isinstance(exc, IntegrityError):
        return True
    if isinstance(exc, OperationalError) and "locked" in str(exc.orig).lower():
        return True
    return getattr(exc.orig, "sqlstate", None) in _PG_RETRYABLE


def write(engine: Engine, work: Callable[[Session], T], *, attempts: int = 8) -> T:
    """Run `work` in one write transaction (BEGIN IMMEDIATE on SQLite), retrying transient conflicts.

    `work` must be safe to re-run: everything it did is rolled back before a retry.
    """
    for attempt in range(attempts):
        try:
            with write_gate(engine), Session(engine, expire_on_commit=False) as session, session.begin():
                session.info["writing"] = True  # load_project refuses an archived project here
                return work(session)
        except DBAPIError as exc:
            if attempt == attempts - 1 or not is_transient(exc):
                fault = storage_fault(exc)
                if fault is not None:  # full disk, read-only database: one line, nothing stored
                    raise fault from exc
                raise
            time.sleep(0.002 * 2**attempt)
        except OSError as exc:  # the write gate's side file on a full or read-only disk
            fault = storage_fault(exc)
            if fault is not None:
                raise fault from exc
            raise
    raise AssertionError("unreachable")


@contextmanager
def reading(engine: Engine, *, snapshot: bool = True) -> Iterator[Session]:
    """A read-only session (a deferred transaction on SQLite, so readers never wait for writers).

    snapshot=False: on SQLite, no transaction at all, each statement reads the latest commit; for
    a single statement, or statements that need not agree with each other (one BEGIN fewer)."""
    try:
        with Session(read_only(engine, snapshot=snapshot), expire_on_commit=False) as session:
            yield session
    except DBAPIError as exc:
        fault = storage_fault(exc)
        if fault is not None:
            raise fault from exc
        raise


def audit(
    session: Session,
    action: str,
    *,
    actor_id: int | None = None,
    project_id: int | None = None,
    item_id: int | None = None,
    later: list[dict] | None = None,
    **details,
) -> None:
    """Append one row to the audit log, inside the caller's transaction.

    With `later`, the row is collected there instead, for one :func:`audit_rows` call at the end
    of the transaction (a hot path that writes several rows).

    Inside a write, a row about an archived project is refused (with the whole transaction): every
    write service audits what it changed, so none can change an archived project (exports, which
    only read, and the archive actions themselves excepted)."""
    if project_id is not None and session.info.get("writing") and not action.startswith(_WHILE_ARCHIVED):
        checked = session.info.setdefault("writable", set())
        if project_id not in checked:
            archived, name = session.connection().execute(_ARCHIVED, {"project_id": project_id}).one()
            if archived is not None:
                raise Conflict(f"project {name!r} is archived and read-only; unarchive it first")
            checked.add(project_id)
    row = {
        "action": action,
        "actor_id": actor_id,
        "project_id": project_id,
        "item_id": item_id,
        "details": details,
        "at": utcnow(),
    }
    if later is not None:
        later.append(row)
    else:
        session.connection().execute(_AUDIT_INSERT, row)


def audit_rows(session: Session, rows: list[dict]) -> None:
    """Write collected audit rows in one statement."""
    if rows:
        session.connection().execute(_AUDIT_INSERT, rows)


_AUDIT_INSERT = insert(AuditLog)
_ARCHIVED = select(col(Project.archived_at), col(Project.name)).where(col(Project.id) == bindparam("project_id"))
_WHILE_ARCHIVED = ("export.", "project.archive", "project.unarchive")
