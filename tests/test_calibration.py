"""Calibrated logistic head: Platt (two labels) or temperature (more), on out-of-fold logits,
folded into the linear head so pool scoring sees the calibrated probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.training.models import ModelConfigError, linear_head, make_model


def _binary(seed=0, n=300):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5)).astype(np.float32)
    y = np.where(X[:, 0] + 0.7 * rng.standard_normal(n) > 0.8, "b", "a")
    return X, y


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def test_auto_is_platt_for_two_labels_and_the_head_computes_the_calibrated_probabilities():
    X, y = _binary()
    plain = make_model({"type": "logreg", "C": 10}, 0, ["a", "b"]).fit(X, y)
    calibrated = make_model({"type": "logreg", "C": 10, "calibration": "auto"}, 0, ["a", "b"]).fit(X, y)
    assert plain.calibration_ == "none" and calibrated.calibration_ == "platt"
    a, b = calibrated.platt_
    assert a > 0 and b != 0
    W, bias = linear_head(calibrated)
    np.testing.assert_allclose(_softmax(X @ W + bias), calibrated.predict_proba(X), atol=1e-5)
    # The logit is a z + b of the uncalibrated one: Platt's bias moves the point of equal odds,
    # so the margin ranking changes.
    z_plain = np.log(plain.predict_proba(X)[:, 1] / plain.predict_proba(X)[:, 0])
    z_cal = np.log(calibrated.predict_proba(X)[:, 1] / calibrated.predict_proba(X)[:, 0])
    np.testing.assert_allclose(z_cal, a * z_plain + b, atol=1e-3)
    assert not np.array_equal(np.argsort(np.abs(z_plain))[:30], np.argsort(np.abs(z_cal))[:30])


def test_temperature_for_more_labels_keeps_the_predicted_label():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 6)).astype(np.float32)
    y = np.array(["a", "b", "c"])[np.argmax(X[:, :3] + rng.standard_normal((300, 3)), axis=1)]
    plain = make_model({"type": "logreg", "C": 10}, 0, ["a", "b", "c"]).fit(X, y)
    calibrated = make_model({"type": "logreg", "C": 10, "calibration": "auto"}, 0, ["a", "b", "c"]).fit(X, y)
    assert calibrated.calibration_ == "temperature" and calibrated.temperature_ != 1.0
    np.testing.assert_array_equal(plain.predict(X), calibrated.predict(X))
    np.testing.assert_allclose(calibrated.coef_, plain.coef_ / calibrated.temperature_, rtol=1e-4, atol=1e-6)


def test_skipped_with_too_few_labels_and_unknown_names_refused():
    X, y = _binary(n=300)
    few = np.concatenate([np.flatnonzero(y == "a")[:20], np.flatnonzero(y == "b")[:2]])
    model = make_model({"type": "logreg", "calibration": "auto"}, 0, ["a", "b"]).fit(X[few], y[few])
    assert model.calibration_ == "none"
    with pytest.raises(ModelConfigError, match="unknown calibration"):
        make_model({"type": "logreg", "calibration": "isotonic"}, 0, ["a", "b"]).fit(X, y)
