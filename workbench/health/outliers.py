"""Items unlike the rest, each with the reason it was flagged.

- Tabular: per numeric column, the robust z-score |x − median| / (1.4826 · MAD) above 5 (the MAD
  scaled to the normal's σ; Iglewicz & Hoaglin 1993 suggest 3.5 for the modified z-score, 5 keeps
  to the far tail), and scikit-learn's IsolationForest on the numeric columns (the 1% with the
  shortest average isolation paths).
- Text: length in characters far from the project's (robust z on log length), a share of
  characters that are not letters or spaces above 0.5, and an unknown-token rate above 0.5, where
  a token is unknown when it occurs in no other item.
- Images: pixel size or aspect ratio far from the rest (robust z on log values), and near-blank
  content (grey-level standard deviation below 2 on a 64×64 thumbnail).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ROBUST_Z = 5.0
NON_LETTER_SHARE = 0.5
UNKNOWN_TOKEN_RATE = 0.5
ISOLATION_SHARE = 0.01
BLANK_STD = 2.0


@dataclass(frozen=True)
class Outlier:
    row: int  # position in the input
    reasons: tuple[str, ...]


def robust_z(values: np.ndarray) -> np.ndarray:
    """|x − median| / (1.4826 · MAD); 0 where the MAD is 0 and x is the median, inf elsewhere."""
    values = np.asarray(values, dtype=float)
    median = np.nanmedian(values)
    mad = np.nanmedian(np.abs(values - median)) * 1.4826
    deviation = np.abs(values - median)
    if mad == 0:
        return np.where(deviation == 0, 0.0, np.inf)
    return deviation / mad


def _collect(n: int, flags: dict[int, list[str]]) -> list[Outlier]:
    return [Outlier(row, tuple(reasons)) for row, reasons in sorted(flags.items()) if reasons]


def tabular_outliers(columns: dict[str, Sequence[object]], *, seed: int = 0) -> list[Outlier]:
    flags: dict[int, list[str]] = {}
    numeric = {}
    for name, values in columns.items():
        try:
            array = np.asarray(
                [np.nan if v in (None, "") else float(v) for v in values],  # type: ignore[arg-type]  # any value: float() refuses a non-number
                dtype=np.float64,
            )
        except (TypeError, ValueError):
            continue
        if np.isfinite(array).sum() < 10:
            continue
        numeric[name] = array
        z = robust_z(array)
        for row in np.flatnonzero(np.isfinite(array) & (z > ROBUST_Z) & np.isfinite(z)):
            flags.setdefault(int(row), []).append(f"{name} = {array[row]:g} is {z[row]:.1f} robust σ from the median")
    if numeric:
        n = len(next(iter(numeric.values())))
        if n >= 50:
            from sklearn.ensemble import IsolationForest

            X = np.column_stack([np.nan_to_num(v, nan=np.nanmedian(v)) for v in numeric.values()])
            forest = IsolationForest(contamination=ISOLATION_SHARE, random_state=seed, n_estimators=100)
            labels = forest.fit_predict(X)
            for row in np.flatnonzero(labels == -1):
                flags.setdefault(int(row), []).append("isolation forest: unlike the other rows")
    return _collect(0, flags)


def text_outliers(texts: Sequence[str], *, chunk_rows: int = 50_000) -> list[Outlier]:
    """Length far from the usual, mostly non-letters, or mostly words no other item has."""
    from workbench.health.duplicates import tokenise

    n = len(texts)
    lengths = np.fromiter((len(t) for t in texts), dtype=float, count=n)
    non_letters, sizes = np.zeros(n), np.zeros(n)
    owners, hashes = [], []
    for start in range(0, n, chunk_rows):
        tokens = tokenise(texts[start : start + chunk_rows])
        owners.append(tokens.owner + start)
        hashes.append(tokens.hashes)
        non_letters[start : start + len(tokens.sizes)] = tokens.non_letters
        sizes[start : start + len(tokens.sizes)] = tokens.sizes
    non_letter_share = np.divide(non_letters, sizes, out=np.zeros(n), where=sizes > 0)
    owner = np.concatenate(owners) if owners else np.zeros(0, np.int64)
    words = np.bincount(owner, minlength=n)
    unknown_rate = np.zeros(n)
    if len(owner) and n >= 20:
        # A word is unknown when it occurs once in the whole batch (so in no other item).
        _, inverse, counts = np.unique(np.concatenate(hashes), return_inverse=True, return_counts=True)
        unknown = np.bincount(owner, weights=(counts[inverse] == 1).astype(float), minlength=n)
        unknown_rate = np.divide(unknown, words, out=np.zeros(n), where=words >= 3)
    return text_outlier_rows(lengths, non_letter_share, unknown_rate)


def text_outlier_rows(lengths: np.ndarray, non_letter_share: np.ndarray, unknown_rate: np.ndarray) -> list[Outlier]:
    """The text rules on per-text features: length in characters, share of non-letter bytes,
    share of words that occur in no other item."""
    z = robust_z(np.log1p(np.asarray(lengths, dtype=float)))
    flags: dict[int, list[str]] = {}
    for row in np.flatnonzero(np.isfinite(z) & (z > ROBUST_Z)):
        flags.setdefault(int(row), []).append(f"length {int(lengths[row])} characters is far from the usual")
    for row in np.flatnonzero(non_letter_share > NON_LETTER_SHARE):
        flags.setdefault(int(row), []).append(f"{non_letter_share[row]:.0%} of the characters are not letters")
    for row in np.flatnonzero(unknown_rate > UNKNOWN_TOKEN_RATE):
        flags.setdefault(int(row), []).append(f"{unknown_rate[row]:.0%} of the words occur in no other item")
    return _collect(len(lengths), flags)


def image_outliers(sizes: Sequence[tuple[int, int] | None], blank_std: Sequence[float | None]) -> list[Outlier]:
    """`sizes` are (width, height) per image, `blank_std` the grey-level standard deviation of a
    64×64 thumbnail (None where the image could not be read)."""
    flags: dict[int, list[str]] = {}
    known = [i for i, s in enumerate(sizes) if s]
    shapes = [s for s in sizes if s]  # (width, height) of image known[j] at j
    if len(known) >= 10:
        pixels = np.log([w * h for w, h in shapes])
        aspect = np.log([w / h for w, h in shapes])
        for values, what in ((pixels, "pixel count"), (aspect, "aspect ratio")):
            z = robust_z(values)
            for j in np.flatnonzero(np.isfinite(z) & (z > ROBUST_Z)):
                w, h = shapes[j]
                flags.setdefault(known[j], []).append(f"{what} of {w}×{h} is far from the usual")
    for i, std in enumerate(blank_std):
        if std is not None and std < BLANK_STD:
            flags.setdefault(i, []).append("near-blank image")
    return _collect(len(sizes), flags)
