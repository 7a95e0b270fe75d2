"""Cold start: a class-covering seed set from features alone, and the iris experiment behind it."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from strategies import REGISTRY, cold_start
from workbench.bench.coldstart import ARMS, run_iris_coldstart_experiment


def blobs(rng, sizes, spread=10.0):
    centers = rng.uniform(-spread * 3, spread * 3, size=(len(sizes), 6))
    features = np.vstack([c + rng.normal(size=(size, 6)) for c, size in zip(centers, sizes)]).astype(np.float32)
    return features, np.repeat(np.arange(len(sizes)), sizes)


def test_registered_with_features_input():
    strategy = REGISTRY["cold_start"]
    assert strategy.input == "features" and not strategy.needs_features


def test_covers_unbalanced_classes_where_random_often_fails():
    rng = np.random.default_rng(0)
    features, labels = blobs(rng, [2000, 40, 40, 40, 40, 40])
    covered = [np.unique(labels[cold_start(features, 6, rng=np.random.default_rng(s)).indices]).size for s in range(10)]
    random_covered = [
        np.unique(labels[np.random.default_rng(s).choice(labels.size, 6, replace=False)]).size for s in range(10)
    ]
    assert covered == [6] * 10
    assert max(random_covered) < 6


def test_picks_the_most_typical_member_of_each_cluster():
    rng = np.random.default_rng(1)
    features, labels = blobs(rng, [300, 300])
    result = cold_start(features, 2, rng=rng)
    assert sorted(labels[result.indices].tolist()) == [0, 1]
    for index in result.indices:
        members = features[labels == labels[index]]
        distances = np.linalg.norm(members - members.mean(axis=0), axis=1)
        assert np.linalg.norm(features[index] - members.mean(axis=0)) <= np.quantile(distances, 0.02)


def test_large_pool_is_clustered_on_a_sample_and_csr_works():
    rng = np.random.default_rng(2)
    features, labels = blobs(rng, [30_000, 300, 300])
    result = cold_start(features, 3, rng=rng, sample_size=5_000)
    assert np.unique(labels[result.indices]).size == 3
    sparse = sp.csr_matrix(np.maximum(features, 0))
    assert len(cold_start(sparse, 3, rng=rng, sample_size=2_000)) == 3


def test_duplicate_rows_still_give_n_distinct_items():
    features = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)  # 3 distinct rows, 4 copies each
    result = cold_start(features, 5, rng=np.random.default_rng(0))
    assert np.unique(result.indices).size == 5
    assert np.unique(features[result.indices[:3]], axis=0).shape[0] == 3  # distinct rows come first


def test_bad_inputs():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="restarts"):
        cold_start(np.ones((5, 2)), 2, rng=rng, restarts=0)
    with pytest.raises(ValueError, match="shape"):
        cold_start(np.ones(5), 2, rng=rng)
    with pytest.raises(ValueError, match="CSR"):
        cold_start(sp.coo_matrix(np.ones((5, 2))), 2, rng=rng)


def test_iris_margin_pays_off_only_from_a_class_covering_seed():
    """Margin sampling (logistic regression) on iris, budgets 6..30 labels, 12 random splits.

    The cold-start seed always covers the 3 classes and its margin arm beats random sampling;
    from a random 6-item seed (which misses a class in about a quarter of the splits) margin
    does clearly worse than from the cold-start seed. Whether it also does worse than random
    sampling depends on the splits drawn: over 100 splits the two are about level (see README /
    python -m workbench.bench.coldstart --seeds 100), so that is not asserted.
    """
    result = run_iris_coldstart_experiment(seeds=12)
    accuracy = result.mean_accuracy
    assert set(accuracy) == set(ARMS)
    assert result.seed_covers_all_classes["margin_cold_start_seed"] == 1.0
    assert result.seed_covers_all_classes["random"] < 1.0
    assert accuracy["margin_cold_start_seed"] > accuracy["random"] + 0.02
    assert accuracy["margin_random_seed"] < accuracy["margin_cold_start_seed"] - 0.02
    assert len(result.learning_curves["random"]) == len(result.budgets) == 25
