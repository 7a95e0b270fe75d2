"""Evaluation of a model run on the eval split, and paired comparison of two runs.

Results are typed (:class:`workbench.domain.rounds.EvalMetrics`, :class:`RunComparison`) and
become JSON only where a row is written.

Bootstrap intervals are computed from counts rather than by resampling items: resampling N
items with replacement and counting the correct ones is exactly a Binomial(N, accuracy) draw,
and for two runs on the same items the paired resample's cell counts (both right, only A
right, only B right, both wrong) are exactly Multinomial(N, observed cell proportions). The
percentile intervals therefore have the distribution of the classic item bootstrap at a cost
independent of N.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench.domain.rounds import ClassMetrics, EvalMetrics, RunComparison

CALIBRATION_BINS = 15
"""Equal-width bins of the top-class probability used by the expected calibration error."""


def _label_indices(y_true: Sequence[Any], classes: Sequence[Any]) -> np.ndarray:
    position = {label: index for index, label in enumerate(classes)}
    if len(position) != len(classes):
        raise ValueError(f"classes must be distinct, got {list(classes)}")
    unknown = sorted({str(label) for label in y_true if label not in position})
    if unknown:
        raise ValueError(f"eval labels {unknown} are not in classes {list(classes)}")
    return np.array([position[label] for label in y_true], dtype=np.int64)


def _check_proba(proba: np.ndarray, n_items: int, n_classes: int) -> np.ndarray:
    proba = np.asarray(proba)
    if proba.shape != (n_items, n_classes):
        raise ValueError(f"proba has shape {proba.shape}, expected ({n_items}, {n_classes})")
    return proba


def _plain(value: Any) -> Any:
    """A label as a plain Python value (NumPy scalars become int/str/float)."""
    return value.item() if isinstance(value, np.generic) else value


def _percentile_interval(samples: np.ndarray) -> tuple[float, float]:
    low, high = np.quantile(samples, [0.025, 0.975])
    return (float(low), float(high))


def expected_calibration_error(proba: np.ndarray, true_indices: np.ndarray, n_bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error of the top-class probability.

    .. math:: \\mathrm{ECE} = \\sum_b \\frac{n_b}{N} \\left| \\mathrm{acc}_b - \\mathrm{conf}_b \\right|

    over ``n_bins`` equal-width bins ``(lo, hi]`` of the confidence ``max_k proba[i, k]``
    (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017); empty bins add 0.

    Parameters
    ----------
    proba : ndarray of shape (N, K)
    true_indices : int ndarray of shape (N,)
        Column of the true label of each row.
    """
    if len(true_indices) == 0:
        return 0.0
    confidence = proba.max(axis=1).astype(np.float64)
    correct = (proba.argmax(axis=1) == true_indices).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges[1:-1], confidence, side="left")
    gap = np.bincount(bins, weights=correct, minlength=n_bins) - np.bincount(bins, weights=confidence, minlength=n_bins)
    return float(np.abs(gap).sum() / len(true_indices))


def evaluate(
    y_true: Sequence[Any],
    proba: np.ndarray,
    classes: Sequence[Any],
    *,
    rng_seed: int = 0,
    n_boot: int = 1000,
) -> EvalMetrics:
    """Metrics of predicted probabilities against the eval items' final labels.

    Parameters
    ----------
    y_true : sequence of labels, length N
    proba : ndarray of shape (N, K)
        Columns in ``classes`` order; the prediction is the arg-max (first column on ties).
    classes : sequence of K labels
    rng_seed, n_boot : int
        Seed and number of bootstrap resamples for the accuracy interval.

    Returns
    -------
    EvalMetrics
        ``n``; ``accuracy``; ``accuracy_ci95`` ((low, high), percentile bootstrap);
        ``macro_f1`` (mean F1 over the labels that occur in ``y_true`` or in the predictions,
        scikit-learn's default label set; 0.0 when N = 0); ``per_class`` (one dict per label,
        in ``classes`` order: ``label``, ``precision``, ``recall``, ``f1``, ``support``, with 0.0
        where a ratio is 0/0); ``confusion_matrix`` (K×K, rows true, columns predicted);
        ``ece`` (:func:`expected_calibration_error`, 15 bins).
    """
    classes = list(classes)
    true_indices = _label_indices(y_true, classes)
    n_items, n_classes = len(true_indices), len(classes)
    proba = _check_proba(proba, n_items, n_classes)
    predicted = proba.argmax(axis=1)
    confusion = np.bincount(true_indices * n_classes + predicted, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )
    true_positives = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted_count = confusion.sum(axis=0)
    precision = np.divide(true_positives, predicted_count, out=np.zeros(n_classes), where=predicted_count > 0)
    recall = np.divide(true_positives, support, out=np.zeros(n_classes), where=support > 0)
    f1_denominator = precision + recall
    f1 = np.divide(2 * precision * recall, f1_denominator, out=np.zeros(n_classes), where=f1_denominator > 0)
    occurring = (support > 0) | (predicted_count > 0)

    accuracy = float(true_positives.sum() / n_items) if n_items else 0.0
    rng = np.random.default_rng(rng_seed)
    resampled_accuracy = rng.binomial(n_items, accuracy, size=n_boot) / max(n_items, 1)
    return EvalMetrics(
        n=n_items,
        accuracy=accuracy,
        accuracy_ci95=_percentile_interval(resampled_accuracy),
        macro_f1=float(f1[occurring].mean()) if occurring.any() else 0.0,
        per_class=tuple(
            ClassMetrics(
                label=_plain(label),
                precision=float(precision[k]),
                recall=float(recall[k]),
                f1=float(f1[k]),
                support=int(support[k]),
            )
            for k, label in enumerate(classes)
        ),
        confusion_matrix=tuple(tuple(int(v) for v in row) for row in confusion.tolist()),
        ece=expected_calibration_error(proba, true_indices),
    )


