"""The contract every registered strategy keeps, whatever its input (parametrized over REGISTRY).

Also run against a modAL plug-in (a strategy with input "model"), since users can register those.
"""

from __future__ import annotations

import numpy as np
import pytest

from strategies import INPUT_KINDS, REGISTRY, QueryResult, Strategy, modal_strategy

POOL = 60
CLASSES = 3
DIM = 5


def _modal_least_confidence(classifier, X, n_instances):
    from modAL.uncertainty import uncertainty_sampling

    return uncertainty_sampling(classifier, X, n_instances=n_instances)


def _fitted_classifier(features: np.ndarray):
    from sklearn.linear_model import LogisticRegression

    labels = np.arange(features.shape[0]) % CLASSES
    return LogisticRegression().fit(features, labels)


MODAL_PLUGIN = modal_strategy("modal_least_confidence", _modal_least_confidence)
STRATEGIES = [*REGISTRY.values(), MODAL_PLUGIN]


def _ids(strategy: Strategy) -> str:
    return strategy.name


def make_input(strategy: Strategy, pool: int, seed: int = 0) -> tuple[object, dict]:
    """A valid first argument and extra keywords for ``strategy`` over a pool of ``pool`` items."""
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((pool, DIM)).astype(np.float32)
    extra = {"features": features} if strategy.needs_features else {}
    if strategy.input == "pool_size":
        return pool, extra
    if strategy.input == "proba":
        return rng.dirichlet(np.ones(CLASSES), size=pool), extra
    if strategy.input in ("committee", "mc_samples"):
        return rng.dirichlet(np.ones(CLASSES), size=(4, pool)), extra
    if strategy.input == "features":
        return features, extra
    if strategy.input == "model":
        return None, {"model": _fitted_classifier(features), "features": features}
    raise AssertionError(f"no input maker for {strategy.input!r}")


def call(strategy: Strategy, data: object, n: int, extra: dict, seed: int = 1) -> QueryResult:
    return strategy(data, n, rng=np.random.default_rng(seed), **extra)


def test_registry_holds_the_required_names_and_metadata():
    required = {
        "random",
        "least_confidence",
        "margin",
        "entropy",
        "qbc_vote",
        "qbc_consensus",
        "qbc_kl",
        "margin_batch",
        "margin_density",
        "bald",
        "cold_start",
    }
    assert required <= set(REGISTRY)
    for name, strategy in REGISTRY.items():
        assert strategy.name == name
        assert strategy.input in INPUT_KINDS
        assert isinstance(strategy.needs_features, bool)
        assert strategy.description


@pytest.mark.parametrize("strategy", STRATEGIES, ids=_ids)
def test_shape_dtype_no_duplicates_rank_order(strategy):
    data, extra = make_input(strategy, POOL)
    result = call(strategy, data, 7, extra)
    assert isinstance(result, QueryResult)
    assert result.indices.shape == (7,) and result.scores.shape == (7,)
    assert result.indices.dtype == np.int64
    assert np.unique(result.indices).size == 7
    assert result.indices.min() >= 0 and result.indices.max() < POOL
    assert np.isfinite(result.scores).all()
    if strategy.name not in ("margin_batch", "margin_diversity", "cold_start"):  # greedy/cluster orders
        assert (np.diff(result.scores) <= 1e-12).all(), "best first"


@pytest.mark.parametrize("strategy", STRATEGIES, ids=_ids)
def test_n_equal_to_pool_size_returns_every_item_once(strategy):
    data, extra = make_input(strategy, POOL)
    result = call(strategy, data, POOL, extra)
    assert sorted(result.indices.tolist()) == list(range(POOL))


@pytest.mark.parametrize("strategy", STRATEGIES, ids=_ids)
def test_reproducible_under_a_fixed_rng(strategy):
    data, extra = make_input(strategy, POOL)
    first, second = call(strategy, data, 10, extra, seed=5), call(strategy, data, 10, extra, seed=5)
    assert np.array_equal(first.indices, second.indices)
    assert np.array_equal(first.scores, second.scores)


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s.row_scorer is not None], ids=_ids)
def test_row_scorer_and_selector_compose_to_the_strategy(strategy):
    data, extra = make_input(strategy, POOL)
    whole = call(strategy, data, 9, extra)
    split = strategy.score_selector(strategy.row_scorer(data), 9, rng=np.random.default_rng(1), **extra)
    assert np.array_equal(whole.indices, split.indices)
    assert np.allclose(whole.scores, split.scores)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=_ids)
