"""Active-learning query strategies: pure scorers, a seeded selector, one registry.

Every strategy is called the same way::

    result = strategies.REGISTRY[name](data, n, rng=rng, **extra)   # -> QueryResult

where ``REGISTRY[name].input`` says what ``data`` is ("pool_size", "proba", "committee",
"mc_samples", "features" or "model") and ``REGISTRY[name].needs_features`` whether
``features=`` must be passed (see :mod:`strategies.registry`). Given a model instead of
probabilities, :func:`score_pool` scores a whole pool chunk by chunk and calls the strategy.

This package imports numpy and scipy only (torch lazily, inside :func:`mc_dropout_samples`).
"""

from strategies.registry import INPUT_KINDS, REGISTRY, Strategy, register
from strategies.select import QueryResult, select_top_k
from strategies.baseline import random_selection
from strategies.uncertainty import score_entropy, score_least_confidence, score_margin
from strategies.committee import score_consensus_entropy, score_max_disagreement, score_vote_entropy
from strategies.diversity import density_weighted_top_k, information_density, margin_batch, margin_density, ranked_batch
from strategies.margin_diversity import kcenter_uncertainty, margin_diversity
from strategies.coldstart import cold_start
from strategies.bald import bald_selection, mc_dropout_samples, score_bald
from strategies.pool import LinearHead, MLPHead, score_pool
from strategies.modal import modal_strategy, register_modal
from strategies._validate import check_committee, check_features, check_mc_samples, check_proba

__all__ = [
    "INPUT_KINDS",
    "REGISTRY",
    "LinearHead",
    "MLPHead",
    "QueryResult",
    "Strategy",
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
    "score_vote_entropy",
    "select_top_k",
]
