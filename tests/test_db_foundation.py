"""The schema's invariants hold in the database itself, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, select

from workbench.db.engine import make_engine
from workbench.db.migrate import current_revision, head_revision, upgrade
from workbench.db.models import Annotation, AuditLog, Item, Lease, User, utcnow
from workbench.domain import Actor
from workbench.errors import Conflict, PermissionDenied, WorkbenchError


def _project(wb):
    return wb.projects.create("p", "text", ["pos", "neg"], actor=Actor.operator())


def _item(session, project_id, external_id="a"):
    item = Item(project_id=project_id, external_id=external_id, content={"text": "hello"})
    session.add(item)
    session.flush()
    return item


def test_sqlite_connection_settings(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlite_write_transactions_begin_immediate(tmp_path):
    """A second writer waits for the lock instead of failing on its first write."""
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as first:
        first.execute(text("SELECT 1"))
        # The first connection holds the RESERVED lock from its BEGIN IMMEDIATE onwards:
        other = engine.raw_connection()
        other.driver_connection.execute("PRAGMA busy_timeout=50")
        with pytest.raises(Exception, match="locked"):
            other.driver_connection.execute("BEGIN IMMEDIATE")
        other.close()


def test_migrations_reach_head_and_are_idempotent(db_url):
    engine = make_engine(db_url)
    assert current_revision(engine) == head_revision()
    upgrade(engine)  # a second run is a no-op
    assert current_revision(engine) == head_revision()


def test_unique_external_id_per_project(wb):
    project = _project(wb)
    with pytest.raises(IntegrityError), Session(wb.engine) as session, session.begin():
        _item(session, project.id, "same")
        _item(session, project.id, "same")


def test_label_must_belong_to_label_set(wb):
    project = _project(wb)
    with pytest.raises(IntegrityError), Session(wb.engine) as session, session.begin():
        item = _item(session, project.id)
        session.add(Annotation(project_id=project.id, item_id=item.id, source="import", label="maybe"))
        session.flush()


def test_unique_item_annotator_and_slot(wb):
    project = _project(wb)
    user = wb.users.add("ann", "annotator", "correct horse", actor=Actor.operator())
    with Session(wb.engine) as session, session.begin():
        item = _item(session, project.id)
        leases = []
        for slot in (1, 2):
            lease = Lease(
                project_id=project.id,
                item_id=item.id,
                annotator_id=user.id,
                slot=slot,
                state="submitted",
                reason="ranked",
                expires_at=utcnow(),
            )
            session.add(lease)
            leases.append(lease)
        session.flush()
        session.add(
            Annotation(
                project_id=project.id, item_id=item.id, annotator_id=user.id, slot=1, lease_id=leases[0].id, label="pos"
            )
        )
        session.flush()
        item_id, second_lease = item.id, leases[1].id
    with pytest.raises(IntegrityError), Session(wb.engine) as session, session.begin():
        session.add(
            Annotation(
                project_id=project.id, item_id=item_id, annotator_id=user.id, slot=2, lease_id=second_lease, label="neg"
            )
        )


def test_audit_log_is_append_only(wb):
    _project(wb)
    with pytest.raises(DBAPIError, match="append-only"), Session(wb.engine) as session, session.begin():
        session.execute(text("UPDATE audit_log SET action = 'forged'"))
    with pytest.raises(DBAPIError, match="append-only"), Session(wb.engine) as session, session.begin():
        session.execute(text("DELETE FROM audit_log"))
    with Session(wb.engine) as session:
        rows = session.exec(select(AuditLog).where(AuditLog.action == "project.create")).all()
    assert len(rows) == 1


def test_passwords_are_hashed_with_argon2(wb):
    wb.users.add("alice", "admin", "s3cret-passphrase", actor=Actor.operator())
    with Session(wb.engine) as session:
        stored = session.exec(select(User).where(User.name == "alice")).one().password_hash
    assert stored.startswith("$argon2id$") and "s3cret" not in stored
    assert wb.users.authenticate("alice", "s3cret-passphrase").role == "admin"
    with pytest.raises(PermissionDenied):
        wb.users.authenticate("alice", "wrong-password")


def test_repeated_failed_sign_ins_lock_the_account(wb):
    wb.users.add("bob", "annotator", "right-password", actor=Actor.operator())
    for _ in range(4):
        with pytest.raises(PermissionDenied, match="wrong password"):
            wb.users.authenticate("bob", "nope-nope")
    with pytest.raises(PermissionDenied, match="try again in"):
        wb.users.authenticate("bob", "right-password")


def test_user_and_project_validation(wb):
    with pytest.raises(WorkbenchError, match="at least 12"):
        wb.users.add("c", "annotator", "short", actor=Actor.operator())
    with pytest.raises(WorkbenchError, match="unknown role"):
        wb.users.add("c", "boss", "long enough", actor=Actor.operator())
    with pytest.raises(WorkbenchError, match="duplicate labels"):
        wb.projects.create("q", "text", ["a", "a"], actor=Actor.operator())
    _project(wb)
    with pytest.raises(Conflict):
        _project(wb)


def test_featurizer_settings_are_checked_when_set_not_at_the_first_round(wb):
    with pytest.raises(WorkbenchError, match="unknown text method 'word2vec'"):
        wb.projects.create(
            "f", "text", ["a", "b"], settings={"featurizer": {"method": "word2vec"}}, actor=Actor.operator()
        )
    with pytest.raises(WorkbenchError, match="bad tabular featurizer parameters"):
        wb.projects.create("f", "tabular", ["a", "b"], settings={"featurizer": {"side": 8}}, actor=Actor.operator())
    assert [p.name for p in wb.projects.list(actor=Actor.operator())] == []  # nothing was created
    wb.projects.create("f", "image", ["a", "b"], settings={"featurizer": {"side": 16}}, actor=Actor.operator())
    with pytest.raises(WorkbenchError, match="must be an object"):
        wb.projects.update_settings("f", featurizer="pixels", actor=Actor.operator())
    with pytest.raises(WorkbenchError, match="positive number of pixels"):
        wb.projects.update_settings("f", featurizer={"side": 0}, actor=Actor.operator())
    assert wb.projects.get("f", actor=Actor.operator()).settings["featurizer"] == {"side": 16}


def test_migrations_build_exactly_the_models_schema(engine):
    """A model change without a migration fails here, so older databases keep upgrading cleanly."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    def include(obj: object, name: str | None, kind: str, reflected: bool, compare_to: object) -> bool:
        # The search indexes are outside the models: SQLite's FTS5 tables, PostgreSQL's tsvector index.
        return not (name or "").startswith(("item_fts", "ix_item_text_tsv"))

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []


def test_an_empty_database_is_migrated_on_open(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}", migrate=False)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
