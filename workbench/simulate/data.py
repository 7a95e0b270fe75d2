"""Reading a labeled file (and optionally a file of real crowd judgments) for a simulation.

The simulation keeps the true labels on its own side and hands the workbench only what an
annotator would see: the file is normalised here (labels mapped, rows filtered, text columns
joined, quirks such as headerless TSV handled) and written as a plain CSV of id + content columns,
which the workbench's import service then imports like any user file. Pure: no database.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.importing import readers

DEFAULT_TEXT_SEP = " [SEP] "


@dataclass(frozen=True)
class TableOptions:
    """How to read one table file."""

    format: str | None = None  # default: from the extension
    header: bool = True
    columns: tuple[str, ...] | None = None  # names for a headerless file (or to rename a header)
    delimiter: str | None = None  # CSV only; TSV always splits on tabs
    skip_initial_space: bool = False


@dataclass(frozen=True)
class LabelRules:
    """How raw label values become labels: strip, drop a suffix character set, map."""

    mapping: tuple[tuple[str, str], ...] = ()
    strip_suffix: str = ""

    def apply(self, value: Any) -> str:
        if value is None or (isinstance(value, float) and value != value):
            return ""
        label = str(value).strip()
        if self.strip_suffix:
            label = label.rstrip(self.strip_suffix).strip()
        return dict(self.mapping).get(label, label)


@dataclass
class LabeledData:
    """Items with their true labels, and what to import for them."""

    name: str
    kind: str  # text | tabular | image
    ids: list[str]
    labels: list[str]
    content: pd.DataFrame  # one column per imported content column, rows aligned with ids
    image_root: str | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    source_sha256: str = ""

    @property
    def label_set(self) -> list[str]:
        return sorted(set(self.labels))

    def truth(self) -> dict[str, str]:
        return dict(zip(self.ids, self.labels))


@dataclass
class CrowdData:
    """Real judgments: item id → {worker id → label}, in file order."""

    judgments: dict[str, dict[str, str]]
    n_rows: int
    duplicates: int
    source_sha256: str = ""

    @property
    def workers(self) -> list[str]:
        return sorted({worker for answers in self.judgments.values() for worker in answers})

    @property
    def label_set(self) -> set[str]:
        return {label for answers in self.judgments.values() for label in answers.values()}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def parse_label_map(text: str | None) -> tuple[tuple[str, str], ...]:
    """A JSON object {"raw": "label"} (or @file.json); '=' pairs would break labels like '<=50K'."""
    if not text:
        return ()
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise WorkbenchError(f"cannot read the label map {text[1:]}: {exc.strerror}") from None
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkbenchError(f'--label-map must be a JSON object like \'{{"TRUE": "1"}}\': {exc.msg}') from None
    if not isinstance(mapping, dict):
        raise WorkbenchError("--label-map must be a JSON object mapping raw labels to labels")
    return tuple((str(k).strip(), str(v).strip()) for k, v in mapping.items())


def parse_cols(text: str | None) -> list[str] | None:
    if text is None:
        return None
    cols = [part.strip() for part in text.split(",") if part.strip()]
    return cols or None


def detect_format(path: Path, explicit: str | None) -> str:
    """The file's format, as the importer decides it (an unknown one is a user error here)."""
    try:
        return readers.detect_format(path, explicit)
    except ValueError as exc:
        raise WorkbenchError(str(exc)) from None


