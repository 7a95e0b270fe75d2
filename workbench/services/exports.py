"""The one exporter: items with their final labels, every human annotation, and dataset versions,
as CSV, JSONL or Parquet (``ExportFormat``).

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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from workbench.db.models import Annotation, DatasetVersion, DatasetVersionItem, Item, User
from workbench.domain import Actor, AnnotationSource, ExportFormat, ExportKind, ProjectKind, Role
from workbench.errors import NotFound, WorkbenchError
from workbench.services._auth import requires
from workbench.services._tx import audit, reading, write
from workbench.services.projects import load_project

FORMATS = tuple(f.value for f in ExportFormat)
CHUNK_ROWS = 10_000
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


def _write_atomically(path: Path, text: str) -> None:
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


class _Writer:
    """Chunked writing of rows (lists aligned with `columns`) to csv/jsonl/parquet."""

    def __init__(self, fmt: ExportFormat, out: Path, columns: list[str], types: dict[str, str]) -> None:
        self.fmt, self.out, self.columns, self.types = fmt, out, columns, types
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        self.rows = 0
        self._parquet = None
        self._file = None
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
        elif self.fmt is ExportFormat.JSONL:
            dumps = json.JSONEncoder(ensure_ascii=False).encode
            self._file.write("".join(dumps(dict(zip(self.columns, row))) + "\n" for row in rows))
        else:
            import pyarrow as pa

            data = {}
            for j, name in enumerate(self.columns):
                values = [row[j] for row in rows]
                kind = self.types.get(name, "str")
                if kind == "str":
                    values = [
                        v
                        if v is None or isinstance(v, str)
                        else json.dumps(v, ensure_ascii=False)
                        if isinstance(v, (list, dict))
                        else str(v)
                        for v in values
                    ]
                elif kind == "float":
                    values = [None if v is None else float(v) for v in values]
                data[name] = values
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
            select(Item.content).where(Item.project_id == project_id).execution_options(yield_per=CHUNK_ROWS)
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
    the CLI passes Actor.operator()."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @requires(Role.REVIEWER)
    def items(self, project: str, fmt: str | None, out_path: str | Path, *, actor: Actor) -> ExportResult:
        """Every item: external id, item id, split, state, final label, and its content flattened."""
        out = Path(out_path).expanduser()
        fmt = export_format(fmt, out)
        started = time.perf_counter()
        with reading(self.engine) as session:
            info = load_project(session, project)
            flat = _Flattener(info.kind)
            if flat.section is not None:  # the content keys and their types, before the rows
                _scan_keys(session, info.id, flat)
            query = (
                select(Item.id, Item.external_id, Item.split, Item.state, Item.final_label, Item.content)
                .where(Item.project_id == info.id)
                .order_by(Item.id)
                .execution_options(yield_per=CHUNK_ROWS)
            )
            rows = (flat.row(*record) for record in session.execute(query))
            result = self._write(fmt, out, flat.columns, flat.types, rows, started)
        self._audit(info.id, actor, "export.items", result)
        return result

    @requires(Role.REVIEWER)
    def annotations(self, project: str, fmt: str | None, out_path: str | Path, *, actor: Actor) -> ExportResult:
        """One row per human annotation (import prelabels are not annotations by people)."""
        out = Path(out_path).expanduser()
        fmt = export_format(fmt, out)
        started = time.perf_counter()
        with reading(self.engine) as session:
            info = load_project(session, project)
            query = (
                select(
                    Annotation.id,
                    Annotation.item_id,
                    Item.external_id,
                    User.name,
                    Annotation.label,
                    Annotation.slot,
                    Annotation.created_at,
                    Annotation.duration_ms,
                )
                .join(Item, Item.id == Annotation.item_id)
                .join(User, User.id == Annotation.annotator_id)
                .where(Annotation.project_id == info.id, Annotation.source == AnnotationSource.HUMAN)
                .order_by(Annotation.item_id, Annotation.slot, Annotation.id)
                .execution_options(yield_per=CHUNK_ROWS)
            )
            rows = (
                [*record[:6], record[6].isoformat() if record[6] else None, record[7]]
                for record in session.execute(query)
            )
            result = self._write(fmt, out, ANNOTATION_COLUMNS, ANNOTATION_TYPES, rows, started)
        self._audit(info.id, actor, "export.annotations", result)
        return result

    @requires(Role.REVIEWER)
    def version(
        self, project: str, number: int, fmt: ExportFormat | str | None, out_path: str | Path, *, actor: Actor
    ) -> ExportResult:
        """One dataset version: a row per item (id, split, label, source, the annotations and the
        adjudication it came from), in external-id order, and beside it `<file>.manifest.json`
        (content hash, counts, annotators, agreement)."""
        out = Path(out_path).expanduser()
        fmt = export_format(fmt, out)
        started = time.perf_counter()
        with reading(self.engine) as session:
            info = load_project(session, project)
            version = session.execute(
                select(DatasetVersion).where(DatasetVersion.project_id == info.id, DatasetVersion.number == number)
            ).scalar_one_or_none()
            if version is None:
                raise NotFound(f"{project!r} has no version {number}")
            query = (
                select(
                    DatasetVersionItem.item_id,
                    Item.external_id,
                    DatasetVersionItem.split,
                    DatasetVersionItem.label,
                    DatasetVersionItem.source,
                    DatasetVersionItem.annotation_ids,
                    DatasetVersionItem.adjudication_id,
                )
                .join(Item, Item.id == DatasetVersionItem.item_id)
                .where(DatasetVersionItem.version_id == version.id)
                .order_by(Item.external_id)
                .execution_options(yield_per=CHUNK_ROWS)
            )
            rows = (
                [item_id, external_id, split, label, source, ",".join(map(str, annotation_ids or ())), adjudication_id]
                for item_id, external_id, split, label, source, annotation_ids, adjudication_id in session.execute(
                    query
                )
            )
            manifest = {
                "project": info.name,
                "version": version.number,
                "content_hash": version.content_hash,
                "n_items": version.n_items,
                "created_at": version.created_at.isoformat(),
                "trigger": version.trigger,
                **dict(version.manifest or {}),
            }
            result = self._write(fmt, out, VERSION_COLUMNS, VERSION_TYPES, rows, started)
        manifest_path = out.with_name(out.name + ".manifest.json")
        _write_atomically(manifest_path, json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n")
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
