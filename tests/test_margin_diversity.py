"""Margin with diversity (strategies/margin_diversity.py): spread-out, uncertain, no N x N."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import strategies
from strategies import REGISTRY, kcenter_uncertainty, margin_diversity, score_margin


def _clustered_pool(rng, clusters=20, per_cluster=50, dim=16):
    centres = rng.standard_normal((clusters, dim)).astype(np.float32) * 10
    X = (
        np.repeat(centres, per_cluster, axis=0)
        + rng.standard_normal((clusters * per_cluster, dim)).astype(np.float32) * 0.1
    )
    return X, np.repeat(np.arange(clusters), per_cluster)


def test_registered_with_what_it_needs():
    spec = REGISTRY["margin_diversity"]
    assert spec.input == "proba" and spec.needs_features
    assert spec.row_scorer is score_margin and spec.score_selector is kcenter_uncertainty


def test_a_batch_spreads_over_clusters_that_plain_margin_piles_into():
    rng = np.random.default_rng(0)
    X, cluster = _clustered_pool(rng)
    # Uncertainty: cluster 0's items are the most uncertain of all, the other clusters a little less.
    uncertainty = np.where(cluster == 0, 0.99, 0.9) + rng.uniform(0, 0.005, X.shape[0])
    margin_top = np.argsort(-uncertainty)[:20]
    assert set(cluster[margin_top]) == {0}  # plain margin takes 20 near-duplicates
    picked = kcenter_uncertainty(uncertainty, 20, rng=np.random.default_rng(1), features=X)
    assert len(set(cluster[picked.indices].tolist())) == 20  # one per cluster
    assert cluster[picked.indices[0]] == 0  # the first pick is the most uncertain item
    assert picked.indices[0] == int(np.argmax(uncertainty))
    np.testing.assert_allclose(picked.scores, uncertainty[picked.indices])


def test_confident_items_are_not_picked_for_spread_alone():
    rng = np.random.default_rng(2)
    X, cluster = _clustered_pool(rng, clusters=10, per_cluster=30)
    uncertainty = np.where(cluster < 5, 0.8, 0.0) + rng.uniform(0, 0.01, X.shape[0])
    picked = kcenter_uncertainty(uncertainty, 5, rng=np.random.default_rng(0), features=X, candidate_factor=100)
    assert set(cluster[picked.indices].tolist()) == {0, 1, 2, 3, 4}


def test_labeled_items_push_picks_away():
    rng = np.random.default_rng(3)
    X, cluster = _clustered_pool(rng, clusters=4, per_cluster=40)
    uncertainty = np.full(X.shape[0], 0.9) + rng.uniform(0, 0.01, X.shape[0])
    labeled = X[cluster == 0][:3] + 0.01
    picked = kcenter_uncertainty(uncertainty, 3, rng=np.random.default_rng(0), features=X, labeled_features=labeled)
    assert 0 not in set(cluster[picked.indices].tolist())


def test_long_rankings_continue_by_margin_after_the_spread_out_head():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((500, 8)).astype(np.float32)
    uncertainty = rng.uniform(size=500)
    result = kcenter_uncertainty(uncertainty, 300, rng=np.random.default_rng(0), features=X, max_diverse=40)
    assert np.unique(result.indices).size == 300
    head, tail = result.indices[:40], result.indices[40:]
    assert (np.diff(uncertainty[tail]) <= 0).all()  # the tail is margin order
    expected_tail = [i for i in np.argsort(-uncertainty) if i not in set(head.tolist())][:260]
    assert tail.tolist() == expected_tail


def test_sparse_and_dense_features_give_the_same_batch():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((200, 12)).astype(np.float32)
    X[X < 0.5] = 0
    proba = rng.dirichlet(np.ones(3), size=200)
    dense = margin_diversity(proba, 15, rng=np.random.default_rng(0), features=X)
    sparse = margin_diversity(proba, 15, rng=np.random.default_rng(0), features=sp.csr_matrix(X))
    assert dense.indices.tolist() == sparse.indices.tolist()


def test_score_pool_runs_it_from_a_linear_head_chunk_by_chunk():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((3000, 16)).astype(np.float32)
    head = strategies.LinearHead(rng.standard_normal((16, 3)).astype(np.float32), np.zeros(3, dtype=np.float32))
    ranked = strategies.score_pool(X, head, "margin_diversity", 400, rng=np.random.default_rng(0))
    logits = X @ head.weights
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    direct = margin_diversity(proba, 400, rng=np.random.default_rng(0), features=X)
    assert ranked.indices.tolist() == direct.indices.tolist()


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"candidate_factor": 0}, "candidate_factor"),
        ({"max_diverse": 0}, "max_diverse"),
    ],
)
def test_bad_parameters(bad, message):
    with pytest.raises(ValueError, match=message):
        kcenter_uncertainty(np.ones(10), 3, rng=np.random.default_rng(0), features=np.ones((10, 2)), **bad)


def test_negative_uncertainty_is_refused():
    with pytest.raises(ValueError, match="non-negative"):
        kcenter_uncertainty(-np.ones(10), 3, rng=np.random.default_rng(0), features=np.ones((10, 2)))
