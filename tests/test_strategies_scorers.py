"""Scorers and selectors on hand-computed fixtures (3x2 and 3x3 probabilities, tiny committees)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

import strategies
from strategies import (
    cold_start,
    information_density,
    ranked_batch,
    score_bald,
    score_consensus_entropy,
    score_entropy,
    score_least_confidence,
    score_margin,
    score_max_disagreement,
    score_vote_entropy,
    select_top_k,
)


def plogp(p: float) -> float:
    return p * math.log(p) if p > 0 else 0.0


THREE_BY_TWO = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]])
THREE_BY_THREE = np.array([[1 / 3, 1 / 3, 1 / 3], [0.6, 0.3, 0.1], [0.5, 0.5, 0.0]])


def test_least_confidence_by_hand():
    assert np.allclose(score_least_confidence(THREE_BY_TWO), [0.5, 0.1, 0.2])
    assert np.allclose(score_least_confidence(THREE_BY_THREE), [2 / 3, 0.4, 0.5])


def test_margin_by_hand():
    assert np.allclose(score_margin(THREE_BY_TWO), [1.0, 1 - 0.8, 1 - 0.6])
    assert np.allclose(score_margin(THREE_BY_THREE), [1.0, 1 - 0.3, 1.0])


def test_entropy_by_hand_in_nats():
    expected_2 = [math.log(2), -(plogp(0.9) + plogp(0.1)), -(plogp(0.2) + plogp(0.8))]
    expected_3 = [math.log(3), -(plogp(0.6) + plogp(0.3) + plogp(0.1)), math.log(2)]
    assert np.allclose(score_entropy(THREE_BY_TWO), expected_2)
    assert np.allclose(score_entropy(THREE_BY_THREE), expected_3)


def test_scorers_keep_float32():
    proba = THREE_BY_THREE.astype(np.float32)
    for scorer in (score_least_confidence, score_margin, score_entropy):
        assert scorer(proba).dtype == np.float32


# Three members, two items, two classes.
COMMITTEE = np.array(
    [
        [[0.9, 0.1], [0.6, 0.4]],
        [[0.2, 0.8], [0.7, 0.3]],
        [[0.4, 0.6], [0.8, 0.2]],
    ]
)


def test_vote_entropy_counts_predicted_classes():
    # item 0: votes class 0, 1, 1 -> shares 1/3, 2/3; item 1: unanimous
    expected = [-(plogp(1 / 3) + plogp(2 / 3)), 0.0]
    assert np.allclose(score_vote_entropy(COMMITTEE), expected)


def test_vote_entropy_breaks_exact_ties_to_the_first_class_like_predict():
    committee = np.array([[[0.5, 0.5]], [[0.5, 0.5]], [[0.2, 0.8]]])
    assert np.allclose(score_vote_entropy(committee), [-(plogp(2 / 3) + plogp(1 / 3))])


def test_consensus_entropy_by_hand():
    expected = [math.log(2), -(plogp(0.7) + plogp(0.3))]
    assert np.allclose(score_consensus_entropy(COMMITTEE), expected)


def test_max_disagreement_is_the_largest_member_kl_to_the_mean():
    def kl(p, q):
        return sum(a * math.log(a / b) for a, b in zip(p, q) if a > 0)

    item0 = max(kl(member, [0.5, 0.5]) for member in ([0.9, 0.1], [0.2, 0.8], [0.4, 0.6]))
    item1 = max(kl(member, [0.7, 0.3]) for member in ([0.6, 0.4], [0.7, 0.3], [0.8, 0.2]))
    assert np.allclose(score_max_disagreement(COMMITTEE), [item0, item1])


def test_bald_is_entropy_of_mean_minus_mean_entropy():
    samples = np.array(
        [
            [[1.0, 0.0], [0.5, 0.5], [0.9, 0.1]],
            [[0.0, 1.0], [0.5, 0.5], [0.7, 0.3]],
        ]
    )
    third = -(plogp(0.8) + plogp(0.2)) - 0.5 * (-(plogp(0.9) + plogp(0.1)) - (plogp(0.7) + plogp(0.3)))
    assert np.allclose(score_bald(samples), [math.log(2), 0.0, third])


def test_select_top_k_orders_best_first():
    result = select_top_k(np.array([0.1, 0.9, 0.5, 0.7]), 3, rng=np.random.default_rng(0))
    assert result.indices.tolist() == [1, 3, 2]
    assert result.indices.dtype == np.int64
    assert np.allclose(result.scores, [0.9, 0.7, 0.5])


def test_select_top_k_breaks_ties_uniformly_with_the_injected_rng():
    scores = np.array([1.0, 0.0, 1.0, 1.0, 0.5])
    picks = [select_top_k(scores, 1, rng=np.random.default_rng(seed)).indices[0] for seed in range(300)]
    counts = np.bincount(picks, minlength=5)
    assert counts[1] == counts[4] == 0
    assert all(60 < counts[i] < 140 for i in (0, 2, 3))


def test_select_top_k_ties_straddling_the_cut():
    scores = np.array([3.0, 2.0, 2.0, 2.0, 1.0])
    for seed in range(20):
        result = select_top_k(scores, 2, rng=np.random.default_rng(seed))
        assert result.indices[0] == 0 and result.indices[1] in (1, 2, 3)


def test_select_top_k_does_not_touch_global_numpy_random():
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    select_top_k(np.ones(50), 10, rng=np.random.default_rng(0))
    assert np.array_equal(np.random.get_state()[1], state)


def test_select_top_k_rejects_nan_and_non_generators():
    with pytest.raises(ValueError, match="NaN"):
        select_top_k(np.array([0.1, np.nan]), 1, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="Generator"):
        select_top_k(np.array([0.1, 0.2]), 1, rng=np.random.RandomState(0))


def test_query_result_is_frozen():
    result = select_top_k(np.array([0.1, 0.2]), 1, rng=np.random.default_rng(0))
    with pytest.raises(AttributeError):
        result.indices = np.array([0])
    with pytest.raises(ValueError):
        result.indices[0] = 1


def near_duplicate_pool(rng):
    """200 near-copies of one point (all very uncertain) and 200 spread-out points (less so)."""
    copies = np.array([5.0, 5.0]) + rng.normal(scale=1e-3, size=(200, 2))
    spread = rng.uniform(-5, 5, size=(200, 2))
    features = np.vstack([copies, spread]).astype(np.float32)
    uncertainty = np.concatenate([np.full(200, 0.99), rng.uniform(0.8, 0.95, 200)])
    return features, uncertainty


def test_ranked_batch_is_not_a_batch_of_near_duplicates():
    rng = np.random.default_rng(0)
    features, uncertainty = near_duplicate_pool(rng)
    plain = select_top_k(uncertainty, 10, rng=np.random.default_rng(1)).indices
    diverse = ranked_batch(uncertainty, 10, rng=np.random.default_rng(1), features=features, candidate_factor=40)
    assert (plain < 200).all()
    assert (diverse.indices < 200).sum() == 1
    assert diverse.indices[0] < 200  # nothing labeled: the first pick is the most uncertain


def test_ranked_batch_keeps_away_from_labeled_items():
    rng = np.random.default_rng(0)
    features, uncertainty = near_duplicate_pool(rng)
    diverse = ranked_batch(
        uncertainty,
        5,
        rng=rng,
        features=features,
        candidate_factor=80,
        labeled_features=np.array([[5.0, 5.0]], dtype=np.float32),
    )
    assert (diverse.indices >= 200).all()


def test_ranked_batch_same_on_csr():
    rng = np.random.default_rng(0)
    features = rng.uniform(-5, 5, size=(400, 3)).astype(np.float32)
    uncertainty = rng.uniform(size=400)
    dense = ranked_batch(uncertainty, 10, rng=np.random.default_rng(1), features=features)
    sparse = ranked_batch(uncertainty, 10, rng=np.random.default_rng(1), features=sp.csr_matrix(features))
    assert np.array_equal(dense.indices, sparse.indices)


def test_information_density_equals_brute_force_mean_cosine():
    rng = np.random.default_rng(0)
    features = rng.normal(loc=0.3, size=(300, 8)).astype(np.float32)
    features[7] = 0.0
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-30)
    brute = np.clip((unit @ unit.T).mean(axis=1), 0, 1)
    assert np.allclose(information_density(features), brute, atol=1e-5)
    assert np.allclose(information_density(sp.csr_matrix(features)), brute, atol=1e-5)
    assert information_density(features)[7] == 0.0


def test_margin_density_prefers_typical_items_among_equally_uncertain():
    features = np.array([[1.0, 0.0], [0.9, 0.1], [1.0, 0.05], [-1.0, 0.2]], dtype=np.float32)
    proba = np.full((4, 2), 0.5)
    result = strategies.REGISTRY["margin_density"](proba, 1, rng=np.random.default_rng(0), features=features)
    assert result.indices[0] != 3


def test_cold_start_covers_every_cluster_even_small_ones():
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [10, 0], [0, 10], [10, 10], [-10, -10]], dtype=np.float32)
    sizes = [800, 50, 50, 50, 50]
    features = np.vstack([c + rng.normal(size=(size, 2)) for c, size in zip(centers, sizes)]).astype(np.float32)
    cluster = np.repeat(np.arange(5), sizes)
    for seed in range(5):
        result = cold_start(features, 5, rng=np.random.default_rng(seed))
        assert sorted(cluster[result.indices].tolist()) == [0, 1, 2, 3, 4]
        assert cluster[result.indices[0]] == 0  # the largest cluster ranks first
        assert np.isclose(result.scores.sum(), 1.0)


@pytest.mark.parametrize("n_classes", [3, 10, 100])
@pytest.mark.parametrize("class_major", [False, True])
def test_margin_and_votes_agree_with_sorting_in_either_memory_layout(n_classes, class_major):
    rng = np.random.default_rng(n_classes)
    proba = rng.dirichlet(np.ones(n_classes), size=(4, 500)).astype(np.float32)
    proba[:, :50, 1] = proba[:, :50].max(axis=2)  # exact ties for first place
    proba /= proba.sum(axis=2, keepdims=True)
    if class_major:
        proba = np.ascontiguousarray(proba.transpose(2, 0, 1)).transpose(1, 2, 0)
    ordered = np.sort(proba, axis=2)
    assert np.allclose(score_margin(proba[0]), 1 - (ordered[0, :, -1] - ordered[0, :, -2]))
    assert np.array_equal(strategies.committee.first_argmax(proba), np.asarray(proba).argmax(axis=2))


def test_ranked_batch_treats_an_empty_labeled_set_as_none():
    rng = np.random.default_rng(0)
    features = rng.uniform(-5, 5, size=(200, 3)).astype(np.float32)
    uncertainty = rng.uniform(size=200)
    without = ranked_batch(uncertainty, 8, rng=np.random.default_rng(1), features=features)
    empty = ranked_batch(
        uncertainty,
        8,
        rng=np.random.default_rng(1),
        features=features,
        labeled_features=np.empty((0, 3), dtype=np.float32),
    )
    assert np.array_equal(without.indices, empty.indices)
    with pytest.raises(ValueError, match="columns"):
        ranked_batch(uncertainty, 8, rng=rng, features=features, labeled_features=np.ones((2, 4)))
