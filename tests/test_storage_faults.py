"""A full disk or a read-only database gives one line naming the cause, exit 1, and no partial state.

How the faults are made (tests run as root here, and root ignores file permissions):
- read-only SQLite: the file opened through SQLite's own `mode=ro` URI, and (as root) a read-only
  tmpfs mount holding the database, or (not root) a folder without write permission;
- read-only PostgreSQL: `default_transaction_read_only = on` for the test database;
- a full SQLite database: `PRAGMA max_page_count` on every connection, so the file cannot grow
  (SQLite then fails exactly as on a full disk: SQLITE_FULL, "database or disk is full").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from tests.test_ui_support import fast_hashing, ui_url  # noqa: F401 - fixtures
from workbench.db.engine import make_engine
from workbench.db.models import Annotation, Item
from workbench.domain import Actor, Role
from workbench.errors import StorageError, storage_fault
from workbench.services import Workbench

if TYPE_CHECKING:
    import sqlite3

ROOT = Path(__file__).resolve().parents[1]
OPERATOR = Actor.operator()


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=120,
    )


def _one_line(result: subprocess.CompletedProcess, needle: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and needle in lines[0], lines


def _csv(tmp_path: Path, n: int = 50, width: int = 10) -> Path:
    path = tmp_path / "items.csv"
    path.write_text("id,text\n" + "".join(f"{i},{'word ' * width}{i}\n" for i in range(n)))
    return path


def _setup(wb: Workbench, tmp_path: Path) -> None:
    wb.projects.create("p", "text", ["a", "b"], actor=OPERATOR)
    wb.users.add("ann", Role.ANNOTATOR, "annotator-password-1", actor=OPERATOR)
    assert wb.imports.run("p", _csv(tmp_path), actor=OPERATOR).ok


def _counts(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    with Session(engine) as session:
        items = session.execute(select(func.count()).select_from(Item)).scalar_one()
        annotations = session.execute(select(func.count()).select_from(Annotation)).scalar_one()
    engine.dispose()
    return items, annotations


def test_storage_fault_names_the_cause():
    import sqlite3

    full = storage_fault(sqlite3.OperationalError("database or disk is full"))
    assert full.cause == "full" and "full" in str(full) and "\n" not in str(full)
    assert storage_fault(sqlite3.OperationalError("attempt to write a readonly database")).cause == "read-only"
    assert storage_fault(OSError(28, "No space left on device")).cause == "full"
    assert storage_fault(OSError(30, "Read-only file system")).cause == "read-only"
    assert storage_fault(ValueError("a bug")) is None
    assert storage_fault(sqlite3.OperationalError("no such column: x")) is None


# -- read-only ------------------------------------------------------------------------------------
def test_sqlite_read_only_uri(tmp_path):
    path = tmp_path / "w.db"
    wb = Workbench(make_engine(f"sqlite:///{path}"))
    _setup(wb, tmp_path)
    ann = wb.users.authenticate("ann", "annotator-password-1")
    lease = wb.queue.claim("p", actor=ann)
    wb.engine.dispose()
    ro_url = f"sqlite:///file:{path}?mode=ro&uri=true"
    ro = Workbench(make_engine(ro_url))
    assert [p.name for p in ro.projects.list(actor=Actor.operator())] == ["p"]  # a plain read works on a read-only file
    with pytest.raises(StorageError, match="read-only") as info:
        ro.imports.run("p", _csv(tmp_path, 5), actor=OPERATOR)
    assert info.value.cause == "read-only"
    with pytest.raises(StorageError, match="read-only"):
        ro.queue.submit(lease.lease_id, "a", actor=ann)
    with pytest.raises(StorageError, match="read-only"):
        ro.queue.claim("p", actor=ann)
    ro.engine.dispose()
    assert _counts(f"sqlite:///{path}") == (50, 0)  # nothing was stored, the submit not acknowledged
    assert not (tmp_path / "file:").exists()  # the URI was not taken for a folder name

    _one_line(_cli("--database-url", ro_url, "import", "p", str(_csv(tmp_path, 5)), "--no-progress"), "read-only")
    listed = _cli("--database-url", ro_url, "project", "list")
    assert listed.returncode == 0 and "p" in listed.stdout


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder whose files cannot be written, even by root: a read-only tmpfs as root, else chmod."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        yield folder, lambda: folder.chmod(0o555)
        folder.chmod(0o755)
        return
    if (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("running as root, but cannot mount a tmpfs to make a read-only folder")
    try:
        yield folder, lambda: subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_sqlite_on_a_read_only_folder(tmp_path, read_only_folder):
    folder, make_read_only = read_only_folder
    built = tmp_path / "built.db"
    wb = Workbench(make_engine(f"sqlite:///{built}"))
    _setup(wb, tmp_path)
    wb.engine.dispose()  # the last close checkpoints the WAL into the file
    path = folder / "w.db"
    shutil.copyfile(built, path)  # (copied: this process keeps no file open on the mount)
    make_read_only()
    url = f"sqlite:///{path}"
    for args in (
        ["project", "list"],
        ["import", "p", str(_csv(tmp_path, 5)), "--no-progress"],
        ["retrain", "p"],
        ["version", "list", "p"],
    ):
        _one_line(_cli("--database-url", url, *args), "read-only")
    with pytest.raises(StorageError, match="read-only"):
        Workbench.open(url)


@pytest.fixture
def pg_url(_pg_template):
    return _pg_template.fresh()


@pytest.fixture
def pg_read_only(pg_url):
    db_url = pg_url
    name = make_url(db_url).database
    admin = create_engine(make_url(db_url).set(database="postgres"), isolation_level="AUTOCOMMIT")

    def switch(on: bool) -> None:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {"on" if on else "off"}'))

    yield switch
    switch(False)
    admin.dispose()


def test_postgres_read_only_transaction(pg_url, pg_read_only, tmp_path):
    db_url = pg_url
    wb = Workbench(make_engine(db_url))
    _setup(wb, tmp_path)
    ann = wb.users.authenticate("ann", "annotator-password-1")
    lease = wb.queue.claim("p", actor=ann)
    wb.engine.dispose()
    pg_read_only(True)
    ro = Workbench(make_engine(db_url))
    assert [p.name for p in ro.projects.list(actor=Actor.operator())] == ["p"]
    for call in (
        lambda: ro.imports.run("p", _csv(tmp_path, 5), actor=OPERATOR),
        lambda: ro.queue.submit(lease.lease_id, "a", actor=ann),
        lambda: ro.queue.claim("p", actor=ann),
    ):
        with pytest.raises(StorageError, match="read-only") as info:
            call()
        assert "\n" not in str(info.value)
    ro.engine.dispose()
    _one_line(_cli("--database-url", db_url, "import", "p", str(_csv(tmp_path, 5)), "--no-progress"), "read-only")
    pg_read_only(False)
    assert _counts(db_url) == (50, 0)


# -- full ---------------------------------------------------------------------------------------
def _cap_growth(engine, pages: int | None = None) -> None:
    """Every connection of `engine` may not grow the file past its size now (plus `pages`)."""

    @event.listens_for(engine, "connect")
    def cap(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        current = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count={current + (pages or 0)}")

    engine.dispose()  # drop pooled connections opened before the cap


def _fill(engine) -> None:
    """Use up the free pages too, so the next write of any size fails."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            while True:
                cursor.execute("INSERT INTO audit_log (action, details, at) VALUES ('filler', '{}', '2026-01-01')")
                raw.commit()
        except Exception as exc:
            assert "full" in str(exc)
            raw.rollback()
    finally:
        raw.close()


