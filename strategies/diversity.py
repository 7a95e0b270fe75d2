"""Batch diversity and information density on top of margin uncertainty.

Neither forms an N x N matrix: ranked batch-mode sampling works on the ``m = candidate_factor
* n`` most uncertain items only, keeping one running min-distance vector of length m; information
density uses the exact identity ``mean_j cos(x, y_j) = x/|x| . mean_j y_j/|y_j|``, two passes over
the features.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from strategies._rows import (
    Rows,
    has_non_finite,
    inner_products,
    squared_distances,
    squared_distances_to_row,
    squared_norms,
    take_rows,
)
from strategies._validate import check_features, check_n, check_proba, check_rng
from strategies.registry import Input, Strategy, register
from strategies.select import QueryResult, select_top_k
from strategies.uncertainty import score_margin

#: Rows of labeled features compared with the candidates at once.
_LABELED_BLOCK_ROWS = 1024
#: Rows per chunk when streaming the pool's features for density.
_DENSITY_CHUNK_ROWS = 16384


def ranked_batch(
    uncertainty: np.ndarray,
    n: int,
    *,
    rng: np.random.Generator,
    features: Rows,
    labeled_features: Rows | None = None,
    candidate_factor: int = 10,
    diversity_weight: float | None = None,
) -> QueryResult:
    """Ranked batch-mode sampling (Cardoso et al.) among the most uncertain candidates.

    The ``m = min(N, max(n, candidate_factor * n))`` most uncertain items are the candidates.
    Items are then picked greedily; each pick maximises

    ``alpha * (1 - 1 / (1 + d)) + (1 - alpha) * u``

    where ``d`` is the Euclidean distance to the nearest labeled or already-picked item and ``u``
    the uncertainty. As in the paper ``alpha = |U| / (|U| + |L|)`` (unlabeled pool size over pool
    plus labeled-and-picked count) unless ``diversity_weight`` fixes it. With nothing labeled the
    first pick is the most uncertain candidate (modAL instead takes the pool's most central item,
    which needs all pairwise distances). Cost: O(m * (n + L) * D) time, O(m * D) memory.

    Parameters
    ----------
    uncertainty : np.ndarray, shape (N,)
        Higher = more uncertain; the candidate shortlist is its top m.
    n : int
        Batch size, ``1 <= n <= N``.
    rng : np.random.Generator
        Breaks ties in the shortlist (and hence in the greedy picks).
    features : np.ndarray or scipy.sparse CSR, shape (N, D)
    labeled_features : np.ndarray or CSR, shape (L, D), optional
        Items already labeled; the batch keeps away from them too.
    candidate_factor : int
        Shortlist size as a multiple of ``n``.
    diversity_weight : float in [0, 1], optional
        Fixed ``alpha``; default is Cardoso's ``|U| / (|U| + |L|)``.

    Returns
    -------
    QueryResult
        Picks in greedy order; scores are the combined score at the moment of each pick.

    References
    ----------
    T. N. C. Cardoso, R. M. Silva, S. Canuto, M. M. Moro, M. A. Gonçalves, "Ranked batch-mode
    active learning", Information Sciences 379, 2017. Same score as ``modAL.batch``.
    """
    check_rng(rng)
    uncertainty = np.asarray(uncertainty)
    pool_size = uncertainty.shape[0]
    n = check_n(n, pool_size)
    features = check_features(features, n_rows=pool_size)
    if candidate_factor < 1:
        raise ValueError(f"candidate_factor must be at least 1, got {candidate_factor}")
    if diversity_weight is not None and not 0.0 <= diversity_weight <= 1.0:
        raise ValueError(f"diversity_weight must lie in [0, 1], got {diversity_weight}")

    shortlist = select_top_k(uncertainty, min(pool_size, max(n, candidate_factor * n)), rng=rng).indices
    rows = take_rows(features, shortlist)
    if has_non_finite(rows):
        raise ValueError("features contain NaN or infinite values")
    rows_squared_norms = squared_norms(rows)
    labeled_features = _labeled_or_none(labeled_features, n_features=rows.shape[1])
    nearest_known = _distances_to_labeled(rows, rows_squared_norms, labeled_features)
    n_labeled = 0 if labeled_features is None else labeled_features.shape[0]
    shortlist_uncertainty = uncertainty[shortlist].astype(np.float64)

    picked = np.empty(n, dtype=np.int64)
    picked_scores = np.empty(n, dtype=np.float64)
    available = np.ones(shortlist.size, dtype=bool)
    for step in range(n):
        if diversity_weight is None:
            unlabeled = pool_size - step
            alpha = unlabeled / (unlabeled + n_labeled + step)
        else:
            alpha = diversity_weight
        combined = alpha * (1 - 1 / (1 + nearest_known)) + (1 - alpha) * shortlist_uncertainty
        combined[~available] = -np.inf
        best = int(np.argmax(combined))
        picked[step], picked_scores[step] = best, combined[best]
        available[best] = False
        to_best = squared_distances_to_row(rows, rows_squared_norms, best)
        np.minimum(nearest_known, np.sqrt(to_best), out=nearest_known)
    return QueryResult(shortlist[picked], picked_scores)


def _labeled_or_none(labeled_features, *, n_features: int) -> Rows | None:
    """The labeled items' features checked (None when there are none)."""
    if labeled_features is None:
        return None
    if not sp.issparse(labeled_features):
        labeled_features = np.asarray(labeled_features)
    if labeled_features.shape[0] == 0:
        return None
    labeled_features = check_features(labeled_features)
    if labeled_features.shape[1] != n_features:
        raise ValueError(f"labeled_features have {labeled_features.shape[1]} columns, the pool has {n_features}")
    return labeled_features


