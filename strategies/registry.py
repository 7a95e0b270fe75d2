"""One registry of query strategies, one call signature for all of them.

Every entry is called as ``REGISTRY[name](data, n, *, rng, **extra) -> QueryResult`` and carries
metadata telling the caller what ``data`` must be:

========================  ==================================================================
``input``                 what the first positional argument is
========================  ==================================================================
``"pool_size"``           the number of pool items (an int), or any array whose length is it
``"proba"``               predicted probabilities, shape (N, K)
``"committee"``           stacked committee probabilities, shape (M, N, K), M >= 2
``"mc_samples"``          stacked MC-dropout probabilities, shape (T, N, K), T >= 2
``"features"``            the pool's feature matrix, shape (N, D), dense float or CSR
``"model"``               ignored (pass None); the model and pool come as ``model=``, ``features=``
========================  ==================================================================

``needs_features`` says whether ``features=`` (dense float32 array or CSR, shape (N, D)) must be
passed as an extra keyword. Extras a strategy does not declare are a TypeError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, get_args

import numpy as np

from strategies.select import QueryResult, select_top_k

InputKind = Literal["pool_size", "proba", "committee", "mc_samples", "features", "model"]
INPUT_KINDS: tuple[str, ...] = get_args(InputKind)


@dataclass(frozen=True)
class Strategy:
    """A registered query strategy and what it needs.

    Attributes
    ----------
    name : str
        Registry key, recorded with every query so a decision can be replayed.
    input : InputKind
        What the first positional argument is (see the module docstring).
    needs_features : bool
        Whether ``features=`` must be passed as an extra keyword.
    select : callable
        ``(data, n, *, rng, **extra) -> QueryResult``; validates its inputs.
    description : str
        One line for people choosing a strategy.
    row_scorer : callable, optional
        Unvalidated per-item scorer, ``(N, K) -> (N,)`` (or ``(M, N, K) -> (N,)`` for a committee),
        when each item's score depends on its own probabilities only.
    score_selector : callable
        ``(scores, n, *, rng, **extra) -> QueryResult``, choosing from the row scorer's output.
        With a ``row_scorer``, ``select(data, n, rng=rng, **extra)`` is exactly
        ``score_selector(row_scorer(data), n, rng=rng, **extra)`` after validation; ``score_pool``
        uses that split to score a pool chunk by chunk into one float32 vector. Strategies
        without a ``row_scorer`` are given the whole pool's probabilities instead.
    decreasing_in_binary_margin : bool
        True when the selector is plain top-k and, for two classes, the score is a strictly
        decreasing function of ``|p1 - p0| = |2 sigmoid(z) - 1|``, hence of ``|z|`` for the logit
        ``z``; ``score_pool`` then ranks single-logit heads from the logit, skipping probabilities.
    """

    name: str
    input: InputKind
    needs_features: bool
    select: Callable[..., QueryResult]
    description: str
    row_scorer: Callable[[np.ndarray], np.ndarray] | None = None
    score_selector: Callable[..., QueryResult] = select_top_k
    decreasing_in_binary_margin: bool = False

    def __post_init__(self) -> None:
        if self.input not in INPUT_KINDS:
            raise ValueError(f"input must be one of {INPUT_KINDS}, got {self.input!r}")

    def __call__(self, data: object, n: int, *, rng: np.random.Generator, **extra: object) -> QueryResult:
        return self.select(data, n, rng=rng, **extra)


#: Every strategy by name. Filled when ``strategies`` is imported; extend with :func:`register`.
REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy, *, replace: bool = False) -> Strategy:
    """Add ``strategy`` to :data:`REGISTRY` under its name; refuse to shadow a name unless ``replace``."""
    if strategy.name in REGISTRY and not replace:
        raise ValueError(f"a strategy named {strategy.name!r} is already registered")
    REGISTRY[strategy.name] = strategy
    return strategy
