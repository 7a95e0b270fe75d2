"""Import: every good file imports exactly, every bad file is refused whole with a row-numbered
reason and leaves the database as it was (on SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from workbench.cli import main
from workbench.db.models import Annotation, AuditLog, Item, Project
from workbench.domain import Actor, Role
from workbench.errors import PermissionDenied, WorkbenchError

CORPUS = Path(__file__).resolve().parent / "bad_files"
LABELS = ["pos", "neg"]
# What the three rows of every good text file hold.
EXPECTED = {
    "g1": ({"text": "Hello, world", "context": {"source": "web"}}, "pos"),
    "g2": ({"text": "Café über naïve — 日本語 🎉", "context": {"source": "mail"}}, "neg"),
    "g3": ({"text": 'She said "hi"', "context": {"source": "chat"}}, None),
}


def state(engine) -> dict:
    """Everything an import may touch, to compare before and after."""
    with Session(engine) as session:
        return {
            "items": session.exec(select(func.count()).select_from(Item)).one(),
            "annotations": session.exec(select(func.count()).select_from(Annotation)).one(),
            "audit": session.exec(select(func.count()).select_from(AuditLog)).one(),
            "settings": sorted((p.name, sorted(p.settings.items())) for p in session.exec(select(Project))),
        }


def items_of(engine, project_id: int) -> dict[str, Item]:
    with Session(engine) as session:
        return {i.external_id: i for i in session.exec(select(Item).where(Item.project_id == project_id))}


def prelabels_of(engine, project_id: int) -> dict[str, str]:
    with Session(engine) as session:
        rows = session.exec(
            select(Item.external_id, Annotation)
            .join(Annotation, Annotation.item_id == Item.id)
            .where(Item.project_id == project_id)
        ).all()
    for _, annotation in rows:
        assert (annotation.source, annotation.annotator_id, annotation.slot, annotation.lease_id) == (
            "import",
            None,
            None,
            None,
        )
    return {external_id: annotation.label for external_id, annotation in rows}


def cli(capsys, db_url: str, *argv: str) -> tuple[int, str]:
    code = main(["--database-url", db_url, *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


GOOD_TEXT_FILES = [
    "good.csv",
    "good_crlf.csv",
    "good_utf8_bom.csv",
    "good_utf16le.csv",
    "good_utf16be.csv",
    "good.tsv",
    "good.jsonl",
    "good.parquet",
]


def test_good_text_files_import_exactly(wb):
    """Every format and encoding (one database for all, one project per file: fast on PostgreSQL)."""
    for name in GOOD_TEXT_FILES:
        project = wb.projects.create(name, "text", LABELS, actor=Actor.operator())
        report = wb.imports.run(name, CORPUS / name, prelabel_col="label", seed=3, actor=Actor.operator())
        assert report.ok, (name, report.lines())
        assert (report.rows, report.imported, report.prelabels) == (3, 3, 2), name
        items = items_of(wb.engine, project.id)
        assert {key: item.content for key, item in items.items()} == {k: v[0] for k, v in EXPECTED.items()}, name
        assert prelabels_of(wb.engine, project.id) == {k: v[1] for k, v in EXPECTED.items() if v[1]}, name
        for item in items.values():  # prelabels are kept apart: no slot taken, nothing counted
            assert (item.state, item.slots_taken, item.n_annotations, item.final_label) == ("open", 0, 0, None)
            assert 0.0 <= item.random_key < 1.0 and item.split in ("pool", "eval")


def test_csv_details_multiline_row_numbers_and_no_id(wb):
    project = wb.projects.create("p", "text", LABELS, actor=Actor.operator())
    report = wb.imports.run("p", CORPUS / "good_multiline.csv", prelabel_col="label", actor=Actor.operator())
    assert report.ok and report.imported == 2
    items = items_of(wb.engine, project.id)
    assert items["m1"].content == {"text": "line one\nline two", "context": {"source": "web"}}
    assert items["m2"].content["text"] == 'a, b and "c"'
    # No id column (and none asked for): the 1-based row number is the external id.
    other = wb.projects.create("q", "text", LABELS, actor=Actor.operator())
    report = wb.imports.run(
        "q", CORPUS / "good_no_id.csv", prelabel_col="label", context_cols="", actor=Actor.operator()
    )
    assert report.ok, report.lines()
    assert sorted(items_of(wb.engine, other.id)) == ["1", "2", "3"]
    assert items_of(wb.engine, other.id)["2"].content == {"text": EXPECTED["g2"][0]["text"], "context": {}}
    # An id column asked for by name must exist.
    report = wb.imports.preview("q", CORPUS / "good_no_id.csv", id_col="id", actor=Actor.operator())
    assert not report.ok and "missing required column 'id'" in report.file_errors[0]


def test_tabular_types_and_missing_values(wb):
    project = wb.projects.create("t", "tabular", ["<=50K", ">50K"], actor=Actor.operator())
    report = wb.imports.run("t", CORPUS / "good_tabular.csv", prelabel_col="income", actor=Actor.operator())
    assert report.ok, report.lines()
    features = {k: i.content["features"] for k, i in items_of(wb.engine, project.id).items()}
    assert features["t1"] == {"age": 39, "color": "red", "zip": "02134", "score": 1.5}
    # '?', '' and NaN are null; zip codes keep their leading zeros (a code, not a number).
    assert features["t2"] == {"age": None, "color": "blue", "zip": "10001", "score": -2.0}
    assert features["t3"] == {"age": 51, "color": None, "zip": "02139", "score": None}
    assert features["t4"]["score"] == 300.0
    assert prelabels_of(wb.engine, project.id) == {"t1": ">50K", "t2": "<=50K", "t4": ">50K"}


def test_images_from_csv_and_root_saved(wb):
    project = wb.projects.create("img", "image", LABELS, actor=Actor.operator())
    report = wb.imports.run(
        "img", CORPUS / "good_images.csv", image_root=CORPUS / "images", prelabel_col="label", actor=Actor.operator()
    )
    assert report.ok, report.lines()
    items = items_of(wb.engine, project.id)
    assert {k: i.content for k, i in items.items()} == {
        "i1": {"image": "a.png"},
        "i2": {"image": "b.png"},
        "i3": {"image": "sub/c.png"},
    }
    assert wb.projects.get("img", actor=Actor.operator()).settings["image_root"] == str((CORPUS / "images").resolve())
    # A later import may not use a root outside the saved one.
    refused = wb.imports.preview(
        "img", CORPUS / "good_images.csv", image_root=CORPUS / "image_folder", actor=Actor.operator()
    )
    assert not refused.ok and "outside the project's image root" in refused.file_errors[0]


def test_image_folder_with_and_without_folder_prelabels(wb):
    project = wb.projects.create("img", "image", LABELS, actor=Actor.operator())
    report = wb.imports.run_folder("img", CORPUS / "image_folder", seed=1, actor=Actor.operator())
    assert report.ok and report.imported == 4 and report.prelabels == 0
    assert sorted(items_of(wb.engine, project.id)) == ["loose.png", "neg/n1.png", "pos/p1.png", "pos/p2.png"]
    assert items_of(wb.engine, project.id)["pos/p1.png"].content == {"image": "pos/p1.png"}

    other = wb.projects.create("img2", "image", LABELS, actor=Actor.operator())
    report = wb.imports.run_folder("img2", CORPUS / "image_folder", prelabel_from_folders=True, actor=Actor.operator())
    assert report.ok and report.prelabels == 3
    assert prelabels_of(wb.engine, other.id) == {"pos/p1.png": "pos", "pos/p2.png": "pos", "neg/n1.png": "neg"}

    wb.projects.create("img3", "image", LABELS, actor=Actor.operator())
    before = state(wb.engine)
    report = wb.imports.run_folder(
        "img3", CORPUS / "image_folder_bad_label", prelabel_from_folders=True, actor=Actor.operator()
    )
    assert not report.ok and report.errors[0].kind == "unknown label" and "'maybe'" in report.errors[0].message
    assert state(wb.engine) == before


# (file, project kind, extra CLI arguments, the reason, the row it names)
BAD_FILES = [
    ("ragged.csv", "text", [], "ragged row: has 5 fields, the header has 4", "row 2 (line 3)"),
    ("unknown_label.csv", "text", ["--prelabel-col", "label"], "unknown label: 'pos.'", "row 2 (line 3)"),
    ("empty_text.csv", "text", [], "empty text", "row 3 (line 4)"),
    ("duplicate_id.csv", "text", [], "id 'g1' is also in row 1, earlier in this file", "row 3 (line 4)"),
    ("duplicate_existing.csv", "text", [], "id 'g2' is already in the project", "row 2 (line 3)"),
    (
        "cp1252.csv",
        "text",
        [],
        "file is not UTF-8/UTF-16: looks like cp1252/latin-1 (row 3 has byte 0xe9",
        "row 3 (line 4): undecodable bytes",
    ),
    ("nul_byte.csv", "text", [], "NUL byte", "row 1 (line 2)"),
    ("utf16_no_bom.csv", "text", [], "looks like UTF-16-LE without a byte-order mark", "refused"),
    ("utf32.csv", "text", [], "UTF-32", "refused"),
    ("missing_column.csv", "text", [], "missing required column 'text'", "refused"),
    ("empty.csv", "text", [], "file is empty", "refused"),
    ("bad_json.jsonl", "text", [], "not valid JSON", "row 2 (line 2)"),
    (
        "image_missing.csv",
        "image",
        ["--image-root", str(CORPUS / "images")],
        "no image file 'nope.png'",
        "row 2 (line 3): image missing",
    ),
    (
        "image_absolute.csv",
        "image",
        ["--image-root", str(CORPUS / "images")],
        "is an absolute path",
        "row 1 (line 2): absolute image path",
    ),
    (
        "image_escapes.csv",
        "image",
        ["--image-root", str(CORPUS / "images")],
        "climbs out of the image root",
        "row 2 (line 3): image path escapes the root",
    ),
    (
        "image_symlink.csv",
        "image",
        ["--image-root", str(CORPUS / "images")],
        "symlink that leads out",
        "row 1 (line 2): image path escapes the root",
    ),
]


def test_bad_files_are_refused_whole(wb, db_url, capsys):
    """`workbench import` exits 1 naming the row and the reason; the database is unchanged (also
    with --dry-run). One database for all files, one project per file."""
    assert (CORPUS / "images" / "link_out.png").is_symlink(), "run tests/bad_files/make_corpus.py"
    for name, kind, extra, reason, where in BAD_FILES:
        wb.projects.create(name, kind, LABELS, actor=Actor.operator())
        if name == "duplicate_existing.csv":
            assert wb.imports.run(name, CORPUS / "good.csv", actor=Actor.operator()).ok
        before = state(wb.engine)
        for dry_run in ([], ["--dry-run"]):
            code, output = cli(capsys, db_url, "import", name, str(CORPUS / name), *extra, *dry_run)
            assert code == 1, (name, output)
            assert reason in output, (name, output)
            assert where in output, (name, output)
            assert "Traceback" not in output
            assert state(wb.engine) == before, name


def test_late_bad_row_rolls_back_every_batch(wb, tmp_path):
    """Batches already written when the bad row turns up are rolled back with it."""
    path = tmp_path / "late.csv"
    rows = [f"r{i},text {i},{'pos' if i % 2 else ''}" for i in range(1, 2500)] + ["r2500,,pos"]
    path.write_text("id,text,label\n" + "\n".join(rows) + "\n")
    wb.projects.create("p", "text", LABELS, actor=Actor.operator())
    before = state(wb.engine)
    report = wb.imports.run("p", path, prelabel_col="label", batch_size=100, actor=Actor.operator())
    assert not report.ok and report.n_errors == 1
    assert str(report.errors[0]) == "row 2500 (line 2501): empty text: text in column 'text' is empty"
    assert state(wb.engine) == before
    # A duplicate found many batches later names the earlier row's kind of clash.
    path.write_text("id,text\n" + "\n".join(f"r{i},t" for i in range(1, 501)) + "\nr7,again\n")
    report = wb.imports.run("p", path, batch_size=100, actor=Actor.operator())
    assert [str(e) for e in report.errors] == [
        "row 501 (line 502): duplicate id: id 'r7' is already used earlier in this file"
    ]
    assert state(wb.engine) == before


def test_error_list_is_capped_but_counted(wb, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("id,text\n" + "".join(f"{i},\n" for i in range(1, 3001)))
    wb.projects.create("p", "text", LABELS, actor=Actor.operator())
    report = wb.imports.preview("p", path, max_errors=50, actor=Actor.operator())
    assert report.n_errors == 3000 and len(report.errors) == 50 and report.error_counts == {"empty text": 3000}
    assert report.lines()[-1] == "... and 2950 more bad rows (only the first 50 are listed)"


def test_preview_writes_nothing_and_run_writes_an_audit_row(wb):
    wb.projects.create("p", "text", LABELS, actor=Actor.operator())
    before = state(wb.engine)
    preview = wb.imports.preview("p", CORPUS / "good.csv", prelabel_col="label", seed=5, actor=Actor.operator())
    assert preview.ok and preview.valid_rows == 3 and preview.imported == 0 and preview.dry_run
    assert [s["external_id"] for s in preview.sample] == ["g1", "g2", "g3"]
    assert state(wb.engine) == before
    report = wb.imports.run("p", CORPUS / "good.csv", prelabel_col="label", seed=5, actor=Actor.operator())
    assert (report.n_eval, report.n_pool) == (preview.n_eval, preview.n_pool)
    with Session(wb.engine) as session:
        row = session.exec(select(AuditLog).where(AuditLog.action == "import")).one()
    assert row.details["file"] == "good.csv" and row.details["sha256"] == report.sha256
    assert (row.details["items"], row.details["prelabels"], row.details["rows"]) == (3, 2, 3)
    assert row.details["seed"] == 5


def test_eval_fraction_is_roughly_right_and_seeded(wb, tmp_path):
    path = tmp_path / "many.csv"
    path.write_text("id,text\n" + "".join(f"x{i},text {i}\n" for i in range(2000)))
    a = wb.projects.create("a", "text", LABELS, actor=Actor.operator())
    b = wb.projects.create("b", "text", LABELS, settings={"eval_fraction": 0.3}, actor=Actor.operator())
    c = wb.projects.create("c", "text", LABELS, actor=Actor.operator())
    assert wb.imports.run("a", path, seed=11, eval_fraction=0.3, actor=Actor.operator()).ok
    report = wb.imports.run("b", path, seed=11, actor=Actor.operator())  # the project's own setting
    assert report.ok and report.eval_fraction == 0.3
    assert abs(report.n_eval - 600) < 80
    assert wb.imports.run("c", path, seed=12, eval_fraction=0.3, actor=Actor.operator()).ok
    items = {p.name: items_of(wb.engine, p.id) for p in (a, b, c)}
    same = [
        (items["a"][k].split, items["a"][k].random_key) == (items["b"][k].split, items["b"][k].random_key)
        for k in items["a"]
    ]
    assert all(same)  # same seed, same file: same split and keys
    assert sum(items["a"][k].split != items["c"][k].split for k in items["a"]) > 100
    keys = [i.random_key for i in items["a"].values()]
    assert min(keys) >= 0.0 and max(keys) < 1.0 and 0.45 < sum(keys) / len(keys) < 0.55


def test_progress_callback_reaches_the_end(wb, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("id,text\n" + "".join(f"x{i},text {i}\n" for i in range(3000)))
    wb.projects.create("p", "text", LABELS, actor=Actor.operator())
    calls = []
    assert wb.imports.run(
        "p", path, batch_size=500, progress=lambda done, total: calls.append((done, total)), actor=Actor.operator()
    ).ok
    assert len(calls) >= 6 and calls[-1] == (path.stat().st_size, path.stat().st_size)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_imports_need_the_admin_role_and_known_options(wb):
    wb.projects.create("p", "text", LABELS, actor=Actor.operator())
    user = wb.users.add("rev", "reviewer", "password-123", actor=Actor.operator())
    reviewer = Actor(id=user.id, name=user.name, role=Role.REVIEWER)
    with pytest.raises(PermissionDenied):
        wb.imports.run("p", CORPUS / "good.csv", actor=reviewer)
    with pytest.raises(WorkbenchError, match="unknown import option"):
        wb.imports.run("p", CORPUS / "good.csv", txt_col="text", actor=Actor.operator())
    with pytest.raises(WorkbenchError, match="cannot tell the format"):
        wb.imports.run("p", CORPUS / "make_corpus.py", actor=Actor.operator())
    with pytest.raises(WorkbenchError, match="eval_fraction"):
        wb.imports.run("p", CORPUS / "good.csv", eval_fraction=1.5, actor=Actor.operator())


def test_cli_good_import_folder_and_usage_errors(wb, db_url, capsys, tmp_path):
    wb.projects.create("p", "text", LABELS, actor=Actor.operator())
    code, output = cli(
        capsys,
        db_url,
        "import",
        "p",
        str(CORPUS / "good.csv"),
        "--prelabel-col",
        "label",
        "--context-cols",
        "source",
        "--eval-fraction",
        "0",
        "--seed",
        "1",
    )
    assert code == 0 and "imported 3 items (3 pool, 0 eval, 2 prelabels)" in output
    wb.projects.create("img", "image", LABELS, actor=Actor.operator())
    folder = tmp_path / "pics"
    shutil.copytree(CORPUS / "image_folder", folder)
    code, output = cli(capsys, db_url, "import", "img", "--folder", str(folder), "--prelabel-from-folders")
    assert code == 0 and "imported 4 items" in output
    code, output = cli(capsys, db_url, "import", "nope", str(CORPUS / "good.csv"))
    assert code == 1 and "no project named 'nope'" in output
    with pytest.raises(SystemExit) as exit_info:
        main(["--database-url", db_url, "import", "p"])  # neither FILE nor --folder
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["--database-url", db_url, "import", "p", str(CORPUS / "good.csv"), "--prelabel-from-folders"])
    assert exit_info.value.code == 2


def test_folder_inside_the_project_root_gets_prefixed_paths(wb, tmp_path):
    root = tmp_path / "pics"
    shutil.copytree(CORPUS / "image_folder", root / "first")
    shutil.copytree(CORPUS / "image_folder", root / "second")
    project = wb.projects.create("img", "image", LABELS, settings={"image_root": str(root)}, actor=Actor.operator())
    assert wb.imports.run_folder("img", root / "first", actor=Actor.operator()).ok
    assert wb.imports.run_folder("img", root / "second", prelabel_from_folders=True, actor=Actor.operator()).ok
    items = items_of(wb.engine, project.id)
    assert len(items) == 8 and items["second/pos/p1.png"].content == {"image": "second/pos/p1.png"}
    # The subfolder's own label folders still give the prelabels.
    assert prelabels_of(wb.engine, project.id)["second/neg/n1.png"] == "neg"
    report = wb.imports.run_folder("img", root / "first", actor=Actor.operator())
    assert not report.ok and report.error_counts == {"duplicate id": 4}
    assert "is already in the project" in report.errors[0].message


def test_sqlite_preview_does_not_hold_the_write_lock(tmp_path):
    """A preview reads in a deferred transaction and checks ids in a TEMP table: writers go on."""
    import sqlite3

    from workbench.db.engine import make_engine
    from workbench.services import Workbench

    db_url = f"sqlite:///{tmp_path / 'w.db'}"
    wb = Workbench(make_engine(db_url))
    path = tmp_path / "x.csv"
    path.write_text("id,text\n" + "".join(f"x{i},t\n" for i in range(3000)))
    wb.projects.create("p", "text", LABELS, actor=Actor.operator())
    writes = []

    def other_writer(done, total):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None, timeout=0.05)
        conn.execute("BEGIN IMMEDIATE")  # raises "database is locked" if the preview held the lock
        conn.execute("ROLLBACK")
        conn.close()
        writes.append(done)

    assert wb.imports.preview("p", path, batch_size=1000, progress=other_writer, actor=Actor.operator()).ok
    assert len(writes) >= 3
    wb.engine.dispose()


def test_broken_utf16_midway_is_refused_with_its_position(wb, tmp_path):
    path = tmp_path / "broken16.csv"
    good = "id,text\n" + "".join(f"x{i},text {i}\n" for i in range(2000))
    path.write_bytes(
        b"\xff\xfe"
        + good.encode("utf-16-le")
        + "\ud800".encode("utf-16-le", "surrogatepass")
        + "x,y\n".encode("utf-16-le")
    )
    wb.projects.create("p", "text", LABELS, actor=Actor.operator())
    before = state(wb.engine)
    report = wb.imports.run("p", path, batch_size=500, actor=Actor.operator())
    assert not report.ok and "undecodable UTF-16 near line" in report.file_errors[0]
    assert state(wb.engine) == before
