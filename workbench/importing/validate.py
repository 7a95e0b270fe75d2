"""From a record's values to an item: external id, content (the JSON shape training expects) and
prelabel — or a RowProblem saying why not. Pure: no database.

Content shapes:
- text: ``{"text": str, "context": {column: value}}``
- tabular: ``{"features": {column: value or null}}``
- image: ``{"image": "relative/posix/path.png"}``
"""

from __future__ import annotations

import datetime as dt
import json
import json.encoder
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from workbench.importing.images import ImageRefused, inspect_image
from workbench.importing.limits import Limits
from workbench.importing.readers import MISSING
from workbench.importing.report import FileProblem, OnDuplicate, Problem, RowProblem

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_ID_LENGTH = 500  # Item.external_id
DEFAULT_MISSING = ("", "?", "NaN", "nan", "NAN")
_INT = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BAD_CHARS = re.compile(r"[\x00\ud800-\udfff]")


def _make_dumps() -> Callable[[object], str]:
    """Compact JSON text (UTF-8 kept, NaN refused), with the C encoder built once, not per call."""
    encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    # c_make_encoder is the C accelerator json.encoder uses when it is built (not in its stubs).
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    try:
        if c_make_encoder is None:
            raise ImportError
        iterencode = c_make_encoder(
            None, encoder.default, json.encoder.encode_basestring, None, ":", ",", False, False, False
        )
    except (ImportError, TypeError):  # pragma: no cover - pure-Python json
        return encoder.encode
    return lambda obj: "".join(iterencode(obj, 0))


_dumps = _make_dumps()


@dataclass
class ImportOptions:
    """What to read and how. Column options left as None take the documented defaults."""

    format: str | None = None
    id_col: str | None = None  # default "id"; absent (and not given) -> the 1-based row number
    text_col: str | None = None  # default "text"
    context_cols: Sequence[str] | None = None  # default: every column but id/text/prelabel
    feature_cols: Sequence[str] | None = None  # default: every column but id/prelabel
    image_col: str | None = None  # default "image"
    image_root: str | Path | None = None
    prelabel_col: str | None = None
    gold_col: str | None = None  # known answers: those items become gold (pool, final, served as checks)
    eval_fraction: float | None = None  # default: the project's eval_fraction setting
    seed: int | None = None  # default: a fresh one, recorded in the report and the audit log
    columns: Sequence[str] | None = None  # column names for a CSV/TSV without a header line
    delimiter: str | None = None
    skip_initial_space: bool = False
    missing_values: Sequence[str] = DEFAULT_MISSING  # tabular cells read as null
    batch_size: int = 1000
    max_errors: int = 1000
    on_near_duplicate: str = "flag"  # DuplicatePolicy: keep | skip | flag
    on_duplicate: OnDuplicate | str = OnDuplicate.ERROR  # an id already in the project

    def __post_init__(self) -> None:
        try:
            self.on_duplicate = OnDuplicate(self.on_duplicate)
        except ValueError:
            raise ValueError(
                f"on_duplicate must be one of {', '.join(OnDuplicate)}, got {self.on_duplicate!r}"
            ) from None
        for name in ("context_cols", "feature_cols", "columns"):
            value = getattr(self, name)
            if isinstance(value, str):
                setattr(self, name, [part.strip() for part in value.split(",") if part.strip()])
        if self.eval_fraction is not None and not 0.0 <= float(self.eval_fraction) <= 1.0:
            raise ValueError(f"eval_fraction must be between 0 and 1, got {self.eval_fraction}")
        from workbench.domain import DuplicatePolicy

        try:
            self.on_near_duplicate = DuplicatePolicy(self.on_near_duplicate)
        except ValueError:
            choices = ", ".join(p.value for p in DuplicatePolicy)
            raise ValueError(f"on_near_duplicate must be one of {choices}, got {self.on_near_duplicate!r}") from None
        if self.batch_size < 1 or self.max_errors < 0:
            raise ValueError("batch_size must be >= 1 and max_errors >= 0")


