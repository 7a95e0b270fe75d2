"""Entropy and Kullback-Leibler divergence along the class axis, vectorised with NumPy's log.

``p log p`` is computed as ``p * log(max(p, tiny))``: exactly 0 for ``p = 0`` (the usual
``0 log 0 = 0`` convention), with no warnings, and several times faster than ``scipy.special.entr``
because NumPy's ``log`` is SIMD-vectorised. Results are in nats, in the input's dtype.
"""

from __future__ import annotations

import numpy as np


def safe_log(proba: np.ndarray) -> np.ndarray:
    """``log(max(p, tiny))``: finite everywhere on [0, 1], equal to ``log p`` for normal ``p > 0``."""
    logs = np.maximum(proba, np.finfo(proba.dtype).tiny)
    return np.log(logs, out=logs)


def entropy(proba: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy ``-sum p log p`` along ``axis`` (nats)."""
    terms = safe_log(proba)
    terms *= proba
    return -terms.sum(axis=axis)


def kl_divergence(proba: np.ndarray, reference: np.ndarray, axis: int = -1) -> np.ndarray:
    """``KL(p || q) = sum p (log p - log q)`` along ``axis``; ``reference`` broadcasts against ``proba``."""
    terms = safe_log(proba)
    terms -= safe_log(reference)
    terms *= proba
    return terms.sum(axis=axis)
