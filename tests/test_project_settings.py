"""Project settings from the command line (issue 14, deliverables 1 and 6), on SQLite and PostgreSQL:
update (overlap, strategy, labels, settings), archive, unarchive, delete, and re-import with
--on-duplicate. Each action runs through `workbench.cli.main` against the test database; its
effect is then read back through the services and the tables."""

from __future__ import annotations

import json
import zipfile

import pytest
from sqlalchemy import delete, func, select
from sqlmodel import Session

from tests.helpers import add_items, annotators
from workbench.cli import main
from workbench.db.models import Annotation, AuditLog, DatasetVersionItem, Item, ProjectLabel
from workbench.domain import Actor, ItemState
from workbench.errors import Conflict, WorkbenchError

OP = Actor.operator()


def cli(capsys, db_url, *argv) -> tuple[int, str, str]:
    code = main(["--database-url", db_url, *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(wb, engine):
    info = wb.projects.create("p", "text", ["spam", "ham"], overlap=2, strategy="margin", actor=OP)
    add_items(engine, info.id, 6)
    return info


def actions(engine, project_id: int) -> list[str]:
    with Session(engine) as session:
        return list(
            session.execute(
                select(AuditLog.action).where(AuditLog.project_id == project_id).order_by(AuditLog.id)
            ).scalars()
        )


def label_both(wb, a, b, label_a: str, label_b: str | None = None):
    """Two annotators label the same item (the first one a claims)."""
    first = wb.queue.claim("p", actor=a)
    wb.queue.submit(first.lease_id, label_a, actor=a)
    second = wb.queue.claim("p", actor=b)
    assert second.item_id == first.item_id  # partial items are completed first
    wb.queue.submit(second.lease_id, label_b or label_a, actor=b)
    return first.item_id


def test_update_makes_every_change_in_one_go_and_audits_each(db_url, capsys, wb, engine, project):
    code, out, err = cli(
        capsys, db_url, "project", "update", "p", "--overlap", "3", "--strategy", "entropy",
        "--add-label", "eggs", "--retire-label", "ham", "--rename-label", "spam=junk",
        "--settings", '{"lease_ttl_s": 900, "min_dwell_ms": 300, "random_share": 0.1, "eval_fraction": 0.1}',
    )  # fmt: skip
    assert code == 0, err
    assert "p: label spam renamed to junk" in out and "p: overlap 2 -> 3" in out and "lease_ttl_s: 600 -> 900" in out
    info = wb.projects.get("p", actor=OP)
    assert info.labels == ("junk", "ham", "eggs") and info.retired == ("ham",) and info.offered == ("junk", "eggs")
    assert info.renamed == (("spam", "junk"),)
    assert (info.overlap, info.strategy) == (3, "entropy")
    assert {k: info.settings[k] for k in ("lease_ttl_s", "min_dwell_ms", "random_share", "eval_fraction")} == {
        "lease_ttl_s": 900, "min_dwell_ms": 300, "random_share": 0.1, "eval_fraction": 0.1,
    }  # fmt: skip
    assert actions(engine, project.id)[-6:] == [
        "project.label.rename", "project.label.add", "project.label.retire",
        "project.overlap", "project.strategy", "project.settings",
    ]  # fmt: skip
    rows = {r.name: r.status for r in wb.project_settings.labels("p", actor=OP)}
    assert rows == {"spam": "renamed to junk", "junk": "offered", "ham": "retired", "eggs": "offered"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--settings", '{"lease_ttl": 5}'], "unknown project setting(s): lease_ttl"),
        (["--settings", '{"lease_ttl_s": "soon"}'], "lease_ttl_s must be a whole number within 30..86400"),
        (["--settings", '{"min_dwell_ms": 9000}'], "min_dwell_ms must be within 0..5000"),
        (["--settings", '{"random_share": 1.5}'], "random_share must be within 0..1"),
        (["--settings", '{"eval_fraction": true}'], "eval_fraction must be a number"),
        (["--settings", "{oops"], "--settings is not JSON"),
        (["--settings", '{"image_root": "/"}'], "image_root cannot be changed"),
        (["--strategy", "bald"], "strategy 'bald' needs MC-dropout samples"),
        (["--strategy", "no_such"], "unknown strategy 'no_such'"),
        (["--overlap", "0"], "overlap must be a whole number from 1 to 10"),
        (["--rename-label", "spam"], "a rename is OLD=NEW"),
        (["--rename-label", "spam=ham"], "'ham' is already a label"),
        (["--retire-label", "nope"], "'p' has no label 'nope'"),
        (["--add-label", "ham"], "label 'ham' is already a label"),
        ([], "nothing to change"),
    ],
)
def test_bad_updates_are_refused_in_one_line_and_write_nothing(db_url, capsys, wb, engine, project, argv, message):
    before = (wb.projects.get("p", actor=OP), len(actions(engine, project.id)))
    code, out, err = cli(capsys, db_url, "project", "update", "p", "--add-label", "fine", *argv)
    if not argv:  # only --add-label: that works; "nothing to change" is the bare command
        assert code == 0
        code, out, err = cli(capsys, db_url, "project", "update", "p")
        before = (wb.projects.get("p", actor=OP), len(actions(engine, project.id)))
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err
    assert (wb.projects.get("p", actor=OP), len(actions(engine, project.id))) == before


def test_the_strategy_choice_is_what_the_model_can_serve(wb, project):
    names = wb.project_settings.strategies("p", actor=OP)
    assert "margin" in names and "entropy" in names and "bald" not in names
    wb.project_settings.update("p", settings={"model": {"type": "mlp", "dropout": 0.2}}, actor=OP)
    assert "bald" in wb.project_settings.strategies("p", actor=OP)


def test_a_retired_label_keeps_its_history_and_is_no_longer_offered(db_url, capsys, wb, engine, project):
    a, b, r = *annotators(wb, 2), annotators(wb, 1, role="reviewer", prefix="rev")[0]
    agreed = label_both(wb, a, b, "ham")
    split = label_both(wb, a, b, "ham", "spam")
    code, out, _ = cli(capsys, db_url, "project", "update", "p", "--retire-label", "ham")
    assert code == 0 and "kept: 3 annotations, 1 final labels" in out
    with Session(engine) as session:
        assert session.get(Item, agreed).final_label == "ham"
        assert session.execute(select(func.count()).where(Annotation.label == "ham")).scalar_one() == 3
    claim = wb.queue.claim("p", actor=a)
    assert claim.labels == ("spam",)
    with pytest.raises(WorkbenchError, match="label 'ham' is retired"):
        wb.queue.submit(claim.lease_id, "ham", actor=a)
    with pytest.raises(WorkbenchError, match="label 'ham' is retired"):
        wb.review.adjudicate(split, "label", label="ham", reason="x", actor=r)
    code, out, _ = cli(capsys, db_url, "project", "update", "p", "--add-label", "ham")
    assert code == 0 and "label ham offered again" in out
    assert wb.projects.get("p", actor=OP).offered == ("spam", "ham")


def test_a_rename_keeps_versions_as_cut_and_agreement_across_it(db_url, capsys, wb, engine, project):
    a, b = annotators(wb, 2)
    label_both(wb, a, b, "spam")
    version = wb.versions.create("p", actor=OP)
    half = wb.queue.claim("p", actor=a)  # one label before the rename, one after
    wb.queue.submit(half.lease_id, "spam", actor=a)
    code, out, err = cli(capsys, db_url, "project", "update", "p", "--rename-label", "spam=junk")
    assert code == 0, err
    assert "3 annotations and 1 final labels now read junk; dataset versions keep spam" in out
    other = wb.queue.claim("p", actor=b)
    assert other.item_id == half.item_id and other.labels == ("junk", "ham")
    assert wb.queue.submit(other.lease_id, "junk", actor=b).item_state == ItemState.FINAL  # agrees with "spam"
    with Session(engine) as session:
        kept = (
            session.execute(select(DatasetVersionItem.label).where(DatasetVersionItem.version_id == version.id))
            .scalars()
            .all()
        )
        assert kept == ["spam"]
        assert session.get(Item, half.item_id).final_label == "junk"
        old = session.get(ProjectLabel, (project.id, "spam"))
        assert old.renamed_to == "junk" and old.retired_at is not None
        details = session.execute(
            select(AuditLog.details).where(AuditLog.action == "project.label.rename")
        ).scalar_one()
    assert details["old"] == "spam" and details["new"] == "junk" and details["rewritten"]["annotations"] == 3
    with pytest.raises(WorkbenchError, match="label 'spam' was renamed to 'junk'"):
        wb.queue.submit(wb.queue.claim("p", actor=a).lease_id, "spam", actor=a)


def test_overlap_applies_to_items_not_yet_complete(db_url, capsys, wb, engine, project):
    a, b, c = annotators(wb, 3)
    done = label_both(wb, a, b, "spam")
    code, _, _ = cli(capsys, db_url, "project", "update", "p", "--overlap", "3")
    assert code == 0
    with Session(engine) as session:
        assert session.get(Item, done).state == ItemState.FINAL  # complete items stay as they are
    waiting = label_both(wb, a, b, "ham")
    with Session(engine) as session:
        assert session.get(Item, waiting).state == ItemState.OPEN  # two labels are no longer enough
    code, out, _ = cli(capsys, db_url, "project", "update", "p", "--overlap", "2")
    assert code == 0 and "(1 open items compared at once)" in out
    with Session(engine) as session:
        item = session.get(Item, waiting)
        assert (item.state, item.final_label) == (ItemState.FINAL, "ham")
    del c


def test_archive_makes_the_project_read_only_and_hides_it(db_url, capsys, wb, engine, project, tmp_path):
    a = annotators(wb, 1)[0]
    held = wb.queue.claim("p", actor=a)
    code, out, _ = cli(capsys, db_url, "project", "archive", "p")
    assert code == 0 and "archived p" in out
    assert [p.name for p in wb.projects.list(actor=a)] == []
    assert [p.name for p in wb.projects.list(actor=OP)] == ["p"]
    file = tmp_path / "more.csv"
    file.write_text("id,text\nn1,a new text\n")
    refusals = [
        lambda: wb.queue.claim("p", actor=a),
        lambda: wb.queue.submit(held.lease_id, "spam", actor=a),
        lambda: wb.project_settings.update("p", overlap=3, actor=OP),
        lambda: wb.guidelines.update("p", "# rules", actor=OP),
        lambda: wb.versions.create("p", actor=OP),
        lambda: wb.imports.run("p", file, actor=OP),
    ]
    for refused in refusals:
        with pytest.raises(WorkbenchError) as exc:
            refused()
        assert "archived" in str(exc.value) or "expired" in str(exc.value), exc.value
    code, _, err = cli(capsys, db_url, "project", "update", "p", "--overlap", "3")
    assert code == 1 and err.strip() == "workbench: error: project 'p' is archived and read-only; unarchive it first"
    assert wb.exports.items("p", "csv", tmp_path / "still.csv", actor=OP).rows == 6  # reading still works
    code, _, _ = cli(capsys, db_url, "project", "unarchive", "p")
    assert code == 0 and wb.queue.claim("p", actor=a) is not None
    assert actions(engine, project.id).count("project.archive") == 1


def test_delete_exports_everything_then_deletes_every_row(db_url, capsys, wb, engine, project, tmp_path):
    other = wb.projects.create("other", "text", ["x", "y"], actor=OP)
    add_items(engine, other.id, 3)
    a, b, r = *annotators(wb, 2), annotators(wb, 1, role="reviewer", prefix="rev")[0]
    label_both(wb, a, b, "spam")
    split = label_both(wb, a, b, "spam", "ham")
    wb.review.adjudicate(split, "label", label="ham", reason="reads like a friend", actor=r)
    wb.versions.create("p", actor=OP)
    out_zip = tmp_path / "p-export.zip"
    code, _, err = cli(capsys, db_url, "project", "delete", "p", "--confirm", "P", "--export-to", str(out_zip))
    assert code == 1 and "type the project's name again" in err and not out_zip.exists()
    job = wb.jobs.enqueue("p", "retrain", actor=OP)
    code, _, err = cli(capsys, db_url, "project", "delete", "p", "--confirm", "p", "--export-to", str(out_zip))
    assert code == 1 and f"job {job.id} (retrain) is queued" in err and not out_zip.exists()
    wb.jobs.fail(job.id, "not needed", actor=OP)
    code, out, err = cli(capsys, db_url, "project", "delete", "p", "--confirm", "p", "--export-to", str(out_zip))
    assert code == 0, err
    assert f"exported p to {out_zip}" in out and "deleted p:" in out
    with zipfile.ZipFile(out_zip) as archive:
        names = set(archive.namelist())
        assert {"items.jsonl", "annotations.jsonl", "adjudications.jsonl", "version-1.jsonl", "project.json"} <= names
        assert len(archive.read("items.jsonl").splitlines()) == 6
        assert len(archive.read("annotations.jsonl").splitlines()) == 4
        adjudication = json.loads(archive.read("adjudications.jsonl").splitlines()[0])
        assert adjudication["label"] == "ham" and adjudication["reason"] == "reads like a friend"
        meta = json.loads(archive.read("project.json"))
        assert meta["project"] == "p" and "project.create" in {a["action"] for a in meta["audit_log"]}
    assert [p.name for p in wb.projects.list(actor=OP)] == ["other"]
    with Session(engine) as session:
        assert (
            session.execute(select(func.count()).select_from(Item).where(Item.project_id == project.id)).scalar_one()
            == 0
        )
        assert session.execute(select(func.count()).select_from(DatasetVersionItem)).scalar_one() == 0
        record = session.execute(select(AuditLog).where(AuditLog.action == "project.delete")).scalar_one()
        assert record.project_id is None and record.details["export"] == str(out_zip)
    assert len(actions(engine, other.id)) == 1  # the other project's history is untouched
    with pytest.raises(Exception, match="append-only"), Session(engine) as session, session.begin():
        session.execute(delete(AuditLog).where(AuditLog.project_id == other.id))  # still guarded


def test_reimport_with_skip_leaves_same_rows_alone_and_refuses_changed_ones(db_url, capsys, wb, project, tmp_path):
    first = tmp_path / "first.csv"
    first.write_text("id,text\na,one text\nb,two text\nc,three text\n")
    assert cli(capsys, db_url, "import", "p", str(first), "--no-progress")[0] == 0
    again = tmp_path / "again.csv"
    again.write_text("id,text\na,one text\nb,two text\nd,four text\ne,five text\n")
    code, _, err = cli(capsys, db_url, "import", "p", str(again), "--no-progress")
    assert code == 1 and "import refused (2 bad row(s); row 1 (line 2): duplicate id: id 'a'" in err
    code, out, err = cli(capsys, db_url, "import", "p", str(again), "--no-progress", "--on-duplicate", "skip")
    assert code == 0, err
    assert "imported 2 items" in out
    assert [line for line in out.splitlines() if "left alone" in line] == [
        "2 rows left alone: their id is already in the project with the same content"
    ]
    assert wb.projects.progress("p", actor=OP).total() == 6 + 5
    changed = tmp_path / "changed.csv"
    changed.write_text("id,text\na,one text\nb,CHANGED\nc,ALSO CHANGED\nf,six text\n")
    code, out, err = cli(capsys, db_url, "import", "p", str(changed), "--no-progress", "--on-duplicate", "skip")
    assert code == 1
    assert "row 2 (line 3): duplicate id: id 'b' is already in the project" in out and "with other content" in out
    assert "row 3 (line 4): duplicate id: id 'c'" in out
    assert wb.projects.progress("p", actor=OP).total() == 11  # nothing written


def test_archive_and_delete_are_refused_to_annotators(wb, project):
    a = annotators(wb, 1)[0]
    for call in (
        lambda: wb.project_settings.archive("p", actor=a),
        lambda: wb.project_settings.delete("p", confirm="p", actor=a),
        lambda: wb.project_settings.update("p", overlap=3, actor=a),
    ):
        with pytest.raises(WorkbenchError, match="needs the admin role"):
            call()
    with pytest.raises(Conflict, match="not archived"):
        wb.project_settings.unarchive("p", actor=OP)