def compare_runs(
    y_true: Sequence[Any],
    proba_a: np.ndarray,
    proba_b: np.ndarray,
    classes: Sequence[Any],
    *,
    rng_seed: int = 0,
    n_boot: int = 1000,
) -> RunComparison:
    """Paired comparison of two runs' predictions on the same eval items.

    Parameters
    ----------
    y_true : sequence of labels, length N
    proba_a, proba_b : ndarrays of shape (N, K)
        Run A (e.g. the previous run) and run B, columns in ``classes`` order.
    classes : sequence of K labels
    rng_seed, n_boot : int
        Seed and number of paired bootstrap resamples.

    Returns
    -------
    RunComparison
        ``n_eval``; ``accuracy_a``; ``accuracy_b``; ``difference`` (``accuracy_b - accuracy_a``);
        ``difference_ci95`` (paired percentile bootstrap); ``only_a_correct`` and
        ``only_b_correct`` (the discordant counts); ``mcnemar_p`` (exact two-sided McNemar
        test: binomial test of ``only_b_correct`` out of the discordant items at p = 1/2;
        1.0 when no item is discordant).
    """
    classes = list(classes)
    true_indices = _label_indices(y_true, classes)
    n_items = len(true_indices)
    correct_a = _check_proba(proba_a, n_items, len(classes)).argmax(axis=1) == true_indices
    correct_b = _check_proba(proba_b, n_items, len(classes)).argmax(axis=1) == true_indices
    return compare_correct(correct_a, correct_b, rng_seed=rng_seed, n_boot=n_boot)


def compare_predictions(
    y_true: Sequence[Any],
    predicted_a: Sequence[Any],
    predicted_b: Sequence[Any],
    *,
    rng_seed: int = 0,
    n_boot: int = 1000,
) -> RunComparison:
    """:func:`compare_runs` from two runs' stored predicted labels instead of their probabilities."""
    truth, a, b = (np.asarray(list(v), dtype=object) for v in (y_true, predicted_a, predicted_b))
    if not (truth.shape == a.shape == b.shape):
        raise ValueError(f"got {len(truth)} labels and {len(a)} / {len(b)} predictions")
    return compare_correct(a == truth, b == truth, rng_seed=rng_seed, n_boot=n_boot)


def compare_correct(
    correct_a: np.ndarray, correct_b: np.ndarray, *, rng_seed: int = 0, n_boot: int = 1000
) -> RunComparison:
    """The paired comparison from each run's per-item correctness (boolean arrays of length N)."""
    from scipy.stats import binomtest

    correct_a, correct_b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    n_items = len(correct_a)
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(correct_b & ~correct_a))
    both = int(np.sum(correct_a & correct_b))
    cell_counts = np.array([both, only_a, only_b, n_items - both - only_a - only_b])
    denominator = max(n_items, 1)
    resampled = np.random.default_rng(rng_seed).multinomial(n_items, cell_counts / denominator, size=n_boot)
    resampled_difference = (resampled[:, 2] - resampled[:, 1]) / denominator
    discordant = only_a + only_b
    return RunComparison(
        n_eval=n_items,
        accuracy_a=(both + only_a) / denominator,
        accuracy_b=(both + only_b) / denominator,
        difference=(only_b - only_a) / denominator,
        difference_ci95=_percentile_interval(resampled_difference),
        only_a_correct=only_a,
        only_b_correct=only_b,
        mcnemar_p=float(binomtest(only_b, discordant, 0.5).pvalue) if discordant else 1.0,
    )
