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


class ColumnAccumulator:
    """A column's profile, fed one value at a time (memory: its distinct values, capped)."""

    def __init__(self, name: str, *, missing_before: int = 0) -> None:
        self.name = name
        self.n, self.present = missing_before, 0
        self.distinct: set[str] = set()
        self.all_bool = self.all_number = True
        self.low: float | None = None
        self.high: float | None = None

    def add(self, value: object) -> None:
        self.n += 1
        if _is_missing(value):
            return
        self.present += 1
        if len(self.distinct) <= MAX_EXACT_DISTINCT:
            self.distinct.add(str(value))
        self.all_bool = self.all_bool and isinstance(value, bool)
        if self.all_number:
            try:
                number = float(value)  # type: ignore[arg-type]  # any value: float() refuses a non-number
            except (TypeError, ValueError):
                self.all_number = False
                return
            self.low = number if self.low is None else min(self.low, number)
            self.high = number if self.high is None else max(self.high, number)

    def result(self, *, total: int | None = None) -> ColumnProfile:
        n = max(self.n, total or 0)
        if not self.present:
            return ColumnProfile(self.name, "empty", 1.0 if n else 0.0, 0, None, None)
        kind = "boolean" if self.all_bool else "number" if self.all_number else "text"
        low, high = (self.low, self.high) if kind == "number" else (None, None)
        return ColumnProfile(self.name, kind, 1 - self.present / n, len(self.distinct), low, high)


def column_profile(name: str, values: Sequence[object]) -> ColumnProfile:
    column = ColumnAccumulator(name)
    for value in values:
        column.add(value)
    return column.result()


def text_length_quantiles(lengths: np.ndarray) -> dict[str, float]:
    """p0, p5, p50, p95 and p100 of text lengths in characters (empty without texts)."""
    if len(lengths) == 0:
        return {}
    return {f"p{q}": float(np.percentile(lengths, q)) for q in (0, 5, 50, 95, 100)}


def profile(
    columns: dict[str, Sequence[object]],
    *,
    texts: Sequence[str] | None = None,
    prelabels: Sequence[str | None] | None = None,
) -> Profile:
    rows = len(next(iter(columns.values()))) if columns else len(texts or ())
    quantiles = text_length_quantiles(np.fromiter((len(t) for t in texts or ()), dtype=float))
    shares: dict[str, float] = {}
    if prelabels is not None:
        given = Counter(p for p in prelabels if p)
        total = sum(given.values())
        shares = {label: count / total for label, count in sorted(given.items())} if total else {}
    return Profile(rows, tuple(column_profile(name, values) for name, values in columns.items()), quantiles, shares)
