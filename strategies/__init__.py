"""Active-learning query strategies: pure scorers, a seeded selector, one registry.

The one entry point for ranking a pool with a fitted model (or none yet)::

    result = strategies.rank_pool(features, model, "margin", n, rng)   # -> QueryResult

It owns the cold-start, linear-head, MLP / MC-dropout and committee cases; ``result.strategy``
names the strategy that really ranked the pool. Every strategy is also callable directly::

    result = strategies.REGISTRY[name](data, n, rng=rng, **extra)   # -> QueryResult

where ``REGISTRY[name].input`` says what the strategy needs as ``data`` (:class:`Input`:
"pool_size", "proba", "committee", "mc_samples", "features" or "model"),
``REGISTRY[name].needs_features`` whether ``features=`` must be passed, and
``REGISTRY[name].families`` which model families can supply it (see :mod:`strategies.registry`;
:func:`servable_strategies` lists those a family can serve). :func:`score_pool` scores a pool
from a head chunk by chunk and calls the strategy.

This package imports numpy and scipy only (torch lazily, inside :func:`mc_dropout_samples`).
"""

from strategies._validate import check_committee, check_features, check_mc_samples, check_proba
from strategies.bald import bald_selection, mc_dropout_samples, score_bald
from strategies.baseline import random_selection
from strategies.coldstart import cold_start
from strategies.committee import score_consensus_entropy, score_max_disagreement, score_vote_entropy
from strategies.diversity import density_weighted_top_k, information_density, margin_batch, margin_density, ranked_batch
from strategies.margin_diversity import kcenter_uncertainty, margin_diversity
from strategies.modal import modal_strategy, register_modal
from strategies.pool import MC_PASSES, LinearHead, MLPHead, score_pool
from strategies.rank import COLD_START, UnservableStrategy, rank_pool, scoring_head
from strategies.registry import INPUT_KINDS, REGISTRY, SUPPLIERS, Input, Strategy, register, servable_strategies
from strategies.select import QueryResult, select_top_k
from strategies.uncertainty import score_entropy, score_least_confidence, score_margin

__all__ = [
    "COLD_START",
    "INPUT_KINDS",
    "MC_PASSES",
    "REGISTRY",
    "SUPPLIERS",
    "Input",
    "LinearHead",
    "MLPHead",
    "QueryResult",
    "Strategy",
    "UnservableStrategy",
    "bald_selection",
    "check_committee",
    "check_features",
    "check_mc_samples",
    "check_proba",
    "cold_start",
    "density_weighted_top_k",
    "information_density",
    "kcenter_uncertainty",
    "margin_batch",
    "margin_density",
    "margin_diversity",
    "mc_dropout_samples",
    "modal_strategy",
    "random_selection",
    "rank_pool",
    "ranked_batch",
    "register",
    "register_modal",
    "score_bald",
    "score_consensus_entropy",
    "score_entropy",
    "score_least_confidence",
    "score_margin",
    "score_max_disagreement",
    "score_pool",
    "scoring_head",
    "servable_strategies",
    "score_vote_entropy",
    "select_top_k",
]
