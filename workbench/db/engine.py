"""Engines for SQLite and PostgreSQL, with the connection settings every session relies on.

SQLite: WAL, busy_timeout, foreign keys, and BEGIN IMMEDIATE for write transactions (a deferred
transaction that reads then writes fails at once with "database is locked", ignoring the busy
timeout). Read-only sessions begin DEFERRED so readers never queue behind writers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from workbench.config import database_url

SQLITE_BUSY_TIMEOUT_MS = 10_000
READ_ONLY = "workbench_read_only"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):  # noqa: ANN001
        # Take transaction control from the driver so the "begin" hook decides the mode.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):  # noqa: ANN001
        mode = "DEFERRED" if connection.get_execution_options().get(READ_ONLY) else "IMMEDIATE"
        connection.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str | None = None, *, migrate: bool = True, **kwargs) -> Engine:
    """An engine for `url` (default: the configured database), migrated to the newest schema."""
    url = database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_engine(url, **kwargs)
    if migrate:
        from workbench.db.migrate import upgrade

        upgrade(engine)
    return engine


def read_only(engine: Engine) -> Engine:
    """The same engine, but its transactions begin DEFERRED on SQLite (for sessions that only read)."""
    return engine.execution_options(**{READ_ONLY: True})


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


class _WriteGate:
    """An inter-process write gate for one SQLite file: a thread lock plus flock on a side file.

    SQLite's busy handler polls with growing sleeps (1, 2, 5, 10, ... ms), which turns a brief
    collision between writers into a long tail. Waiting on flock instead wakes the next writer
    the moment the previous one is done. BEGIN IMMEDIATE and busy_timeout remain the safety net
    for writers that do not take the gate.
    """

    def __init__(self, database: str) -> None:
        self.thread_lock = threading.Lock()
        self.fd = os.open(f"{database}-writegate", os.O_RDWR | os.O_CREAT, 0o600)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self.thread_lock:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)


_GATES: dict[str, _WriteGate] = {}
_GATES_LOCK = threading.Lock()
os.register_at_fork(after_in_child=_GATES.clear)  # a child must not share the parent's lock file


def write_gate(engine: Engine) -> contextlib.AbstractContextManager[None]:
    """Hold this while a write transaction runs (a no-op except on file-backed SQLite)."""
    database = engine.url.database if is_sqlite(engine) else None
    if not database or database == ":memory:":
        return contextlib.nullcontext()
    with _GATES_LOCK:
        gate = _GATES.get(database) or _GATES.setdefault(database, _WriteGate(database))
    return gate.held()
