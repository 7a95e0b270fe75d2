"""score_pool: chunked equals unchunked (dense, memmap, CSR), heads equal their math, memory stays
bounded; MC-dropout samples from a torch module."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit, softmax

from strategies import REGISTRY, LinearHead, MLPHead, mc_dropout_samples, score_bald, score_pool

N, D = 3000, 12


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(0)
    return rng.standard_normal((N, D)).astype(np.float32)


def linear_head(rng, outputs):
    return LinearHead(rng.standard_normal((D, outputs)).astype(np.float32), rng.standard_normal(outputs) * 0.1)


def reference_proba(head: LinearHead | MLPHead, X: np.ndarray) -> np.ndarray:
    """float64 probabilities computed the obvious way."""
    activations = np.asarray(X, dtype=np.float64)
    layers = [(head.weights, head.biases)] if isinstance(head, LinearHead) else head.layers
    for depth, (weights, biases) in enumerate(layers):
        activations = activations @ weights + biases
        if depth < len(layers) - 1:
            activations = np.maximum(activations, 0)
    if activations.shape[1] == 1:
        positive = expit(activations[:, 0])
        return np.stack([1 - positive, positive], axis=1)
    return softmax(activations, axis=1)


def assert_same(a, b):
    assert np.array_equal(a.indices, b.indices)
    assert np.allclose(a.scores, b.scores, atol=1e-5)


PER_ITEM = ["least_confidence", "margin", "entropy"]
COMMITTEE = ["qbc_vote", "qbc_consensus", "qbc_kl"]


@pytest.mark.parametrize("outputs", [1, 2, 5], ids=["one-logit", "two-softmax", "five-class"])
@pytest.mark.parametrize("name", PER_ITEM + ["margin_batch", "margin_density"])
def test_chunked_equals_unchunked_equals_probabilities(pool, name, outputs):
    head = linear_head(np.random.default_rng(1), outputs)
    extra = {"features": pool} if REGISTRY[name].needs_features else {}
    expected = REGISTRY[name](reference_proba(head, pool), 40, rng=np.random.default_rng(2), **extra)
    for chunk_rows in (None, 7, 1000, N):
        assert_same(score_pool(pool, head, name, 40, rng=np.random.default_rng(2), chunk_rows=chunk_rows), expected)


@pytest.mark.parametrize("name", PER_ITEM + COMMITTEE)
def test_csr_and_memmap_pools_equal_dense(pool, name, tmp_path):
    rng = np.random.default_rng(3)
    sparse_pool = pool * (rng.random(pool.shape) < 0.3)
    committee = name in COMMITTEE
    model = [linear_head(rng, 4) for _ in range(3)] if committee else linear_head(rng, 4)
    dense = score_pool(sparse_pool, model, name, 30, rng=np.random.default_rng(4), chunk_rows=500)
    csr = score_pool(sp.csr_matrix(sparse_pool), model, name, 30, rng=np.random.default_rng(4), chunk_rows=500)
    mapped = np.lib.format.open_memmap(tmp_path / "pool.npy", mode="w+", dtype=np.float32, shape=sparse_pool.shape)
    mapped[:] = sparse_pool
    on_disk = score_pool(mapped, model, name, 30, rng=np.random.default_rng(4), chunk_rows=500)
    assert_same(csr, dense)
    assert_same(on_disk, dense)


def test_float64_pool_is_scored_in_float32_chunks(pool):
    head = linear_head(np.random.default_rng(5), 3)
    assert_same(
        score_pool(pool.astype(np.float64), head, "margin", 20, rng=np.random.default_rng(0)),
        score_pool(pool, head, "margin", 20, rng=np.random.default_rng(0)),
    )


def test_mlp_head_equals_its_forward_pass(pool):
    rng = np.random.default_rng(6)
    for outputs in (1, 3):
        head = MLPHead(
            [
                (rng.standard_normal((D, 16)) / 3, rng.standard_normal(16)),
                (rng.standard_normal((16, 8)) / 3, rng.standard_normal(8)),
                (rng.standard_normal((8, outputs)), rng.standard_normal(outputs)),
            ]
        )
        for name in PER_ITEM:
            expected = REGISTRY[name](reference_proba(head, pool), 25, rng=np.random.default_rng(0))
            assert_same(score_pool(pool, head, name, 25, rng=np.random.default_rng(0), chunk_rows=333), expected)


@pytest.mark.parametrize("name", COMMITTEE)
def test_committees_of_heads_equal_stacked_probabilities(pool, name):
    rng = np.random.default_rng(7)
    linear = [linear_head(rng, 3) for _ in range(4)]
    mlp = MLPHead([(rng.standard_normal((D, 6)), np.zeros(6)), (rng.standard_normal((6, 3)), np.zeros(3))])
    mixed = linear[:2] + [mlp]
    for members in (linear, mixed):
        stacked = np.stack([reference_proba(member, pool) for member in members])
        expected = REGISTRY[name](stacked, 30, rng=np.random.default_rng(0))
        result = score_pool(pool, members, name, 30, rng=np.random.default_rng(0), chunk_rows=401)
        assert_same(result, expected)


class ProbaModel:
    """Any model with predict_proba; records the chunk sizes it was called with."""

    def __init__(self, head):
        self.head = head
        self.calls = []

    def predict_proba(self, X):
        self.calls.append(X.shape[0])
        return reference_proba(self.head, X)


def test_predict_proba_models_are_called_chunk_by_chunk(pool):
    model = ProbaModel(linear_head(np.random.default_rng(8), 3))
    result = score_pool(pool, model, "entropy", 10, rng=np.random.default_rng(0), chunk_rows=1000)
    assert model.calls == [1000, 1000, 1000]
    assert_same(result, REGISTRY["entropy"](reference_proba(model.head, pool), 10, rng=np.random.default_rng(0)))


def test_strategies_without_a_model(pool):
    assert len(score_pool(pool, None, "random", 5, rng=np.random.default_rng(0))) == 5
    assert len(score_pool(pool, None, "cold_start", 5, rng=np.random.default_rng(0))) == 5


def test_extra_keywords_reach_the_strategy(pool):
    head = linear_head(np.random.default_rng(9), 2)
    labeled = pool[:50]
    with_labeled = score_pool(pool, head, "margin_batch", 10, rng=np.random.default_rng(0), labeled_features=labeled)
    expected = REGISTRY["margin_batch"](
        reference_proba(head, pool), 10, rng=np.random.default_rng(0), features=pool, labeled_features=labeled
    )
    assert_same(with_labeled, expected)
    with pytest.raises(TypeError):
        score_pool(pool, head, "margin", 10, rng=np.random.default_rng(0), beta=2.0)


def test_bad_calls_name_the_problem(pool):
    rng = np.random.default_rng(0)
    head = linear_head(rng, 3)
    with pytest.raises(ValueError, match="unknown strategy"):
        score_pool(pool, head, "no_such_strategy", 1, rng=rng)
    with pytest.raises(ValueError, match="features"):
        score_pool(pool[:, :5], head, "margin", 1, rng=rng)
    with pytest.raises(ValueError, match="list of models"):
        score_pool(pool, head, "qbc_vote", 1, rng=rng)
    with pytest.raises(ValueError, match="at least 2 members"):
        score_pool(pool, [head], "qbc_vote", 1, rng=rng)
    with pytest.raises(ValueError, match="single model"):
        score_pool(pool, [head, head], "margin", 1, rng=rng)
    with pytest.raises(ValueError, match="mc_dropout_samples"):
        score_pool(pool, head, "bald", 1, rng=rng)
    with pytest.raises(ValueError, match="larger than the pool"):
        score_pool(pool, head, "margin", N + 1, rng=rng)
    with pytest.raises(ValueError, match="empty"):
        score_pool(pool[:0], head, "margin", 1, rng=rng)
    with pytest.raises(ValueError, match="predict_proba"):
        score_pool(pool, object(), "margin", 1, rng=rng)
    with pytest.raises(ValueError, match="biases"):
        LinearHead(np.ones((D, 3)), np.ones(2))
    with pytest.raises(ValueError, match="chain"):
        MLPHead([(np.ones((D, 4)), np.ones(4)), (np.ones((5, 2)), np.ones(2))])


def test_nan_features_are_never_ranked_silently(pool):
    corrupted = pool.copy()
    corrupted[17, 3] = np.nan
    for outputs in (1, 3):
        with pytest.raises(ValueError, match="NaN"):
            score_pool(
                corrupted, linear_head(np.random.default_rng(0), outputs), "margin", 5, rng=np.random.default_rng(0)
            )


@pytest.fixture(scope="module")
def large_pool():
    return np.random.default_rng(0).standard_normal((200_000, 64), dtype=np.float32)


@pytest.mark.parametrize("name, members", [("margin", 1), ("entropy", 1), ("qbc_vote", 5), ("qbc_kl", 5)])
@pytest.mark.parametrize("outputs", [1, 10])
def test_peak_extra_memory_is_a_small_fraction_of_the_pool(large_pool, name, members, outputs):
    rng = np.random.default_rng(0)
    features = large_pool
    heads = [
        LinearHead(rng.standard_normal((64, outputs), dtype=np.float32), np.zeros(outputs)) for _ in range(members)
    ]
    model = heads if members > 1 else heads[0]
    tracemalloc.start()
    try:
        score_pool(features, model, name, 100, rng=rng)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 0.10 * features.nbytes, f"peak {peak / features.nbytes:.1%} of the pool"


class DropoutNet:
    """Built lazily so the module imports without torch."""

    @staticmethod
    def make(classes: int):
        import torch

        torch.manual_seed(0)
        return torch.nn.Sequential(
            torch.nn.Linear(D, 32),
            torch.nn.ReLU(),
            torch.nn.BatchNorm1d(32),
            torch.nn.Dropout(0.5),
            torch.nn.Linear(32, classes),
        )


def test_mc_dropout_samples_shape_reproducibility_and_side_effects(pool):
    import torch

    module = DropoutNet.make(3)
    module.train()
    torch.manual_seed(42)
    torch_state = torch.random.get_rng_state()
    samples = mc_dropout_samples(module, pool[:500], 6, seed=1, batch_size=128)
    assert samples.shape == (6, 500, 3) and samples.dtype == np.float32
    assert np.allclose(samples.sum(axis=2), 1, atol=1e-5)
    assert not np.allclose(samples[0], samples[1])  # dropout was active
    assert np.array_equal(samples, mc_dropout_samples(module, pool[:500], 6, seed=1, batch_size=128))
    assert module.training and all(layer.training for layer in module.modules())  # flags restored
    assert torch.equal(torch.random.get_rng_state(), torch_state)  # global torch RNG untouched
    bald = score_bald(samples)
    assert bald.shape == (500,) and (bald > -1e-6).all()
    assert len(REGISTRY["bald"](samples, 10, rng=np.random.default_rng(0))) == 10


def test_mc_dropout_binary_single_logit_and_bad_t(pool):
    samples = mc_dropout_samples(DropoutNet.make(1), pool[:50], 3, seed=0)
    assert samples.shape == (3, 50, 2)
    with pytest.raises(ValueError, match="at least 2 passes"):
        mc_dropout_samples(DropoutNet.make(2), pool[:50], 1, seed=0)


def test_strategies_import_without_torch():
    import subprocess
    import sys

    code = "import sys, strategies; assert 'torch' not in sys.modules and 'sklearn' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