def _distances_to_labeled(rows, rows_squared_norms: np.ndarray, labeled_features) -> np.ndarray:
    """Distance from each shortlisted row to its nearest labeled item (inf when none is labeled)."""
    nearest = np.full(rows.shape[0], np.inf)
    if labeled_features is None:
        return nearest
    for start in range(0, labeled_features.shape[0], _LABELED_BLOCK_ROWS):
        block = take_rows(labeled_features, slice(start, start + _LABELED_BLOCK_ROWS))
        if has_non_finite(block):
            raise ValueError("labeled_features contain NaN or infinite values")
        block_distances = squared_distances(rows, rows_squared_norms, block, squared_norms(block))
        np.minimum(nearest, np.sqrt(block_distances.min(axis=1)), out=nearest)
    return nearest


def information_density(features: Rows) -> np.ndarray:
    """Mean cosine similarity of each item to the whole pool, clipped at 0.

    Exact, without pairs: ``mean_j cos(x, y_j) = (x / |x|) . mu`` with ``mu = mean_j y_j / |y_j|``.
    Two streaming passes over the features, float32 chunks; all-zero rows get density 0, and so
    do items whose mean similarity is negative (outliers pointing away from the pool).

    Parameters
    ----------
    features : np.ndarray (incl. np.memmap) or scipy.sparse CSR, shape (N, D)

    Returns
    -------
    np.ndarray of float32, shape (N,)
        In ``[0, 1]``.

    References
    ----------
    B. Settles, M. Craven, "An Analysis of Active Learning Strategies for Sequence Labeling
    Tasks", EMNLP 2008 (information density, with cosine similarity).
    """
    features = check_features(features)
    pool_size, n_features = features.shape
    inverse_norms = np.empty(pool_size, dtype=np.float32)
    direction_sum = np.zeros(n_features, dtype=np.float64)
    for start in range(0, pool_size, _DENSITY_CHUNK_ROWS):
        chunk = take_rows(features, slice(start, start + _DENSITY_CHUNK_ROWS))
        norms = np.sqrt(squared_norms(chunk))
        chunk_inverse = np.divide(1, norms, out=np.zeros_like(norms), where=norms > 0)
        inverse_norms[start : start + chunk.shape[0]] = chunk_inverse
        direction_sum += np.asarray(chunk.T @ chunk_inverse).ravel()
    mean_direction = (direction_sum / pool_size).astype(np.float32)[None, :]
    density = np.empty(pool_size, dtype=np.float32)
    for start in range(0, pool_size, _DENSITY_CHUNK_ROWS):
        chunk = take_rows(features, slice(start, start + _DENSITY_CHUNK_ROWS))
        stop = start + chunk.shape[0]
        density[start:stop] = inner_products(chunk, mean_direction)[:, 0] * inverse_norms[start:stop]
    if np.isnan(density).any():
        raise ValueError("features contain NaN or infinite values")
    return np.clip(density, 0, 1, out=density)


def margin_batch(
    proba: np.ndarray,
    n: int,
    *,
    rng: np.random.Generator,
    features: Rows,
    labeled_features: Rows | None = None,
    candidate_factor: int = 10,
    diversity_weight: float | None = None,
) -> QueryResult:
    """Diverse batch: :func:`ranked_batch` with margin uncertainty (:func:`score_margin`).

    Parameters
    ----------
    proba : np.ndarray, shape (N, K)
    features : np.ndarray or CSR, shape (N, D)
    Other parameters as in :func:`ranked_batch`.
    """
    return ranked_batch(
        score_margin(check_proba(proba)),
        n,
        rng=rng,
        features=features,
        labeled_features=labeled_features,
        candidate_factor=candidate_factor,
        diversity_weight=diversity_weight,
    )


def density_weighted_top_k(
    uncertainty: np.ndarray,
    n: int,
    *,
    rng: np.random.Generator,
    features: Rows,
    beta: float = 1.0,
) -> QueryResult:
    """Top ``n`` by ``uncertainty * density ** beta`` (information density, Settles & Craven 2008).

    Parameters
    ----------
    uncertainty : np.ndarray, shape (N,)
        Higher = more uncertain, non-negative.
    features : np.ndarray or CSR, shape (N, D)
        Density is :func:`information_density` of these.
    beta : float
        Weight of density relative to uncertainty (0 = uncertainty alone).
    """
    features = check_features(features, n_rows=uncertainty.shape[0])
    return select_top_k(uncertainty * information_density(features) ** beta, n, rng=rng)


def margin_density(
    proba: np.ndarray,
    n: int,
    *,
    rng: np.random.Generator,
    features: Rows,
    beta: float = 1.0,
) -> QueryResult:
    """Information density on margin: :func:`density_weighted_top_k` of :func:`score_margin`.

    Parameters
    ----------
    proba : np.ndarray, shape (N, K)
    features : np.ndarray or CSR, shape (N, D)
    beta : float
        Weight of density relative to uncertainty (0 = plain margin).
    """
    return density_weighted_top_k(score_margin(check_proba(proba)), n, rng=rng, features=features, beta=beta)


register(
    Strategy(
        name="margin_batch",
        input=Input.PROBA,
        needs_features=True,
        select=margin_batch,
        description="a batch of uncertain items spread out in feature space (ranked batch-mode)",
        row_scorer=score_margin,
        score_selector=ranked_batch,
    )
)
register(
    Strategy(
        name="margin_density",
        input=Input.PROBA,
        needs_features=True,
        select=margin_density,
        description="uncertain items weighted by how typical they are of the pool (information density)",
        row_scorer=score_margin,
        score_selector=density_weighted_top_k,
    )
)
