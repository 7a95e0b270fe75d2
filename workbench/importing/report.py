"""What an import found: per-row problems (capped), whole-file problems, and the counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# A wholly bad million-row file must not become a million error objects: list the first ones, count all.
MAX_LISTED_ERRORS = 1000


class Problem(StrEnum):
    """Why a row was refused (the `kind` of a RowError)."""

    RAGGED = "ragged row"  # wrong number of fields
    MALFORMED = "malformed record"  # CSV/JSON syntax the reader cannot parse
    UNDECODABLE = "undecodable bytes"
    NUL_BYTE = "NUL byte"
    EMPTY_ID = "empty id"
    LONG_ID = "id too long"
    DUPLICATE_ID = "duplicate id"
    EMPTY_TEXT = "empty text"
    BAD_VALUE = "bad value"  # e.g. a nested object where a plain value is needed
    UNKNOWN_LABEL = "unknown label"
    UNKNOWN_ANNOTATOR = "unknown annotator"  # a Label Studio annotation by someone who is not a user
    IMAGE_MISSING = "image missing"
    IMAGE_ABSOLUTE = "absolute image path"
    IMAGE_ESCAPES = "image path escapes the root"
    IMAGE_BAD = "bad image"  # not decodable, an unsupported format, too many pixels, empty
    TOO_LONG = "too long"  # text or stored content over limits.max_item_chars
    TOO_DEEP = "nested too deep"  # JSON nesting over limits.max_depth


class OnDuplicate(StrEnum):
    """What a re-import does with a row whose id is already in the project."""

    ERROR = "error"  # refuse the row (and so the import), as a first import does
    SKIP = "skip"  # same content: leave the item alone and count the row; other content: refuse it


class RowProblem(Exception):
    """Raised while building one row: the row is refused, the import goes on checking the rest."""

    def __init__(self, kind: Problem, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.column = column


class FileProblem(Exception):
    """The whole file is refused (missing required column, unreadable encoding, empty file, ...)."""


class LimitExceeded(FileProblem):
    """A size limit was reached while reading: the file is refused at that point (nothing more is
    read). `at(row)` names the data row; `line` is the physical line, when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message if line is None else f"line {line}: {message}")
        self.message = message
        self.line = line

    def at(self, row: int | None) -> str:
        where = f"row {row}" if row is not None else ""
        if self.line is not None:
            where = f"{where} (line {self.line})" if where else f"line {self.line}"
        return f"{where}: {self.message}" if where else self.message


@dataclass(frozen=True)
class RowError:
    """One refused row: `row` is the 1-based data row (header and blank lines not counted); `line`
    the 1-based physical line where the record starts (CSV/TSV/JSONL; None for Parquet/folders)."""

    row: int
    kind: str
    message: str
    line: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = f"row {self.row}" + (f" (line {self.line})" if self.line is not None else "")
        return f"{where}: {self.kind}: {self.message}"


@dataclass
class ImportReport:
    """The outcome of a preview or an import. `ok` is True only when every row is good; a run
    that is not ok wrote nothing."""

    project: str
    path: str
    format: str
    dry_run: bool
    encoding: str | None = None
    sha256: str | None = None
    size_bytes: int = 0
    columns: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # the resolved column choices, seed, ...
    rows: int = 0  # data rows read
    valid_rows: int = 0
    imported: int = 0  # items written (0 for a preview or a refused import)
    n_eval: int = 0
    n_pool: int = 0
    prelabels: int = 0  # import-source annotations (written, or that would be written)
    annotations: int = 0  # human annotations written (Label Studio tasks by named users)
    gold_items: int = 0  # items marked gold from --gold-col (moved to the pool, final with their answer)
    eval_fraction: float = 0.0
    seed: int | None = None
    file_errors: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)  # the first MAX_LISTED_ERRORS bad rows
    n_errors: int = 0  # every bad row, listed or not
    error_counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    sample: list[dict[str, Any]] = field(default_factory=list)  # the first few items, as they'd be stored
    seconds: float = 0.0
    max_listed: int = MAX_LISTED_ERRORS
    # The data health report of the imported batch (workbench.health.report.HealthReport), after
    # a real import; its seconds are not part of `seconds`.
    health: Any = None
    health_seconds: float = 0.0
    skipped_duplicates: int = 0  # rows left out as duplicates of earlier items (on_near_duplicate=skip)
    # --on-duplicate skip: rows whose id is already in the project with the same content (left alone).
    left_alone: int = 0

    @property
    def ok(self) -> bool:
        return not self.file_errors and self.n_errors == 0

    @property
    def n_unlisted(self) -> int:
        return self.n_errors - len(self.errors)

    def sort_errors(self) -> None:
        """Listed errors in file order (duplicates are found a batch after the rows around them)."""
        self.errors.sort(key=lambda error: error.row)

    def add_error(self, error: RowError) -> None:
        self.n_errors += 1
        self.error_counts[error.kind] = self.error_counts.get(error.kind, 0) + 1
        if len(self.errors) < self.max_listed:
            self.errors.append(error)

    def summary(self) -> str:
        """One line: what happened."""
        if self.file_errors:
            return f"{self.path}: refused: {self.file_errors[0]}"
        if not self.ok:
            kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.error_counts.items()))
            written = "nothing would be written" if self.dry_run else "nothing was written"
            return f"{self.path}: {self.n_errors} of {self.rows} rows refused ({kinds}); {written}"
        verb = "would import" if self.dry_run else "imported"
        n = self.valid_rows if self.dry_run else self.imported
        skipped = f"; {self.skipped_duplicates} duplicate row(s) skipped" if self.skipped_duplicates else ""
        return (
            f"{self.path}: {verb} {n} items ({self.n_pool} pool, {self.n_eval} eval, "
            f"{self.prelabels} prelabels{f', {self.annotations} annotations' if self.annotations else ''}"
            f"{f', {self.gold_items} gold' if self.gold_items else ''}) "
            f"in {self.seconds:.1f} s{skipped}"
        )

    def lines(self) -> list[str]:
        """The full report as text lines: summary, whole-file problems, then each bad row."""
        out = [self.summary()]  # names the first whole-file problem, if any
        out += [f"file: {problem}" for problem in self.file_errors[1:]]
        out += [str(error) for error in self.errors]
        if self.n_unlisted:
            out.append(f"... and {self.n_unlisted} more bad rows (only the first {len(self.errors)} are listed)")
        if self.left_alone:
            would = "would be left alone" if self.dry_run else "left alone"
            rows = "1 row" if self.left_alone == 1 else f"{self.left_alone} rows"
            out.append(f"{rows} {would}: their id is already in the project with the same content")
        out += [f"warning: {warning}" for warning in self.warnings]
        if self.health is not None:
            out.append(f"health: {self.health.summary()} (workbench health {self.project} for the list)")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "path": self.path,
            "format": self.format,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "encoding": self.encoding,
            "sha256": self.sha256,
            "rows": self.rows,
            "valid_rows": self.valid_rows,
            "imported": self.imported,
            "n_eval": self.n_eval,
            "n_pool": self.n_pool,
            "prelabels": self.prelabels,
            "annotations": self.annotations,
            "gold_items": self.gold_items,
            "n_errors": self.n_errors,
            "skipped_duplicates": self.skipped_duplicates,
            "left_alone": self.left_alone,
            "error_counts": dict(self.error_counts),
            "seed": self.seed,
            "eval_fraction": self.eval_fraction,
        }
