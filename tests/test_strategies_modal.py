"""Each built-in strategy ranks exactly as modAL's corresponding query function, and modAL-style
functions can be registered as strategies.

Models are scikit-learn logistic regressions fitted once; committees are ``modAL.models.Committee``
objects built from ActiveLearners wrapping already-fitted estimators (``teach`` is never called:
it breaks on scikit-learn >= 1.8, modAL issue #196).
"""

from __future__ import annotations

import numpy as np
import pytest
from modAL.disagreement import (
    KL_max_disagreement,
    consensus_entropy,
    consensus_entropy_sampling,
    max_disagreement_sampling,
    vote_entropy,
    vote_entropy_sampling,
)
from modAL.models import ActiveLearner, Committee
from modAL.uncertainty import (
    classifier_entropy,
    classifier_margin,
    classifier_uncertainty,
    entropy_sampling,
    margin_sampling,
    uncertainty_sampling,
)
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from strategies import (
    REGISTRY,
    LinearHead,
    register_modal,
    score_consensus_entropy,
    score_entropy,
    score_least_confidence,
    score_margin,
    score_max_disagreement,
    score_pool,
    score_vote_entropy,
)

N_PICK = 25


@pytest.fixture(scope="module", params=[2, 4], ids=["binary", "four-class"])
def fitted(request):
    n_classes = request.param
    features, labels = make_classification(
        n_samples=600, n_features=8, n_informative=6, n_redundant=0, n_classes=n_classes, random_state=0
    )
    train, pool = slice(0, 200), slice(200, None)
    model = LogisticRegression(max_iter=1000).fit(features[train], labels[train])
    rng = np.random.default_rng(0)
    members = []
    for _ in range(5):
        bootstrap = rng.choice(200, size=200)
        members.append(LogisticRegression(C=0.3, max_iter=1000).fit(features[bootstrap], labels[bootstrap]))
    committee = Committee([ActiveLearner(estimator=member) for member in members])
    return {
        "pool": features[pool],
        "model": model,
        "members": members,
        "committee": committee,
        "proba": model.predict_proba(features[pool]),
        "committee_proba": np.stack([member.predict_proba(features[pool]) for member in members]),
    }


def ours(name: str, data: np.ndarray, n: int = N_PICK):
    return REGISTRY[name](data, n, rng=np.random.default_rng(0))


UNCERTAINTY_CASES = [
    # strategy, modAL query, modAL measure, modAL's score -> the workbench's score
    ("least_confidence", uncertainty_sampling, classifier_uncertainty, lambda s: s),
    ("margin", margin_sampling, classifier_margin, lambda s: 1 - s),
    ("entropy", entropy_sampling, classifier_entropy, lambda s: s),
]


@pytest.mark.parametrize("name, query, measure, convert", UNCERTAINTY_CASES, ids=[c[0] for c in UNCERTAINTY_CASES])
def test_uncertainty_strategies_rank_as_modal(fitted, name, query, measure, convert):
    scorer = {"least_confidence": score_least_confidence, "margin": score_margin, "entropy": score_entropy}[name]
    assert np.allclose(scorer(fitted["proba"]), convert(measure(fitted["model"], fitted["pool"])))
    modal_indices, modal_scores = query(fitted["model"], fitted["pool"], n_instances=N_PICK)
    result = ours(name, fitted["proba"])
    assert set(result.indices.tolist()) == set(modal_indices.tolist())
    order = np.argsort(modal_indices)
    assert np.allclose(result.scores[np.argsort(result.indices)], convert(modal_scores[order]))


COMMITTEE_CASES = [
    ("qbc_vote", vote_entropy_sampling, vote_entropy, score_vote_entropy),
    ("qbc_consensus", consensus_entropy_sampling, consensus_entropy, score_consensus_entropy),
    ("qbc_kl", max_disagreement_sampling, KL_max_disagreement, score_max_disagreement),
]


@pytest.mark.parametrize("name, query, measure, scorer", COMMITTEE_CASES, ids=[c[0] for c in COMMITTEE_CASES])
def test_committee_scores_equal_modal_on_every_item(fitted, name, query, measure, scorer):
    assert np.allclose(scorer(fitted["committee_proba"]), measure(fitted["committee"], fitted["pool"]))


