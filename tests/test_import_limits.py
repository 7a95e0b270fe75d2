"""Input limits (project setting "limits"): each is tested at the limit (accepted) and one past it
(refused with its row, nothing written), with small limits so the files stay tiny."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlmodel import Session

from workbench.db.engine import make_engine
from workbench.db.models import Item
from workbench.domain import Actor
from workbench.errors import WorkbenchError
from workbench.importing.encoding import LineSource
from workbench.importing.limits import Limits
from workbench.importing.report import LimitExceeded
from workbench.services import Workbench

OPERATOR = Actor.operator()


@pytest.fixture
def sqlite_wb(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    yield Workbench(engine)
    engine.dispose()


def _project(wb, name: str, kind: str = "text", **limits) -> str:
    wb.projects.create(name, kind, ["a", "b"], settings={"limits": limits}, actor=OPERATOR)
    return name


def _items(wb) -> int:
    with Session(wb.engine) as session:
        return session.execute(select(func.count()).select_from(Item)).scalar_one()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _refused(report, needle: str) -> str:
    assert not report.ok
    lines = report.lines()
    assert any(needle in line for line in lines), lines
    return "\n".join(lines)


def test_file_size(sqlite_wb, tmp_path):
    path = _write(tmp_path, "a.csv", "id,text\n1,hello\n2,world\n")
    n = path.stat().st_size
    assert sqlite_wb.imports.run(_project(sqlite_wb, "at", max_file_bytes=n), path, actor=OPERATOR).ok
    report = sqlite_wb.imports.run(_project(sqlite_wb, "past", max_file_bytes=n - 1), path, actor=OPERATOR)
    _refused(report, "limits.max_file_bytes")
    assert _items(sqlite_wb) == 2


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_row_count(sqlite_wb, tmp_path, fmt):
    if fmt == "csv":
        path = _write(tmp_path, "a.csv", "id,text\n" + "".join(f"{i},t{i}\n" for i in range(4)))
    else:
        path = _write(tmp_path, "a.jsonl", "".join(json.dumps({"id": i, "text": f"t{i}"}) + "\n" for i in range(4)))
    assert sqlite_wb.imports.run(_project(sqlite_wb, "at", max_rows=4), path, actor=OPERATOR).ok
    report = sqlite_wb.imports.run(_project(sqlite_wb, "past", max_rows=3), path, actor=OPERATOR)
    text = _refused(report, "limits.max_rows")
    assert "row 4" in text
    assert _items(sqlite_wb) == 4


def test_line_length(sqlite_wb, tmp_path):
    line = "1," + "x" * 98  # 100 bytes without the newline
    path = _write(tmp_path, "a.csv", f"id,text\n{line}\r\n2,short\n")
    assert sqlite_wb.imports.run(_project(sqlite_wb, "at", max_line_bytes=100), path, actor=OPERATOR).ok
    report = sqlite_wb.imports.run(_project(sqlite_wb, "past", max_line_bytes=99), path, actor=OPERATOR)
    text = _refused(report, "limits.max_line_bytes")
    assert "row 1 (line 2)" in text
    assert _items(sqlite_wb) == 2


def test_record_length_across_lines(sqlite_wb, tmp_path):
    # An unclosed quote swallows the following lines: each line is short, the record is not.
    path = _write(tmp_path, "a.csv", 'id,text\n1,"opened\n' + "".join(f"{i},line {i}\n" for i in range(2, 60)))
    report = sqlite_wb.imports.run(_project(sqlite_wb, "p", max_line_bytes=200), path, actor=OPERATOR)
    _refused(report, "the record")
    assert _items(sqlite_wb) == 0


def test_line_length_utf16(sqlite_wb, tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(("id,text\n1," + "y" * 300 + "\n").encode("utf-16"))
    report = sqlite_wb.imports.run(_project(sqlite_wb, "p", max_line_bytes=200), path, actor=OPERATOR)
    _refused(report, "limits.max_line_bytes")


def test_line_length_memory_is_bounded_by_the_limit(tmp_path):
    path = tmp_path / "one-line.csv"
    with open(path, "wb") as f:
        f.write(b"id,text\n1,")
        chunk = b"z" * (1 << 20)
        for _ in range(48):  # a 48 MiB line
            f.write(chunk)
    source = LineSource(path, "utf-8", 0, max_line_bytes=1 << 20)
    tracemalloc.start()
    with pytest.raises(LimitExceeded) as info:
        for _ in source:
            source.take_problems()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert info.value.line == 2
    assert peak < 6 * (1 << 20), f"peak {peak / 2**20:.1f} MiB for a 1 MiB limit"


def test_columns(sqlite_wb, tmp_path):
    header = ",".join(["id", "text"] + [f"c{i}" for i in range(8)])  # 10 columns
    path = _write(tmp_path, "a.csv", header + "\n" + ",".join(["1", "t"] + ["v"] * 8) + "\n")
    assert sqlite_wb.imports.run(_project(sqlite_wb, "at", max_columns=10), path, actor=OPERATOR).ok
    report = sqlite_wb.imports.run(_project(sqlite_wb, "past", max_columns=9), path, actor=OPERATOR)
    _refused(report, "limits.max_columns")


def test_nesting_depth(sqlite_wb, tmp_path):
    def nested(depth: int) -> str:  # the object itself is level 1
        return json.dumps({"id": depth, "text": "t", "ctx": json.loads("[" * (depth - 1) + "]" * (depth - 1))})

    path = _write(tmp_path, "a.jsonl", nested(5) + "\n")
    assert sqlite_wb.imports.run(_project(sqlite_wb, "at", max_depth=5), path, actor=OPERATOR).ok
    path = _write(tmp_path, "b.jsonl", json.dumps({"id": 1, "text": "ok", "ctx": 1}) + "\n" + nested(6) + "\n")
    report = sqlite_wb.imports.run(_project(sqlite_wb, "past", max_depth=5), path, actor=OPERATOR)
    text = _refused(report, "limits.max_depth")
    assert "row 2 (line 2)" in text
    assert _items(sqlite_wb) == 1


def test_nested_100000_deep_is_one_row_error(sqlite_wb, tmp_path):
    path = _write(
        tmp_path,
        "deep.jsonl",
        json.dumps({"id": 1, "text": "ok"}) + "\n" + '{"id": 2, "text": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
    )
    report = sqlite_wb.imports.run(_project(sqlite_wb, "p"), path, actor=OPERATOR)  # default limits
    _refused(report, "nested too deep")
    assert _items(sqlite_wb) == 0


def test_text_length(sqlite_wb, tmp_path):
    path = _write(tmp_path, "a.csv", "id,text\n1," + "w" * 50 + "\n")
    assert sqlite_wb.imports.run(_project(sqlite_wb, "at", max_item_chars=50), path, actor=OPERATOR).ok
    report = sqlite_wb.imports.run(_project(sqlite_wb, "past", max_item_chars=49), path, actor=OPERATOR)
    text = _refused(report, "limits.max_item_chars")
    assert "row 1" in text
    # Context counts too: 40 characters of text and 20 of context are over 50.
    path = _write(tmp_path, "b.csv", "id,text,note\n1," + "w" * 40 + "," + "n" * 20 + "\n")
    _refused(sqlite_wb.imports.run("at", path, actor=OPERATOR), "limits.max_item_chars")


def test_image_pixels(sqlite_wb, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (10, 10)).save(folder / "a.png")  # 100 pixels
    assert sqlite_wb.imports.run_folder(
        _project(sqlite_wb, "at", "image", max_image_pixels=100), folder, actor=OPERATOR
    ).ok
    report = sqlite_wb.imports.run_folder(
        _project(sqlite_wb, "past", "image", max_image_pixels=99), folder, actor=OPERATOR
    )
    text = _refused(report, "limits.max_image_pixels")
    assert "10x10 is 100 pixels" in text and "row 1" in text


def test_bad_limits_setting_is_refused(sqlite_wb):
    with pytest.raises(WorkbenchError, match="max_rowz"):
        sqlite_wb.projects.create("x", "text", ["a"], settings={"limits": {"max_rowz": 1}}, actor=OPERATOR)
    with pytest.raises(WorkbenchError, match="positive integer"):
        sqlite_wb.projects.create("x", "text", ["a"], settings={"limits": {"max_rows": 0}}, actor=OPERATOR)
    assert Limits.from_settings({"max_rows": 7}).max_rows == 7


def test_refusal_writes_nothing_on_both_databases(wb, tmp_path):
    path = _write(tmp_path, "a.csv", "id,text\n" + "".join(f"{i},t{i}\n" for i in range(30)))
    report = wb.imports.run(_project(wb, "p", max_rows=29), path, actor=OPERATOR)
    _refused(report, "row 30")
    assert _items(wb) == 0
