"""Streaming readers for CSV, TSV, JSONL, Parquet and folders of images (Label Studio JSON, one
document read whole, is in workbench.importing.label_studio).

Each reader knows its `columns` once opened, and `records(needed)` yields, one data row at a time,
`(row, line, values, problems)`: the 1-based data row, the physical line where it starts (None for
Parquet and folders), the values of the `needed` columns in that order (None when the row is too
broken to have any), and the problems found while reading it (None when there were none).
Memory stays bounded by one record (one Parquet batch), whatever the file size.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from workbench.importing.encoding import LineSource, sniff_encoding
from workbench.importing.limits import Limits
from workbench.importing.report import FileProblem, LimitExceeded, Problem

FORMATS = ("csv", "tsv", "jsonl", "parquet", "label-studio")
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "label-studio",  # a JSON document (not lines): Label Studio's list of tasks
}
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"})
_LISTED_SKIPS = 10  # skipped files named in a folder import's warnings
# A JSON key absent from a JSONL object (distinct from an explicit null).
MISSING = type("Missing", (), {"__repr__": lambda self: "MISSING", "__bool__": lambda self: False})()
# A field longer than this is almost always an unclosed quote swallowing the rest of the file.
MAX_FIELD_BYTES = 32 * 1024 * 1024
_JSONL_PEEK = 1000

Record = tuple[int, int | None, list | None, list | None]

csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_BYTES))


def detect_format(path: Path, explicit: str | None = None) -> str:
    if explicit:
        fmt = explicit.lower().lstrip(".")
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {explicit!r}; use one of: {', '.join(FORMATS)}")
        return fmt
    found = EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise ValueError(
            f"cannot tell the format of {path.name} from its extension; pass format= one of: {', '.join(FORMATS)}"
        )
    return found


def _picker(indices: list[int]) -> Callable[[list[Any]], list[Any]]:
    """A fast function picking `indices` out of a list, always returning a list."""
    if len(indices) == 1:
        (i,) = indices
        return lambda values: [values[i]]
    from operator import itemgetter

    get = itemgetter(*indices)
    return lambda values: list(get(values))


class Reader:
    format: str = ""
    encoding: str | None = None
    columns: list[str]
    total: int = 0  # for progress: bytes (text formats) or rows (Parquet, folders)
    unit: str = "B"

    def done(self) -> int:
        return 0

    def records(self, needed: list[str]) -> Iterator[Record]:
        raise NotImplementedError

    def verdicts(self, first_undecodable_row: int | None) -> list[str]:
        """Whole-file problems known only after reading (e.g. the file is in another encoding)."""
        return []

    def warnings(self) -> list[str]:
        return []


class CsvReader(Reader):
    """CSV (RFC 4180 quoting) or TSV (no quoting: a tab separates, a newline ends a record, quotes
    are plain characters, as in IANA text/tab-separated-values)."""

    encoding: str  # known once the file is opened

    def __init__(
        self,
        path: Path,
        fmt: str = "csv",
        *,
        delimiter: str | None = None,
        names: list[str] | None = None,
        skip_initial_space: bool = False,
        limits: Limits | None = None,
    ) -> None:
        self.path = path
        self.format = fmt
        self.limits = limits or Limits()
        self.encoding, bom = sniff_encoding(path)
        self.names = list(names) if names else None
        self.dialect: dict[str, Any] = {
            "delimiter": delimiter or ("\t" if fmt == "tsv" else ","),
            "skipinitialspace": skip_initial_space,
            "quoting": csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL,
            "strict": False,
        }
        self._bom = bom
        self.total = path.stat().st_size
        self._source: LineSource | None = None
        self.columns = self._read_header()

    def _open(self) -> tuple[LineSource, Any]:
        source = LineSource(self.path, self.encoding, self._bom, self.limits.max_line_bytes)
        return source, csv.reader(iter(source), **self.dialect)

    def _read_header(self) -> list[str]:
        if self.names:
            return _check_columns([str(name).strip() for name in self.names], self.limits)
        source, reader = self._open()
        for values in reader:
            problems = source.take_problems()
            if problems:
                kind, message = problems[0]
                if kind is Problem.UNDECODABLE:
                    raise FileProblem(source.verdict(None) or f"header line: {message}")
                raise FileProblem(f"header line {reader.line_num}: {kind}: {message}")
            if values:
                self._header_lines = reader.line_num
                return _check_columns([value.strip() for value in values], self.limits)
        raise FileProblem("file is empty: expected a header line with the column names")

    def done(self) -> int:
        return self._source.bytes_read if self._source else 0

    def records(self, needed: list[str]) -> Iterator[Record]:
        pick = _picker([self.columns.index(name) for name in needed])
        n_columns = len(self.columns)
        source, reader = self._open()
        self._source = source
        if not self.names:  # skip the header record
            for values in reader:
                if values:
                    break
            source.take_problems()
        row = 0
        previous_line = reader.line_num
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                row += 1
                problems = source.take_problems() + [(Problem.MALFORMED, f"CSV: {exc}")]
                yield row, previous_line + 1, None, problems
                previous_line = reader.line_num
                continue
            start = previous_line + 1
            previous_line = reader.line_num
            problems = source.take_problems()
            if not values:  # a blank line
                if problems:
                    row += 1
                    yield row, start, None, problems
                continue
            row += 1
            if len(values) != n_columns:
                if len(values) == 1 and not values[0].strip() and not problems:
                    row -= 1  # a line of spaces: blank
                    continue
                problems.append((Problem.RAGGED, f"has {len(values)} fields, the header has {n_columns}"))
                yield row, start, None, problems
                continue
            yield row, start, pick(values), problems or None

    def verdicts(self, first_undecodable_row: int | None) -> list[str]:
        if self._source is None:
            return []
        verdict = self._source.verdict(first_undecodable_row)
        return [verdict] if verdict else []


class JsonlReader(Reader):
    """One JSON object per line; the first object's keys are the columns."""

    format = "jsonl"
    encoding: str  # known once the file is opened

    def __init__(self, path: Path, *, limits: Limits | None = None) -> None:
        self.path = path
        self.limits = limits or Limits()
        self.encoding, self._bom = sniff_encoding(path)
        self.total = path.stat().st_size
        self._source: LineSource | None = None
        self._extra: dict[str, int] = {}
        self.columns = self._peek_columns()

    def _objects(self, source: LineSource) -> Iterator[tuple[int, int, Any, list]]:
        row = 0
        for line in source:
            problems = source.take_problems()
            if not line.strip():
                if problems:
                    row += 1
                    yield row, source.line_no, None, problems
                continue
            row += 1
            depth = _json_depth(line, self.limits.max_depth)
            if depth > self.limits.max_depth:
                problems.append(
                    (Problem.TOO_DEEP, f"JSON nested more than {self.limits.max_depth} deep (limits.max_depth)")
                )
                yield row, source.line_no, None, problems
                continue
            try:
                obj = json.loads(line.rstrip("\r\n"))
            except RecursionError:  # a second net: the depth check above should come first
                problems.append((Problem.TOO_DEEP, "JSON nested too deep to read"))
                obj = None
            except ValueError as exc:
                reason = getattr(exc, "msg", str(exc))
                column = getattr(exc, "colno", None)
                problems.append(
                    (Problem.MALFORMED, f"not valid JSON: {reason}" + (f" at column {column}" if column else ""))
                )
                obj = None
            else:
                if not isinstance(obj, dict):
                    problems.append((Problem.MALFORMED, f"a JSON {type(obj).__name__}, not an object"))
                    obj = None
            yield row, source.line_no, obj, problems

    def _peek_columns(self) -> list[str]:
        source = LineSource(self.path, self.encoding, self._bom, self.limits.max_line_bytes)
        for n, (_row, _line, obj, problems) in enumerate(self._objects(source)):
            if obj is not None and not problems:
                return _check_columns([str(key) for key in obj], self.limits)
            if n >= _JSONL_PEEK:
                break
        verdict = source.verdict(None)
        if verdict:
            raise FileProblem(verdict)
        raise FileProblem("no valid JSON object among the first rows: is this a JSONL file?")

    def done(self) -> int:
        return self._source.bytes_read if self._source else 0

    def records(self, needed: list[str]) -> Iterator[Record]:
        source = LineSource(self.path, self.encoding, self._bom, self.limits.max_line_bytes)
        self._source = source
        known = set(self.columns)
        for row, line, obj, problems in self._objects(source):
            if obj is None:
                yield row, line, None, problems
                continue
            if len(obj) > len(known) or not known.issuperset(obj):
                for key in obj:
                    if key not in known and len(self._extra) < 20:
                        self._extra.setdefault(key, row)
            yield row, line, [obj.get(name, MISSING) for name in needed], problems or None

    def verdicts(self, first_undecodable_row: int | None) -> list[str]:
        verdict = self._source.verdict(first_undecodable_row) if self._source else None
        return [verdict] if verdict else []

    def warnings(self) -> list[str]:
        return [
            f"field {key!r} (first seen in row {row}) is not in the first row's fields and was ignored"
            for key, row in self._extra.items()
        ]


