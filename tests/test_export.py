"""Export: items with final labels and human annotations, as CSV/JSONL/Parquet; CSV cells are
neutralised against formula injection; annotators may not export (on SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import update
from sqlmodel import Session, select

from tests.helpers import annotators
from workbench.cli import main
from workbench.db.models import Annotation, AuditLog, Item, User
from workbench.domain import Actor
from workbench.errors import PermissionDenied

CORPUS = Path(__file__).resolve().parent / "bad_files"
HOSTILE = ["=1+1", "+x", "-x", "@x", "\tx", "\rx"]


def read(fmt: str, path: Path) -> list[dict]:
    if fmt == "csv":
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return pd.read_parquet(path).astype(object).where(lambda frame: frame.notna(), None).to_dict("records")


def test_csv_export_neutralises_formulas(wb, tmp_path):
    path = tmp_path / "hostile.csv"
    rows = [(f"h{i}", text, '=HYPERLINK("x")' if i == 0 else "ok") for i, text in enumerate(HOSTILE)]
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("id", "text", "note"), *rows])
    wb.projects.create("p", "text", ["pos", "neg"], actor=Actor.operator())
    assert wb.imports.run("p", path, actor=Actor.operator()).ok
    out = tmp_path / "out.csv"
    result = wb.exports.items("p", "csv", out, actor=Actor.operator())
    assert result.rows == len(HOSTILE)
    exported = {row["external_id"]: row for row in read("csv", out)}
    for external_id, text, _ in rows:
        assert exported[external_id]["text"] == "'" + text
    assert exported["h0"]["note"] == '\'=HYPERLINK("x")' and exported["h1"]["note"] == "ok"
    # JSONL and Parquet carry the values as they are (they are not spreadsheet formats).
    wb.exports.items("p", "jsonl", tmp_path / "out.jsonl", actor=Actor.operator())
    assert sorted(r["text"] for r in read("jsonl", tmp_path / "out.jsonl")) == sorted(HOSTILE)


def test_negative_numbers_stay_numbers_in_csv(wb, tmp_path):
    wb.projects.create("t", "tabular", ["<=50K", ">50K"], actor=Actor.operator())
    assert wb.imports.run("t", CORPUS / "good_tabular.csv", prelabel_col="income", actor=Actor.operator()).ok
    out = tmp_path / "t.csv"
    wb.exports.items("t", None, out, actor=Actor.operator())  # format from the extension
    rows = {row["external_id"]: row for row in read("csv", out)}
    assert rows["t2"]["score"] == "-2.0" and rows["t2"]["age"] == "" and rows["t1"]["zip"] == "02134"
    parquet = {row["external_id"]: row for row in read("parquet", _export(wb, "t", "parquet", tmp_path))}
    assert parquet["t2"]["score"] == -2.0 and parquet["t1"]["age"] == 39 and parquet["t2"]["age"] is None


def _export(wb, project, fmt, folder, **kw) -> Path:
    out = folder / f"{project}.{fmt}"
    wb.exports.items(project, fmt, out, **{"actor": Actor.operator(), **kw})
    return out


def test_items_export_has_final_labels_and_flat_content(wb, tmp_path):
    project = wb.projects.create("p", "text", ["pos", "neg"], actor=Actor.operator())
    assert wb.imports.run("p", CORPUS / "good.csv", prelabel_col="label", seed=2, actor=Actor.operator()).ok
    with Session(wb.engine) as session, session.begin():
        session.execute(
            update(Item)
            .where(Item.project_id == project.id, Item.external_id == "g2")
            .values(state="final", final_label="neg", n_annotations=2, slots_taken=2)
        )
    for fmt in ("csv", "jsonl", "parquet"):
        rows = {r["external_id"]: r for r in read(fmt, _export(wb, "p", fmt, tmp_path))}
        assert list(rows) == ["g1", "g2", "g3"], fmt
        assert rows["g2"]["final_label"] == "neg" and rows["g2"]["state"] == "final", fmt
        assert rows["g1"]["final_label"] in (None, ""), fmt  # prelabels are not final labels
        assert rows["g2"]["text"] == "Café über naïve — 日本語 🎉" and rows["g3"]["source"] == "chat", fmt
        assert {rows[k]["split"] for k in rows} <= {"pool", "eval"}, fmt
        assert str(rows["g1"]["item_id"]).isdigit(), fmt


def test_image_export_has_paths(wb, tmp_path):
    wb.projects.create("img", "image", ["pos", "neg"], actor=Actor.operator())
    assert wb.imports.run_folder("img", CORPUS / "image_folder", actor=Actor.operator()).ok
    rows = read("csv", _export(wb, "img", "csv", tmp_path))
    assert sorted(r["image"] for r in rows) == ["loose.png", "neg/n1.png", "pos/p1.png", "pos/p2.png"]


def test_annotations_export_round_trips(wb, tmp_path):
    wb.projects.create("p", "text", ["pos", "neg"], actor=Actor.operator())
    assert wb.imports.run("p", CORPUS / "good.csv", prelabel_col="label", eval_fraction=0, actor=Actor.operator()).ok
    people = annotators(wb, 2)
    for n, actor in enumerate(people):
        while (claimed := wb.queue.claim("p", actor=actor)) is not None:
            wb.queue.submit(
                claimed.lease_id, "pos" if n == 0 else "neg", actor=actor, duration_ms=100 + claimed.item_id
            )
    with Session(wb.engine) as session:
        stored = session.exec(
            select(Annotation, Item.external_id, User.name)
            .join(Item, Item.id == Annotation.item_id)
            .join(User, User.id == Annotation.annotator_id)
            .where(Annotation.source == "human")
        ).all()
    expect = {
        (a.id, a.item_id, ext, name, a.label, a.slot, a.created_at.isoformat(), a.duration_ms)
        for a, ext, name in stored
    }
    for fmt in ("csv", "jsonl", "parquet"):
        out = tmp_path / f"ann.{fmt}"
        result = wb.exports.annotations("p", fmt, out, actor=Actor.operator())
        assert result.rows == len(stored) == 6, fmt  # the import prelabels are not exported
        exported = read(fmt, out)
        got = {
            (
                int(r["annotation_id"]),
                int(r["item_id"]),
                r["item_external_id"],
                r["annotator"],
                r["label"],
                int(r["slot"]),
                r["created_at"],
                int(r["duration_ms"]),
            )
            for r in exported
        }
        assert got == expect, fmt
        # The double-labeling invariants can be checked from outside: two annotators, slots 1 and 2.
        by_item: dict[str, list] = {}
        for r in exported:
            by_item.setdefault(r["item_external_id"], []).append((r["annotator"], int(r["slot"])))
        assert all(len({a for a, _ in v}) == 2 and sorted(s for _, s in v) == [1, 2] for v in by_item.values()), fmt


def test_annotators_may_not_export_reviewers_may(wb, tmp_path):
    wb.projects.create("p", "text", ["pos", "neg"], actor=Actor.operator())
    assert wb.imports.run("p", CORPUS / "good.csv", actor=Actor.operator()).ok
    (annotator,) = annotators(wb, 1)
    (reviewer,) = annotators(wb, 1, role="reviewer", prefix="rev")
    with pytest.raises(PermissionDenied):
        wb.exports.items("p", "csv", tmp_path / "a.csv", actor=annotator)
    with pytest.raises(PermissionDenied):
        wb.exports.annotations("p", "csv", tmp_path / "b.csv", actor=annotator)
    assert not (tmp_path / "a.csv").exists() and not (tmp_path / "b.csv").exists()
    assert wb.exports.annotations("p", "csv", tmp_path / "c.csv", actor=reviewer).rows == 0
    with Session(wb.engine) as session:
        audit = session.exec(select(AuditLog).where(AuditLog.action == "export.annotations")).one()
    assert audit.actor_id == reviewer.id and audit.details["rows"] == 0


def test_cli_export(wb, db_url, capsys, tmp_path):
    wb.projects.create("p", "text", ["pos", "neg"], actor=Actor.operator())
    assert wb.imports.run("p", CORPUS / "good.csv", actor=Actor.operator()).ok
    out = tmp_path / "items.parquet"
    assert main(["--database-url", db_url, "export", "p", "--format", "parquet", "--out", str(out)]) == 0
    assert len(read("parquet", out)) == 3
    assert main(["--database-url", db_url, "export", "p", "--out", str(tmp_path / "a.jsonl"), "--annotations"]) == 0
    assert "exported 0 annotations" in capsys.readouterr().out
    assert main(["--database-url", db_url, "export", "p", "--out", str(tmp_path / "x.xlsx")]) == 1
    assert "unknown export format" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--database-url", db_url, "export", "p"])  # --out is required
    assert exit_info.value.code == 2


def test_mixed_context_types_widen_in_parquet(wb, tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [
        {"id": "a", "text": "x", "n": 1, "m": 1, "b": True},
        {"id": "b", "text": "y", "n": 2.5, "m": "word", "b": None},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    wb.projects.create("p", "text", ["pos", "neg"], actor=Actor.operator())
    assert wb.imports.run("p", path, actor=Actor.operator()).ok
    out = _export(wb, "p", "parquet", tmp_path)
    import pyarrow.parquet as pq

    schema = pq.read_schema(out)
    assert [str(schema.field(name).type) for name in ("n", "m", "b")] == ["double", "string", "bool"]
    rows = {r["external_id"]: r for r in read("parquet", out)}
    assert (rows["a"]["n"], rows["a"]["m"], rows["b"]["m"], rows["b"]["b"]) == (1.0, "1", "word", None)


# -- dataset versions: the same exporter -------------------------------------------------------
def _labeled_version(wb, tmp_path) -> tuple[list[str], object]:
    """A project whose ids and one label a spreadsheet would run as formulas, every item agreed on
    by two annotators, and its first version."""
    path = tmp_path / "hostile.csv"
    ids = [f"{prefix}v{i}" for i, prefix in enumerate(HOSTILE)] + ["plain"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("id", "text"), *((external_id, f"text {n}") for n, external_id in enumerate(ids))])
    wb.projects.create(
        "v", "text", ["=cmd|' /C calc'!A0", "ok"], settings={"eval_fraction": 0.0}, actor=Actor.operator()
    )
    assert wb.imports.run("v", path, actor=Actor.operator()).ok
    for person in annotators(wb, 2):
        while (claimed := wb.queue.claim("v", actor=person)) is not None:
            label = "ok" if claimed.external_id == "plain" else "=cmd|' /C calc'!A0"
            wb.queue.submit(claimed.lease_id, label, actor=person)
    version = wb.versions.create("v", actor=Actor.operator())
    assert version.n_items == len(ids)
    return ids, version


def test_version_export_in_every_format_with_its_manifest(wb, tmp_path):
    ids, version = _labeled_version(wb, tmp_path)
    expected = wb.versions.rows("v", version.number, actor=Actor.operator())
    for fmt in ("csv", "jsonl", "parquet"):
        out = tmp_path / f"version.{fmt}"
        result = wb.exports.version("v", version.number, None, out, actor=Actor.operator())  # format from the name
        assert (
            result.format == fmt
            and result.rows == len(ids)
            and result.columns[:4] == ("item_id", "external_id", "split", "label")
        )
        rows = read(fmt, out)
        assert len(rows) == len(ids)
        manifest = json.loads(Path(result.manifest_path).read_text(encoding="utf-8"))
        assert manifest["content_hash"] == version.content_hash and manifest["n_items"] == len(ids)
        assert manifest["version"] == version.number and manifest["annotators"] == {"ann0": len(ids), "ann1": len(ids)}
        by_item = {int(r["item_id"]): r for r in rows}
        for record in expected.itertuples(index=False):
            row = by_item[record.item_id]
            assert row["annotation_ids"] == ",".join(map(str, record.annotation_ids)), fmt
            assert row["source"] == record.source == "agreed"
            if fmt != "csv":  # only CSV cells are neutralised; JSONL and Parquet carry the values as they are
                assert row["external_id"] == record.external_id and row["label"] == record.label
    # the download the app offers is the very same file
    data, result = wb.exports.payload("version", "v", "csv", number=version.number, actor=Actor.operator())
    assert data == (tmp_path / "version.csv").read_bytes() and result.rows == len(ids)


def test_version_csv_is_formula_safe(wb, tmp_path):
    ids, version = _labeled_version(wb, tmp_path)
    out = tmp_path / "v.csv"
    wb.exports.version("v", version.number, "csv", out, actor=Actor.operator())
    rows = {r["external_id"]: r for r in read("csv", out)}
    stored = set(wb.versions.rows("v", version.number, actor=Actor.operator())["external_id"])  # as imported
    hostile = {i for i in stored if i.startswith(("=", "+", "-", "@", "\t", "\r"))}
    assert len(hostile) >= 4  # =, +, - and @ survive the import's trimming
    assert set(rows) == {"'" + i for i in hostile} | (stored - hostile)
    assert rows["plain"]["label"] == "ok"
    assert all(r["label"] == "'=cmd|' /C calc'!A0" for key, r in rows.items() if key != "plain")
    raw = out.read_bytes()
    assert b"\r\n" in raw and not any(line.startswith((b"=", b"+", b"-", b"@")) for line in raw.split(b"\r\n"))


def test_a_failed_version_export_leaves_no_partial_file(wb, tmp_path, monkeypatch):
    from workbench.services import exports

    _, version = _labeled_version(wb, tmp_path)
    out = tmp_path / "out" / "v.parquet"
    out.parent.mkdir()
    out.write_bytes(b"the previous export")
    calls = []

    def failing_write(self: object, rows: list) -> None:
        calls.append(len(rows))
        raise OSError("disk full")

    monkeypatch.setattr(exports._Writer, "write", failing_write)
    for fmt in ("csv", "jsonl", "parquet"):
        target = out.with_suffix(f".{fmt}")
        with pytest.raises(OSError, match="disk full"):
            wb.exports.version("v", version.number, fmt, target, actor=Actor.operator())
    assert calls  # it really got as far as writing rows
    assert out.read_bytes() == b"the previous export"  # the old file is untouched, not half-replaced
    assert sorted(p.name for p in out.parent.iterdir()) == ["v.parquet"]  # no .part file, no manifest


def test_version_export_refuses_annotators_unknown_versions_and_formats(wb, tmp_path):
    from workbench.errors import NotFound, WorkbenchError

    _, version = _labeled_version(wb, tmp_path)
    (annotator,) = annotators(wb, 1, prefix="solo")
    with pytest.raises(PermissionDenied):
        wb.exports.version("v", version.number, "csv", tmp_path / "a.csv", actor=annotator)
    with pytest.raises(PermissionDenied):
        wb.exports.payload("version", "v", "csv", number=version.number, actor=annotator)
    with pytest.raises(NotFound, match="no version 9"):
        wb.exports.version("v", 9, "csv", tmp_path / "b.csv", actor=Actor.operator())
    with pytest.raises(WorkbenchError, match="unknown export format 'xlsx'"):
        wb.exports.version("v", version.number, "xlsx", tmp_path / "c.csv", actor=Actor.operator())
    assert not any(p.name.startswith(("a.", "b.", "c.")) for p in tmp_path.iterdir())


def test_cli_version_export(wb, db_url, capsys, tmp_path):
    ids, version = _labeled_version(wb, tmp_path)
    out = tmp_path / "cli.jsonl"
    assert (
        main(
            [
                "--database-url",
                db_url,
                "version",
                "export",
                "v",
                str(version.number),
                "--format",
                "jsonl",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert f"wrote {len(ids)} rows" in printed and "cli.jsonl.manifest.json" in printed
    assert len(read("jsonl", out)) == len(ids)
