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

``families`` says which model families (the ``type`` of a project's model setting: ``logreg``,
``mlp``, ``committee``, ...) can supply the input; ``None`` means any model will do (or none is
needed). By default it follows from the input (:data:`SUPPLIERS`): only a committee model yields
committee probabilities, only the MLP (with dropout) yields MC-dropout samples, every model yields
probabilities. :func:`strategies.rank_pool` turns (features, model) into the declared input, so a
caller never branches on a strategy's kind or name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from strategies.select import QueryResult, select_top_k


class Input(StrEnum):
    """What a strategy needs as its first argument (equal to the plain strings, e.g. ``"proba"``)."""

    POOL_SIZE = "pool_size"
    PROBA = "proba"
    COMMITTEE = "committee"
    MC_SAMPLES = "mc_samples"
    FEATURES = "features"
    MODEL = "model"


InputKind = Input  # the name used before the enum existed
INPUT_KINDS: tuple[str, ...] = tuple(kind.value for kind in Input)

#: In words, for refusals: "strategy 'bald' needs <this>".
INPUT_WORDS: dict[Input, str] = {
    Input.POOL_SIZE: "nothing but the pool",
    Input.PROBA: "predicted probabilities",
    Input.COMMITTEE: "a committee of models",
    Input.MC_SAMPLES: "MC-dropout samples from a network with dropout",
    Input.FEATURES: "the pool's features",
    Input.MODEL: "the fitted model itself",
}

#: Model families (a project model's ``type``) that can supply each input; None: any model, or none.
SUPPLIERS: dict[Input, frozenset[str] | None] = {
    Input.POOL_SIZE: None,
    Input.FEATURES: None,
    Input.PROBA: None,  # every workbench model predicts probabilities
    Input.MODEL: None,
    Input.COMMITTEE: frozenset({"committee"}),
    Input.MC_SAMPLES: frozenset({"mlp"}),
}

#: Inputs computed from the features alone: such strategies rank without a model.
MODEL_FREE: frozenset[Input] = frozenset({Input.POOL_SIZE, Input.FEATURES})


@dataclass(frozen=True)
class Strategy:
    """A registered query strategy and what it needs.

    Attributes
    ----------
    name : str
        Registry key, recorded with every query so a decision can be replayed.
    input : Input
        What the strategy needs: what the first positional argument is (see the module docstring).
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
    families : frozenset of str, optional
        Model families that can supply the input (a project model's ``type``); None = any.
        Defaults to :data:`SUPPLIERS` of the input.
    """

    name: str
    input: Input
    needs_features: bool
    select: Callable[..., QueryResult]
    description: str
    row_scorer: Callable[[np.ndarray], np.ndarray] | None = None
    score_selector: Callable[..., QueryResult] = select_top_k
    decreasing_in_binary_margin: bool = False
    families: frozenset[str] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.input not in INPUT_KINDS:
            raise ValueError(f"input must be one of {INPUT_KINDS}, got {self.input!r}")
        object.__setattr__(self, "input", Input(self.input))
        families = SUPPLIERS[self.input] if self.families is None else frozenset(self.families)
        object.__setattr__(self, "families", families)

    @property
    def needs_model(self) -> bool:
        """False when the strategy ranks from the pool or its features alone (no model is used)."""
        return self.input not in MODEL_FREE

    @property
    def needs_words(self) -> str:
        """What the strategy needs, in words."""
        return INPUT_WORDS[self.input]

    def servable_by(self, family: str) -> bool:
        """Whether a model of this family (a model config's ``type``) can supply the strategy's input."""
        return self.families is None or family in self.families

    def __call__(self, data: object, n: int, *, rng: np.random.Generator, **extra: object) -> QueryResult:
        return self.select(data, n, rng=rng, **extra)


#: Every strategy by name. Filled when ``strategies`` is imported; extend with :func:`register`.
REGISTRY: dict[str, Strategy] = {}


def servable_strategies(family: str) -> list[str]:
    """Names of the registered strategies a model of this family can serve, in registry order."""
    return [name for name, strategy in REGISTRY.items() if strategy.servable_by(family)]


def register(strategy: Strategy, *, replace: bool = False) -> Strategy:
    """Add ``strategy`` to :data:`REGISTRY` under its name; refuse to shadow a name unless ``replace``."""
    if strategy.name in REGISTRY and not replace:
        raise ValueError(f"a strategy named {strategy.name!r} is already registered")
    REGISTRY[strategy.name] = strategy
    return strategy
