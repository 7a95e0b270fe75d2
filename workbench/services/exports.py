"""The one exporter: items with their final labels, every human annotation, and dataset versions,
as CSV, JSONL or Parquet (``ExportFormat``), and in the shapes other tools read:

- ``label-studio``: a JSON list of Label Studio tasks, one per item (items or annotations alike):
  ``data`` (the text and context, the features, or the image path), ``meta`` (external id, item
  id, split, state, final label), one ``annotations[]`` entry per human annotation (its annotator
  as ``completed_by: {"email": ...}``, one Choices ``result``) and the prelabels as
  ``predictions[]`` — the shape Label Studio imports, and `workbench import --format label-studio`
  reads back into the same annotations;
- ``prodigy``: JSONL, one line per human annotation, ``text``/``label``/``answer``/
  ``_annotator_id`` and ``meta`` (items or annotations alike);
- ``hf`` (dataset versions only): a folder with Parquet per split (``data/train-*.parquet`` for the
  pool, ``data/test-*.parquet`` for eval) whose schema carries the Hugging Face features (the label
  a ClassLabel), and a dataset card ``README.md`` (YAML ``dataset_info``, hash, counts, agreement).

All are streamed (yield_per) and written in chunks, to a temporary file renamed into place, so a
big project never sits in memory and a failed export leaves no half-written file. A version's
manifest (content hash, counts, agreement) is written beside it the same way. Downloads in the app
(``payload``) go through the same writer, so a file is the same whichever way it was made.

CSV cells are neutralised against formula injection: a *string* cell (header names included)
that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``.
Numbers are left alone, so ``-3`` in a numeric feature stays a number; the same text stored as a
string (e.g. a context column read from CSV) is neutralised to ``'-3``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC
from pathlib import Path
from typing import Any, TextIO, TypeVar

from sqlalchemy import Engine, Select, select
from sqlmodel import Session, col

from workbench.db.models import (
    Adjudication,
    Annotation,
    AuditLog,
    DatasetVersion,
    DatasetVersionItem,
    Item,
    ProjectLabel,
    User,
)
from workbench.domain import Actor, AnnotationSource, ExportFormat, ExportKind, ProjectInfo, ProjectKind, Role
from workbench.errors import NotFound, WorkbenchError
from workbench.importing import label_studio as ls
from workbench.services._auth import requires
from workbench.services._tx import audit, reading, write
from workbench.services.members import load_member_project
from workbench.services.projects import load_project
from workbench.services.versions import version_rows

FORMATS = tuple(f.value for f in ExportFormat)
TABLES = (ExportFormat.CSV, ExportFormat.JSONL, ExportFormat.PARQUET)
PRODIGY_COLUMNS = ["text", "label", "answer", "_annotator_id", "meta"]
HF_SPLITS = {"pool": "train", "eval": "test"}  # the Workbench's splits, as Hugging Face names them
CHUNK_ROWS = 10_000
_Row = TypeVar("_Row")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
ITEM_COLUMNS = ["external_id", "item_id", "split", "state", "final_label"]
ANNOTATION_COLUMNS = [
    "annotation_id",
    "item_id",
    "item_external_id",
    "annotator",
    "label",
    "slot",
    "created_at",
    "duration_ms",
]
ANNOTATION_TYPES = {
    "annotation_id": "int",
    "item_id": "int",
    "item_external_id": "str",
    "annotator": "str",
    "label": "str",
    "slot": "int",
    "created_at": "str",
    "duration_ms": "int",
}
ADJUDICATION_COLUMNS = [
    "adjudication_id",
    "item_id",
    "item_external_id",
    "reviewer",
    "decision",
    "label",
    "reason",
    "previous_state",
    "previous_label",
    "created_at",
]
ADJUDICATION_TYPES = {name: "str" for name in ADJUDICATION_COLUMNS} | {"adjudication_id": "int", "item_id": "int"}
VERSION_COLUMNS = ["item_id", "external_id", "split", "label", "source", "annotation_ids", "adjudication_id"]
VERSION_TYPES = {
    "item_id": "int",
    "external_id": "str",
    "split": "str",
    "label": "str",
    "source": "str",
    "annotation_ids": "str",
    "adjudication_id": "int",
}


@dataclass(frozen=True)
class ExportResult:
    path: str
    format: ExportFormat
    rows: int
    columns: tuple[str, ...]
    sha256: str
    seconds: float
    manifest_path: str | None = None  # versions only: `<file>.manifest.json` beside the export


def neutralise(value: Any) -> Any:
    """A string cell that a spreadsheet would run as a formula, made inert with a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def export_format(fmt: ExportFormat | str | None, out_path: Path) -> ExportFormat:
    return ExportFormat.parse(fmt, out_path)


