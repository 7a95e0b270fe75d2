"""Shared fixtures: a fresh, migrated database per test on SQLite and on PostgreSQL.

Tests that need what a fresh machine may lack (PostgreSQL, Chromium, ../shared) skip there with a
reason; under CI=true a skip fails the run instead.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, exists, inspect, literal, or_, select, text, true
from sqlalchemy.engine import make_url

from workbench.db.engine import make_engine

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"
PG_ADMIN_URL = os.environ.get("WORKBENCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"

# New text projects default to sentence embeddings when the package is installed (about 5 s to load
# the encoder, then tens of texts per second here). Tests that create text projects get TF-IDF unless
# they ask for embeddings (a project setting) or unset this (tests of the default itself); it is
# inherited by the CLI, worker and app processes tests start.
os.environ.setdefault("WORKBENCH_TEXT_FEATURIZER", "tfidf")
# After a round, a project with 200+ final labels queues the strategy advisor (a replay of about a
# minute). Tests of other things run rounds on such projects with `run_worker(once=True)`, which
# would run it too: here the default is off; the advisor's tests set the project setting.
os.environ.setdefault("WORKBENCH_ADVISOR_MIN_LABELS", "0")


def postgres_unavailable() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure means: not here
        return f"PostgreSQL not reachable at {make_url(PG_ADMIN_URL).render_as_string()}: {type(exc).__name__}"


def shared_dataset(name: str) -> Path:
    """A folder of ../shared/datasets, or a skip (a failure in CI) when it is absent."""
    path = SHARED_DATASETS / name
    if not path.is_dir():
        pytest.skip(f"../shared/datasets/{name} is not on this machine")
    return path


class _PostgresTemplate:
    """One migrated template database per test run; each test gets a copy (CREATE ... TEMPLATE)."""

    def __init__(self) -> None:
        self.admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        self.template = f"wb_tmpl_{uuid.uuid4().hex[:10]}"
        self.created: list[str] = []
        self._create(self.template)
        make_engine(self.url(self.template)).dispose()

    def _create(self, name: str, template: str | None = None) -> None:
        with self.admin.connect() as conn:
            suffix = f" TEMPLATE {template}" if template else ""
            conn.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
        self.created.append(name)

    def url(self, name: str) -> str:
        return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def fresh(self) -> str:
        name = f"wb_test_{uuid.uuid4().hex[:12]}"
        self._create(name, self.template)
        return self.url(name)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in reversed(self.created):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(autouse=True)
def _restore_main_module():
    """Streamlit's AppTest runs the app as ``__main__`` and leaves it there; a spawn-context process
    started later in the same session (stress annotators, round loops, simulation runs) would then
    re-run the app script as its main module and die before doing its work."""
    main = sys.modules.get("__main__")
    yield
    sys.modules["__main__"] = main


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "explicit_members: project membership is left to the test (no automatic enrolment)"
    )


_ENROL = {"on": True}


@pytest.fixture(scope="session", autouse=True)
def _enrolment():
    """Most tests predate project membership: in this process, every annotator and reviewer
    becomes a member of every project as either is created (as the 0014 migration did for
    existing databases), and follows a role change. Session-wide, so module fixtures that seed an
    app are covered too. Tests of membership itself opt out with @pytest.mark.explicit_members.
    Processes a test starts (CLI, app, worker) are not enrolled."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session as OrmSession

    from workbench.db.models import Project, ProjectMember, User, utcnow

    def enrol(session: OrmSession, _context: object) -> None:
        if not _ENROL["on"]:
            return
        projects = [o.id for o in session.new if isinstance(o, Project)]
        users = [o.id for o in session.new if isinstance(o, User)]
        changed = [
            o.id
            for o in session.dirty
            if isinstance(o, User) and o.role in ("annotator", "reviewer") and inspect(o).attrs.role.history.deleted
        ]
        if not (projects or users or changed):
            return
        conn = session.connection()
        if changed:
            conn.execute(
                ProjectMember.__table__.update()
                .where(ProjectMember.user_id.in_(changed))
                .values(role=select(User.role).where(User.id == ProjectMember.user_id).scalar_subquery())
            )
        pairs = (
            select(Project.id, User.id, User.role, literal(utcnow()))
            .select_from(Project)
            .join(User, true())
            .where(User.role.in_(["annotator", "reviewer"]))
            .where(or_(Project.id.in_(projects), User.id.in_(users)))
            .where(~exists().where(ProjectMember.project_id == Project.id, ProjectMember.user_id == User.id))
        )
        conn.execute(ProjectMember.__table__.insert().from_select(["project_id", "user_id", "role", "added_at"], pairs))

    event.listen(OrmSession, "after_flush", enrol)
    yield
    event.remove(OrmSession, "after_flush", enrol)


@pytest.fixture(autouse=True)
def _everyone_is_a_member(request):
    """Enrolment on (see _enrolment) unless the test is marked explicit_members."""
    _ENROL["on"] = not request.node.get_closest_marker("explicit_members")
    yield
    _ENROL["on"] = True


@pytest.fixture(scope="session")
def _pg_template():
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    template = _PostgresTemplate()
    yield template
    template.drop_all()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    make_engine(f"sqlite:///{path}").dispose()  # the last close checkpoints the WAL into the file
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path) -> str:
    """A fresh migrated database URL, once on SQLite (a real file) and once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "workbench.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        return f"sqlite:///{path}"
    return request.getfixturevalue("_pg_template").fresh()


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def wb(engine):
    from workbench.services import Workbench

    return Workbench(engine)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty WORKBENCH_HOME for the test."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("WORKBENCH_HOME", str(path))
    monkeypatch.delenv("WORKBENCH_DATABASE_URL", raising=False)
    return path


_skipped: list[str] = []


def pytest_runtest_logreport(report) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus) -> None:
    if IN_CI and _skipped:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter) -> None:
    if IN_CI and _skipped:
        terminalreporter.write_line(f"CI=true: {len(_skipped)} test(s) skipped; in CI nothing may skip:", red=True)
        for nodeid in _skipped:
            terminalreporter.write_line(f"  {nodeid}", red=True)
