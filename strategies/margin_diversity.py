"""Margin with diversity: margin-weighted k-center greedy over a margin shortlist.

Plain margin sampling takes the ``n`` items nearest the decision boundary, and in a batch those are
often near-duplicates of one another (the same spam template, the same tweet retweeted). This
strategy keeps margin's choice of *which region* to look at and spreads the batch over it:

1. **Shortlist.** The ``m = candidate_factor * k`` items with the highest margin uncertainty
   ``u = 1 - (p_(1) - p_(2))``, where ``k = min(n, max_diverse)`` is how many picks are spread out
   (Zhdanov 2019 and Citovsky et al. 2021 prefilter the same way, with a factor of 10).
2. **Weighted farthest-first.** The first pick is the most uncertain item; each next pick maximises
   ``u_i * d_i``, with ``d_i`` the Euclidean distance from item ``i`` to its nearest labeled or
   already-picked item (k-center greedy, Sener & Savarese 2018, weighted by uncertainty). One
   running min-distance vector of length ``m`` is kept, so the cost is ``O(k * m * D)`` time and
   ``O(m * D)`` memory: no N x N (nor m x m) matrix is ever formed.
3. **The rest.** After the ``k`` spread-out picks, the ranking continues with the remaining items
   by margin alone, so a caller asking for a long ranking (the workbench keeps 2,000) still gets
   one in ``O(N)``.

Scores in the result are the items' margin uncertainties ``u`` (what a person reading the ranking
can interpret), in the order picked.
"""

from __future__ import annotations

import numpy as np

from strategies._rows import Rows, has_non_finite, squared_distances_to_row, squared_norms, take_rows
from strategies._validate import check_features, check_n, check_proba, check_rng
from strategies.diversity import _distances_to_labeled, _labeled_or_none
from strategies.registry import Input, Strategy, register
from strategies.select import QueryResult, select_top_k
from strategies.uncertainty import score_margin

#: Picks spread over the embedding space; later ranks follow margin. Batches labeled between two
#: rounds are 25-250 items, so the part of a ranking that is labeled before the next one is diverse.
MAX_DIVERSE = 256
CANDIDATE_FACTOR = 10


def kcenter_uncertainty(
    uncertainty: np.ndarray,
    n: int,
    *,
    rng: np.random.Generator,
    features: Rows,
    labeled_features: Rows | None = None,
    candidate_factor: int = CANDIDATE_FACTOR,
    max_diverse: int = MAX_DIVERSE,
) -> QueryResult:
    """Uncertainty-weighted k-center greedy among the most uncertain items (see the module docstring).

    Parameters
    ----------
    uncertainty : np.ndarray, shape (N,)
        Non-negative, higher = more uncertain (e.g. :func:`score_margin`).
    n : int
        Ranking length, ``1 <= n <= N``; the first ``min(n, max_diverse)`` are spread out.
    rng : np.random.Generator
        Breaks ties in the shortlist and in the margin-ordered tail.
    features : np.ndarray (incl. memmap) or CSR, shape (N, D)
        Only the shortlisted rows are read.
    labeled_features : np.ndarray or CSR, shape (L, D), optional
        Items already labeled; the spread-out picks keep away from them too.
    candidate_factor : int
        Shortlist size as a multiple of the number of spread-out picks.
    max_diverse : int
        At most this many picks are spread out.

    Returns
    -------
    QueryResult
        ``n`` positions in pick order, scored by their uncertainty.
    """
    check_rng(rng)
    uncertainty = np.asarray(uncertainty)
    if uncertainty.ndim != 1:
        raise ValueError(f"uncertainty must have shape (N,), got {uncertainty.shape}")
    pool_size = uncertainty.shape[0]
    n = check_n(n, pool_size)
    if np.isnan(uncertainty).any():
        raise ValueError("uncertainty contains NaN")
    if (uncertainty < 0).any():
        raise ValueError("uncertainty must be non-negative")
    if candidate_factor < 1:
        raise ValueError(f"candidate_factor must be at least 1, got {candidate_factor}")
    if max_diverse < 1:
        raise ValueError(f"max_diverse must be at least 1, got {max_diverse}")
    features = check_features(features, n_rows=pool_size)

    k = min(n, max_diverse)
    shortlist = select_top_k(uncertainty, min(pool_size, max(k, candidate_factor * k)), rng=rng).indices
    rows = take_rows(features, shortlist)
    if has_non_finite(rows):
        raise ValueError("features contain NaN or infinite values")
    rows_squared_norms = squared_norms(rows)
    labeled_features = _labeled_or_none(labeled_features, n_features=rows.shape[1])
    nearest = _distances_to_labeled(rows, rows_squared_norms, labeled_features)  # inf when none labeled
    weights = uncertainty[shortlist].astype(np.float64)
    # A tiny floor keeps items of zero uncertainty (fully confident) orderable by distance alone.
    weights = np.maximum(weights, 1e-12)

    picked = np.empty(k, dtype=np.int64)
    available = np.ones(shortlist.size, dtype=bool)
    for step in range(k):
        if np.isinf(nearest).all():
            combined = weights.copy()  # nothing labeled or picked yet: the most uncertain
        else:
            combined = weights * nearest
        combined[~available] = -np.inf
        best = int(np.argmax(combined))
        picked[step] = best
        available[best] = False
        to_best = np.sqrt(squared_distances_to_row(rows, rows_squared_norms, best)).astype(np.float64)
        np.minimum(nearest, to_best, out=nearest)
    chosen = shortlist[picked]
    if n > k:
        rest = uncertainty.astype(np.float32, copy=True)
        rest[chosen] = -np.inf
        tail = select_top_k(rest, n - k, rng=rng).indices
        chosen = np.concatenate([chosen, tail])
    return QueryResult(chosen, uncertainty[chosen].astype(np.float64))


def margin_diversity(
    proba: np.ndarray,
    n: int,
    *,
    rng: np.random.Generator,
    features: Rows,
    labeled_features: Rows | None = None,
    candidate_factor: int = CANDIDATE_FACTOR,
    max_diverse: int = MAX_DIVERSE,
) -> QueryResult:
    """:func:`kcenter_uncertainty` of :func:`score_margin`.

    Parameters
    ----------
    proba : np.ndarray, shape (N, K)
    Other parameters as in :func:`kcenter_uncertainty`.
    """
    return kcenter_uncertainty(
        score_margin(check_proba(proba)),
        n,
        rng=rng,
        features=features,
        labeled_features=labeled_features,
        candidate_factor=candidate_factor,
        max_diverse=max_diverse,
    )


register(
    Strategy(
        name="margin_diversity",
        input=Input.PROBA,
        needs_features=True,
        select=margin_diversity,
        description="uncertain items spread over the feature space (margin-weighted k-center)",
        row_scorer=score_margin,
        score_selector=kcenter_uncertainty,
    )
)
