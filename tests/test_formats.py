"""Formats other tools read (issue 16): Label Studio JSON in and out (the round trip reproduces every
annotation), Prodigy JSONL, and a Hugging Face dataset folder that `datasets` loads offline. On
SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session, select

from tests.helpers import annotators
from workbench.cli import main
from workbench.db.models import Annotation, Item, User
from workbench.domain import Actor
from workbench.errors import WorkbenchError

LS_DOCS = Path(__file__).resolve().parent / "data" / "label_studio"  # see its README.md
OP = Actor.operator()
LABELS = ["pos", "neg", "meh"]


def _items_csv(path: Path, n: int) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text", "source", "prelabel"])
        for i in range(n):
            writer.writerow([f"x{i}", f"text number {i} — ünïcode", "web" if i % 2 else "mail", "neg" if i % 3 else ""])
    return path


def _labeled_project(wb, tmp_path: Path, n: int = 12) -> list:
    """A text project whose items have 0, 1 or 2 human labels (agreeing and not) and prelabels."""
    wb.projects.create("src", "text", LABELS, actor=OP)
    wb.queue.rng.seed(7)  # eval and control-arm draws decide which items get their pair: fix them
    report = wb.imports.run("src", _items_csv(tmp_path / "items.csv", n), prelabel_col="prelabel", seed=3, actor=OP)
    assert report.ok, report.lines()
    people = annotators(wb, 3)
    for turn in range(n):
        for k, person in enumerate(people[: 1 + turn % 2]):
            claimed = wb.queue.claim("src", actor=person)
            number = int(claimed.external_id[1:])  # agree on the item's label, except ben on every 4th
            label = LABELS[(number + (1 if number % 4 == 1 and person.name == "ann1" else 0)) % 3]
            wb.queue.submit(claimed.lease_id, label, actor=person, duration_ms=1000 + 37 * turn + k)
    claimed = wb.queue.claim("src", actor=people[2])  # one item left with a single label
    wb.queue.submit(claimed.lease_id, "meh", actor=people[2], duration_ms=5)
    return people


def _human(engine, project: str) -> set[tuple]:
    with Session(engine) as session:
        rows = session.execute(
            select(Item.external_id, User.name, Annotation.label, Annotation.duration_ms, Annotation.created_at)
            .join(Item, Item.id == Annotation.item_id)
            .join(User, User.id == Annotation.annotator_id)
            .where(Annotation.project_id == _pid(session, project))
        ).all()
    return {(e, name, label, ms, when.replace(tzinfo=None)) for e, name, label, ms, when in rows}


def _pid(session, name: str) -> int:
    from workbench.db.models import Project

    return session.execute(select(Project.id).where(Project.name == name)).scalar_one()


def _items(engine, project: str) -> dict[str, tuple]:
    with Session(engine) as session:
        pid = _pid(session, project)
        rows = session.execute(
            select(Item.external_id, Item.state, Item.final_label, Item.content, Item.n_annotations).where(
                Item.project_id == pid
            )
        ).all()
        prelabels = dict(
            session.execute(
                select(Item.external_id, Annotation.label)
                .join(Item, Item.id == Annotation.item_id)
                .where(Annotation.project_id == pid, Annotation.source == "import")
            ).all()
        )
    return {e: (state, final, content, n, prelabels.get(e)) for e, state, final, content, n in rows}


# -- Label Studio ---------------------------------------------------------------------------------


def test_label_studio_round_trip_reproduces_every_annotation(wb, tmp_path):
    _labeled_project(wb, tmp_path)
    before = _human(wb.engine, "src")
    assert len(before) == 19 and len({name for _, name, *_ in before}) == 3
    out = tmp_path / "tasks.json"
    result = wb.exports.items("src", "label-studio", out, actor=OP)
    tasks = json.loads(out.read_text(encoding="utf-8"))
    assert result.rows == len(tasks) == 12
    # The shape Label Studio imports for a Choices task: one annotations[] entry per annotator,
    # each with one choices result; prelabels as predictions.
    annotated = [t for t in tasks if t["annotations"]]
    entry = annotated[0]["annotations"][0]
    assert set(entry["completed_by"]) == {"email"} and entry["completed_by"]["email"].endswith("@workbench.invalid")
    (part,) = entry["result"]
    assert part["type"] == "choices" and part["from_name"] == "label" and part["to_name"] == "text"
    assert len(part["value"]["choices"]) == 1 and part["value"]["choices"][0] in LABELS
    assert entry["ground_truth"] is False and entry["was_cancelled"] is False
    assert set(annotated[0]["data"]) == {"text", "source"}
    assert sum(len(t["annotations"]) for t in tasks) == len(before)
    assert sum(len(t["predictions"]) for t in tasks) == 8
    # The same call from --annotations gives the same tasks.
    again = wb.exports.annotations("src", "label-studio", tmp_path / "again.json", actor=OP)
    assert again.sha256 == result.sha256

    wb.projects.create("copy", "text", LABELS, actor=OP)
    report = wb.imports.run("copy", out, actor=OP)
    assert report.ok, report.lines()
    assert report.annotations == len(before) and report.prelabels == 8
    assert "annotations)" in report.summary()
    assert _human(wb.engine, "copy") == before
    source, copied = _items(wb.engine, "src"), _items(wb.engine, "copy")
    assert copied == source  # states, final labels, content, counts and prelabels alike
    assert {state for state, *_ in copied.values()} >= {"final", "review", "open"}
    # Queue bookkeeping is consistent: an item with its labels is not served again to its annotators.
    people = [wb.users.authenticate(f"ann{i}", "password-123") for i in range(3)]
    for person in people:
        while (claimed := wb.queue.claim("copy", actor=person)) is not None:
            item = claimed.external_id
            assert not any(e == item and name == person.name for e, name, *_ in before)
            wb.queue.skip(claimed.lease_id, "test", actor=person)
            break


def test_label_studio_docs_example_imports(wb, tmp_path):
    wb.projects.create("ls", "text", ["Positive", "Neutral", "Negative"], actor=OP)
    path = LS_DOCS / "tasks_text_classification.json"
    report = wb.imports.run("ls", path, text_col="my_text", actor=OP)
    assert report.ok, report.lines()
    assert report.format == "label-studio" and report.imported == 1 and report.prelabels == 1
    ((external_id, (state, final, content, n, prelabel)),) = _items(wb.engine, "ls").items()
    # An annotation without completed_by (Label Studio gives it to whoever imports it) is a
    # prelabel here and wins over the model's prediction (Neutral, score 0.95).
    assert external_id == "1" and prelabel == "Positive" and state == "open" and n == 0
    assert content == {
        "text": "Opossums are great",
        "context": {"ref_id": 456, "meta_info": {"timestamp": "2020-03-09 18:15:28.212882", "location": "North Pole"}},
    }


def test_label_studio_docs_prediction_task(wb, tmp_path):
    """One task object (not a list), a prediction mixing rectangles and a choice: the choice is the
    prelabel, the rectangles are named in a warning."""
    wb.projects.create("planes", "tabular", ["Boeing", "Airbus"], actor=OP)
    report = wb.imports.run("planes", LS_DOCS / "prediction_task_image.json", actor=OP)
    assert report.ok, report.lines()
    assert report.prelabels == 1
    assert any("2 rectanglelabels" in w for w in report.warnings), report.warnings
    ((_, (_, _, content, _, prelabel)),) = _items(wb.engine, "planes").items()
    assert prelabel == "Airbus" and content == {
        "features": {"image": "http://localhost:8080/static/samples/sample.jpg"}
    }


def test_label_studio_annotations_without_times_or_ids(wb, tmp_path):
    """A hand-written task: no id (the row number is the external id), no created_at or lead_time;
    two users agree, so the item is final; a cancelled annotation is not a label."""
    wb.projects.create("hand", "text", LABELS, actor=OP)
    annotators(wb, 2)
    choice = {"type": "choices", "from_name": "label", "to_name": "text", "value": {"choices": ["neg"]}}
    by = [{"completed_by": {"email": f"ann{i}@workbench.invalid"}, "result": [choice]} for i in range(2)]
    cancelled = {"completed_by": {"email": "ann1"}, "result": [choice], "was_cancelled": True}
    path = tmp_path / "hand.json"
    path.write_text(json.dumps([{"data": {"text": "a"}, "annotations": by}, {"text": "b", "annotations": [cancelled]}]))
    report = wb.imports.run("hand", path, actor=OP)
    assert report.ok, report.lines()
    assert report.annotations == 2
    items = _items(wb.engine, "hand")
    assert items["1"][:2] == ("final", "neg") and items["2"][:2] == ("open", None)
    assert {(e, name, label) for e, name, label, ms, _ in _human(wb.engine, "hand")} == {
        ("1", "ann0", "neg"),
        ("1", "ann1", "neg"),
    }


def test_label_studio_near_duplicates_skipped_with_their_annotations(wb, tmp_path):
    """on_near_duplicate=skip takes a copy out with its human labels and their leases."""
    wb.projects.create("dup", "text", LABELS, actor=OP)
    annotators(wb, 2)
    choice = {"type": "choices", "from_name": "label", "to_name": "text", "value": {"choices": ["neg"]}}
    by = [{"completed_by": {"email": f"ann{i}@workbench.invalid"}, "result": [choice]} for i in range(2)]
    text = "the very same message, twice over, word for word"
    tasks = [{"data": {"text": text}, "meta": {"external_id": e}, "annotations": by} for e in ("a", "b")]
    tasks.append({"data": {"text": "something else entirely"}, "meta": {"external_id": "c"}, "annotations": by})
    path = tmp_path / "dup.json"
    path.write_text(json.dumps(tasks))
    report = wb.imports.run("dup", path, on_near_duplicate="skip", actor=OP)
    assert report.ok, report.lines()
    assert report.skipped_duplicates == 1 and report.imported == 2 and report.annotations == 4
    assert not report.warnings, report.warnings
    human = _human(wb.engine, "dup")
    assert len(human) == 4 and {e for e, *_ in human} in ({"a", "c"}, {"b", "c"})
    from workbench.db.models import Lease

    with Session(wb.engine) as session:
        leased = set(session.execute(select(Lease.item_id)).scalars())
        assert leased == set(session.execute(select(Item.id)).scalars())


def test_malformed_label_studio_file_imports_nothing_and_names_each_bad_task(wb, tmp_path):
    wb.projects.create("bad", "text", LABELS, actor=OP)
    annotators(wb, 1)
    choice = {"type": "choices", "from_name": "label", "to_name": "text", "value": {"choices": ["pos"]}}
    tasks = [
        {
            "data": {"text": "fine"},
            "annotations": [{"completed_by": {"email": "ann0@workbench.invalid"}, "result": [choice]}],
        },
        "not a task",
        {"data": "text without a dict"},
        {
            "data": {"text": "who?"},
            "annotations": [{"completed_by": {"email": "nobody@example.org"}, "result": [choice]}],
        },
        {"data": {"text": "odd label"}, "predictions": [{"result": [{**choice, "value": {"choices": ["zzz"]}}]}]},
        {"data": {"text": "ls id"}, "annotations": [{"completed_by": 7, "result": [choice]}]},
        {"data": {"text": "two"}, "annotations": [{"result": [{**choice, "value": {"choices": ["pos", "neg"]}}]}]},
    ]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(tasks), encoding="utf-8")
    report = wb.imports.run("bad", path, actor=OP)
    assert not report.ok and report.imported == 0
    assert [e.row for e in report.errors] == [2, 3, 4, 5, 6, 7]
    lines = [str(e) for e in report.errors]
    for line, index in zip(lines, range(1, 7)):
        assert f"tasks[{index}]" in line and "\n" not in line
    assert "not a task object" in lines[0] and "'nobody@example.org' is not a Workbench user" in lines[2]
    assert "not in the project's label set" in lines[3] and "Label Studio user id 7" in lines[4]
    assert "chose 2 labels" in lines[5]
    assert _items(wb.engine, "bad") == {}
    with Session(wb.engine) as session:
        assert session.execute(select(Annotation.id)).first() is None
    # Not JSON at all: one line, nothing written.
    broken = tmp_path / "broken.json"
    broken.write_text('[{"data": {"text": "x"}}', encoding="utf-8")
    report = wb.imports.run("bad", broken, actor=OP)
    assert not report.ok and report.file_errors and report.file_errors[0].startswith("not valid JSON at line 1")


def test_label_studio_cli_round_trip(wb, db_url, tmp_path, capsys):
    _labeled_project(wb, tmp_path, n=6)
    out = tmp_path / "cli.json"
    assert main(["--database-url", db_url, "export", "src", "--format", "label-studio", "--out", str(out)]) == 0
    assert "exported 6 tasks" in capsys.readouterr().out
    wb.projects.create("cli-copy", "text", LABELS, actor=OP)
    assert main(["--database-url", db_url, "import", "cli-copy", str(out), "--no-progress"]) == 0  # .json: label-studio
    printed = capsys.readouterr().out
    assert "annotations)" in printed
    assert _human(wb.engine, "cli-copy") == _human(wb.engine, "src")


# -- Prodigy --------------------------------------------------------------------------------------


def test_prodigy_export_is_one_line_per_annotation(wb, tmp_path):
    _labeled_project(wb, tmp_path, n=6)
    human = _human(wb.engine, "src")
    out = tmp_path / "prodigy.jsonl"
    result = wb.exports.items("src", "prodigy", out, actor=OP)  # items or annotations: same lines
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert result.rows == len(lines) == len(human)
    assert all(set(line) == {"text", "label", "answer", "_annotator_id", "meta"} for line in lines)
    assert {line["answer"] for line in lines} == {"accept"}
    exported = {(line["meta"]["external_id"], line["_annotator_id"], line["label"]) for line in lines}
    assert exported == {h[:3] for h in human}
    assert all(x["text"].startswith("text number ") and isinstance(x["meta"]["item_id"], int) for x in lines)


def test_format_refusals_are_one_line(wb, tmp_path):
    wb.projects.create("p", "text", LABELS, actor=OP)
    with pytest.raises(WorkbenchError, match="hf format is for dataset versions"):
        wb.exports.items("p", "hf", tmp_path / "x", actor=OP)
    with pytest.raises(WorkbenchError, match="cannot be prodigy"):
        wb.exports.version("p", 1, "prodigy", tmp_path / "x.jsonl", actor=OP)
    with pytest.raises(WorkbenchError, match="a folder, not a download"):
        wb.exports.payload("version", "p", "hf", number=1, actor=OP)


# -- Hugging Face ---------------------------------------------------------------------------------

_LOAD_HF = r"""
import json, pathlib, sys
import datasets
folder = pathlib.Path(sys.argv[1])
files = {path.name.split("-")[0]: str(path) for path in sorted((folder / "data").glob("*.parquet"))}
data = datasets.load_dataset("parquet", data_files=files, cache_dir=sys.argv[2])
out = {}
for split in data:
    ds = data[split]
    out[split] = {
        "rows": [dict(r) for r in ds],
        "label_feature": type(ds.features["label"]).__name__,
        "names": ds.features["label"].names,
    }