def _read_tsv(path: Path, options: TableOptions) -> pd.DataFrame:
    """Tab-separated, no quoting (quotes are plain characters, as csv.QUOTE_NONE reads them).

    Each line is split on its first n-1 tabs only, n being the number of columns, so a last column
    that holds a tab keeps it (the SMS Spam Collection is ``label<TAB>message``)."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        lines = [line.rstrip("\r\n") for line in f]
    lines_numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    if not lines_numbered:
        raise WorkbenchError(f"{path.name} is empty")
    if options.header:
        _, first = lines_numbered.pop(0)
        names = [name.strip() for name in first.split("\t")]
    else:
        names = []
    if options.columns:
        names = list(options.columns)
    if not names:
        raise WorkbenchError(f"{path.name}: a file without a header needs --columns a,b,...")
    n = len(names)
    rows = []
    for number, line in lines_numbered:
        values = line.split("\t", n - 1)
        if len(values) != n:
            raise WorkbenchError(f"{path.name} line {number}: {len(values)} fields, expected {n} ({', '.join(names)})")
        rows.append(values)
    return pd.DataFrame(rows, columns=names, dtype=object)


def read_table(path: Path | str, options: TableOptions) -> pd.DataFrame:
    """Every cell as a string ('' for missing); column names stripped."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise WorkbenchError(f"no such file: {path}")
    fmt = detect_format(path, options.format)
    try:
        if fmt == "tsv":
            frame = _read_tsv(path, options)
        elif fmt == "csv":
            frame = pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                sep=options.delimiter or ",",
                header=0 if options.header else None,
                skipinitialspace=options.skip_initial_space,
                skip_blank_lines=True,
                encoding="utf-8-sig",
            )
            if options.columns:
                if len(options.columns) != frame.shape[1]:
                    raise WorkbenchError(
                        f"{path.name} has {frame.shape[1]} columns but --columns names {len(options.columns)}"
                    )
                frame.columns = list(options.columns)
            elif not options.header:
                raise WorkbenchError(f"{path.name}: a file without a header needs --columns a,b,...")
        elif fmt == "jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        else:
            frame = pd.read_parquet(path)
    except WorkbenchError:
        raise
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise WorkbenchError(f"cannot read {path.name} as {fmt}: {str(exc).splitlines()[0]}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    duplicated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if duplicated:
        raise WorkbenchError(f"{path.name} has duplicate column names: {', '.join(duplicated)}")
    if fmt in ("jsonl", "parquet"):
        frame = frame.astype(object).where(frame.notna(), "").map(lambda v: v if isinstance(v, str) else str(v))
    return frame


def _require(frame: pd.DataFrame, column: str, option: str, path: Path) -> str:
    if column not in frame.columns:
        raise WorkbenchError(f"{path.name} has no column {column!r} ({option}); it has: {', '.join(frame.columns)}")
    return column


def parse_where(clauses: list[str] | None) -> list[tuple[str, str]]:
    parsed = []
    for clause in clauses or []:
        column, sep, value = clause.partition("=")
        if not sep or not column.strip():
            raise WorkbenchError(f"--where needs COLUMN=VALUE, got {clause!r}")
        parsed.append((column.strip(), value.strip()))
    return parsed


def load_labeled(
    path: Path | str,
    *,
    label_col: str,
    id_col: str | None = None,
    text_col: str | None = None,
    feature_cols: list[str] | None = None,
    image_col: str | None = None,
    image_root: str | None = None,
    table: TableOptions = TableOptions(),
    rules: LabelRules = LabelRules(),
    where: Sequence[tuple[str, str]] = (),
    text_sep: str = DEFAULT_TEXT_SEP,
    max_items: int | None = None,
    sample_seed: int = 0,
    name: str | None = None,
) -> LabeledData:
    """The labeled file as items + true labels.

    Exactly one of text_col (one column, or several joined by ``text_sep``), image_col or
    feature_cols/tabular applies: text if text_col, image if image_col, else tabular with
    feature_cols (default: every column but the id, the label and the --where columns).
    Rows whose label is empty after the label rules are dropped (counted in ``dropped``).
    """
    path = Path(path).expanduser()
    frame = read_table(path, table)
    if text_col and image_col:
        raise WorkbenchError("give either --text-col or --image-col, not both")
    _require(frame, label_col, "--label-col", path)
    if id_col:
        _require(frame, id_col, "--id-col", path)
    dropped: dict[str, int] = {}
    for column, value in where:
        _require(frame, column, "--where", path)
        keep = frame[column].astype(str).str.strip() == value
        if (~keep).sum():
            dropped[f"where {column}={value}"] = int((~keep).sum())
        frame = frame[keep]
    if id_col:
        ids = frame[id_col].astype(str).str.strip()
    else:
        ids = pd.Series([str(i + 1) for i in range(len(frame))], index=frame.index)  # row number, 1-based
    labels = frame[label_col].map(rules.apply)
    empty = labels == ""
    if empty.any():
        dropped["empty label"] = int(empty.sum())
    keep = ~empty
    frame, ids, labels = frame[keep], ids[keep], labels[keep]
    if ids.duplicated().any():
        raise WorkbenchError(
            f"{path.name}: id {ids[ids.duplicated()].iloc[0]!r} occurs more than once in --id-col "
            f"{id_col or '(row number)'}"
        )
    if (ids == "").any():
        raise WorkbenchError(f"{path.name}: an id in --id-col {id_col!r} is empty")
    reserved = {id_col, label_col} | {column for column, _ in where}
    if text_col:
        text_cols = parse_cols(text_col) or []
        for column in text_cols:
            _require(frame, column, "--text-col", path)
        parts = frame[text_cols].astype(str)
        text = (
            parts.apply(lambda row: text_sep.join(v for v in row if v.strip()), axis=1)
            if len(text_cols) > 1
            else parts[text_cols[0]]
        )
        kind, content = "text", pd.DataFrame({"text": text.values})
    elif image_col:
        _require(frame, image_col, "--image-col", path)
        kind, content = "image", pd.DataFrame({"image": frame[image_col].astype(str).values})
    else:
        cols = feature_cols if feature_cols else [c for c in frame.columns if c not in reserved]
        for column in cols:
            _require(frame, column, "--feature-cols", path)
            if column in (id_col, label_col):
                raise WorkbenchError(
                    f"--feature-cols must not include the {'id' if column == id_col else 'label'} column {column!r}"
                )
        if not cols:
            raise WorkbenchError(
                f"{path.name}: no feature columns left (give --text-col, --image-col or --feature-cols)"
            )
        kind, content = "tabular", frame[cols].reset_index(drop=True).astype(str)
    data = LabeledData(
        name=name or path.stem,
        kind=kind,
        ids=list(ids),
        labels=list(labels),
        content=content.reset_index(drop=True),
        image_root=image_root,
        dropped=dropped,
        source_sha256=file_sha256(path),
    )
    if len(data.label_set) < 2:
        raise WorkbenchError(
            f"{path.name}: the label column {label_col!r} has fewer than 2 distinct labels "
            f"({', '.join(data.label_set) or 'none'})"
        )
    if max_items is not None and len(data.ids) > max_items:
        data = subsample(data, max_items, sample_seed)
    return data


def subsample(data: LabeledData, n: int, seed: int) -> LabeledData:
    """A seeded random subset of n items (kept in file order)."""
    import numpy as np

    keep = np.sort(np.random.default_rng(seed).choice(len(data.ids), size=n, replace=False))
    dropped = dict(data.dropped, **{f"subsample to {n}": len(data.ids) - n})
    return LabeledData(
        name=data.name,
        kind=data.kind,
        ids=[data.ids[i] for i in keep],
        labels=[data.labels[i] for i in keep],
        content=data.content.iloc[keep].reset_index(drop=True),
        image_root=data.image_root,
        dropped=dropped,
        source_sha256=data.source_sha256,
    )


def load_crowd(
    path: Path | str,
    *,
    item_col: str,
    worker_col: str,
    label_col: str,
    table: TableOptions = TableOptions(),
    rules: LabelRules = LabelRules(),
) -> CrowdData:
    """Real judgments (item, worker, label); a worker's repeated judgment of one item keeps the first."""
    path = Path(path).expanduser()
    frame = read_table(path, table)
    for column, option in (
        (item_col, "--crowd-item-col"),
        (worker_col, "--crowd-worker-col"),
        (label_col, "--crowd-label-col"),
    ):
        _require(frame, column, option, path)
    judgments: dict[str, dict[str, str]] = {}
    duplicates = 0
    for item, worker, raw in zip(
        frame[item_col].astype(str).str.strip(), frame[worker_col].astype(str).str.strip(), frame[label_col]
    ):
        label = rules.apply(raw)
        if not item or not worker or not label:
            continue
        answers = judgments.setdefault(item, {})
        if worker in answers:
            duplicates += 1
            continue
        answers[worker] = label
    if not judgments:
        raise WorkbenchError(f"{path.name}: no usable (item, worker, label) rows")
    return CrowdData(judgments=judgments, n_rows=len(frame), duplicates=duplicates, source_sha256=file_sha256(path))


def restrict_to_crowd(data: LabeledData, crowd: CrowdData, overlap: int) -> LabeledData:
    """Keep the items that at least `overlap` distinct workers judged (others cannot be double-labeled
    by real workers); say how many were dropped."""
    keep = [i for i, item in enumerate(data.ids) if len(crowd.judgments.get(item, {})) >= overlap]
    if not keep:
        raise WorkbenchError(
            f"no item of the labeled file has {overlap} or more judgments in the crowd file "
            "(do the ids match --crowd-item-col?)"
        )
    dropped = dict(data.dropped)
    if len(keep) < len(data.ids):
        dropped[f"fewer than {overlap} crowd judgments"] = len(data.ids) - len(keep)
    return LabeledData(
        name=data.name,
        kind=data.kind,
        ids=[data.ids[i] for i in keep],
        labels=[data.labels[i] for i in keep],
        content=data.content.iloc[keep].reset_index(drop=True),
        image_root=data.image_root,
        dropped=dropped,
        source_sha256=data.source_sha256,
    )


def write_import_file(data: LabeledData, path: Path) -> dict[str, Any]:
    """The items as a CSV the import service reads (no label column); returns the import options."""
    id_name = "id"
    while id_name in data.content.columns:
        id_name = f"_{id_name}"
    frame = data.content.copy()
    frame.insert(0, id_name, data.ids)
    frame.to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    options: dict[str, Any] = {"id_col": id_name, "format": "csv"}
    if data.kind == "text":
        options.update(text_col="text", context_cols=[])
    elif data.kind == "image":
        options.update(image_col="image", image_root=data.image_root)
    else:
        options.update(feature_cols=list(data.content.columns))
    return options
