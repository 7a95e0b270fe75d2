"""Input checks shared by every strategy: each bad input is a ValueError that names the problem.

Strategies validate at the registry boundary, so a wrong input never turns into a silently wrong
ranking. The scorers themselves are pure math on already-valid arrays.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import scipy.sparse as sp

#: How far a probability row may sum from 1 before it is rejected.
ROW_SUM_TOLERANCE = 1e-3


def check_rng(rng: object) -> np.random.Generator:
    """Return ``rng`` if it is a ``np.random.Generator``; global ``np.random`` is never used."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def check_pool_size(pool_size: int) -> int:
    """Return the pool size as an int, rejecting an empty pool."""
    pool_size = operator.index(pool_size)
    if pool_size < 1:
        raise ValueError("the pool is empty: there is nothing to select from")
    return pool_size


def check_n(n: int, pool_size: int) -> int:
    """Return ``n`` as an int if ``1 <= n <= pool_size`` (``n`` equal to the pool size is allowed)."""
    if isinstance(n, bool):
        raise TypeError("n must be an integer, got a bool")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"n must be an integer, got {type(n).__name__}") from None
    pool_size = check_pool_size(pool_size)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if n > pool_size:
        raise ValueError(f"n={n} is larger than the pool ({pool_size} items)")
    return n


def _as_float_array(values: object, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind not in "fiu":
        raise ValueError(f"{what} must be numeric, got dtype {array.dtype}")
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    return array


def _check_distributions(proba: np.ndarray, what: str) -> None:
    """Check the last axis of ``proba`` holds probability distributions over at least 2 classes."""
    if proba.shape[-1] < 2:
        raise ValueError(f"{what} need at least 2 classes, got {proba.shape[-1]}")
    if np.isnan(proba).any():
        raise ValueError(f"{what} contain NaN")
    if np.isinf(proba).any() or (proba < 0).any():
        raise ValueError(f"{what} must lie in [0, 1]; found a negative or infinite value")
    row_sums = proba.sum(axis=-1, dtype=np.float64)
    worst = np.abs(row_sums - 1.0)
    if (worst > ROW_SUM_TOLERANCE).any():
        position = np.unravel_index(int(np.argmax(worst)), worst.shape)
        raise ValueError(
            f"{what} rows must sum to 1 (tolerance {ROW_SUM_TOLERANCE}); "
            f"row {tuple(int(i) for i in position)} sums to {float(row_sums[position]):.6g}"
        )


def check_proba(proba: object) -> np.ndarray:
    """Return predicted probabilities of shape (N, K) as a float array, or raise ValueError."""
    proba = _as_float_array(proba, "probabilities")
    if proba.ndim != 2:
        raise ValueError(f"probabilities must have shape (N, K), got shape {proba.shape}")
    check_pool_size(proba.shape[0])
    _check_distributions(proba, "probabilities")
    return proba


def check_stacked_proba(proba: object, *, what: str, axis_name: str) -> np.ndarray:
    """Return stacked probabilities of shape (M, N, K) with M >= 2, or raise ValueError.

    Used for committees (M members) and MC-dropout samples (M forward passes); ``what`` and
    ``axis_name`` make the error messages speak the caller's language.
    """
    proba = _as_float_array(proba, what)
    if proba.ndim != 3:
        raise ValueError(f"{what} must have shape ({axis_name}, N, K), got shape {proba.shape}")
    if proba.shape[0] < 2:
        raise ValueError(f"{what} need at least 2 {axis_name.lower()}, got {proba.shape[0]}")
    check_pool_size(proba.shape[1])
    _check_distributions(proba, what)
    return proba


def check_committee(proba: object) -> np.ndarray:
    """Return committee probabilities of shape (M, N, K), M >= 2 members, or raise ValueError."""
    return check_stacked_proba(proba, what="committee probabilities", axis_name="members")


def check_mc_samples(samples: object) -> np.ndarray:
    """Return MC-dropout probabilities of shape (T, N, K), T >= 2 passes, or raise ValueError."""
    return check_stacked_proba(samples, what="MC-dropout samples", axis_name="passes")


def check_features(features: Any, *, n_rows: int | None = None) -> Any:
    """Return a 2-D feature matrix: a dense float array (``np.memmap`` included) or CSR sparse.

    Parameters
    ----------
    features : array_like or scipy.sparse CSR, shape (N, D)
    n_rows : int, optional
        When given, ``N`` must equal it (features must align with the probabilities).
    """
    if sp.issparse(features):
        if features.format != "csr":
            raise ValueError(f"sparse features must be CSR, got {features.format.upper()}")
    else:
        if not isinstance(features, np.ndarray):
            features = np.asarray(features)
        if features.dtype.kind not in "fiu":
            raise ValueError(f"features must be numeric, got dtype {features.dtype}")
    if features.ndim != 2:
        raise ValueError(f"features must have shape (N, D), got shape {features.shape}")
    check_pool_size(features.shape[0])
    if n_rows is not None and features.shape[0] != n_rows:
        raise ValueError(f"features have {features.shape[0]} rows but the probabilities cover {n_rows} items")
    return features
