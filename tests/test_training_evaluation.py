"""Evaluation metrics against scikit-learn, hand-computed fixtures and brute-force bootstraps."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn import metrics

from workbench.domain.rounds import EvalMetrics
from workbench.training.evaluation import compare_predictions, compare_runs, evaluate, expected_calibration_error

CLASSES = ["cat", "dog", "eel", "fox"]


def _random_predictions(n: int = 400, seed: int = 0):
    """Labels over three of the four classes (``fox`` never occurs) and noisy probabilities."""
    rng = np.random.default_rng(seed)
    true_indices = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    logits = rng.normal(0, 1, size=(n, len(CLASSES)))
    logits[np.arange(n), true_indices] += 1.2
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return np.array(CLASSES)[true_indices], proba.astype(np.float32)


def test_evaluate_agrees_with_sklearn_metrics():
    y_true, proba = _random_predictions()
    y_pred = np.array(CLASSES)[proba.argmax(axis=1)]
    result = evaluate(y_true, proba, CLASSES)
    assert result.n == len(y_true)
    assert result.accuracy == pytest.approx(metrics.accuracy_score(y_true, y_pred))
    assert result.macro_f1 == pytest.approx(metrics.f1_score(y_true, y_pred, average="macro"))
    assert [list(row) for row in result.confusion_matrix] == metrics.confusion_matrix(
        y_true, y_pred, labels=CLASSES
    ).tolist()
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=CLASSES, zero_division=0
    )
    assert [row.label for row in result.per_class] == CLASSES
    np.testing.assert_allclose([row.precision for row in result.per_class], precision)
    np.testing.assert_allclose([row.recall for row in result.per_class], recall)
    np.testing.assert_allclose([row.f1 for row in result.per_class], f1)
    assert [row.support for row in result.per_class] == support.tolist()


def test_evaluate_returns_plain_json_types_even_for_numpy_labels():
    y_true, proba = _random_predictions(50)
    result = evaluate(np.asarray(y_true), proba, np.asarray(CLASSES))
    assert EvalMetrics.from_json(json.loads(json.dumps(result.to_json()))) == result
    assert all(type(row.label) is str for row in result.per_class)


def test_expected_calibration_error_on_a_hand_computed_fixture():
    # confidences 0.95, 0.95 (one right, one wrong) -> bin (14/15, 1]: |0.5 - 0.95| * 2/4
    # confidences 0.6 (right), 0.55 (wrong)        -> bin (8/15, 9/15]: |0.5 - 0.575| * 2/4
    proba = np.array([[0.95, 0.05], [0.95, 0.05], [0.6, 0.4], [0.45, 0.55]])
    true_indices = np.array([0, 1, 0, 0])
    expected = 0.5 * abs(0.5 - 0.95) + 0.5 * abs(0.5 - 0.575)
    assert expected_calibration_error(proba, true_indices) == pytest.approx(expected)
    assert evaluate(["a", "b", "a", "a"], proba, ["a", "b"]).ece == pytest.approx(expected)


def test_expected_calibration_error_puts_a_bin_edge_in_the_lower_bin():
    # 0.6 = 9/15 belongs to (8/15, 9/15] with 0.55, so the bin's gap is |1 - 0.575|, not split
    proba = np.array([[0.6, 0.4], [0.55, 0.45]])
    assert expected_calibration_error(proba, np.array([0, 0])) == pytest.approx(1 - 0.575)


def test_accuracy_interval_is_seeded_and_matches_a_brute_force_item_bootstrap():
    y_true, proba = _random_predictions(500)
    result = evaluate(y_true, proba, CLASSES, rng_seed=3, n_boot=4000)
    assert result == evaluate(y_true, proba, CLASSES, rng_seed=3, n_boot=4000)
    low, high = result.accuracy_ci95
    assert low < result.accuracy < high
    correct = np.array(CLASSES)[proba.argmax(axis=1)] == y_true
    resamples = np.random.default_rng(11).integers(0, len(correct), size=(4000, len(correct)))
    brute_force = np.quantile(correct[resamples].mean(axis=1), [0.025, 0.975])
    np.testing.assert_allclose([low, high], brute_force, atol=0.01)


def test_compare_runs_counts_discordant_items_and_uses_exact_mcnemar():
    y_true = ["cat"] * 10
    one_hot = np.eye(len(CLASSES), dtype=np.float32)
    # A right on items 0-5, B right on items 0-2 and 6-9: only-A 3 (3,4,5), only-B 4 (6..9)
    proba_a = one_hot[[0, 0, 0, 0, 0, 0, 1, 1, 1, 1]]
    proba_b = one_hot[[0, 0, 0, 1, 1, 1, 0, 0, 0, 0]]
    result = compare_runs(y_true, proba_a, proba_b, CLASSES)
    assert (result.only_a_correct, result.only_b_correct) == (3, 4)
    assert result.accuracy_a == pytest.approx(0.6) and result.accuracy_b == pytest.approx(0.7)
    assert result.difference == pytest.approx(0.1)
    assert result.mcnemar_p == pytest.approx(binomtest(4, 7, 0.5).pvalue)
    assert result.n_eval == 10


def test_compare_runs_interval_matches_a_brute_force_paired_bootstrap():
    y_true, proba_a = _random_predictions(600, seed=1)
    _, proba_b = _random_predictions(600, seed=2)
    result = compare_runs(y_true, proba_a, proba_b, CLASSES, rng_seed=5, n_boot=4000)
    correct_a = np.array(CLASSES)[proba_a.argmax(axis=1)] == y_true
    correct_b = np.array(CLASSES)[proba_b.argmax(axis=1)] == y_true
    resamples = np.random.default_rng(13).integers(0, len(y_true), size=(4000, len(y_true)))
    differences = correct_b[resamples].mean(axis=1) - correct_a[resamples].mean(axis=1)
    np.testing.assert_allclose(result.difference_ci95, np.quantile(differences, [0.025, 0.975]), atol=0.01)


def test_identical_runs_have_no_difference():
    y_true, proba = _random_predictions(100)
    result = compare_runs(y_true, proba, proba, CLASSES)
    assert result.difference == 0 and result.difference_ci95 == (0.0, 0.0) and result.mcnemar_p == 1.0


def test_compare_predictions_equals_compare_runs_on_the_argmax_labels():
    y_true, proba_a = _random_predictions(200, seed=1)
    _, proba_b = _random_predictions(200, seed=2)
    labels = np.array(CLASSES)
    stored = compare_predictions(y_true, labels[proba_a.argmax(axis=1)], labels[proba_b.argmax(axis=1)], rng_seed=4)
    assert stored == compare_runs(y_true, proba_a, proba_b, CLASSES, rng_seed=4)


def test_bad_inputs_are_refused():
    y_true, proba = _random_predictions(10)
    with pytest.raises(ValueError, match="not in classes"):
        evaluate(["wolf"] * 10, proba, CLASSES)
    with pytest.raises(ValueError, match="shape"):
        evaluate(y_true, proba[:, :3], CLASSES)
    with pytest.raises(ValueError, match="shape"):
        compare_runs(y_true, proba, proba[:5], CLASSES)


def test_evaluation_imports_without_scikit_learn_and_public_names_resolve():
    code = (
        "import sys, workbench.training.evaluation, workbench.training as training\n"
        "assert 'sklearn' not in sys.modules, 'sklearn imported'\n"
        "assert all(getattr(training, name) for name in training.__all__)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