print(json.dumps(out))
"""


def test_hf_export_loads_with_datasets_offline(wb, db_url, tmp_path):
    pytest.importorskip("datasets")
    yaml = pytest.importorskip("yaml")
    _labeled_project(wb, tmp_path)
    version = wb.versions.create("src", actor=OP)
    assert version.n_items > 0
    folder = tmp_path / "hf"
    assert (
        main(["--database-url", db_url, "version", "export", "src", str(version.number), "--format", "hf", str(folder)])
        == 0
    )
    with Session(wb.engine) as session:
        pid = _pid(session, "src")
        final = dict(
            session.execute(
                select(Item.external_id, Item.final_label).where(Item.project_id == pid, Item.state == "final")
            ).all()
        )
        split_of = dict(session.execute(select(Item.external_id, Item.split).where(Item.project_id == pid)).all())
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf-home"),
    }
    expected = {{"pool": "train", "eval": "test"}[split_of[e]] for e in final}  # a split with no rows: no file
    assert "train" in expected and len(final) >= 5
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_HF, str(folder), str(tmp_path / "hf-cache")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(loaded) == expected
    seen = {}
    for split, part in loaded.items():
        assert part["label_feature"] == "ClassLabel" and part["names"] == LABELS
        for row in part["rows"]:
            assert set(row) == {"item_id", "external_id", "text", "source", "label"}
            seen[row["external_id"]] = LABELS[row["label"]]
            assert {"train": "pool", "test": "eval"}[split] == split_of[row["external_id"]]
    assert seen == final
    card = (folder / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(card.split("---\n")[1])
    label = next(f for f in front["dataset_info"]["features"] if f["name"] == "label")
    assert label["dtype"]["class_label"]["names"] == {str(i): name for i, name in enumerate(LABELS)}
    splits = {s["name"]: s["num_examples"] for s in front["dataset_info"]["splits"]}
    assert splits == {s: len(p["rows"]) for s, p in loaded.items()}
    assert version.content_hash in card and "Krippendorff's alpha" in card and "ann0" in card
    manifest = json.loads((folder / "workbench_manifest.json").read_text())
    assert manifest["content_hash"] == version.content_hash
    # Exporting again replaces the folder whole (no stale split files, no temporary folders left).
    assert (
        main(["--database-url", db_url, "version", "export", "src", "1", "--format", "hf", "--out", str(folder)]) == 0
    )
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".hf")) == []
