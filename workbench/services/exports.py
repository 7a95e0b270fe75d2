"""Export: items with their final labels, and every human annotation, as CSV, JSONL or Parquet.

Both are streamed (yield_per) and written in chunks, to a temporary file renamed into place, so a
big project never sits in memory and a failed export leaves no half-written file.

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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from workbench.db.models import Annotation, Item, User
from workbench.domain import Actor, ProjectKind, Role
from workbench.errors import WorkbenchError
from workbench.services._tx import audit, reading, write
from workbench.services.projects import load_project
from workbench.services.users import require_role

FORMATS = ("csv", "jsonl", "parquet")
CHUNK_ROWS = 10_000
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
ITEM_COLUMNS = ["external_id", "item_id", "split", "state", "final_label"]
ANNOTATION_COLUMNS = ["annotation_id", "item_id", "item_external_id", "annotator", "label", "slot",
                      "created_at", "duration_ms"]
ANNOTATION_TYPES = {"annotation_id": "int", "item_id": "int", "item_external_id": "str",
                    "annotator": "str", "label": "str", "slot": "int", "created_at": "str",
                    "duration_ms": "int"}


@dataclass(frozen=True)
class ExportResult:
    path: str
    format: str
    rows: int
    columns: tuple[str, ...]
    sha256: str
    seconds: float


def neutralise(value: Any) -> Any:
    """A string cell that a spreadsheet would run as a formula, made inert with a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def export_format(fmt: str | None, out_path: Path) -> str:
    fmt = (fmt or out_path.suffix).lower().lstrip(".")
    if fmt not in FORMATS:
        raise WorkbenchError(f"unknown export format {fmt or out_path.name!r}; use one of: {', '.join(FORMATS)}")
    return fmt


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
        types = {"external_id": "str", "item_id": "int", "split": "str", "state": "str",
                 "final_label": "str", "text": "str", "image": "str"}
        names = self.names
        return {**types, **{names[key]: kind for key, kind in self.keys.items()}}

    def row(self, item_id: int, external_id: str, split: str, state: str, final_label: str | None,
            content: dict) -> list:
        out = [external_id, item_id, split, state, final_label]
        if self.kind is ProjectKind.TEXT:
            out.append(content.get("text"))
        elif self.kind is ProjectKind.IMAGE:
            out.append(content.get("image"))
        if self.section is not None:
            values = content.get(self.section) or {}
            out += [values.get(key) for key in self.keys]
        return out


class _Writer:
    """Chunked writing of rows (lists aligned with `columns`) to csv/jsonl/parquet."""

    def __init__(self, fmt: str, out: Path, columns: list[str], types: dict[str, str]) -> None:
        self.fmt, self.out, self.columns, self.types = fmt, out, columns, types
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        self.rows = 0
        self._parquet = None
        self._file = None
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            arrow = {"null": pa.string(), "bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(),
                     "str": pa.string()}
            self.schema = pa.schema([(name, arrow[types.get(name, "str")]) for name in columns])
            self._parquet = pq.ParquetWriter(self.tmp, self.schema)
        else:
            self._file = open(self.tmp, "w", encoding="utf-8", newline="")
        self._first = True

    def write(self, rows: list[list]) -> None:
        if not rows:
            return
        self.rows += len(rows)
        if self.fmt == "csv":
            # CRLF line ends (RFC 4180) also make the writer quote a cell holding a bare CR.
            import pandas as pd

            cells = [[neutralise(value) for value in row] for row in rows]
            frame = pd.DataFrame(cells, columns=[neutralise(c) for c in self.columns], dtype=object)
            frame.to_csv(self._file, header=self._first, index=False, lineterminator="\r\n")
        elif self.fmt == "jsonl":
            dumps = json.JSONEncoder(ensure_ascii=False).encode
            self._file.write("".join(dumps(dict(zip(self.columns, row))) + "\n" for row in rows))
        else:
            import pyarrow as pa

            data = {}
            for j, name in enumerate(self.columns):
                values = [row[j] for row in rows]
                kind = self.types.get(name, "str")
                if kind == "str":
                    values = [v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                              if isinstance(v, (list, dict)) else str(v) for v in values]
                elif kind == "float":
                    values = [None if v is None else float(v) for v in values]
                data[name] = values
            self._parquet.write_table(pa.Table.from_pydict(data, schema=self.schema))
        self._first = False

    def close(self) -> str:
        if self._parquet is not None:
            self._parquet.close()
        else:
            if self._first and self.fmt == "csv":  # no rows: still write the header
                import pandas as pd

                pd.DataFrame([], columns=[neutralise(c) for c in self.columns]).to_csv(
                    self._file, index=False, lineterminator="\r\n")
            self._file.close()
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
        "GROUP BY j.key, j.type"),
    "postgresql": (
        "SELECT k.key, json_typeof(k.value), bool_and(json_typeof(k.value) <> 'number' "
        "OR k.value::text ~ '^-?[0-9]+$'), min(item.id), min(k.n) "
        "FROM item, json_each(item.content -> '{section}') WITH ORDINALITY AS k(key, value, n) "
        "WHERE item.project_id = :project AND json_typeof(item.content -> '{section}') = 'object' "
        "GROUP BY 1, 2"),
}
_JSON_KINDS = {"integer": "int", "real": "float", "text": "str", "null": "null", "true": "bool",
               "false": "bool", "string": "str", "boolean": "bool", "object": "str", "array": "str"}