@dataclass
class RowBuilder:
    """Resolved column choices for one file and project; `build(row, values)` makes one item."""

    kind: str
    columns: list[str]
    options: ImportOptions
    labels: Iterable[str]
    image_root: Path | None = None  # resolved; paths are checked against it
    image_prefix: str = ""  # prepended to stored image paths (root inside the project's root)
    check_strings: bool = False  # JSONL/Parquet values were not checked for NUL on reading
    id_from_image: bool = False  # folders: the external id is the stored image path
    limits: Limits = field(default_factory=Limits)
    verify_images: bool = True  # open and decode every image (format, pixel count, decodable)
    # Applied to the text and to every string context value before anything is stored (the
    # project's personal-data setting: pseudonymize or mask); None keeps them as they are.
    scrub_text: Callable[[str], str] | None = None
    id_col: str | None = field(init=False, default=None)
    needed: list[str] = field(init=False, default_factory=list)
    chosen: dict[str, Any] = field(init=False, default_factory=dict)
    gold_answers: dict[str, str] = field(init=False, default_factory=dict)  # external id -> known answer

    def __post_init__(self) -> None:
        opts, columns = self.options, self.columns
        self.labels = frozenset(self.labels)
        self._label_list = ", ".join(sorted(self.labels))
        present = set(columns)

        def require(name: str, what: str) -> str:
            if name not in present:
                raise FileProblem(
                    f"missing required column {name!r} ({what}); the file has: "
                    f"{', '.join(columns) if columns else 'no columns'}"
                )
            return name

        if opts.id_col is not None:
            self.id_col = require(opts.id_col, "id_col")
        elif "id" in present:
            self.id_col = "id"
        prelabel = require(opts.prelabel_col, "prelabel_col") if opts.prelabel_col else None
        self.prelabel_col = prelabel
        gold = require(opts.gold_col, "gold_col") if opts.gold_col else None
        self.gold_col = gold
        # Neither is content: a gold column in the content would show annotators the answer.
        reserved = {self.id_col, prelabel, gold} - {None}
        if self.kind == "text":
            self.text_col = require(opts.text_col or "text", "text_col")
            if opts.context_cols is not None:
                context = [require(c, "context_cols") for c in opts.context_cols]
            else:
                context = [c for c in columns if c not in reserved and c != self.text_col]
            self.value_cols = context
            self.main = [self.text_col]
            self.chosen = {"text_col": self.text_col, "context_cols": context}
        elif self.kind == "tabular":
            if opts.feature_cols is not None:
                features = [require(c, "feature_cols") for c in opts.feature_cols]
            else:
                features = [c for c in columns if c not in reserved]
            if not features:
                raise FileProblem("no feature columns: a tabular import needs at least one")
            self.value_cols = features
            self.main = []
            self.chosen = {"feature_cols": features}
        elif self.kind == "image":
            self.image_col = require(opts.image_col or "image", "image_col")
            self.value_cols = []
            self.main = [self.image_col]
            self.chosen = {"image_col": self.image_col, "image_root": str(self.image_root)}
        else:
            raise ValueError(f"unknown project kind {self.kind!r}")
        if gold is not None and gold in self.value_cols:
            raise FileProblem(f"gold_col {gold!r} is also a content column; annotators would see the answer")
        self.chosen = {"id_col": self.id_col, **self.chosen, "prelabel_col": prelabel, "gold_col": gold}
        # The record layout: id?, main column(s), value columns, prelabel?, gold?
        self.needed = (
            ([self.id_col] if self.id_col else [])
            + self.main
            + self.value_cols
            + ([prelabel] if prelabel else [])
            + ([gold] if gold else [])
        )
        self._missing = frozenset(opts.missing_values)
        # Tabular CSV/TSV: columns typed by a first pass (see infer_numeric); None = keep as read.
        self.numeric: dict[str, str] | None = None

    # -- the per-row work ------------------------------------------------------------------------

    def build(self, row: int, values: list) -> tuple[str, str, str | None]:
        """(external id, content as JSON text, prelabel or None), or RowProblem."""
        i = 0
        if self.id_col is not None:
            external_id = self._external_id(values[0], self.id_col)
            i = 1
        else:
            external_id = str(row)
        if self.kind == "text":
            content = self._text(values[i], values[i + 1 : i + 1 + len(self.value_cols)])
            i += 1 + len(self.value_cols)
        elif self.kind == "tabular":
            content = self._tabular(values[i : i + len(self.value_cols)])
            i += len(self.value_cols)
        else:
            content = {"image": self.check_image(values[i])}
            if self.id_from_image:
                external_id = content["image"]
                if len(external_id) > MAX_ID_LENGTH:
                    raise RowProblem(
                        Problem.LONG_ID,
                        f"path has {len(external_id)} characters (at most {MAX_ID_LENGTH})",
                        self.image_col,
                    )
            i += 1
        prelabel = self._prelabel(values[i]) if self.prelabel_col else None
        if self.gold_col:
            answer = self._prelabel(values[i + (1 if self.prelabel_col else 0)], self.gold_col)
            if answer is not None:
                self.gold_answers[external_id] = answer
        try:
            encoded = _dumps(content)
        except (TypeError, ValueError) as exc:
            raise RowProblem(Problem.BAD_VALUE, f"cannot be stored as JSON: {exc}") from None
        except RecursionError:
            raise RowProblem(Problem.TOO_DEEP, "a value is nested too deep to store") from None
        # Text: the text plus its context as stored; tabular: the row as stored (without the framing).
        chars = len(encoded) - (
            len('{"text":"","context":{}}')
            if self.kind == "text"
            else len('{"features":}')
            if self.kind == "tabular"
            else len(encoded)
        )
        if chars > self.limits.max_item_chars:
            raise RowProblem(
                Problem.TOO_LONG,
                f"the item has {chars:,} characters (text and context, or its row, "
                f"as stored), over the limit of {self.limits.max_item_chars:,} (limits.max_item_chars)",
            )
        self.last_content = content  # the health pass reads the text from here, not from the JSON
        return external_id, encoded, prelabel

    def _check_string(self, value: str, column: str) -> None:
        match = _BAD_CHARS.search(value)
        if match:
            if match.group() == "\x00":
                raise RowProblem(Problem.NUL_BYTE, f"NUL character in column {column!r}", column)
            raise RowProblem(Problem.UNDECODABLE, f"lone surrogate in column {column!r}", column)

    def _external_id(self, value: Any, column: str) -> str:
        if value is None or value is MISSING:
            raise RowProblem(Problem.EMPTY_ID, f"no value in id column {column!r}", column)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise RowProblem(Problem.BAD_VALUE, f"id must be a string or an integer, got {value!r}", column)
        value = str(value).strip()
        if not value:
            raise RowProblem(Problem.EMPTY_ID, f"empty id in column {column!r}", column)
        if len(value) > MAX_ID_LENGTH:
            raise RowProblem(Problem.LONG_ID, f"id has {len(value)} characters (at most {MAX_ID_LENGTH})", column)
        if self.check_strings:
            self._check_string(value, column)
        return value

    def _text(self, text: Any, context_values: list) -> dict:
        if text is None or text is MISSING:
            raise RowProblem(Problem.EMPTY_TEXT, f"no text in column {self.text_col!r}", self.text_col)
        if not isinstance(text, str):
            raise RowProblem(
                Problem.BAD_VALUE, f"text in column {self.text_col!r} is not a string: {text!r}", self.text_col
            )
        if not text.strip():
            raise RowProblem(Problem.EMPTY_TEXT, f"text in column {self.text_col!r} is empty", self.text_col)
        if len(text) > self.limits.max_item_chars:
            raise RowProblem(
                Problem.TOO_LONG,
                f"text in column {self.text_col!r} has {len(text):,} characters, "
                f"over the limit of {self.limits.max_item_chars:,} (limits.max_item_chars)",
                self.text_col,
            )
        if self.check_strings:
            self._check_string(text, self.text_col)
            context = {}
            for name, value in zip(self.value_cols, context_values):
                context[name] = self._plain(value, name, nested_ok=True)
        else:
            context = dict(zip(self.value_cols, context_values))
        if self.scrub_text is not None:
            text = self.scrub_text(text)
            context = {k: self.scrub_text(v) if isinstance(v, str) else v for k, v in context.items()}
        return {"text": text, "context": context}

    def _tabular(self, values: list) -> dict:
        numeric, missing = self.numeric, self._missing
        features: dict[str, Any] = {}
        for name, value in zip(self.value_cols, values):
            if value is None or value is MISSING:
                features[name] = None
                continue
            if isinstance(value, str):
                stripped = value.strip()
                if stripped in missing:
                    features[name] = None
                    continue
                kind = numeric.get(name) if numeric else None
                if kind == "int":
                    value = int(stripped)
                elif kind == "float":
                    value = float(stripped)
                elif self.check_strings:
                    self._check_string(value, name)
            else:
                value = self._plain(value, name, nested_ok=False)
            features[name] = value
        return {"features": features}

    def _plain(self, value: Any, column: str, *, nested_ok: bool) -> Any:
        """A JSON-ready value from what JSONL/Parquet gave (NaN -> null, dates -> ISO text)."""
        if value is None or value is MISSING:
            return None
        if isinstance(value, str):
            if self.check_strings:
                self._check_string(value, column)
            return value
        if isinstance(value, (bool, int)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if isinstance(value, Decimal):
            return float(value) if value.is_finite() else None
        if isinstance(value, (dt.datetime, dt.date, dt.time)):
            return value.isoformat()
        if nested_ok and isinstance(value, (list, dict)):
            return value
        raise RowProblem(
            Problem.BAD_VALUE,
            f"column {column!r} holds a {type(value).__name__}, "
            f"which cannot be a {'context' if nested_ok else 'feature'} value",
            column,
        )

    def _prelabel(self, value: Any, column: str | None = None) -> str | None:
        if value is None or value is MISSING:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        label = str(value).strip()
        if not label:
            return None
        if label not in self.labels:
            raise RowProblem(
                Problem.UNKNOWN_LABEL,
                f"{label!r} in column {column or self.prelabel_col!r} is not in the project's label set "
                f"({self._label_list})",
                column or self.prelabel_col,
            )
        return label

    def check_image(self, value: Any) -> str:
        """The stored (posix, relative to the project's image root) path of an image, or RowProblem."""
        column = self.image_col
        if value is None or value is MISSING or not str(value).strip():
            raise RowProblem(Problem.IMAGE_MISSING, f"no image path in column {column!r}", column)
        raw = str(value).strip()
        if self.check_strings:
            self._check_string(raw, column)
        # A path written in a file may use Windows separators; a folder's own file names are taken
        # as they are (a file may be named back\slash.png).
        text = raw if self.id_from_image else raw.replace("\\", "/")
        if text.startswith("/") or re.match(r"[A-Za-z]:", text) or text.startswith("~"):
            raise RowProblem(
                Problem.IMAGE_ABSOLUTE, f"{raw!r} is an absolute path; paths must be relative to the image root", column
            )
        relative = PurePosixPath(text)
        if ".." in relative.parts:
            raise RowProblem(Problem.IMAGE_ESCAPES, f"{raw!r} climbs out of the image root with '..'", column)
        root = self.image_root
        assert root is not None  # an image import resolves its root first
        candidate = root.joinpath(*relative.parts)
        try:
            resolved = candidate.resolve()
        except (OSError, RuntimeError) as exc:  # symlink loop
            raise RowProblem(
                Problem.IMAGE_MISSING, f"{raw!r} cannot be resolved ({type(exc).__name__}: a symlink loop?)", column
            ) from None
        if not resolved.is_relative_to(root):
            raise RowProblem(Problem.IMAGE_ESCAPES, f"{raw!r} is a symlink that leads out of the image root", column)
        if not resolved.is_file():
            raise RowProblem(
                Problem.IMAGE_MISSING, f"no image file {relative.as_posix()!r} under the image root", column
            )
        if self.verify_images:
            try:
                inspect_image(resolved, max_pixels=self.limits.max_image_pixels, max_bytes=self.limits.max_image_bytes)
            except ImageRefused as exc:
                raise RowProblem(Problem.IMAGE_BAD, f"{relative.as_posix()!r}: {exc}", column) from None
        return self.image_prefix + relative.as_posix()


class NumericInference:
    """A first pass over a tabular CSV/TSV: a column is numeric when every non-missing cell is a
    number (int when all are integers). Integers with leading zeros (zip codes, ids) keep the
    column categorical, so nothing is lost by the conversion."""

    def __init__(self, builder: RowBuilder) -> None:
        self.builder = builder
        self.offset = 1 if builder.id_col else 0
        self.state: dict[str, str | None] = {name: "int" for name in builder.value_cols}  # int -> float -> None

    def feed(self, values: list) -> None:
        missing = self.builder._missing
        for j, name in enumerate(self.builder.value_cols):
            kind = self.state[name]
            if kind is None:
                continue
            cell = values[self.offset + j]
            if not isinstance(cell, str):
                continue
            cell = cell.strip()
            if cell in missing:
                continue
            if kind == "int" and _INT.fullmatch(cell):
                continue
            body = cell.lstrip("+-")
            if len(body) > 1 and body[0] == "0" and body[1].isdigit():
                self.state[name] = None  # 007, 02134: a code, not a number
            elif _FLOAT.fullmatch(cell):
                self.state[name] = "float"
            else:
                self.state[name] = None

    def result(self) -> dict[str, str]:
        return {name: kind for name, kind in self.state.items() if kind}
