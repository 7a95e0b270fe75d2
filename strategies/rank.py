"""The one ranking adapter: (features, fitted model, strategy) -> QueryResult.

``rank_pool`` owns every case a caller used to branch on:

- **cold start**: no usable model yet (``model is None``) -> a k-means seed set
  (:func:`strategies.cold_start`), whatever strategy the project asked for;
- **linear head**: a model with scikit-learn's ``coef_`` / ``intercept_`` is scored straight
  from its weights in float32 chunks (:class:`LinearHead`);
- **MLP**: a model with ``coefs_`` / ``intercepts_`` (ReLU; scikit-learn's ``MLPClassifier``
  convention, which the workbench's torch MLP follows) becomes an :class:`MLPHead`, keeping its
  ``dropout`` rate, so ``"mc_samples"`` strategies (BALD) run MC dropout on it;
- **committee**: a model with ``members_`` supplies committee probabilities, each member read
  as a head where it can be;
- anything else with ``predict_proba`` is called chunk by chunk.

A head read from a model's weights is checked against the model's own ``predict_proba`` on a few
rows before it is trusted; if they differ, the model's ``predict_proba`` is used instead. The
strategy's declaration (:class:`strategies.Strategy` ``input`` and ``families``) says what it
needs; this module is the only place that turns a model into that input, so callers never spell
a strategy name or branch on its kind. Pure numpy/scipy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from strategies._rows import Rows
from strategies._validate import check_features, check_rng
from strategies.pool import MC_PASSES, LinearHead, MLPHead, _class_major_probabilities, _rows_as_float32, score_pool
from strategies.registry import REGISTRY, Input, Strategy
from strategies.select import QueryResult

#: The strategy that ranks while there is no usable model.
COLD_START = "cold_start"
#: Rows on which a head read from a model's weights must reproduce its predict_proba.
_CHECK_ROWS = 32
_CHECK_TOLERANCE = 1e-3


class UnservableStrategy(ValueError):
    """The model cannot supply what the strategy needs (e.g. BALD on a logistic regression)."""


def rank_pool(
    features: Rows,
    model: Any | None,
    strategy: str | Strategy,
    n: int,
    rng: np.random.Generator,
    *,
    seed_set_size: int | None = None,
    mc_passes: int = MC_PASSES,
    chunk_rows: int | None = None,
    **extra: object,
) -> QueryResult:
    """Rank a pool with a strategy on a fitted model, or with a cold-start seed set without one.

    Parameters
    ----------
    features : np.ndarray (incl. np.memmap) or scipy.sparse CSR, shape (N, D)
        The candidates' features, N >= 1.
    model : fitted model or None
        None (no usable model yet): the pool is ranked by cold start, whatever ``strategy`` is.
        Otherwise read as described in the module docstring.
    strategy : str or Strategy
        A registered strategy (or its name).
    n : int
        At most this many items are ranked (``min(n, N)``).
    rng : np.random.Generator
        All randomness: tie-breaking, k-means seeding, dropout masks.
    seed_set_size : int, optional
        Size of a cold-start seed set (default ``n``), capped at N.
    mc_passes : int
        Stochastic passes per item for strategies that need MC-dropout samples.
    chunk_rows : int, optional
        Rows per chunk (see :func:`strategies.score_pool`).
    **extra
        Further keywords for the strategy's selector.

    Returns
    -------
    QueryResult
        Positions into ``features``, best first, with scores, and ``strategy`` set to the
        strategy that really ranked them (cold start when ``model is None``).

    Raises
    ------
    UnservableStrategy
        The model cannot supply the strategy's input (a committee strategy on a single model,
        MC-dropout samples from a model without dropout).
    """
    check_rng(rng)
    spec = lookup(strategy)
    features = check_features(features)
    pool_size = features.shape[0]
    if pool_size == 0:
        raise ValueError("the pool is empty: there is nothing to rank")
    if model is None:
        size = min(seed_set_size or n, pool_size)
        chosen = score_pool(features, None, COLD_START, size, rng=rng, chunk_rows=chunk_rows)
        return replace(chosen, strategy=COLD_START)
    n = min(n, pool_size)
    scored = score_pool(
        features,
        supply(model, spec, features),
        spec.name,
        n,
        rng=rng,
        chunk_rows=chunk_rows,
        mc_passes=mc_passes,
        **extra,
    )
    return replace(scored, strategy=spec.name)


def lookup(strategy: str | Strategy) -> Strategy:
    """The registered strategy (or the given one)."""
    if isinstance(strategy, Strategy):
        return strategy
    try:
        return REGISTRY[strategy]
    except KeyError:
        raise ValueError(f"unknown strategy {strategy!r}; known: {sorted(REGISTRY)}") from None


def supply(model: Any, strategy: Strategy, features: Rows) -> Any:
    """What :func:`strategies.score_pool` needs from ``model`` for ``strategy``.

    A committee (list of heads or models) for ``"committee"``, an :class:`MLPHead` with dropout for
    ``"mc_samples"``, the model itself for ``"model"`` plug-ins, and for ``"proba"`` the fastest
    equivalent head (or the model). Strategies that need no model get None.
    """
    if not strategy.needs_model:
        return None
    if strategy.input == Input.MODEL:
        return model
    if strategy.input == Input.COMMITTEE:
        members = getattr(model, "members_", None)
        if members is None and isinstance(model, Sequence) and not isinstance(model, (str, bytes)):
            members = model
        if members is None or len(members) < 2:
            raise UnservableStrategy(
                f"strategy {strategy.name!r} needs {strategy.needs_words}; a {type(model).__name__} is a single model"
            )
        return [scoring_head(member, features) for member in members]
    if strategy.input == Input.MC_SAMPLES:
        head = scoring_head(model, features)
        if not isinstance(head, MLPHead) or not head.supports_mc_dropout:
            raise UnservableStrategy(
                f"strategy {strategy.name!r} needs {strategy.needs_words}; "
                f"a {type(model).__name__} has no dropout layer to sample"
            )
        return head
    return scoring_head(model, features)


def scoring_head(model: Any, features: Rows) -> Any:
    """A :class:`LinearHead` or :class:`MLPHead` equal to ``model.predict_proba``, else ``model``.

    Heads are read from scikit-learn's fitted-attribute conventions (``coef_`` / ``intercept_``;
    ``coefs_`` / ``intercepts_`` with ReLU) and kept only if they reproduce ``predict_proba`` on
    the first rows of ``features`` within 1e-3.
    """
    if isinstance(model, (LinearHead, MLPHead)):
        return model
    head = _head_from_attributes(model)
    if head is None or not callable(getattr(model, "predict_proba", None)):
        return model if head is None else head
    rows = features[: min(_CHECK_ROWS, features.shape[0])]
    try:
        expected = np.asarray(model.predict_proba(rows), dtype=np.float32)
        logits = head.class_major_logits(_rows_as_float32(rows))
        got = _class_major_probabilities(logits).T
    except (ValueError, TypeError):
        return model
    if got.shape != expected.shape or not np.allclose(got, expected, atol=_CHECK_TOLERANCE):
        return model
    return head


def _head_from_attributes(model: Any) -> LinearHead | MLPHead | None:
    coefs, intercepts = getattr(model, "coefs_", None), getattr(model, "intercepts_", None)
    if isinstance(coefs, (list, tuple)) and isinstance(intercepts, (list, tuple)) and len(coefs) == len(intercepts):
        if getattr(model, "activation", "relu") != "relu":
            return None
        try:
            return MLPHead(tuple(zip(coefs, intercepts)), dropout=float(getattr(model, "dropout", 0.0) or 0.0))
        except ValueError:
            return None
    coef, intercept = getattr(model, "coef_", None), getattr(model, "intercept_", None)
    if coef is not None and intercept is not None and np.ndim(coef) == 2:
        try:
            return LinearHead(np.asarray(coef).T, np.atleast_1d(np.asarray(intercept)))
        except ValueError:
            return None
    return None