@pytest.mark.parametrize("name, query, measure, scorer", COMMITTEE_CASES, ids=[c[0] for c in COMMITTEE_CASES])
def test_committee_strategies_choose_as_modal(fitted, name, query, measure, scorer):
    # Vote entropy takes few distinct values: cut between two tie groups so the chosen set is
    # determined (inside a tie group modAL's argpartition and our rng may pick differently).
    modal_all = np.sort(measure(fitted["committee"], fitted["pool"]))[::-1]
    cuts = [k for k in range(5, 200) if modal_all[k - 1] > modal_all[k] + 1e-9]
    n = cuts[0]
    modal_indices, modal_scores = query(fitted["committee"], fitted["pool"], n_instances=n)
    result = ours(name, fitted["committee_proba"], n)
    assert set(result.indices.tolist()) == set(modal_indices.tolist())
    assert np.allclose(np.sort(result.scores), np.sort(modal_scores))


def test_linear_head_from_sklearn_weights_ranks_as_modal(fitted):
    model = fitted["model"]
    head = LinearHead(model.coef_.T, model.intercept_)
    pool32 = fitted["pool"].astype(np.float32)
    for name, query, _, convert in UNCERTAINTY_CASES:
        result = score_pool(pool32, head, name, N_PICK, rng=np.random.default_rng(0), chunk_rows=64)
        modal_indices, modal_scores = query(model, fitted["pool"], n_instances=N_PICK)
        assert set(result.indices.tolist()) == set(modal_indices.tolist()), name
        assert np.allclose(np.sort(result.scores), np.sort(convert(modal_scores)), atol=1e-5), name


def test_committee_of_sklearn_models_scored_chunkwise_equals_modal(fitted):
    result = score_pool(
        fitted["pool"], fitted["members"], "qbc_kl", N_PICK, rng=np.random.default_rng(0), chunk_rows=50
    )
    modal_indices, modal_scores = max_disagreement_sampling(fitted["committee"], fitted["pool"], n_instances=N_PICK)
    assert set(result.indices.tolist()) == set(modal_indices.tolist())
    assert np.allclose(np.sort(result.scores), np.sort(modal_scores), atol=1e-5)


@pytest.fixture
def registered():
    names = []

    def register(name, function, **options):
        names.append(name)
        return register_modal(name, function, **options)

    yield register
    for name in names:
        REGISTRY.pop(name, None)


def test_registered_modal_function_is_called_like_any_strategy(fitted, registered):
    strategy = registered("modal_margin", margin_sampling, higher_is_better=False)
    assert strategy.input == "model" and strategy.needs_features
    result = REGISTRY["modal_margin"](
        None, N_PICK, rng=np.random.default_rng(0), model=fitted["model"], features=fitted["pool"]
    )
    builtin = ours("margin", fitted["proba"])
    assert np.array_equal(result.indices, builtin.indices)  # same items, same best-first order
    assert np.allclose(result.scores, builtin.scores - 1)  # negated margins: higher = better


def test_registered_modal_function_through_score_pool(fitted, registered):
    registered("modal_entropy", entropy_sampling)
    result = score_pool(fitted["pool"], fitted["model"], "modal_entropy", N_PICK, rng=np.random.default_rng(0))
    assert np.array_equal(result.indices, ours("entropy", fitted["proba"]).indices)


def test_a_users_own_query_function_and_its_mistakes(fitted, registered):
    def first_items(classifier, X, n_instances):
        return np.arange(n_instances), np.zeros(n_instances)

    def duplicates(classifier, X, n_instances):
        return np.zeros(n_instances, dtype=int), np.zeros(n_instances)

    registered("first_items", first_items)
    registered("duplicates", duplicates)
    call = {"rng": np.random.default_rng(0), "model": fitted["model"], "features": fitted["pool"]}
    assert sorted(REGISTRY["first_items"](None, 4, **call).indices.tolist()) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="duplicate"):
        REGISTRY["duplicates"](None, 4, **call)


def test_registering_an_existing_name_needs_replace(registered):
    with pytest.raises(ValueError, match="already registered"):
        register_modal("margin", margin_sampling)
    registered("modal_twice", margin_sampling)
    registered("modal_twice", entropy_sampling, replace=True)
    assert "modal_twice" in REGISTRY
