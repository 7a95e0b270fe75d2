"""A profile of a batch: per column its type, missing share, distinct count and range; text length
quantiles; the label share of prelabels."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_EXACT_DISTINCT = 100_000  # beyond this many distinct values the count is reported as a floor


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    type: str  # number | text | boolean | empty
    missing_share: float
    distinct: int
    minimum: float | None
    maximum: float | None


@dataclass(frozen=True)
class Profile:
    rows: int
    columns: tuple[ColumnProfile, ...]
    text_length_quantiles: dict[str, float]  # p0, p5, p50, p95, p100 in characters
    prelabel_share: dict[str, float]  # label -> share of prelabeled rows


def _is_missing(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, float) and np.isnan(value))


def column_profile(name: str, values: Sequence[object]) -> ColumnProfile:
    n = len(values)
    present = [v for v in values if not _is_missing(v)]
    distinct = len(set(map(str, present[: MAX_EXACT_DISTINCT * 10])))
    if not present:
        return ColumnProfile(name, "empty", 1.0 if n else 0.0, 0, None, None)
    if all(isinstance(v, bool) for v in present):
        kind = "boolean"
    else:
        try:
            numbers = np.asarray([float(v) for v in present])  # type: ignore[arg-type]
            kind = "number"
        except (TypeError, ValueError):
            kind = "text"
    low = high = None
    if kind == "number":
        low, high = float(numbers.min()), float(numbers.max())
    return ColumnProfile(name, kind, 1 - len(present) / n, distinct, low, high)


def profile(
    columns: dict[str, Sequence[object]],
    *,
    texts: Sequence[str] | None = None,
    prelabels: Sequence[str | None] | None = None,
) -> Profile:
    rows = len(next(iter(columns.values()))) if columns else len(texts or ())
    quantiles: dict[str, float] = {}
    if texts:
        lengths = np.fromiter((len(t) for t in texts), dtype=float, count=len(texts))
        quantiles = {f"p{q}": float(np.percentile(lengths, q)) for q in (0, 5, 50, 95, 100)}
    shares: dict[str, float] = {}
    if prelabels is not None:
        given = Counter(p for p in prelabels if p)
        total = sum(given.values())
        shares = {label: count / total for label, count in sorted(given.items())} if total else {}
    return Profile(rows, tuple(column_profile(name, values) for name, values in columns.items()), quantiles, shares)
