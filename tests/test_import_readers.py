"""The pure half of import (no database): readers, decoding, encoding names, row building."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.importing.encoding import guess_encoding
from workbench.importing.readers import CsvReader, FolderReader, JsonlReader, ParquetReader, detect_format
from workbench.importing.report import FileProblem, ImportReport, Problem, RowError, RowProblem
from workbench.importing.validate import ImportOptions, NumericInference, RowBuilder

CORPUS = Path(__file__).resolve().parent / "bad_files"


def records(reader, needed):
    return list(reader.records(needed))


@pytest.mark.parametrize(
    "text,expected",
    [
        ("café crème, naïve façade", "cp1252/latin-1"),
        ("“smart quotes” – and €5", "cp1252/latin-1"),
    ],
)
def test_latin_text_is_named_cp1252(text, expected):
    assert guess_encoding(text.encode("cp1252")) == expected


def test_other_encodings_get_a_name():
    assert guess_encoding("これは日本語のテキストです。カタカナ".encode("shift_jis")) in (
        "cp932",
        "shift_jis",
        "shift_jis_2004",
    )
    assert guess_encoding("Привет, как дела? Это текст".encode("cp1251")) == "cp1251"


def test_csv_records_carry_rows_lines_and_problems():
    reader = CsvReader(CORPUS / "ragged.csv")
    assert reader.columns == ["id", "text", "source", "label"]
    rows = records(reader, ["id", "text"])
    assert [(r[0], r[1]) for r in rows] == [(1, 2), (2, 3), (3, 4)]
    assert rows[0][2] == ["g1", "Hello, world"] and rows[0][3] is None
    assert rows[1][2] is None and rows[1][3] == [(Problem.RAGGED, "has 5 fields, the header has 4")]
    multiline = records(CsvReader(CORPUS / "good_multiline.csv"), ["id"])
    assert [(r[0], r[1]) for r in multiline] == [(1, 2), (2, 4)]  # row 1 spans lines 2-3


def test_csv_blank_lines_are_skipped_and_headerless_files_named(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a, b\n\n1, 2\n   \n3, 4\n")
    reader = CsvReader(path, names=["x", "y"], skip_initial_space=True)
    assert [(r[0], r[1], r[2]) for r in records(reader, ["y", "x"])] == [
        (1, 1, ["b", "a"]),
        (2, 3, ["2", "1"]),
        (3, 5, ["4", "3"]),
    ]


def test_tsv_has_no_quoting(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text('id\ttext\n1\tan "unclosed quote\n2\tnext\n')
    assert [r[2] for r in records(CsvReader(path, "tsv"), ["text"])] == [['an "unclosed quote'], ["next"]]


def test_header_problems_refuse_the_file(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("id,text,id\n1,a,b\n")
    with pytest.raises(FileProblem, match="duplicate column names"):
        CsvReader(path)
    path.write_text("id,,text\n1,a,b\n")
    with pytest.raises(FileProblem, match="column 2 of the header has no name"):
        CsvReader(path)
    path.write_bytes("id,t\xe9xt\n1,a\n".encode("cp1252"))
    with pytest.raises(FileProblem, match="looks like cp1252/latin-1"):
        CsvReader(path)


def test_jsonl_missing_keys_extra_keys_and_nul_escapes(tmp_path):
    path = tmp_path / "x.jsonl"
    lines = [
        {"id": 1, "text": "a"},
        {"id": 2, "text": "b", "extra": 1},
        {"id": 3},
        [1, 2],
        {"id": 4, "text": "nul\u0000here"},
        {"id": 5, "text": "lone \ud800"},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    reader = JsonlReader(path)
    assert reader.columns == ["id", "text"]
    builder = RowBuilder(kind="text", columns=reader.columns, options=ImportOptions(), labels=[], check_strings=True)
    outcomes = []
    for row, _line, values, problems in reader.records(builder.needed):
        if problems:
            outcomes.append(problems[0][0])
            continue
        try:
            outcomes.append(builder.build(row, values)[:2])
        except RowProblem as problem:
            outcomes.append(problem.kind)
    assert outcomes == [
        ("1", '{"text":"a","context":{}}'),
        ("2", '{"text":"b","context":{}}'),
        Problem.EMPTY_TEXT,
        Problem.MALFORMED,
        Problem.NUL_BYTE,
        Problem.UNDECODABLE,
    ]
    assert reader.warnings() == ["field 'extra' (first seen in row 2) is not in the first row's fields and was ignored"]


def test_parquet_values_become_json_values(tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(
        pa.table(
            {
                "id": [1, 2],
                "x": [1.5, float("nan")],
                "when": pa.array([0, 86400000], pa.date64()),
                "cat": ["a", None],
                "label": ["pos", None],
            }
        ),
        path,
    )
    reader = ParquetReader(path)
    builder = RowBuilder(
        kind="tabular",
        columns=reader.columns,
        options=ImportOptions(prelabel_col="label"),
        labels=["pos"],
        check_strings=True,
    )
    built = [builder.build(row, values) for row, _l, values, _p in reader.records(builder.needed)]
    assert [json.loads(content) for _, content, _ in built] == [
        {"features": {"x": 1.5, "when": "1970-01-01", "cat": "a"}},
        {"features": {"x": None, "when": "1970-01-02", "cat": None}},
    ]
    assert [b[0] for b in built] == ["1", "2"] and [b[2] for b in built] == ["pos", None]


def test_numeric_inference_keeps_codes_as_text():
    builder = RowBuilder(kind="tabular", columns=["a", "b", "c", "d"], options=ImportOptions(), labels=[])
    inference = NumericInference(builder)
    for row in (["1", "1.5", "007", "x"], ["?", "-2", "12", "3"], ["", "1e3", "13", "4"]):
        inference.feed(row)
    assert inference.result() == {"a": "int", "b": "float"}


def test_folder_reader_lists_images_sorted(tmp_path):
    reader = FolderReader(CORPUS / "image_folder")
    assert [r[2] for r in records(reader, ["path", "subfolder"])] == [
        ["loose.png", None],
        ["neg/n1.png", "neg"],
        ["pos/p1.png", "pos"],
        ["pos/p2.png", "pos"],
    ]


def test_format_detection_and_report_text():
    assert detect_format(Path("a.NDJSON")) == "jsonl" and detect_format(Path("a.txt"), "TSV") == "tsv"
    with pytest.raises(ValueError, match="cannot tell the format"):
        detect_format(Path("a.txt"))
    report = ImportReport(project="p", path="f.csv", format="csv", dry_run=False, rows=2, max_listed=1)
    report.add_error(RowError(2, "empty text", "text is empty", 3))
    report.add_error(RowError(1, "ragged row", "has 1 fields", 2))
    assert not report.ok and report.n_errors == 2 and report.n_unlisted == 1
    assert report.lines() == [
        "f.csv: 2 of 2 rows refused (1 empty text, 1 ragged row); nothing was written",
        "row 2 (line 3): empty text: text is empty",
        "... and 1 more bad rows (only the first 1 are listed)",
    ]
