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

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ROBUST_Z = 5.0
NON_LETTER_SHARE = 0.5
UNKNOWN_TOKEN_RATE = 0.5
ISOLATION_SHARE = 0.01
BLANK_STD = 2.0
_TOKEN = re.compile(r"\w+")


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
            array = np.asarray([np.nan if v in (None, "") else float(v) for v in values], dtype=float)  # type: ignore[arg-type]
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


def text_outliers(texts: Sequence[str]) -> list[Outlier]:
    flags: dict[int, list[str]] = {}
    lengths = np.asarray([len(t) for t in texts], dtype=float)
    z = robust_z(np.log1p(lengths))
    tokens = [_TOKEN.findall(t.lower()) for t in texts]
    document_frequency = Counter(tok for toks in tokens for tok in set(toks))
    for row, text in enumerate(texts):
        reasons = flags.setdefault(row, [])
        if np.isfinite(z[row]) and z[row] > ROBUST_Z:
            reasons.append(f"length {len(text)} characters is far from the usual")
        if text:
            non_letters = sum(1 for c in text if not (c.isalpha() or c.isspace())) / len(text)
            if non_letters > NON_LETTER_SHARE:
                reasons.append(f"{non_letters:.0%} of the characters are not letters")
        toks = tokens[row]
        if len(toks) >= 3 and len(texts) >= 20:
            unknown = sum(1 for tok in toks if document_frequency[tok] <= 1) / len(toks)
            if unknown > UNKNOWN_TOKEN_RATE:
                reasons.append(f"{unknown:.0%} of the words occur in no other item")
    return _collect(len(texts), flags)


def image_outliers(sizes: Sequence[tuple[int, int] | None], blank_std: Sequence[float | None]) -> list[Outlier]:
    """`sizes` are (width, height) per image, `blank_std` the grey-level standard deviation of a
    64×64 thumbnail (None where the image could not be read)."""
    flags: dict[int, list[str]] = {}
    known = [i for i, s in enumerate(sizes) if s]
    if len(known) >= 10:
        pixels = np.log([sizes[i][0] * sizes[i][1] for i in known])  # type: ignore[index]
        aspect = np.log([sizes[i][0] / sizes[i][1] for i in known])  # type: ignore[index]
        for values, what in ((pixels, "pixel count"), (aspect, "aspect ratio")):
            z = robust_z(values)
            for j in np.flatnonzero(np.isfinite(z) & (z > ROBUST_Z)):
                w, h = sizes[known[j]]  # type: ignore[misc]
                flags.setdefault(known[j], []).append(f"{what} of {w}×{h} is far from the usual")
    for i, std in enumerate(blank_std):
        if std is not None and std < BLANK_STD:
            flags.setdefault(i, []).append("near-blank image")
    return _collect(len(sizes), flags)