def test_sqlite_full_during_import_and_submit(tmp_path):
    path = tmp_path / "w.db"
    url = f"sqlite:///{path}"
    wb = Workbench(make_engine(url))
    _setup(wb, tmp_path)
    ann = wb.users.authenticate("ann", "annotator-password-1")
    lease = wb.queue.claim("p", actor=ann)
    _cap_growth(wb.engine, pages=4)
    with pytest.raises(StorageError, match="full") as info:
        wb.imports.run("p", _csv(tmp_path, 3000, width=40), actor=OPERATOR)
    assert info.value.cause == "full" and "\n" not in str(info.value)
    _fill(wb.engine)
    with pytest.raises(StorageError, match="full"):
        wb.queue.submit(lease.lease_id, "a", actor=ann)
    wb.engine.dispose()
    assert _counts(url) == (50, 0)  # no partial import; the submit was never stored


def test_cli_full_database_one_line(tmp_path):
    path = tmp_path / "w.db"
    url = f"sqlite:///{path}"
    wb = Workbench(make_engine(url))
    _setup(wb, tmp_path)
    wb.engine.dispose()
    big = _csv(tmp_path, 3000, width=40)
    # The CLI in a child process whose engines cannot grow the file (as on a full disk).
    script = textwrap.dedent("""
        import sys
        from sqlalchemy import event
        import workbench.db.engine as eng
        original = eng.make_engine
        def capped(*a, **k):
            engine = original(*a, **k)
            @event.listens_for(engine, "connect")
            def cap(conn, _r):
                n = conn.execute("PRAGMA page_count").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count={n + 4}")
            engine.dispose()
            return engine
        eng.make_engine = capped
        import workbench.services
        workbench.services.make_engine = capped
        from workbench.cli import main
        sys.exit(main(sys.argv[1:]))
    """)
    result = subprocess.run(
        [sys.executable, "-c", script, "--database-url", url, "import", "p", str(big), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    _one_line(result, "full")
    assert _counts(url) == (50, 0)


# -- the pages show the same sentence ----------------------------------------------------------------
def test_pages_show_the_storage_sentence_not_a_traceback(ui_url, monkeypatch, tmp_path):
    from tests.test_ui_support import PASSWORD, app, errors
    from workbench.ui import session

    wb = Workbench.open(ui_url)
    wb.users.add("ann", Role.ANNOTATOR, PASSWORD, actor=OPERATOR)
    wb.projects.create("p", "text", ["a", "b"], actor=OPERATOR)
    wb.engine.dispose()
    path = make_url(ui_url).database
    monkeypatch.setenv("WORKBENCH_DATABASE_URL", f"sqlite:///file:{path}?mode=ro&uri=true")
    session._open.clear()
    at = app()
    at.run()
    at.text_input(key="signin_name").input("ann")
    at.text_input(key="signin_password").input(PASSWORD)
    at.button[0].click().run()  # signing in writes (a session row): refused by the read-only file
    shown = errors(at)  # as the person reads them (markdown escapes undone)
    assert not at.exception
    assert any("read-only" in message for message in shown), shown
    assert not any("Traceback" in m or path in m for m in shown)