@pytest.mark.parametrize("n, message", [(0, "at least 1"), (-3, "at least 1"), (POOL + 1, "larger than the pool")])
def test_bad_n(strategy, n, message):
    data, extra = make_input(strategy, POOL)
    with pytest.raises(ValueError, match=message):
        call(strategy, data, n, extra)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=_ids)
def test_n_must_be_an_integer(strategy):
    data, extra = make_input(strategy, POOL)
    with pytest.raises(TypeError):
        call(strategy, data, 2.5, extra)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=_ids)
def test_empty_pool(strategy):
    data, extra = make_input(strategy, POOL)
    if strategy.input == "pool_size":
        data = 0
    elif strategy.input in ("proba", "features"):
        data = data[:0]
    elif strategy.input in ("committee", "mc_samples"):
        data = data[:, :0]
    if "features" in extra:
        extra = {**extra, "features": extra["features"][:0]}
    with pytest.raises(ValueError, match="empty"):
        call(strategy, data, 1, extra)


PROBABILITY_INPUTS = [s for s in STRATEGIES if s.input in ("proba", "committee", "mc_samples")]


@pytest.mark.parametrize("strategy", PROBABILITY_INPUTS, ids=_ids)
def test_nan_probabilities(strategy):
    data, extra = make_input(strategy, POOL)
    data = data.copy()
    data[..., 3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        call(strategy, data, 2, extra)


@pytest.mark.parametrize("strategy", PROBABILITY_INPUTS, ids=_ids)
def test_rows_that_do_not_sum_to_one(strategy):
    data, extra = make_input(strategy, POOL)
    data = data.copy()
    data[..., 4, :] *= 1.01
    with pytest.raises(ValueError, match="sum to 1"):
        call(strategy, data, 2, extra)


@pytest.mark.parametrize("strategy", PROBABILITY_INPUTS, ids=_ids)
def test_rows_within_tolerance_are_accepted(strategy):
    data, extra = make_input(strategy, POOL)
    data = data * (1 + 5e-4)
    assert len(call(strategy, data, 2, extra)) == 2


@pytest.mark.parametrize("strategy", PROBABILITY_INPUTS, ids=_ids)
def test_negative_probabilities(strategy):
    data, extra = make_input(strategy, POOL)
    data = data.copy()
    data[..., 0, 0] -= 2.0
    data[..., 0, 1] += 2.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        call(strategy, data, 2, extra)


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s.input in ("committee", "mc_samples")], ids=_ids)
def test_a_committee_of_one(strategy):
    data, extra = make_input(strategy, POOL)
    with pytest.raises(ValueError, match="at least 2"):
        call(strategy, data[:1], 2, extra)


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s.input == "proba"], ids=_ids)
def test_wrong_probability_shapes(strategy):
    data, extra = make_input(strategy, POOL)
    with pytest.raises(ValueError, match="shape"):
        call(strategy, data[:, 0], 2, extra)
    with pytest.raises(ValueError, match="at least 2 classes"):
        call(strategy, np.ones((POOL, 1)), 2, extra)


@pytest.mark.parametrize(
    "strategy", [s for s in STRATEGIES if s.input != "model" and (s.needs_features or s.input == "features")], ids=_ids
)
def test_nan_features(strategy):
    data, extra = make_input(strategy, POOL)
    features = (data if strategy.input == "features" else extra["features"]).copy()
    features[:, :] = np.nan
    if strategy.input == "features":
        data = features
    else:
        extra = {**extra, "features": features}
    with pytest.raises(ValueError, match="NaN"):
        call(strategy, data, 2, extra)


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s.needs_features and s.input == "proba"], ids=_ids)
def test_features_must_align_with_probabilities(strategy):
    data, extra = make_input(strategy, POOL)
    with pytest.raises(ValueError, match="rows"):
        call(strategy, data, 2, {**extra, "features": extra["features"][:-1]})


@pytest.mark.parametrize("strategy", STRATEGIES, ids=_ids)
def test_rng_must_be_a_generator(strategy):
    data, extra = make_input(strategy, POOL)
    with pytest.raises(TypeError, match="Generator"):
        strategy(data, 2, rng=np.random.RandomState(0), **extra)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=_ids)
def test_unknown_keywords_are_refused(strategy):
    data, extra = make_input(strategy, POOL)
    with pytest.raises(TypeError):
        call(strategy, data, 2, {**extra, "no_such_option": 1})