def write_text_atomically(path: Path, text: str) -> None:
    """`text` to `path` through a temporary file renamed into place (never a partial file)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# Value types for a Parquet schema, from narrow to wide; mixed kinds become strings.
_RANK = {"null": 0, "bool": 1, "int": 2, "float": 3, "str": 4}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "str"


def _widen(a: str, b: str) -> str:
    if a == b or b == "null":
        return a
    if a == "null":
        return b
    if {a, b} == {"int", "float"}:
        return "float"
    return "str"


class _Flattener:
    """The columns of one project's content, and each item's content as a flat row."""

    def __init__(self, kind: ProjectKind) -> None:
        self.kind = kind
        self.section = {"text": "context", "tabular": "features"}.get(kind.value)
        self.fixed = list(ITEM_COLUMNS) + {"text": ["text"], "image": ["image"]}.get(kind.value, [])
        self.keys: dict[str, str] = {}  # content key -> kind (first appearance order)

    def scan(self, content: dict) -> None:
        if self.section is None:
            return
        for key, value in (content.get(self.section) or {}).items():
            self.keys[key] = _widen(self.keys.get(key, "null"), _kind(value))

    @property
    def names(self) -> dict[str, str]:
        """Content key -> column name (prefixed when it would collide with a fixed column)."""
        taken = set(self.fixed)
        prefix = "context." if self.kind is ProjectKind.TEXT else "feature."
        return {key: (prefix + key if key in taken else key) for key in self.keys}

    @property
    def columns(self) -> list[str]:
        return self.fixed + list(self.names.values())

    @property
    def types(self) -> dict[str, str]:
        types = {
            "external_id": "str",
            "item_id": "int",
            "split": "str",
            "state": "str",
            "final_label": "str",
            "text": "str",
            "image": "str",
        }
        names = self.names
        return {**types, **{names[key]: kind for key, kind in self.keys.items()}}

    def row(
        self, item_id: int, external_id: str, split: str, state: str, final_label: str | None, content: dict
    ) -> list:
        out = [external_id, item_id, split, state, final_label]
        if self.kind is ProjectKind.TEXT:
            out.append(content.get("text"))
        elif self.kind is ProjectKind.IMAGE:
            out.append(content.get("image"))
        if self.section is not None:
            values = content.get(self.section) or {}
            out += [values.get(key) for key in self.keys]
        return out


def _typed(values: list, kind: str) -> list:
    """One Parquet column's values as its type needs them (strings: nested values as JSON)."""
    if kind == "str":
        return [
            v
            if v is None or isinstance(v, str)
            else json.dumps(v, ensure_ascii=False)
            if isinstance(v, (list, dict))
            else str(v)
            for v in values
        ]
    if kind == "float":
        return [None if v is None else float(v) for v in values]
    return values


def _iso(moment: Any) -> str | None:
    """A stored time as ISO 8601 with its UTC offset (SQLite hands back naive UTC)."""
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


