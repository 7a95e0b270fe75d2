"""modAL interoperability: register any modAL-style query function as a workbench strategy.

A modAL query function has the signature ``fn(classifier, X, n_instances) -> (indices, scores)``
(all of ``modAL.uncertainty``, ``modAL.disagreement`` and ``modAL.batch`` do, and so may a
user's own). Registered, it is called like every other strategy::

    register_modal("modal_margin", modAL.uncertainty.margin_sampling, higher_is_better=False)
    result = REGISTRY["modal_margin"](None, n, rng=rng, model=classifier, features=X)

``input == "model"``: the first positional argument is ignored (pass None); the fitted model
(or modAL ``Committee``) comes as ``model=`` and the pool as ``features=``. ``score_pool`` does
this for you. modAL functions take no ``rng``; ``rng`` only orders equal scores in the result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from strategies._validate import check_n, check_rng
from strategies.registry import Input, Strategy, register
from strategies.select import QueryResult

ModalQueryFunction = Callable[..., tuple[np.ndarray, np.ndarray]]


def modal_strategy(
    name: str,
    query_function: ModalQueryFunction,
    *,
    higher_is_better: bool = True,
    description: str = "",
) -> Strategy:
    """Wrap a modAL-style query function as a :class:`Strategy` (without registering it).

    Parameters
    ----------
    name : str
    query_function : callable
        ``(classifier, X, n_instances) -> (indices, scores)``, indices positions into X.
    higher_is_better : bool
        Direction of the function's scores (modAL's ``margin_sampling`` returns margins, where
        lower is better: pass False). Scores are negated when False, so that, as for every
        workbench strategy, higher = more informative; the result is sorted best first.
    description : str
        One line for people choosing a strategy.
    """

    def select(unused: object, n: int, *, rng: np.random.Generator, model: Any, features: Any) -> QueryResult:
        check_rng(rng)
        if not (sp.issparse(features) or hasattr(features, "shape")):
            features = np.asarray(features)
        n = check_n(n, features.shape[0])
        indices, scores = query_function(model, features, n)
        indices = np.asarray(indices).reshape(-1)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if indices.dtype.kind not in "iu":
            raise ValueError(f"{name}: the query function returned non-integer indices ({indices.dtype})")
        if indices.shape != (n,) or scores.shape != (n,):
            raise ValueError(f"{name}: expected {n} indices and scores, got {indices.size} and {scores.size}")
        if np.unique(indices).size != n:
            raise ValueError(f"{name}: the query function returned duplicate indices")
        if indices.min() < 0 or indices.max() >= features.shape[0]:
            raise ValueError(f"{name}: the query function returned indices outside the pool")
        if np.isnan(scores).any():
            raise ValueError(f"{name}: the query function returned NaN scores")
        if not higher_is_better:
            scores = -scores
        order = np.lexsort((rng.random(n), -scores))
        return QueryResult(indices[order], scores[order])

    select.__doc__ = f"modAL-style query function {getattr(query_function, '__name__', name)!r}."
    return Strategy(
        name=name,
        input=Input.MODEL,
        needs_features=True,
        select=select,
        description=description or f"modAL-style query function {getattr(query_function, '__name__', name)}",
    )


def register_modal(
    name: str,
    query_function: ModalQueryFunction,
    *,
    higher_is_better: bool = True,
    description: str = "",
    replace: bool = False,
) -> Strategy:
    """Add a modAL-style query function to :data:`strategies.REGISTRY` (see :func:`modal_strategy`)."""
    strategy = modal_strategy(name, query_function, higher_is_better=higher_is_better, description=description)
    return register(strategy, replace=replace)
