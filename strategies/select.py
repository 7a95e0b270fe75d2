"""The query result type and the seeded top-k selector every strategy ends in."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from strategies._validate import check_n, check_rng


@dataclass(frozen=True, eq=False)
class QueryResult:
    """Positions chosen from a pool, best first.

    Attributes
    ----------
    indices : np.ndarray of int64, shape (n,)
        Positions into the pool (row numbers of the probabilities / features), in rank order,
        most informative first, without duplicates.
    scores : np.ndarray of float, shape (n,)
        The strategy's score of each chosen item (higher = more informative).
    strategy : str, optional
        The registered strategy that made this ranking, set by :func:`strategies.rank_pool` (which
        may rank by cold start while no model exists, whatever strategy was asked for).
    """

    indices: np.ndarray
    scores: np.ndarray
    strategy: str | None = None

    def __post_init__(self) -> None:
        indices = np.array(self.indices, dtype=np.int64)
        scores = np.array(self.scores)
        if indices.ndim != 1 or scores.shape != indices.shape:
            raise ValueError(f"indices and scores must be 1-D of equal length, got {indices.shape} and {scores.shape}")
        indices.flags.writeable = False
        scores.flags.writeable = False
        object.__setattr__(self, "indices", indices)
        object.__setattr__(self, "scores", scores)

    def __len__(self) -> int:
        return int(self.indices.shape[0])


def select_top_k(scores: np.ndarray, n: int, *, rng: np.random.Generator) -> QueryResult:
    """Choose the ``n`` highest scores; ties are broken uniformly at random by ``rng``.

    ``np.argpartition`` finds the top ``n`` in O(N); only the chosen ``n`` are sorted. When
    equal scores straddle the cut, the tied items that make it in are drawn uniformly from
    all tied items, and items with equal scores are ordered randomly within the result.

    Parameters
    ----------
    scores : np.ndarray, shape (N,)
        Informativeness of each pool item, higher is better. NaN is rejected.
    n : int
        How many to choose, ``1 <= n <= N``.
    rng : np.random.Generator
        Source of the tie-breaking randomness.

    Returns
    -------
    QueryResult
        ``n`` distinct positions, best first, and their scores.
    """
    check_rng(rng)
    scores = np.asarray(scores)
    if scores.ndim != 1:
        raise ValueError(f"scores must have shape (N,), got shape {scores.shape}")
    pool_size = scores.shape[0]
    n = check_n(n, pool_size)
    if np.isnan(scores).any():
        raise ValueError(f"scores contain NaN at positions {np.flatnonzero(np.isnan(scores))[:5].tolist()}")
    if n < pool_size:
        chosen = np.argpartition(scores, pool_size - n)[pool_size - n :]
        threshold = scores[chosen].min()
        n_tied_chosen = int(np.count_nonzero(scores[chosen] == threshold))
        if np.count_nonzero(scores == threshold) > n_tied_chosen:
            above = chosen[scores[chosen] > threshold]
            tied = np.flatnonzero(scores == threshold)
            chosen = np.concatenate([above, rng.choice(tied, size=n - above.size, replace=False)])
    else:
        chosen = np.arange(pool_size)
    order = np.lexsort((rng.random(chosen.size), -scores[chosen]))
    indices = chosen[order].astype(np.int64, copy=False)
    return QueryResult(indices, scores[indices])