class ParquetReader(Reader):
    format = "parquet"
    unit = "row"

    def __init__(self, path: Path, *, batch_size: int = 4096, limits: Limits | None = None) -> None:
        import pyarrow.parquet as pq

        self.limits = limits = limits or Limits()
        self.path = path
        self.batch_size = batch_size
        try:
            self.file = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise FileProblem(f"not a readable Parquet file: {exc}") from None
        self.schema = self.file.schema_arrow
        self.columns = _check_columns(list(self.schema.names), limits)
        self.total = self.file.metadata.num_rows
        if self.total > limits.max_rows:
            raise LimitExceeded(
                f"the file has {self.total:,} rows, over the limit of {limits.max_rows:,} (limits.max_rows)"
            )
        self._done = 0

    def column_type(self, name: str) -> str:
        return str(self.schema.field(name).type)

    def done(self) -> int:
        return self._done

    def records(self, needed: list[str]) -> Iterator[Record]:
        row = 0
        if not needed:  # every row would be just its row number
            for batch in self.file.iter_batches(batch_size=self.batch_size, columns=self.columns[:1]):
                for _ in range(batch.num_rows):
                    row += 1
                    yield row, None, [], None
                self._done = row
            return
        for batch in self.file.iter_batches(batch_size=self.batch_size, columns=needed):
            columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
            for values in zip(*columns):
                row += 1
                yield row, None, list(values), None
            self._done = row