def _scan_keys(session: Session, project_id: int, flat: "_Flattener") -> None:
    """Content keys in order of first appearance, with a column type: one grouped query where the
    database can take JSON apart itself (every item's JSON is decoded once, by the export)."""
    sql = _KEYS_SQL.get(session.get_bind().dialect.name)
    if sql is None:  # another database: decode every item once more
        for (content,) in session.execute(select(Item.content).where(Item.project_id == project_id)
                                          .execution_options(yield_per=CHUNK_ROWS)):
            flat.scan(content)
        return
    from sqlalchemy import text

    rows = session.execute(text(sql.format(section=flat.section)), {"project": project_id}).all()
    first: dict[str, tuple[int, int]] = {}
    for key, json_type, integral, item_id, position in rows:
        kind = "int" if json_type == "number" and integral else "float" if json_type == "number" \
            else _JSON_KINDS.get(json_type, "str")
        flat.keys[key] = _widen(flat.keys.get(key, "null"), kind)
        first[key] = min(first.get(key, (item_id, position)), (item_id, position))
    flat.keys = {key: flat.keys[key] for key in sorted(first, key=first.__getitem__)}


def _chunks(rows: Iterable[list], size: int = CHUNK_ROWS) -> Iterator[list[list]]:
    chunk: list[list] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class ExportService:
    """Exports need the reviewer role or higher (annotators must never see others' answers);
    actor=None is the local operator (the CLI)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def items(self, project: str, fmt: str | None, out_path: str | Path, *,
              actor: Actor | None = None) -> ExportResult:
        """Every item: external id, item id, split, state, final label, and its content flattened."""
        require_role(actor, Role.REVIEWER)
        out = Path(out_path).expanduser()
        fmt = export_format(fmt, out)
        started = time.perf_counter()
        with reading(self.engine) as session:
            info = load_project(session, project)
            flat = _Flattener(info.kind)
            if flat.section is not None:  # the content keys and their types, before the rows
                _scan_keys(session, info.id, flat)
            query = (select(Item.id, Item.external_id, Item.split, Item.state, Item.final_label, Item.content)
                     .where(Item.project_id == info.id).order_by(Item.id)
                     .execution_options(yield_per=CHUNK_ROWS))
            rows = (flat.row(*record) for record in session.execute(query))
            result = self._write(fmt, out, flat.columns, flat.types, rows, started)
        self._audit(info.id, actor, "export.items", result)
        return result

    def annotations(self, project: str, fmt: str | None, out_path: str | Path, *,
                    actor: Actor | None = None) -> ExportResult:
        """One row per human annotation (import prelabels are not annotations by people)."""
        require_role(actor, Role.REVIEWER)
        out = Path(out_path).expanduser()
        fmt = export_format(fmt, out)
        started = time.perf_counter()
        with reading(self.engine) as session:
            info = load_project(session, project)
            query = (
                select(Annotation.id, Annotation.item_id, Item.external_id, User.name, Annotation.label,
                       Annotation.slot, Annotation.created_at, Annotation.duration_ms)
                .join(Item, Item.id == Annotation.item_id)
                .join(User, User.id == Annotation.annotator_id)
                .where(Annotation.project_id == info.id, Annotation.source == "human")
                .order_by(Annotation.item_id, Annotation.slot, Annotation.id)
                .execution_options(yield_per=CHUNK_ROWS)
            )
            rows = ([*record[:6], record[6].isoformat() if record[6] else None, record[7]]
                    for record in session.execute(query))
            result = self._write(fmt, out, ANNOTATION_COLUMNS, ANNOTATION_TYPES, rows, started)
        self._audit(info.id, actor, "export.annotations", result)
        return result

    @staticmethod
    def _write(fmt: str, out: Path, columns: list[str], types: dict[str, str], rows: Iterable[list],
               started: float) -> ExportResult:
        writer = _Writer(fmt, out, columns, types)
        try:
            for chunk in _chunks(rows):
                writer.write(chunk)
            digest = writer.close()
        except BaseException:
            writer.abort()
            raise
        return ExportResult(path=str(out), format=fmt, rows=writer.rows, columns=tuple(columns),
                            sha256=digest, seconds=time.perf_counter() - started)

    def _audit(self, project_id: int, actor: Actor | None, action: str, result: ExportResult) -> None:
        def work(session: Session) -> None:
            audit(session, action, actor_id=actor.id if actor else None, project_id=project_id,
                  path=result.path, format=result.format, rows=result.rows, sha256=result.sha256)

        write(self.engine, work)
