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
    rows = [(f"h{i}", text, "=HYPERLINK(\"x\")" if i == 0 else "ok") for i, text in enumerate(HOSTILE)]
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("id", "text", "note"), *rows])
    wb.projects.create("p", "text", ["pos", "neg"])
    assert wb.imports.run("p", path).ok
    out = tmp_path / "out.csv"
    result = wb.exports.items("p", "csv", out)
    assert result.rows == len(HOSTILE)
    exported = {row["external_id"]: row for row in read("csv", out)}
    for external_id, text, _ in rows:
        assert exported[external_id]["text"] == "'" + text
    assert exported["h0"]["note"] == "'=HYPERLINK(\"x\")" and exported["h1"]["note"] == "ok"
    # JSONL and Parquet carry the values as they are (they are not spreadsheet formats).
    wb.exports.items("p", "jsonl", tmp_path / "out.jsonl")
    assert sorted(r["text"] for r in read("jsonl", tmp_path / "out.jsonl")) == sorted(HOSTILE)


def test_negative_numbers_stay_numbers_in_csv(wb, tmp_path):
    wb.projects.create("t", "tabular", ["<=50K", ">50K"])
    assert wb.imports.run("t", CORPUS / "good_tabular.csv", prelabel_col="income").ok
    out = tmp_path / "t.csv"
    wb.exports.items("t", None, out)  # format from the extension
    rows = {row["external_id"]: row for row in read("csv", out)}
    assert rows["t2"]["score"] == "-2.0" and rows["t2"]["age"] == "" and rows["t1"]["zip"] == "02134"
    parquet = {row["external_id"]: row for row in read("parquet", _export(wb, "t", "parquet", tmp_path))}
    assert parquet["t2"]["score"] == -2.0 and parquet["t1"]["age"] == 39 and parquet["t2"]["age"] is None


def _export(wb, project, fmt, folder, **kw) -> Path:
    out = folder / f"{project}.{fmt}"
    wb.exports.items(project, fmt, out, **kw)
    return out


def test_items_export_has_final_labels_and_flat_content(wb, tmp_path):
    project = wb.projects.create("p", "text", ["pos", "neg"])
    assert wb.imports.run("p", CORPUS / "good.csv", prelabel_col="label", seed=2).ok
    with Session(wb.engine) as session, session.begin():
        session.execute(update(Item).where(Item.project_id == project.id, Item.external_id == "g2")
                        .values(state="final", final_label="neg", n_annotations=2, slots_taken=2))
    for fmt in ("csv", "jsonl", "parquet"):
        rows = {r["external_id"]: r for r in read(fmt, _export(wb, "p", fmt, tmp_path))}
        assert list(rows) == ["g1", "g2", "g3"], fmt
        assert rows["g2"]["final_label"] == "neg" and rows["g2"]["state"] == "final", fmt
        assert rows["g1"]["final_label"] in (None, ""), fmt  # prelabels are not final labels
        assert rows["g2"]["text"] == "Café über naïve — 日本語 🎉" and rows["g3"]["source"] == "chat", fmt
        assert {rows[k]["split"] for k in rows} <= {"pool", "eval"}, fmt
        assert str(rows["g1"]["item_id"]).isdigit(), fmt


def test_image_export_has_paths(wb, tmp_path):
    wb.projects.create("img", "image", ["pos", "neg"])
    assert wb.imports.run_folder("img", CORPUS / "image_folder").ok
    rows = read("csv", _export(wb, "img", "csv", tmp_path))
    assert sorted(r["image"] for r in rows) == ["loose.png", "neg/n1.png", "pos/p1.png", "pos/p2.png"]


def test_annotations_export_round_trips(wb, tmp_path):
    wb.projects.create("p", "text", ["pos", "neg"])
    assert wb.imports.run("p", CORPUS / "good.csv", prelabel_col="label", eval_fraction=0).ok
    people = annotators(wb, 2)
    for n, actor in enumerate(people):
        while (claimed := wb.queue.claim("p", actor)) is not None:
            wb.queue.submit(claimed.lease_id, "pos" if n == 0 else "neg", actor, duration_ms=100 + claimed.item_id)
    with Session(wb.engine) as session:
        stored = session.exec(select(Annotation, Item.external_id, User.name)
                              .join(Item, Item.id == Annotation.item_id)
                              .join(User, User.id == Annotation.annotator_id)
                              .where(Annotation.source == "human")).all()
    expect = {(a.id, a.item_id, ext, name, a.label, a.slot, a.created_at.isoformat(), a.duration_ms)
              for a, ext, name in stored}
    for fmt in ("csv", "jsonl", "parquet"):
        out = tmp_path / f"ann.{fmt}"
        result = wb.exports.annotations("p", fmt, out)
        assert result.rows == len(stored) == 6, fmt  # the import prelabels are not exported
        exported = read(fmt, out)
        got = {(int(r["annotation_id"]), int(r["item_id"]), r["item_external_id"], r["annotator"], r["label"],
                int(r["slot"]), r["created_at"], int(r["duration_ms"])) for r in exported}
        assert got == expect, fmt
        # The double-labeling invariants can be checked from outside: two annotators, slots 1 and 2.
        by_item: dict[str, list] = {}
        for r in exported:
            by_item.setdefault(r["item_external_id"], []).append((r["annotator"], int(r["slot"])))
        assert all(len({a for a, _ in v}) == 2 and sorted(s for _, s in v) == [1, 2]
                   for v in by_item.values()), fmt


def test_annotators_may_not_export_reviewers_may(wb, tmp_path):
    wb.projects.create("p", "text", ["pos", "neg"])
    assert wb.imports.run("p", CORPUS / "good.csv").ok
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
    wb.projects.create("p", "text", ["pos", "neg"])
    assert wb.imports.run("p", CORPUS / "good.csv").ok
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
    lines = [{"id": "a", "text": "x", "n": 1, "m": 1, "b": True},
             {"id": "b", "text": "y", "n": 2.5, "m": "word", "b": None}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    wb.projects.create("p", "text", ["pos", "neg"])
    assert wb.imports.run("p", path).ok
    out = _export(wb, "p", "parquet", tmp_path)
    import pyarrow.parquet as pq

    schema = pq.read_schema(out)
    assert [str(schema.field(name).type) for name in ("n", "m", "b")] == ["double", "string", "bool"]
    rows = {r["external_id"]: r for r in read("parquet", out)}
    assert (rows["a"]["n"], rows["a"]["m"], rows["b"]["m"], rows["b"]["b"]) == (1.0, "1", "word", None)