class FolderReader(Reader):
    """Images under a folder (recursively), sorted; columns: the path relative to the folder and
    the name of the top-level subfolder it sits in (None for images at the top)."""

    format = "folder"
    unit = "row"
    encoding = None

    def __init__(self, folder: Path, *, limits: Limits | None = None) -> None:
        self.folder = folder
        self.limits = limits or Limits()
        self.columns = ["path", "subfolder"]
        self._skipped: list[str] = []
        self._hidden: list[str] = []  # dot-files and dot-folders
        self._not_images: list[str] = []  # files with other extensions (.svg, .txt, ...)
        self._paths = self._scan()
        self.total = len(self._paths)
        self._done = 0

    def _scan(self) -> list[str]:
        # Paths only (a short string per image), so the row count is known for the progress bar.
        found: list[str] = []
        for directory, dirnames, filenames in os.walk(self.folder):
            base = Path(directory)
            for name in sorted(dirnames):
                if (base / name).is_symlink():
                    self._skipped.append((base / name).relative_to(self.folder).as_posix())
            self._hidden += [
                (base / d).relative_to(self.folder).as_posix() + "/" for d in sorted(dirnames) if d.startswith(".")
            ]
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                relative = (base / name).relative_to(self.folder).as_posix()
                if name.startswith("."):
                    self._hidden.append(relative)
                elif Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                    self._not_images.append(relative)
                else:
                    found.append(relative)
                    if len(found) > self.limits.max_rows:
                        raise LimitExceeded(
                            f"the folder has more than {self.limits.max_rows:,} images (limits.max_rows)"
                        )
        return found

    def done(self) -> int:
        return self._done

    def records(self, needed: list[str]) -> Iterator[Record]:
        for row, path in enumerate(self._paths, start=1):
            parts = PurePosixPath(path).parts
            values = {"path": path, "subfolder": parts[0] if len(parts) > 1 else None}
            self._done = row
            yield row, None, [values[name] for name in needed], None

    def warnings(self) -> list[str]:
        out = [f"symlinked folder {name!r} was not followed" for name in self._skipped]
        for names, what in (
            (
                self._not_images,
                "file(s) that are not PNG/JPEG/GIF/BMP/WebP images (SVG and other formats are not imported)",
            ),
            (self._hidden, "hidden file(s) or folder(s) (names starting with '.')"),
        ):
            if names:
                listed = ", ".join(repr(n) for n in names[:_LISTED_SKIPS])
                more = f" and {len(names) - _LISTED_SKIPS} more" if len(names) > _LISTED_SKIPS else ""
                out.append(f"skipped {len(names)} {what}: {listed}{more}")
        return out


def _json_depth(line: str, limit: int) -> int:
    """How deep JSON arrays/objects nest in `line` (brackets inside strings not counted); cheap
    unless the line has more brackets than `limit`, and never recursive."""
    if line.count("[") + line.count("{") <= limit:
        return 0
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRINGS.sub('""', line)):
        if match.group() in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        else:
            depth -= 1
    return deepest


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def _check_columns(columns: list[str], limits: Limits | None = None) -> list[str]:
    if limits is not None and len(columns) > limits.max_columns:
        raise LimitExceeded(
            f"the header has {len(columns):,} columns, over the limit of {limits.max_columns:,} (limits.max_columns)"
        )
    for i, name in enumerate(columns, start=1):
        if not name:
            raise FileProblem(f"column {i} of the header has no name")
    duplicates = sorted(name for name, n in Counter(columns).items() if n > 1)
    if duplicates:
        raise FileProblem(f"duplicate column names in the header: {', '.join(duplicates)}")
    return columns


def open_reader(
    path: Path,
    fmt: str,
    *,
    delimiter: str | None = None,
    names: list[str] | None = None,
    skip_initial_space: bool = False,
    limits: Limits | None = None,
) -> Reader:
    if fmt in ("csv", "tsv"):
        return CsvReader(
            path, fmt, delimiter=delimiter, names=names, skip_initial_space=skip_initial_space, limits=limits
        )
    if fmt == "jsonl":
        return JsonlReader(path, limits=limits)
    if fmt == "parquet":
        return ParquetReader(path, limits=limits)
    if fmt == "label-studio":
        from workbench.importing.label_studio import LabelStudioReader

        return LabelStudioReader(path, limits=limits)
    raise ValueError(f"unknown format {fmt!r}")
