"""Uncertainty scorers on predicted probabilities, and the strategies built on them.

Each scorer maps probabilities of shape (N, K) to scores of shape (N,), higher = more
informative, in the dtype of the input. Scorers assume valid probabilities; the registered
strategies check them first (see :mod:`strategies._validate`).

Reference: B. Settles, "Active Learning Literature Survey", University of Wisconsin-Madison
CS Technical Report 1648, 2009, section 3.1. The definitions match ``modAL.uncertainty``
(natural logarithm for entropy; margin reported as ``1 - margin`` so that higher is better).
"""

from __future__ import annotations

import numpy as np

from strategies._information import entropy
from strategies._validate import check_proba
from strategies.registry import Input, Strategy, register
from strategies.select import QueryResult, select_top_k

#: Up to this many classes, the top two are found by one vectorised pass per class (fast for
#: either memory layout); beyond it, by ``np.partition`` along each row.
_SCAN_MAX_CLASSES = 64


def score_least_confidence(proba: np.ndarray) -> np.ndarray:
    """Least confidence: ``1 - max_k p_k``.

    Parameters
    ----------
    proba : np.ndarray, shape (N, K)

    Returns
    -------
    np.ndarray, shape (N,)
        In ``[0, 1 - 1/K]``.
    """
    return 1 - proba.max(axis=1)


def score_margin(proba: np.ndarray) -> np.ndarray:
    """Margin: ``1 - (p_(1) - p_(2))``, one minus the gap between the two most likely classes.

    Parameters
    ----------
    proba : np.ndarray, shape (N, K), K >= 2

    Returns
    -------
    np.ndarray, shape (N,)
        In ``[0, 1]``; 1 when the two top classes are equally likely.
    """
    n_classes = proba.shape[1]
    if n_classes == 2:
        return 1 - np.abs(proba[:, 0] - proba[:, 1])
    if n_classes > _SCAN_MAX_CLASSES:
        top_two = np.partition(proba, (n_classes - 2, n_classes - 1), axis=1)[:, n_classes - 2 :]
        return 1 - (top_two[:, 1] - top_two[:, 0])
    top = proba.max(axis=1)
    runner_up = np.full_like(top, -np.inf)
    top_seen = np.zeros(top.shape, dtype=bool)
    for k in range(n_classes):
        column = proba[:, k]
        first_top = (column == top) & ~top_seen
        np.maximum(runner_up, np.where(first_top, -np.inf, column), out=runner_up)
        top_seen |= first_top
    return 1 - (top - runner_up)


def score_entropy(proba: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats: ``-sum_k p_k log p_k`` (with ``0 log 0 = 0``).

    Parameters
    ----------
    proba : np.ndarray, shape (N, K)

    Returns
    -------
    np.ndarray, shape (N,)
        In ``[0, log K]``.
    """
    return entropy(proba, axis=1)


def _per_item_strategy(name: str, scorer, description: str) -> Strategy:
    def select(proba: np.ndarray, n: int, *, rng: np.random.Generator) -> QueryResult:
        return select_top_k(scorer(check_proba(proba)), n, rng=rng)

    select.__doc__ = f"Top ``n`` items by {scorer.__name__}; ``proba`` has shape (N, K)."
    return Strategy(
        name=name,
        input=Input.PROBA,
        needs_features=False,
        select=select,
        description=description,
        row_scorer=scorer,
        decreasing_in_binary_margin=True,
    )


register(
    _per_item_strategy("least_confidence", score_least_confidence, "items whose most likely class is least likely")
)
register(_per_item_strategy("margin", score_margin, "items whose two most likely classes are closest"))
register(
    _per_item_strategy("entropy", score_entropy, "items whose predicted class distribution has the highest entropy")
)