class _Writer:
    """Chunked writing of rows (lists aligned with `columns`) to csv/jsonl/parquet; for label-studio
    each row is one task (a dict) and the file one JSON list."""

    def __init__(self, fmt: ExportFormat, out: Path, columns: list[str], types: dict[str, str]) -> None:
        self.fmt, self.out, self.columns, self.types = fmt, out, columns, types
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        self.rows = 0
        self._parquet: Any = None  # a pyarrow ParquetWriter (pyarrow is untyped)
        self._file: TextIO | None = None
        if fmt is ExportFormat.PARQUET:
            import pyarrow as pa
            import pyarrow.parquet as pq

            arrow = {
                "null": pa.string(),
                "bool": pa.bool_(),
                "int": pa.int64(),
                "float": pa.float64(),
                "str": pa.string(),
            }
            self.schema = pa.schema([(name, arrow[types.get(name, "str")]) for name in columns])
            self._parquet = pq.ParquetWriter(self.tmp, self.schema)
        else:
            self._file = open(self.tmp, "w", encoding="utf-8", newline="")
        self._first = True

    def _text(self) -> TextIO:
        assert self._file is not None  # every format but Parquet is written as text
        return self._file

    def write(self, rows: list[list]) -> None:
        if not rows:
            return
        self.rows += len(rows)
        if self.fmt is ExportFormat.CSV:
            # CRLF line ends (RFC 4180) also make the writer quote a cell holding a bare CR.
            import pandas as pd

            cells = [[neutralise(value) for value in row] for row in rows]
            frame = pd.DataFrame(cells, columns=[neutralise(c) for c in self.columns], dtype=object)
            frame.to_csv(self._file, header=self._first, index=False, lineterminator="\r\n")
        elif self.fmt in (ExportFormat.JSONL, ExportFormat.PRODIGY):
            dumps = json.JSONEncoder(ensure_ascii=False).encode
            self._text().write("".join(dumps(dict(zip(self.columns, row))) + "\n" for row in rows))
        elif self.fmt is ExportFormat.LABEL_STUDIO:
            dumps = json.JSONEncoder(ensure_ascii=False).encode
            self._text().write(("[\n" if self._first else ",\n") + ",\n".join(dumps(row[0]) for row in rows))
        else:
            import pyarrow as pa

            data = {
                name: _typed([row[j] for row in rows], self.types.get(name, "str"))
                for j, name in enumerate(self.columns)
            }
            self._parquet.write_table(pa.Table.from_pydict(data, schema=self.schema))
        self._first = False

    def close(self) -> str:
        if self._parquet is not None:
            self._parquet.close()
        else:
            if self._first and self.fmt is ExportFormat.CSV:  # no rows: still write the header
                import pandas as pd

                pd.DataFrame([], columns=[neutralise(c) for c in self.columns]).to_csv(
                    self._file, index=False, lineterminator="\r\n"
                )
            if self.fmt is ExportFormat.LABEL_STUDIO:
                self._text().write("[]\n" if self._first else "\n]\n")
            self._text().close()
        digest = hashlib.sha256()
        with open(self.tmp, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        os.replace(self.tmp, self.out)
        return digest.hexdigest()

    def abort(self) -> None:
        try:
            if self._parquet is not None:
                self._parquet.close()
            if self._file is not None:
                self._file.close()
        finally:
            self.tmp.unlink(missing_ok=True)


_KEYS_SQL = {
    # key, JSON type, whether every number is an integer, first item and position it appears at.
    "sqlite": (
        "SELECT j.key, j.type, 1, min(item.id), min(j.id) FROM item, json_each(item.content, '$.{section}') AS j "
        "WHERE item.project_id = :project AND json_type(item.content, '$.{section}') = 'object' "
        "GROUP BY j.key, j.type"
    ),
    "postgresql": (
        "SELECT k.key, json_typeof(k.value), bool_and(json_typeof(k.value) <> 'number' "
        "OR k.value::text ~ '^-?[0-9]+$'), min(item.id), min(k.n) "
        "FROM item, json_each(item.content -> '{section}') WITH ORDINALITY AS k(key, value, n) "
        "WHERE item.project_id = :project AND json_typeof(item.content -> '{section}') = 'object' "
        "GROUP BY 1, 2"
    ),
}
_JSON_KINDS = {
    "integer": "int",
    "real": "float",
    "text": "str",
    "null": "null",
    "true": "bool",
    "false": "bool",
    "string": "str",
    "boolean": "bool",
    "object": "str",
    "array": "str",
}


def _scan_keys(session: Session, project_id: int, flat: _Flattener) -> None:
    """Content keys in order of first appearance, with a column type: one grouped query where the
    database can take JSON apart itself (every item's JSON is decoded once, by the export)."""
    sql = _KEYS_SQL.get(session.get_bind().dialect.name)
    if sql is None:  # another database: decode every item once more
        for (content,) in session.execute(
            select(col(Item.content)).where(col(Item.project_id) == project_id).execution_options(yield_per=CHUNK_ROWS)
        ):
            flat.scan(content)
        return
    from sqlalchemy import text

    rows = session.execute(text(sql.format(section=flat.section)), {"project": project_id}).all()
    first: dict[str, tuple[int, int]] = {}
    for key, json_type, integral, item_id, position in rows:
        kind = (
            "int"
            if json_type == "number" and integral
            else "float"
            if json_type == "number"
            else _JSON_KINDS.get(json_type, "str")
        )
        flat.keys[key] = _widen(flat.keys.get(key, "null"), kind)
        first[key] = min(first.get(key, (item_id, position)), (item_id, position))
    flat.keys = {key: flat.keys[key] for key in sorted(first, key=first.__getitem__)}


def _chunks(rows: Iterable[_Row], size: int = CHUNK_ROWS) -> Iterator[list[_Row]]:
    chunk: list[_Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _refuse(fmt: ExportFormat, kind: ExportKind) -> None:
    if fmt not in kind.formats:
        if fmt is ExportFormat.HF:
            raise WorkbenchError(
                "the hf format is for dataset versions: workbench version export PROJECT N --format hf"
            )
        raise WorkbenchError(
            f"a {kind.value} export cannot be {fmt.value}; use one of: {', '.join(f.value for f in kind.formats)}"
        )


def _ls_data(kind: ProjectKind, content: dict) -> dict:
    """A task's ``data``: what the Label Studio object tag shows, and the other fields beside it."""
    if kind is ProjectKind.TEXT:
        return {**(content.get("context") or {}), "text": content.get("text")}
    if kind is ProjectKind.IMAGE:
        return {"image": content.get("image")}
    return dict(content.get("features") or {})


def _items_in_order(project_id: int) -> Select:
    """Every item of a project in id order, streamed: id, external id, split, state, final label,
    content (the items export and the Label Studio tasks both read this)."""
    return (
        select(
            col(Item.id),
            col(Item.external_id),
            col(Item.split),
            col(Item.state),
            col(Item.final_label),
            col(Item.content),
        )
        .where(col(Item.project_id) == project_id)
        .order_by(col(Item.id))
        .execution_options(yield_per=CHUNK_ROWS)
    )


def _ls_tasks(session: Session, info: ProjectInfo) -> Iterator[dict]:
    """One Label Studio task per item, in item order, its annotations merged in from a second
    ordered stream (neither is held whole in memory)."""
    to_name = ls.TO_NAME[info.kind.value]
    items = session.execute(_items_in_order(info.id))
    notes = iter(
        session.execute(
            select(
                col(Annotation.item_id),
                col(Annotation.id),
                col(Annotation.source),
                col(User.name),
                col(Annotation.label),
                col(Annotation.created_at),
                col(Annotation.duration_ms),
            )
            .outerjoin(User, col(User.id) == Annotation.annotator_id)
            .where(col(Annotation.project_id) == info.id)
            .order_by(col(Annotation.item_id), col(Annotation.slot), col(Annotation.id))
            .execution_options(yield_per=CHUNK_ROWS)
        )
    )
    note = next(notes, None)
    for item_id, external_id, split, state, final_label, content in items:
        annotations, predictions = [], []
        while note is not None and note[0] <= item_id:
            if note[0] == item_id:
                _, annotation_id, source, name, label, created_at, duration_ms = note
                if source == AnnotationSource.HUMAN:
                    annotations.append(
                        {
                            "id": annotation_id,
                            "completed_by": {"email": ls.annotator_email(name)},
                            "result": [ls.choice_result(label, to_name, f"wb-{annotation_id}")],
                            "was_cancelled": False,
                            "ground_truth": False,
                            "created_at": _iso(created_at),
                            "lead_time": None if duration_ms is None else duration_ms / 1000,
                        }
                    )
                else:
                    predictions.append(
                        {
                            "model_version": ls.PRELABEL_MODEL,
                            "result": [ls.choice_result(label, to_name, f"wb-p{annotation_id}")],
                        }
                    )
            note = next(notes, None)
        yield {
            "data": _ls_data(info.kind, content),
            "meta": {
                "external_id": external_id,
                "workbench_item_id": item_id,
                "split": split,
                "state": state,
                "final_label": final_label,
            },
            "annotations": annotations,
            "predictions": predictions,
        }


def _prodigy_rows(session: Session, info: ProjectInfo) -> Iterator[list]:
    """One Prodigy line per human annotation: the item's text (the image path for images, the
    features as JSON for tables), the label accepted, the annotator, and the item in `meta`."""
    query = (
        select(
            col(Item.id),
            col(Item.external_id),
            col(Item.split),
            col(Item.content),
            col(User.name),
            col(Annotation.label),
        )
        .join(Item, col(Item.id) == Annotation.item_id)
        .join(User, col(User.id) == Annotation.annotator_id)
        .where(col(Annotation.project_id) == info.id, col(Annotation.source) == AnnotationSource.HUMAN)
        .order_by(col(Annotation.item_id), col(Annotation.slot), col(Annotation.id))
        .execution_options(yield_per=CHUNK_ROWS)
    )
    for item_id, external_id, split, content, name, label in session.execute(query):
        if info.kind is ProjectKind.TEXT:
            text = content.get("text")
        elif info.kind is ProjectKind.IMAGE:
            text = content.get("image")
        else:
            text = json.dumps(content.get("features") or {}, ensure_ascii=False, sort_keys=True)
        meta = {"item_id": item_id, "external_id": external_id, "split": split}
        yield [text, label, "accept", name, meta]


_HF_DTYPES = {"int": "int64", "float": "float64", "bool": "bool", "str": "string", "null": "string"}


def _hf_card(
    info: ProjectInfo, version: DatasetVersion, manifest: dict, features: list[tuple[str, str]], splits: dict[str, int]
) -> str:
    """The dataset card: YAML front matter Hugging Face reads (configs, dataset_info with the label
    as a ClassLabel, splits), then the version's hash, counts and agreement for people."""
    q = json.dumps  # a JSON string is a valid YAML scalar, quoted and escaped
    task = {"text": "text-classification", "image": "image-classification"}.get(
        info.kind.value, "tabular-classification"
    )
    lines = ["---", f"pretty_name: {q(f'{info.name} (dataset version {version.number})')}", "task_categories:"]
    lines += [f"- {task}", "tags:", "- workbench", "configs:", "- config_name: default", "  data_files:"]
    for split in splits:
        lines += [f"  - split: {split}", f"    path: {q(f'data/{split}-*.parquet')}"]
    lines += ["dataset_info:", "  features:"]
    for name, dtype in features:
        lines.append(f"  - name: {q(name)}")
        if name == "label":
            lines += ["    dtype:", "      class_label:", "        names:"]
            lines += [f"          {q(str(i))}: {q(label)}" for i, label in enumerate(info.labels)]
        else:
            lines.append(f"    dtype: {dtype}")
    lines.append("  splits:")
    for split, n in splits.items():
        lines += [f"  - name: {split}", f"    num_examples: {n}"]
    lines.append("---")
    agreement = manifest.get("agreement") or {}
    counts = manifest.get("counts") or {}
    body = [
        "",
        f"# {info.name}, dataset version {version.number}",
        "",
        "Exported by the Workbench (`workbench version export --format hf`). Labels are the final labels",
        "(agreed by two or more annotators, or adjudicated by a reviewer) frozen in this version.",
        "",
        f"- version: {version.number} ({version.trigger}, {_iso(version.created_at)})",
        f"- content hash (sha256): `{version.content_hash}`",
        f"- items: {version.n_items}",
        "- splits: " + ", ".join(f"`{hf}` = the Workbench's {wb} split" for wb, hf in HF_SPLITS.items()),
        "- labels (ClassLabel order): " + ", ".join(f"{i} = {label}" for i, label in enumerate(info.labels)),
        "",
        "## Annotation counts",
        "",
        "| split | " + " | ".join(info.labels) + " |",
        "|---|" + "---|" * len(info.labels),
    ]
    for wb_split, hf_split in HF_SPLITS.items():
        row = counts.get(wb_split) or {}
        body.append(f"| {hf_split} | " + " | ".join(str(row.get(label, 0)) for label in info.labels) + " |")
    body += ["", "Human annotations per annotator: "]
    annotators = manifest.get("annotators") or {}
    body[-1] += ", ".join(f"{name} {n}" for name, n in sorted(annotators.items())) or "none"
    body += [
        "",
        "Label sources: "
        + (", ".join(f"{k} {v}" for k, v in sorted((manifest.get("sources") or {}).items())) or "none"),
    ]

    def figure(value: Any) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    body += [
        "",
        "## Agreement",
        "",
        f"- Krippendorff's alpha: {figure(agreement.get('krippendorff_alpha'))}",
        f"- percent agreement: {figure(agreement.get('percent_agreement'))}",
        f"- items with two or more labels: {agreement.get('paired_items', 0)}",
        "",
    ]
    return "\n".join(lines + body)


def _write_hf(
    session: Session, info: ProjectInfo, version: DatasetVersion, manifest: dict, out: Path, started: float
) -> ExportResult:
    """A dataset version as a Hugging Face dataset folder, built in a temporary folder beside `out`
    and swapped into place (a failed export leaves the previous folder, or nothing)."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    if out.exists() and not out.is_dir():
        raise WorkbenchError(f"{out} is a file; the hf format writes a folder")
    flat = _Flattener(info.kind)
    if flat.section is not None:
        _scan_keys(session, info.id, flat)
    fixed = len(ITEM_COLUMNS)
    content_columns, types = flat.columns[fixed:], flat.types
    columns = ["item_id", "external_id", *content_columns, "label"]
    kinds = {"item_id": "int", "external_id": "str", **{c: types.get(c, "str") for c in content_columns}}
    arrow = {"null": pa.string(), "bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "str": pa.string()}
    features = [(name, _HF_DTYPES[kinds.get(name, "int")]) for name in columns]
    hf_features: dict[str, dict[str, Any]] = {
        name: {"dtype": dtype, "_type": "Value"} for name, dtype in features if name != "label"
    }
    hf_features["label"] = {"names": list(info.labels), "_type": "ClassLabel"}
    schema = pa.schema(
        [(name, arrow[kinds[name]]) for name in columns[:-1]] + [("label", pa.int64())],
        metadata={"huggingface": json.dumps({"info": {"features": hf_features}})},
    )
    index = {label: i for i, label in enumerate(info.labels)}
    query = (
        select(
            col(DatasetVersionItem.item_id),
            col(Item.external_id),
            col(DatasetVersionItem.split),
            col(DatasetVersionItem.label),
            col(Item.content),
        )
        .join(Item, col(Item.id) == DatasetVersionItem.item_id)
        .where(col(DatasetVersionItem.version_id) == version.id)
        .order_by(col(Item.external_id))
        .execution_options(yield_per=CHUNK_ROWS)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    writers: dict[str, Any] = {}
    counts: dict[str, int] = {}
    try:
        (tmp / "data").mkdir()
        rows = (
            (split, flat.row(item_id, external_id, split, "", label, content), label)
            for item_id, external_id, split, label, content in session.execute(query)
        )
        for chunk in _chunks(rows):
            by_split: dict[str, list[list]] = {}
            for split, row, label in chunk:
                by_split.setdefault(HF_SPLITS.get(split, split), []).append(
                    [row[1], row[0], *row[fixed:], index[label]]
                )
            for split, part in by_split.items():
                if split not in writers:
                    writers[split] = pq.ParquetWriter(tmp / "data" / f"{split}-00000-of-00001.parquet", schema)
                data = {name: _typed([r[j] for r in part], kinds.get(name, "int")) for j, name in enumerate(columns)}
                writers[split].write_table(pa.Table.from_pydict(data, schema=schema))
                counts[split] = counts.get(split, 0) + len(part)
        for writer in writers.values():
            writer.close()
        writers.clear()
        splits = {split: counts[split] for split in sorted(counts, key=lambda s: (s != "train", s))}
        (tmp / "README.md").write_text(_hf_card(info, version, manifest, features, splits), encoding="utf-8")
        manifest_text = json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n"
        (tmp / "workbench_manifest.json").write_text(manifest_text, encoding="utf-8")
        digest = hashlib.sha256()
        for path in sorted(tmp.rglob("*")):
            if path.is_file():
                digest.update(path.relative_to(tmp).as_posix().encode() + b"\0" + path.read_bytes())
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / "previous")
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        for writer in writers.values():
            writer.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(
        path=str(out),
        format=ExportFormat.HF,
        rows=sum(counts.values()),
        columns=tuple(columns),
        sha256=digest.hexdigest(),
        seconds=time.perf_counter() - started,
        manifest_path=str(out / "workbench_manifest.json"),
    )


class ExportService:
    """Exports need the reviewer role or higher (annotators must never see others' answers);
    the CLI passes Actor.operator()."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @requires(Role.REVIEWER)
    def items(self, project: str, fmt: str | None, out_path: str | Path, *, actor: Actor) -> ExportResult:
        """Every item: external id, item id, split, state, final label, and its content flattened
        (label-studio: one task per item with its annotations; prodigy: as `annotations`)."""
        out = Path(out_path).expanduser()
        fmt = export_format(fmt, out)
        if fmt is ExportFormat.PRODIGY:
            return self.annotations(project, fmt, out, actor=actor)
        _refuse(fmt, ExportKind.ITEMS)
        started = time.perf_counter()
        with reading(self.engine) as session:
            info = load_member_project(session, project, actor, Role.REVIEWER)
            if fmt is ExportFormat.LABEL_STUDIO:
                result = self._write(fmt, out, ["task"], {}, ([t] for t in _ls_tasks(session, info)), started)
                self._audit(info.id, actor, "export.items", result)
                return result
            flat = _Flattener(info.kind)
            if flat.section is not None:  # the content keys and their types, before the rows
                _scan_keys(session, info.id, flat)
            rows = (flat.row(*record) for record in session.execute(_items_in_order(info.id)))
            result = self._write(fmt, out, flat.columns, flat.types, rows, started)
        self._audit(info.id, actor, "export.items", result)
        return result

    @requires(Role.REVIEWER)
    def annotations(self, project: str, fmt: str | None, out_path: str | Path, *, actor: Actor) -> ExportResult:
        """One row per human annotation (import prelabels are not annotations by people); prodigy:
        a line per annotation in Prodigy's shape; label-studio: as `items` (tasks hold annotations)."""
        out = Path(out_path).expanduser()
        fmt = export_format(fmt, out)
        if fmt is ExportFormat.LABEL_STUDIO:
            return self.items(project, fmt, out, actor=actor)
        _refuse(fmt, ExportKind.ANNOTATIONS)
        if fmt is ExportFormat.PRODIGY:
            started = time.perf_counter()
            with reading(self.engine) as session:
                info = load_member_project(session, project, actor, Role.REVIEWER)
                rows = _prodigy_rows(session, info)
                result = self._write(fmt, out, PRODIGY_COLUMNS, {}, rows, started)
                self._audit(info.id, actor, "export.annotations", result)
                return result

        def query(project_id: int) -> Select[*tuple[Any, ...]]:
            return (
                select(
                    col(Annotation.id),
                    col(Annotation.item_id),
                    col(Item.external_id),
                    col(User.name),
                    col(Annotation.label),
                    col(Annotation.slot),
                    col(Annotation.created_at),
                    col(Annotation.duration_ms),
                )
                .join(Item, col(Item.id) == Annotation.item_id)
                .join(User, col(User.id) == Annotation.annotator_id)
                .where(col(Annotation.project_id) == project_id, col(Annotation.source) == AnnotationSource.HUMAN)
                .order_by(col(Annotation.item_id), col(Annotation.slot), col(Annotation.id))
            )

        return self._rows(
            project, fmt, out_path, actor, query, ANNOTATION_COLUMNS, ANNOTATION_TYPES, 6, "export.annotations"
        )

    @requires(Role.REVIEWER)
    def adjudications(self, project: str, fmt: str | None, out_path: str | Path, *, actor: Actor) -> ExportResult:
        """One row per adjudication (every decision a reviewer made, with its reason), oldest first."""

        def query(project_id: int) -> Select[*tuple[Any, ...]]:
            return (
                select(
                    col(Adjudication.id),
                    col(Adjudication.item_id),
                    col(Item.external_id),
                    col(User.name),
                    col(Adjudication.decision),
                    col(Adjudication.label),
                    col(Adjudication.reason),
                    col(Adjudication.previous_state),
                    col(Adjudication.previous_label),
                    col(Adjudication.created_at),
                )
                .join(Item, col(Item.id) == Adjudication.item_id)
                .join(User, col(User.id) == Adjudication.reviewer_id)
                .where(col(Adjudication.project_id) == project_id)
                .order_by(col(Adjudication.id))
            )

        return self._rows(
            project, fmt, out_path, actor, query, ADJUDICATION_COLUMNS, ADJUDICATION_TYPES, 9, "export.adjudications"
        )

    def _rows(
        self,
        project: str,
        fmt: str | None,
        out_path: str | Path,
        actor: Actor,
        query: Callable[[int], Select[*tuple[Any, ...]]],
        columns: list[str],
        types: dict[str, str],
        at: int,
        action: str,
    ) -> ExportResult:
        """Stream `query(project_id)` to a file, the timestamp in column `at` as ISO text; audited as `action`."""
        out = Path(out_path).expanduser()
        fmt = export_format(fmt, out)
        if fmt not in (ExportFormat.CSV, ExportFormat.JSONL, ExportFormat.PARQUET):
            raise WorkbenchError(f"this export is written as csv, jsonl or parquet, not {fmt.value}")
        started = time.perf_counter()
        with reading(self.engine) as session:
            info = load_member_project(session, project, actor, Role.REVIEWER)
            records = session.execute(query(info.id).execution_options(yield_per=CHUNK_ROWS))
            rows = ([*r[:at], r[at].isoformat() if r[at] else None, *r[at + 1 :]] for r in records)
            result = self._write(fmt, out, columns, types, rows, started)
        self._audit(info.id, actor, action, result)
        return result

    @requires(Role.ADMIN)
    def everything(self, project: str, out_path: str | Path, *, actor: Actor) -> ExportResult:
        """The whole project in one zip file: items, annotations, adjudications, every dataset
        version (with its manifest), and project.json (kind, overlap, strategy, settings, the label
        table with retired and renamed labels, and the audit log). Written by the exports above
        (JSONL) to a temporary folder, zipped to a temporary file and renamed into place."""
        import zipfile

        out = Path(out_path).expanduser()
        if out.suffix != ".zip":
            raise WorkbenchError(f"a full export is a .zip file, not {out.name!r}")
        out.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with reading(self.engine) as session:
            info = load_project(session, project)
            numbers = (
                session.execute(
                    select(col(DatasetVersion.number))
                    .where(col(DatasetVersion.project_id) == info.id)
                    .order_by(col(DatasetVersion.number))
                )
                .scalars()
                .all()
            )
            label_rows = (
                session.execute(
                    select(ProjectLabel)
                    .where(col(ProjectLabel.project_id) == info.id)
                    .order_by(col(ProjectLabel.position))
                )
                .scalars()
                .all()
            )
            audit_rows = (
                session.execute(select(AuditLog).where(col(AuditLog.project_id) == info.id).order_by(col(AuditLog.id)))
                .scalars()
                .all()
            )
            meta = {
                "project": info.name,
                "kind": info.kind.value,
                "overlap": info.overlap,
                "strategy": info.strategy,
                "settings": info.settings,
                "labels": [
                    {
                        "name": row.name,
                        "position": row.position,
                        "retired_at": row.retired_at.isoformat() if row.retired_at else None,
                        "renamed_to": row.renamed_to,
                    }
                    for row in label_rows
                ],
                "audit_log": [
                    {
                        "id": a.id,
                        "at": a.at.isoformat(),
                        "actor_id": a.actor_id,
                        "item_id": a.item_id,
                        "action": a.action,
                        "details": a.details,
                    }
                    for a in audit_rows
                ],
            }
        rows = 0
        with tempfile.TemporaryDirectory(prefix="wb-full-export-", dir=out.parent) as tmp:
            folder = Path(tmp)
            parts = [
                self.items(project, "jsonl", folder / "items.jsonl", actor=actor),
                self.annotations(project, "jsonl", folder / "annotations.jsonl", actor=actor),
                self.adjudications(project, "jsonl", folder / "adjudications.jsonl", actor=actor),
            ]
            for number in numbers:
                parts.append(self.version(project, number, "jsonl", folder / f"version-{number}.jsonl", actor=actor))
            meta["files"] = {Path(p.path).name: {"rows": p.rows, "sha256": p.sha256} for p in parts}
            (folder / "project.json").write_text(
                json.dumps(meta, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
            )
            rows = sum(p.rows for p in parts)
            fd, part = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
            os.close(fd)
            try:
                with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                    for path in sorted(folder.iterdir()):
                        archive.write(path, arcname=path.name)
                os.replace(part, out)
            except BaseException:
                Path(part).unlink(missing_ok=True)
                raise
        digest = hashlib.sha256()
        with open(out, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        result = ExportResult(
            path=str(out),
            format=ExportFormat.JSONL,
            rows=rows,
            columns=(),
            sha256=digest.hexdigest(),
            seconds=time.perf_counter() - started,
        )
        self._audit(info.id, actor, "export.everything", result)
        return result

    @requires(Role.REVIEWER)
    def version(
        self, project: str, number: int, fmt: ExportFormat | str | None, out_path: str | Path, *, actor: Actor
    ) -> ExportResult:
        """One dataset version: a row per item (id, split, label, source, the annotations and the
        adjudication it came from), in external-id order, and beside it `<file>.manifest.json`
        (content hash, counts, annotators, agreement). hf: `out_path` is a folder (Parquet per split,
        a dataset card README.md, and the manifest as workbench_manifest.json)."""
        out = Path(out_path).expanduser()
        fmt = export_format(fmt, out)
        _refuse(fmt, ExportKind.VERSION)
        started = time.perf_counter()
        with reading(self.engine) as session:
            info = load_member_project(session, project, actor, Role.REVIEWER)
            version = session.execute(
                select(DatasetVersion).where(
                    col(DatasetVersion.project_id) == info.id, col(DatasetVersion.number) == number
                )
            ).scalar_one_or_none()
            if version is None:
                raise NotFound(f"{project!r} has no version {number}")
            manifest = {
                "project": info.name,
                "version": version.number,
                "content_hash": version.content_hash,
                "n_items": version.n_items,
                "created_at": version.created_at.isoformat(),
                "trigger": version.trigger,
                **dict(version.manifest or {}),
            }
            if fmt is ExportFormat.HF:  # before the rows' query below is opened
                result = _write_hf(session, info, version, manifest, out, started)
                self._audit(info.id, actor, "export.version", result)
                return result
            assert version.id is not None  # a stored version
            query = version_rows(version.id).execution_options(yield_per=CHUNK_ROWS)
            rows = (
                [item_id, external_id, split, label, source, ",".join(map(str, annotation_ids or ())), adjudication_id]
                for item_id, external_id, split, label, source, annotation_ids, adjudication_id in session.execute(
                    query
                )
            )
            result = self._write(fmt, out, VERSION_COLUMNS, VERSION_TYPES, rows, started)
        manifest_path = out.with_name(out.name + ".manifest.json")
        write_text_atomically(manifest_path, json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n")
        result = replace(result, manifest_path=str(manifest_path))
        self._audit(info.id, actor, "export.version", result)
        return result

    @requires(Role.REVIEWER)
    def payload(
        self, kind: ExportKind | str, project: str, fmt: ExportFormat | str, *, actor: Actor, number: int | None = None
    ) -> tuple[bytes, ExportResult]:
        """An export as bytes, for a download: written by the same chunked writer to a temporary
        folder, then read back (a download is handed over whole)."""
        kind, fmt = ExportKind(kind), ExportFormat.parse(fmt)
        if fmt is ExportFormat.HF:
            raise WorkbenchError("an hf export is a folder, not a download: use workbench version export --format hf")
        with tempfile.TemporaryDirectory(prefix="wb-export-") as tmp:
            out = Path(tmp) / f"export.{fmt.value}"
            if kind is ExportKind.VERSION:
                if number is None:
                    raise WorkbenchError("a version export needs the version number")
                result = self.version(project, number, fmt, out, actor=actor)
            elif kind is ExportKind.ANNOTATIONS:
                result = self.annotations(project, fmt, out, actor=actor)
            else:
                result = self.items(project, fmt, out, actor=actor)
            return out.read_bytes(), result

    @staticmethod
    def _write(
        fmt: ExportFormat, out: Path, columns: list[str], types: dict[str, str], rows: Iterable[list], started: float
    ) -> ExportResult:
        writer = _Writer(fmt, out, columns, types)
        try:
            for chunk in _chunks(rows):
                writer.write(chunk)
            digest = writer.close()
        except BaseException:
            writer.abort()
            raise
        return ExportResult(
            path=str(out),
            format=fmt,
            rows=writer.rows,
            columns=tuple(columns),
            sha256=digest,
            seconds=time.perf_counter() - started,
        )

    def _audit(self, project_id: int, actor: Actor, action: str, result: ExportResult) -> None:
        def work(session: Session) -> None:
            audit(
                session,
                action,
                actor_id=actor.id,
                project_id=project_id,
                path=result.path,
                format=result.format,
                rows=result.rows,
                sha256=result.sha256,
            )

        write(self.engine, work)
