"""Random sampling: the baseline every other strategy must beat."""

from __future__ import annotations

import numpy as np

from strategies._validate import check_n, check_pool_size, check_rng
from strategies.registry import Input, Strategy, register
from strategies.select import QueryResult


def random_selection(pool: int | np.ndarray, n: int, *, rng: np.random.Generator) -> QueryResult:
    """Choose ``n`` pool positions uniformly at random without replacement.

    Parameters
    ----------
    pool : int or array_like
        The pool size, or any array whose first dimension is the pool (e.g. probabilities).
    n : int
        How many to choose, ``1 <= n <= N``.
    rng : np.random.Generator

    Returns
    -------
    QueryResult
        Scores are the uniform draws that ordered the items (so ``scores`` is decreasing).
    """
    check_rng(rng)
    pool_size = check_pool_size(int(pool) if np.ndim(pool) == 0 else np.shape(pool)[0])
    n = check_n(n, pool_size)
    indices = rng.choice(pool_size, size=n, replace=False)
    scores = np.sort(rng.random(n))[::-1]
    return QueryResult(indices, scores)


register(
    Strategy(
        name="random",
        input=Input.POOL_SIZE,
        needs_features=False,
        select=random_selection,
        description="uniformly random items (baseline; needs no model)",
    )
)
