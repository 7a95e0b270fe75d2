"""Backup while annotators submit, then restore into an empty home: every annotation acknowledged
before the backup started is there, the model/feature files match, temporaries are left out."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import select
from sqlmodel import Session

from tests.helpers import add_items, annotators
from workbench.db.engine import make_engine
from workbench.db.models import Annotation
from workbench.domain import Actor
from workbench.errors import WorkbenchError
from workbench.services.storage import backup, restore

OP = Actor.operator()


def _empty_target(db_url, request, tmp_path) -> str:
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'restored' / 'workbench.db'}"
    template = request.getfixturevalue("_pg_template")
    name = f"wb_restore_{uuid.uuid4().hex[:10]}"
    template._create(name)  # an empty database, no schema
    return template.url(name)


def test_backup_during_submits_restores_every_acknowledged_annotation(wb, db_url, home, tmp_path, request, monkeypatch):
    info = wb.projects.create("b", "text", ["x", "y"], actor=Actor.operator())
    add_items(wb.engine, info.id, 3000)
    people = annotators(wb, 4)
    (home / "artifacts").mkdir()
    (home / "artifacts" / "model-00000000000000aa.skops").write_bytes(b"model bytes")
    (home / "artifacts" / ".model-00000000000000bb.skops.x.tmp").write_bytes(b"half")
    (home / "features").mkdir()
    (home / "features" / "abc.npy").write_bytes(b"features")

    acked: list[tuple[int, float]] = []  # (annotation id, when its submit returned)
    stop = threading.Event()
    errors: list[BaseException] = []

    def label(actor):
        try:
            while not stop.is_set():
                claim = wb.queue.claim("b", actor=actor)
                if claim is None:
                    return
                result = wb.queue.submit(claim.lease_id, "x", actor=actor)
                acked.append((result.annotation_id, time.monotonic()))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=label, args=(person,)) for person in people]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    started = time.monotonic()
    report = backup(wb.engine, tmp_path / "wb.backup", actor=OP, home=home)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors
    before = {annotation for annotation, at in acked if at < started}
    assert len(before) > 10 and len(acked) > len(before)  # submits went on before, during and after
    assert report.files == 2 and not (tmp_path / ".wb.backup.part").exists()

    new_home = tmp_path / "restored"
    new_home.mkdir()
    monkeypatch.setenv("WORKBENCH_HOME", str(new_home))
    target = _empty_target(db_url, request, tmp_path)
    restored = restore(report.path, actor=OP, home=new_home, database_url=target)
    assert restored.files == 2
    assert (new_home / "artifacts" / "model-00000000000000aa.skops").read_bytes() == b"model bytes"
    assert (new_home / "features" / "abc.npy").read_bytes() == b"features"
    assert not list((new_home / "artifacts").glob("*.tmp"))
    engine = make_engine(target)
    try:
        with Session(engine) as session:
            present = set(session.execute(select(Annotation.id)).scalars())
    finally:
        engine.dispose()
    assert before <= present, f"{len(before - present)} acknowledged annotations missing"
    assert present <= {annotation for annotation, _ in acked}  # nothing invented


def test_restore_refuses_a_home_that_is_not_empty_and_a_damaged_file(wb, home, tmp_path, db_url):
    report = backup(wb.engine, tmp_path / "wb.backup", actor=OP, home=home)
    if db_url.startswith("sqlite"):
        with pytest.raises(WorkbenchError, match="already exists"):  # the home is empty, the database is not
            restore(report.path, actor=OP, home=home, database_url=db_url)
    else:
        with pytest.raises(WorkbenchError, match="database is not empty"):
            restore(report.path, actor=OP, home=home, database_url=db_url)
    (home / "artifacts").mkdir()
    with pytest.raises(WorkbenchError, match="home folder 'home' is not empty"):
        restore(report.path, actor=OP, home=home, database_url=db_url)
    (tmp_path / "junk").write_bytes(b"not a tar file")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WorkbenchError, match="cannot read backup"):
        restore(tmp_path / "junk", actor=OP, home=empty, database_url=f"sqlite:///{empty / 'w.db'}")


def test_backup_of_postgres_without_pg_dump_says_so(_pg_template, home, tmp_path, monkeypatch):
    engine = make_engine(_pg_template.fresh())
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump on the path
    try:
        with pytest.raises(WorkbenchError, match="pg_dump is not installed"):
            backup(engine, tmp_path / "wb.backup", actor=OP, home=home)
    finally:
        engine.dispose()
    assert not (tmp_path / "wb.backup").exists()


def test_backup_and_restore_commands(db_url, home, tmp_path, capsys, monkeypatch, request):
    from workbench.cli import main

    out = tmp_path / "cmd.backup"
    assert main(["--database-url", db_url, "backup", "--out", str(out)]) == 0
    assert "backup written to" in capsys.readouterr().out
    new_home = tmp_path / "h2"
    new_home.mkdir()
    monkeypatch.setenv("WORKBENCH_HOME", str(new_home))
    target = _empty_target(db_url, request, tmp_path)
    assert main(["--database-url", target, "restore", str(out)]) == 0
    assert "restored" in capsys.readouterr().out
    assert main(["--database-url", target, "restore", str(out)]) == 1  # the home is no longer empty
    err = capsys.readouterr().err
    assert err.startswith("workbench: error: ") and ("already exists" in err or "not empty" in err), err


def test_sweep_command(db_url, home, capsys):
    import os
    import time as _time

    from workbench.cli import main

    (home / "artifacts").mkdir()
    orphan = home / "artifacts" / "model-00000000000000cc.skops"
    orphan.write_bytes(b"z" * 2000)
    old = _time.time() - 7200
    os.utime(orphan, (old, old))
    assert main(["--database-url", db_url, "sweep", "--dry-run"]) == 0
    assert "would remove 1 unreferenced model file(s)" in capsys.readouterr().out and orphan.exists()
    assert main(["--database-url", db_url, "sweep"]) == 0
    assert "removed 1 unreferenced" in capsys.readouterr().out and not orphan.exists()
