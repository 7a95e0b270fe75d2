"""Models: estimator contract, full label set, weight access, committee, torch MLP."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone, is_classifier
from sklearn.linear_model import LogisticRegression

from workbench.training import models
from workbench.training.models import (
    UNSEEN_CLASS_PROBABILITY,
    CommitteeClassifier,
    LabelSetAdapter,
    LogisticRegressionClassifier,
    ModelConfigError,
    TorchMLPClassifier,
    linear_head,
    make_model,
    mlp_layers,
)

CLASSES = ["ham", "spam", "promo", "never"]
MLP_CONFIG = {"type": "mlp", "epochs": 20, "hidden": 16, "lr": 0.01}


def _blobs(n: int = 240, n_features: int = 6, labels=("ham", "spam", "promo"), seed: int = 0):
    """Gaussian blobs, one per label, separable enough for every model to learn."""
    rng = np.random.default_rng(seed)
    y = np.array(labels)[np.arange(n) % len(labels)]
    centers = rng.normal(0, 3, size=(len(labels), n_features))
    X = centers[np.arange(n) % len(labels)] + rng.normal(0, 1, size=(n, n_features))
    return X.astype(np.float32), y


def _softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def test_make_model_defaults_to_logistic_regression_and_refuses_unknown_configs():
    model = make_model({}, seed=3, classes=CLASSES)
    assert isinstance(model, LogisticRegressionClassifier) and model.random_state == 3
    assert isinstance(make_model(None, 0), LogisticRegressionClassifier)
    assert isinstance(make_model({"type": "logreg", "C": 0.5}, 0), LogisticRegressionClassifier)
    assert isinstance(make_model({"type": "mlp"}, 0), TorchMLPClassifier)
    assert isinstance(make_model({"type": "committee", "size": 3}, 0), CommitteeClassifier)
    assert isinstance(make_model({"type": "complement_nb"}, 0), LabelSetAdapter)
    with pytest.raises(ModelConfigError, match="unknown model type"):
        make_model({"type": "svm"}, 0)
    with pytest.raises(ModelConfigError, match="unknown logreg parameters"):
        make_model({"type": "logreg", "penalty": "l1"}, 0)


@pytest.mark.parametrize(
    "config",
    [{"type": "logreg"}, {"type": "committee", "size": 4}, {"type": "random_forest", "n_estimators": 10}, MLP_CONFIG],
)
def test_every_model_follows_the_estimator_contract_over_the_full_label_set(config):
    X, y = _blobs()
    model = make_model(config, seed=0, classes=CLASSES)
    assert is_classifier(model)
    assert model.fit(X, y) is model
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), len(CLASSES)) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert list(model.classes_) == CLASSES
    assert proba[:, CLASSES.index("never")].max() <= 1e-3
    assert np.mean(model.predict(X) == y) > 0.9
    clone(model).fit(X, y)  # get_params/set_params round trip


def test_logreg_linear_head_reproduces_predict_proba_for_multiclass_and_binary():
    for labels in (("ham", "spam", "promo"), ("ham", "spam")):
        X, y = _blobs(labels=labels)
        model = make_model({"type": "logreg"}, seed=0, classes=CLASSES).fit(X, y)
        W, b = linear_head(model)
        assert W.shape == (X.shape[1], len(CLASSES)) and b.shape == (len(CLASSES),)
        assert W.dtype == np.float32 and b.dtype == np.float32
        np.testing.assert_allclose(_softmax(X @ W + b), model.predict_proba(X), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(("sparse_input", "solver"), [(False, "lbfgs"), (True, "saga")])
def test_logreg_matches_sklearn_on_the_seen_labels(sparse_input, solver):
    X, y = _blobs(labels=("ham", "spam"))
    if sparse_input:
        X = sp.csr_matrix(np.abs(X) / np.abs(X).sum(axis=1, keepdims=True))
    model = make_model({"type": "logreg", "C": 0.3}, seed=0, classes=CLASSES).fit(X, y)
    assert model.solver_ == solver
    reference = LogisticRegression(C=0.3, solver=solver, max_iter=1000, random_state=0).fit(X, y)
    proba = model.predict_proba(X)
    renormalised_seen = proba[:, :2] / proba[:, :2].sum(axis=1, keepdims=True)
    np.testing.assert_allclose(renormalised_seen, reference.predict_proba(X), atol=1e-5)
    np.testing.assert_allclose(proba[:, 2:], 0.0, atol=UNSEEN_CLASS_PROBABILITY)


def test_logreg_accepts_sparse_input_and_class_weights():
    X, y = _blobs()
    X_sparse = sp.csr_matrix(np.abs(X))
    balanced = make_model({"type": "logreg", "class_weight": "balanced"}, 0, CLASSES).fit(X_sparse, y)
    weighted = make_model({"type": "logreg", "class_weight": {"spam": 5.0, "never": 2.0}}, 0, CLASSES).fit(X_sparse, y)
    assert balanced.predict_proba(X_sparse).shape == weighted.predict_proba(X_sparse).shape == (len(X), 4)


def test_logreg_reports_an_exhausted_iteration_budget_instead_of_warning(recwarn):
    X, y = _blobs()
    assert make_model({"type": "logreg"}, 0, CLASSES).fit(X, y).converged_
    capped = make_model({"type": "logreg", "max_iter": 2}, 0, CLASSES).fit(X, y)
    assert not capped.converged_ and capped.n_iter_ == 2
    assert not [w for w in recwarn if "converge" in str(w.message)]


def test_single_seen_label_takes_all_the_mass():
    X, _ = _blobs(n=12)
    y = np.array(["spam"] * 12)
    for config in ({"type": "logreg"}, {"type": "complement_nb"}, {"type": "committee", "size": 3}):
        proba = make_model(config, 0, CLASSES).fit(np.abs(X), y).predict_proba(np.abs(X))
        np.testing.assert_allclose(proba[:, 1], 1.0, atol=1e-5)


def test_label_outside_the_classes_is_refused():
    X, y = _blobs()
    with pytest.raises(ValueError, match="not in classes"):
        make_model({}, 0, ["ham", "spam"]).fit(X, y)


def test_fits_are_reproducible_from_data_config_and_seed():
    X, y = _blobs()
    for config in ({"type": "logreg"}, {"type": "committee", "size": 5}, {"type": "mlp", "epochs": 3, "hidden": 8}):
        first = make_model(config, 7, CLASSES).fit(X, y).predict_proba(X)
        second = make_model(config, 7, CLASSES).fit(X, y).predict_proba(X)
        np.testing.assert_array_equal(first, second)


def test_committee_members_are_diverse_and_their_mean_is_the_prediction():
    X, y = _blobs()
    dense_committee = make_model({"type": "committee", "size": 6}, 0, CLASSES).fit(X, y)
    assert [spec["type"] for spec in dense_committee.member_specs_] == [
        "logreg",
        "random_forest",
        "logreg",
        "logreg",
        "logreg",
        "logreg",
    ]
    assert [spec.get("bootstrap", False) for spec in dense_committee.member_specs_][4:] == [True, True]
    members = dense_committee.predict_proba_members(X)
    assert members.shape == (6, len(X), len(CLASSES)) and members.dtype == np.float32
    np.testing.assert_allclose(dense_committee.predict_proba(X), members.mean(axis=0), rtol=1e-6)
    assert not np.allclose(members[4], members[5])  # different bootstrap resamples

    sparse_committee = make_model({"type": "committee", "size": 2}, 0, CLASSES).fit(sp.csr_matrix(np.abs(X)), y)
    assert [spec["type"] for spec in sparse_committee.member_specs_] == ["logreg", "complement_nb"]


def test_committee_takes_explicit_members_and_refuses_nested_or_torch_members():
    X, y = _blobs()
    members = [{"type": "logreg", "C": 0.01}, {"type": "logreg", "C": 100.0, "bootstrap": True}]
    committee = make_model({"type": "committee", "members": members}, 0, CLASSES).fit(X, y)
    assert committee.predict_proba_members(X).shape[0] == 2
    for bad in ({"type": "mlp"}, {"type": "committee"}):
        with pytest.raises(ModelConfigError, match="committee member type"):
            make_model({"type": "committee", "members": [bad]}, 0, CLASSES).fit(X, y)
    with pytest.raises(ModelConfigError, match="at least one member"):
        make_model({"type": "committee", "size": 0}, 0, CLASSES).fit(X, y)


def test_mlp_layers_reproduce_predict_proba_in_any_chunking_and_linear_head_is_none(monkeypatch):
    X, y = _blobs()
    model = make_model(MLP_CONFIG, 0, CLASSES).fit(X, y)
    (W1, b1), (W2, b2) = mlp_layers(model)
    assert W1.shape == (X.shape[1], 16) and W2.shape == (16, len(CLASSES))
    from_weights = _softmax(np.maximum(X @ W1 + b1, 0) @ W2 + b2)
    np.testing.assert_allclose(from_weights, model.predict_proba(X), rtol=1e-4, atol=1e-6)
    assert linear_head(model) is None
    monkeypatch.setattr(models, "MLP_PREDICT_CHUNK_ROWS", 7)
    np.testing.assert_allclose(model.predict_proba(X), from_weights, rtol=1e-4, atol=1e-6)
    assert mlp_layers(make_model({}, 0).fit(X, y)) is None


def test_mlp_trains_on_csr_input_and_leaves_torch_global_state_alone():
    import torch

    X, y = _blobs()
    X_sparse = sp.csr_matrix(np.where(np.abs(X) > 1.0, X, 0.0).astype(np.float32))
    rng_state = torch.get_rng_state()
    threads = torch.get_num_threads()
    model = make_model(MLP_CONFIG, 0, CLASSES).fit(X_sparse, y)
    assert torch.equal(torch.get_rng_state(), rng_state) and torch.get_num_threads() == threads
    assert np.mean(model.predict(X_sparse) == y) > 0.9
    np.testing.assert_allclose(model.predict_proba(X_sparse), model.predict_proba(X_sparse.toarray()), rtol=1e-5)


def test_importing_the_models_module_does_not_import_torch():
    code = "import sys, workbench.training.models; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
