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
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from workbench.config import database_url

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry

    from workbench.errors import StorageError

SQLITE_BUSY_TIMEOUT_MS = 10_000
READ_ONLY = "workbench_read_only"
PER_STATEMENT = "per_statement"  # a READ_ONLY value: no transaction, each statement reads on its own


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # Take transaction control from the driver so the "begin" hook decides the mode.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY)
        if read_only == PER_STATEMENT:
            return  # the driver is in autocommit mode: every statement is its own snapshot
        connection.exec_driver_sql(f"BEGIN {'DEFERRED' if read_only else 'IMMEDIATE'}")


def make_engine(url: str | None = None, *, migrate: bool = True, **kwargs) -> Engine:
    """An engine for `url` (default: the configured database), migrated to the newest schema."""
    url = database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed.database, parsed.query)
        if path is not None and not parsed.query.get("mode"):  # mode=ro/rw: never create anything
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                from workbench.errors import storage_fault

                fault = storage_fault(exc, "opening the database")
                if fault is None:
                    raise
                raise fault from exc
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_engine(url, **kwargs)
    if migrate:
        from workbench.db.migrate import upgrade

        try:
            upgrade(engine)
        except Exception as exc:
            fault = _open_fault(exc, engine)
            if fault is None:
                raise
            engine.dispose()
            raise fault from exc
    return engine


def _open_fault(exc: BaseException, engine: Engine) -> StorageError | None:
    """A StorageError for a database that cannot be opened or upgraded, naming why when it can
    be told (a read-only file system, a missing folder), else None (not a storage fault)."""
    from workbench.errors import StorageError, storage_fault

    fault = storage_fault(exc, "opening the database")
    if fault is None or fault.cause != "cannot-open" or not is_sqlite(engine):
        return fault
    path = sqlite_path(engine.url.database, engine.url.query)
    if path is None:
        return fault
    folder = path.parent
    if not folder.is_dir():
        return StorageError(f"opening the database refused: its folder {folder.name!r} does not exist", "cannot-open")
    try:
        readonly_fs = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        readonly_fs = False
    if readonly_fs or not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return StorageError(
            "opening the database refused: the database is read-only (its file or folder "
            "cannot be written, and SQLite needs to write its -wal/-shm files beside it); "
            "nothing was stored: make the folder writable",
            "read-only",
        )
    return fault


def sqlite_path(database: str | None, query: dict | None = None) -> Path | None:
    """The file of a SQLite database name (plain path, or `file:` URI with uri=true), None for memory."""
    if not database or database == ":memory:":
        return None
    if database.startswith("file:") and (query or {}).get("uri") in ("true", "1", True):
        database = database[len("file:") :].split("?", 1)[0]
        if database.startswith("//"):  # file:///abs/path
            database = database[2:]
        if not database or database == ":memory:" or (query or {}).get("mode") == "memory":
            return None
    return Path(database)


def read_only(engine: Engine, *, snapshot: bool = True) -> Engine:
    """The same engine, but its transactions begin DEFERRED on SQLite (for sessions that only read).

    With snapshot=False, SQLite runs each statement on its own (no BEGIN): for reads whose
    statements need not see one instant, such as a page's independent counts. PostgreSQL is
    unchanged (its transactions begin implicitly, at no extra statement)."""
    return engine.execution_options(**{READ_ONLY: True if snapshot else PER_STATEMENT})


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
        try:
            self.fd: int | None = os.open(f"{database}-writegate", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:  # a read-only or full folder: writes will be refused by SQLite itself
            self.fd = None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        if self.fd is None:
            with self.thread_lock:
                yield
            return
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
    path = sqlite_path(engine.url.database, engine.url.query) if is_sqlite(engine) else None
    if path is None:
        return contextlib.nullcontext()
    database = str(path)
    with _GATES_LOCK:
        gate = _GATES.get(database) or _GATES.setdefault(database, _WriteGate(database))
    return gate.held()
