"""Models behind the scikit-learn estimator contract, over a project's full label set.

Every model takes ``classes`` (the project's labels, in order) and returns probabilities with
one column per label in that order, even when the training labels hold only some of them:

- logistic regression and the torch MLP are fitted on the seen labels; their output layer is
  then widened to all labels by :func:`_full_label_layer` (an unseen label gets probability at
  most :data:`UNSEEN_CLASS_PROBABILITY`), so their probabilities stay a softmax of the weights
  and a pool scorer reading the weights (:func:`linear_head`, :func:`mlp_layers`) computes the
  very same numbers;
- other members (naive Bayes, random forest) get :data:`UNSEEN_CLASS_PROBABILITY` for an unseen
  label, after which each row is renormalised.

Fitting is reproducible from (data, config, seed).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from workbench.errors import WorkbenchError

UNSEEN_CLASS_PROBABILITY = 1e-6
"""Probability mass a model gives a label it never saw in training (before renormalising)."""

UNSEEN_CLASS_LOGIT = math.log(UNSEEN_CLASS_PROBABILITY)
"""Logit of an unseen label in an output layer whose seen-label logits sum to zero."""

MLP_PREDICT_CHUNK_ROWS = 65_536
"""Rows per chunk in MLP prediction (hidden activations of 1M rows × 128 units are 512 MB)."""

COMMITTEE_MEMBER_TYPES = ("logreg", "complement_nb", "random_forest")

CALIBRATIONS = ("none", "temperature", "platt", "auto")
"""Probability calibration of the logistic head: ``auto`` is Platt scaling with two seen labels (its
bias moves the decision point, so it changes a margin ranking) and temperature scaling with more
(it changes a margin ranking across classes, not the predicted label)."""

CALIBRATION_FOLDS = 3
"""Folds of the labeled items whose out-of-fold logits fit the calibration."""

MIN_CALIBRATION_PER_LABEL = 3
"""A seen label needs this many examples for calibration to run (else the head stays uncalibrated)."""
"""Model types a committee may hold (scikit-learn based, so a committee is one skops file)."""


class ModelConfigError(WorkbenchError):
    """A model configuration names an unknown type or parameter."""


def _encode_labels(y: Sequence[Any], classes: np.ndarray) -> np.ndarray:
    """Positions of the labels ``y`` in ``classes``; raises on a label outside ``classes``."""
    labels = np.asarray(y)
    order = np.argsort(classes, kind="stable")
    positions = np.searchsorted(classes, labels, sorter=order)
    positions = np.clip(positions, 0, len(classes) - 1)
    indices = order[positions]
    unknown = classes[indices] != labels
    if unknown.any():
        raise ValueError(
            f"training labels {sorted(set(labels[unknown].tolist()))} are not in classes {classes.tolist()}"
        )
    return indices


def _resolve_classes(classes: Sequence[Any] | None, y: Sequence[Any]) -> np.ndarray:
    resolved = np.unique(np.asarray(y)) if classes is None else np.asarray(list(classes))
    if resolved.ndim != 1 or resolved.size == 0:
        raise ValueError("classes must be a non-empty list of labels")
    if np.unique(resolved).size != resolved.size:
        raise ValueError(f"classes must be distinct, got {resolved.tolist()}")
    return resolved


def _full_label_layer(
    weight_seen: np.ndarray, bias_seen: np.ndarray, seen: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Widen an output layer fitted on the seen labels to all ``n_classes`` labels.

    Parameters
    ----------
    weight_seen : ndarray of shape (D, S)
    bias_seen : ndarray of shape (S,)
        Logits ``z = x @ weight_seen + bias_seen`` of the S seen labels.
    seen : int ndarray of shape (S,)
        Positions of the seen labels among all labels.

    Returns
    -------
    weight : float32 ndarray of shape (D, K)
    bias : float32 ndarray of shape (K,)
        Seen columns are centred (each row of ``weight_seen``, and ``bias_seen``, minus its mean
        over the seen labels): softmax over the seen labels is unchanged and their logits sum to
        zero, so the largest is ≥ 0. Unseen columns have weight 0 and bias
        :data:`UNSEEN_CLASS_LOGIT`, so an unseen label's probability is at most
        ``exp(UNSEEN_CLASS_LOGIT) / exp(0)`` = :data:`UNSEEN_CLASS_PROBABILITY`.
    """
    weight = np.zeros((weight_seen.shape[0], n_classes), dtype=np.float32)
    bias = np.full(n_classes, UNSEEN_CLASS_LOGIT, dtype=np.float32)
    weight[:, seen] = weight_seen - weight_seen.mean(axis=1, keepdims=True)
    bias[seen] = bias_seen - bias_seen.mean()
    return weight, bias


def _softmax_rows(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, in place, in the dtype of ``logits``."""
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits


def _as_float32_features(X) -> np.ndarray | sp.csr_matrix:
    if sp.issparse(X):
        return sp.csr_matrix(X, dtype=np.float32)
    return np.asarray(X, dtype=np.float32)


class _LabelSetClassifier(ClassifierMixin, BaseEstimator):
    """Shared by the models here: ``predict`` is the most probable of ``classes_``."""

    def predict(self, X) -> np.ndarray:
        """The most probable label of each row (the first in ``classes_`` order on a tie)."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class LogisticRegressionClassifier(_LabelSetClassifier):
    """Multinomial L2 logistic regression (scikit-learn) over a fixed label set.

    The solver follows the input: ``saga`` for sparse input (0.1–0.3 s on 5,000 TF-IDF rows
    of 172,000 columns here, where ``lbfgs`` took 0.9–1.5 s, its own update step dominating
    at that width), ``lbfgs`` for dense input (few columns, and ``saga`` stalls on unscaled
    features). Both are deterministic (``saga`` shuffles with ``random_state``). The fitted
    model is the linear head ``softmax(X @ coef_.T + intercept_)`` over all of
    ``classes``, widened from the seen labels by :func:`_full_label_layer`; a binary fit
    (one logit ``z``) is first written as the two logits ``(0, z)``, so after centring it is
    ``(-z/2, z/2)``. With a single seen label, its logit is 0.

    Attributes
    ----------
    classes_ : ndarray of shape (K,)
    coef_ : float32 ndarray of shape (K, D)
    intercept_ : float32 ndarray of shape (K,)
    seen_classes_ : bool ndarray of shape (K,)
        Which labels occurred in the training labels.
    solver_ : str
        The solver used (``"saga"`` or ``"lbfgs"``; ``"none"`` when a single label was seen).
    n_iter_ : int
        Solver iterations (0 when a single label was seen).
    converged_ : bool
        False when the solver stopped at ``max_iter``; scikit-learn's ConvergenceWarning is
        turned into this attribute, which the caller can record with the run. (``saga`` at weak
        regularisation on small, separable label sets can use the whole budget.)
    calibration_ : str
        The calibration applied (``"none"``, ``"temperature"`` or ``"platt"``). With
        ``calibration`` set, the labeled items are split into :data:`CALIBRATION_FOLDS`
        stratified folds; a model fitted on the other folds gives each fold's logits, and those
        held-out logits fit a temperature ``T`` (logits / T) or Platt's ``(a, b)`` (binary logit
        ``a z + b``) by maximum likelihood. The fitted head is then rescaled in place, so it is
        still the linear head ``softmax(X @ coef_.T + intercept_)`` and a pool scorer reading the
        weights computes the calibrated probabilities. Skipped (``"none"``) when a seen label has
        fewer than :data:`MIN_CALIBRATION_PER_LABEL` examples.
    temperature_ : float
        ``T`` (1.0 unless temperature scaling ran).
    platt_ : tuple of float
        ``(a, b)`` ((1.0, 0.0) unless Platt scaling ran).
    """

    def __init__(
        self,
        classes: Sequence[Any] | None = None,
        C: float = 1.0,
        class_weight: str | dict | None = None,
        max_iter: int = 1000,
        random_state: int = 0,
        calibration: str = "none",
    ) -> None:
        self.classes = classes
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.random_state = random_state
        self.calibration = calibration

    def fit(self, X, y) -> LogisticRegressionClassifier:
        from sklearn.linear_model import LogisticRegression

        if self.calibration not in CALIBRATIONS:
            raise ModelConfigError(f"unknown calibration {self.calibration!r}; choose one of {list(CALIBRATIONS)}")
        X = _as_float32_features(X)
        self.classes_ = _resolve_classes(self.classes, y)
        label_indices = _encode_labels(y, self.classes_)
        seen = np.unique(label_indices)
        n_features = X.shape[1]
        self.calibration_, self.temperature_, self.platt_ = "none", 1.0, (1.0, 0.0)
        if seen.size == 1:
            weight_seen, bias_seen = np.zeros((n_features, 1)), np.zeros(1)
            self.solver_, self.n_iter_, self.converged_ = "none", 0, True
        else:
            class_weight = self.class_weight
            if isinstance(class_weight, dict):  # by label; scikit-learn refuses weights of unseen labels
                weighted = _encode_labels(list(class_weight), self.classes_)
                class_weight = {
                    int(index): weight for index, weight in zip(weighted, class_weight.values()) if index in seen
                }
            self.solver_ = "saga" if sp.issparse(X) else "lbfgs"
            regression = LogisticRegression(
                C=self.C,
                class_weight=class_weight,
                solver=self.solver_,
                max_iter=self.max_iter,
                random_state=self.random_state,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                regression.fit(X, label_indices)
            weight_seen, bias_seen = regression.coef_.T.astype(np.float64), regression.intercept_.astype(np.float64)
            if seen.size == 2:
                weight_seen = np.column_stack([np.zeros(n_features), weight_seen[:, 0]])
                bias_seen = np.array([0.0, bias_seen[0]])
            self.n_iter_ = int(np.max(regression.n_iter_))
            self.converged_ = self.n_iter_ < self.max_iter
            weight_seen, bias_seen = self._calibrate(regression, X, label_indices, seen, weight_seen, bias_seen)
        weight, self.intercept_ = _full_label_layer(weight_seen, bias_seen, seen, len(self.classes_))
        self.coef_ = np.ascontiguousarray(weight.T)
        self.seen_classes_ = np.isin(np.arange(len(self.classes_)), seen)
        self.n_features_in_ = n_features
        return self

    def _calibrate(
        self, regression, X, label_indices: np.ndarray, seen: np.ndarray, weight_seen: np.ndarray, bias_seen: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fit the calibration on out-of-fold logits and fold it into the seen-label layer."""
        method = self.calibration
        if method == "auto":
            method = "platt" if seen.size == 2 else "temperature"
        if method == "none":
            return weight_seen, bias_seen
        counts = np.bincount(label_indices)[seen]
        if counts.min() < MIN_CALIBRATION_PER_LABEL:
            return weight_seen, bias_seen
        if method == "platt" and seen.size != 2:
            raise ModelConfigError("Platt scaling needs exactly two labels; use temperature (or auto)")
        from sklearn.model_selection import StratifiedKFold

        folds = StratifiedKFold(
            n_splits=min(CALIBRATION_FOLDS, int(counts.min())), shuffle=True, random_state=self.random_state
        )
        held_out_logits = np.zeros((X.shape[0], seen.size))
        for train_rows, test_rows in folds.split(np.zeros(len(label_indices)), label_indices):
            fold_model = clone(regression)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                fold_model.fit(X[train_rows], label_indices[train_rows])
            if np.unique(label_indices[train_rows]).size != seen.size:
                return weight_seen, bias_seen
            logits = np.asarray(fold_model.decision_function(X[test_rows]), dtype=np.float64)
            held_out_logits[test_rows] = np.column_stack([np.zeros_like(logits), logits]) if seen.size == 2 else logits
        target = np.searchsorted(seen, label_indices)
        if method == "temperature":
            temperature = _fit_temperature(held_out_logits, target)
            self.calibration_, self.temperature_ = "temperature", temperature
            return weight_seen / temperature, bias_seen / temperature
        a, b = _fit_platt(held_out_logits[:, 1] - held_out_logits[:, 0], target)
        if a <= 0:  # the held-out logits rank the wrong way round: keep the model as it is
            return weight_seen, bias_seen
        self.calibration_, self.platt_ = "platt", (a, b)
        weight = np.column_stack([np.zeros(weight_seen.shape[0]), a * (weight_seen[:, 1] - weight_seen[:, 0])])
        bias = np.array([0.0, a * (bias_seen[1] - bias_seen[0]) + b])
        return weight, bias

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities, float32 ``(N, K)``, columns in ``classes_`` order."""
        check_is_fitted(self, "coef_")
        logits = np.asarray(_as_float32_features(X) @ self.coef_.T)
        logits += self.intercept_
        return _softmax_rows(logits)


def _fit_temperature(logits: np.ndarray, target: np.ndarray) -> float:
    """The temperature ``T`` minimising the negative log-likelihood of ``softmax(logits / T)``."""
    from scipy.optimize import minimize_scalar
    from scipy.special import logsumexp

    rows = np.arange(len(target))

    def nll(log_t: float) -> float:
        scaled = logits / np.exp(log_t)
        return float(np.mean(logsumexp(scaled, axis=1) - scaled[rows, target]))

    return float(np.exp(minimize_scalar(nll, bounds=(-4.0, 4.0), method="bounded").x))


def _fit_platt(z: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Platt's ``(a, b)``: ``P(second label) = sigmoid(a z + b)`` by maximum likelihood, with Platt's
    smoothed targets ``(n+ + 1) / (n+ + 2)`` and ``1 / (n- + 2)`` against overconfidence on few labels."""
    from scipy.optimize import minimize
    from scipy.special import log_expit

    positives = int(target.sum())
    negatives = len(target) - positives
    soft = np.where(target == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))

    def nll(params: np.ndarray) -> float:
        logit = params[0] * z + params[1]
        return float(-np.mean(soft * log_expit(logit) + (1 - soft) * log_expit(-logit)))

    result = minimize(nll, np.array([1.0, 0.0]), method="L-BFGS-B")
    return float(result.x[0]), float(result.x[1])


class LabelSetAdapter(_LabelSetClassifier):
    """Fits a scikit-learn classifier on the labels seen and reports all of ``classes``.

    Unseen labels get :data:`UNSEEN_CLASS_PROBABILITY`, then each row is renormalised. With a
    single seen label the estimator is not fitted and that label takes the remaining mass.

    Attributes
    ----------
    classes_ : ndarray of shape (K,)
    estimator_ : fitted clone of ``estimator`` (None when a single label was seen)
    seen_class_indices_ : int ndarray
        Positions in ``classes_`` of the seen labels, in the order of the estimator's columns.
    """

    def __init__(self, estimator: BaseEstimator, classes: Sequence[Any] | None = None) -> None:
        self.estimator = estimator
        self.classes = classes

    def fit(self, X, y) -> LabelSetAdapter:
        X = _as_float32_features(X)
        self.classes_ = _resolve_classes(self.classes, y)
        label_indices = _encode_labels(y, self.classes_)
        self.seen_class_indices_ = np.unique(label_indices)
        self.n_features_in_ = X.shape[1]
        self.estimator_ = None
        if self.seen_class_indices_.size > 1:
            self.estimator_ = clone(self.estimator).fit(X, label_indices)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities, float32 ``(N, K)``, columns in ``classes_`` order."""
        check_is_fitted(self, "seen_class_indices_")
        X = _as_float32_features(X)
        proba = np.full((X.shape[0], len(self.classes_)), UNSEEN_CLASS_PROBABILITY, dtype=np.float32)
        if self.estimator_ is None:
            proba[:, self.seen_class_indices_] = 1.0
        else:
            proba[:, self.seen_class_indices_] = self.estimator_.predict_proba(X)
        proba /= proba.sum(axis=1, keepdims=True)
        return proba


class TorchMLPClassifier(_LabelSetClassifier):
    """One-hidden-layer ReLU network trained with Adam on cross-entropy, in torch.

    The network is trained with one output per seen label; its output layer is then widened
    to all of ``classes`` by :func:`_full_label_layer`, as for logistic regression.

    Dense input goes through ``X @ W1`` with Adam. CSR input is fed one batch of rows at a
    time as an ``embedding_bag`` sum over the row's non-zeros (the same ``X @ W1``, without
    densifying), with sparse gradients and ``SparseAdam`` (lazy Adam: a row of ``W1`` moves
    only in steps whose batch uses that feature). On 5,000 TF-IDF rows of 15,700 features
    this was 8 times faster than densifying each batch, and the gap grows with the width.

    Training runs on one torch thread (OpenMP threads spinning against other busy processes
    made each small op up to 100 times slower here) under ``torch.random.fork_rng`` seeded with
    ``random_state`` (weights, dropout masks, batch order): it is reproducible and leaves
    torch's global state as it was. torch is imported only by :meth:`fit`; the fitted weights
    are NumPy arrays and :meth:`predict_proba` is NumPy.

    Attributes
    ----------
    classes_ : ndarray of shape (K,)
    coefs_ : list of float32 ndarrays, shapes (D, hidden) and (hidden, K)
    intercepts_ : list of float32 ndarrays, shapes (hidden,) and (K,)
    """

    def __init__(
        self,
        classes: Sequence[Any] | None = None,
        hidden: int = 128,
        epochs: int = 30,
        dropout: float = 0.2,
        lr: float = 1e-3,
        batch_size: int = 64,
        random_state: int = 0,
    ) -> None:
        self.classes = classes
        self.hidden = hidden
        self.epochs = epochs
        self.dropout = dropout
        self.lr = lr
        self.batch_size = batch_size
        self.random_state = random_state

    def fit(self, X, y) -> TorchMLPClassifier:
        import torch

        X = _as_float32_features(X)
        self.classes_ = _resolve_classes(self.classes, y)
        label_indices = _encode_labels(y, self.classes_)
        seen = np.unique(label_indices)
        targets = torch.from_numpy(np.searchsorted(seen, label_indices).astype(np.int64))
        n_samples, n_features = X.shape
        sparse_input = sp.issparse(X)
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.random_state)
                first_layer = torch.nn.Linear(n_features, self.hidden)
                input_weight = torch.nn.Parameter(first_layer.weight.detach().T.contiguous())
                input_bias = first_layer.bias
                output_layer = torch.nn.Linear(self.hidden, seen.size)
                head = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Dropout(self.dropout), output_layer)
                dense_parameters = [input_bias, *head.parameters()]
                if sparse_input:
                    optimizers = [
                        torch.optim.SparseAdam([input_weight], lr=self.lr),
                        torch.optim.Adam(dense_parameters, lr=self.lr),
                    ]
                else:
                    optimizers = [torch.optim.Adam([input_weight, *dense_parameters], lr=self.lr)]
                head.train()
                for _ in range(self.epochs):
                    for batch in torch.randperm(n_samples).split(self.batch_size):
                        for optimizer in optimizers:
                            optimizer.zero_grad()
                        hidden = _torch_input_layer(torch, X, batch.numpy(), input_weight) + input_bias
                        loss = torch.nn.functional.cross_entropy(head(hidden), targets[batch])
                        loss.backward()
                        for optimizer in optimizers:
                            optimizer.step()
        finally:
            torch.set_num_threads(previous_threads)
        output_weight, output_bias = _full_label_layer(
            output_layer.weight.detach().numpy().T.astype(np.float64),
            output_layer.bias.detach().numpy().astype(np.float64),
            seen,
            len(self.classes_),
        )
        self.coefs_ = [input_weight.detach().numpy().astype(np.float32), output_weight]
        self.intercepts_ = [input_bias.detach().numpy().astype(np.float32), output_bias]
        self.n_features_in_ = n_features
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities, float32 ``(N, K)``: ``softmax(relu(X W1 + b1) W2 + b2)`` (dropout off),
        computed :data:`MLP_PREDICT_CHUNK_ROWS` rows at a time to bound the hidden activations."""
        check_is_fitted(self, "coefs_")
        X = _as_float32_features(X)
        proba = np.empty((X.shape[0], len(self.classes_)), dtype=np.float32)
        for start in range(0, X.shape[0], MLP_PREDICT_CHUNK_ROWS):
            rows = slice(start, start + MLP_PREDICT_CHUNK_ROWS)
            hidden = np.asarray(X[rows] @ self.coefs_[0])
            hidden += self.intercepts_[0]
            np.maximum(hidden, 0.0, out=hidden)
            logits = hidden @ self.coefs_[1]
            logits += self.intercepts_[1]
            proba[rows] = _softmax_rows(logits)
        return proba


def _torch_input_layer(torch, X: np.ndarray | sp.csr_matrix, rows: np.ndarray, weight):
    """``X[rows] @ weight`` as a torch tensor; CSR rows as an embedding-bag sum (sparse gradient)."""
    if not sp.issparse(X):
        return torch.from_numpy(np.ascontiguousarray(X[rows])) @ weight
    batch = X[rows]
    return torch.nn.functional.embedding_bag(
        torch.from_numpy(batch.indices.astype(np.int64)),
        weight,
        torch.from_numpy(batch.indptr[:-1].astype(np.int64)),
        mode="sum",
        sparse=True,
        per_sample_weights=torch.from_numpy(np.ascontiguousarray(batch.data)),
    )


def _default_member_specs(size: int, sparse_features: bool) -> list[dict]:
    """Diverse members: logistic regressions at C = 1, 0.1 and 10, a second model family
    (complement naive Bayes on sparse, non-negative text features; a random forest on dense
    features), then logistic regressions on bootstrap resamples."""
    other_family = {"type": "complement_nb"} if sparse_features else {"type": "random_forest"}
    recipe: list[dict[str, Any]] = [
        {"type": "logreg", "C": 1.0},
        other_family,
        {"type": "logreg", "C": 0.1},
        {"type": "logreg", "C": 10.0},
    ]
    bootstraps = [{"type": "logreg", "C": 1.0, "bootstrap": True}] * max(0, size - len(recipe))
    return [dict(spec) for spec in (recipe + bootstraps)[:size]]


class CommitteeClassifier(_LabelSetClassifier):
    """A committee of diverse members for query-by-committee; predicts their mean.

    ``members`` is a list of member configs (``{"type": t, ...}`` with ``t`` in
    :data:`COMMITTEE_MEMBER_TYPES`, plus ``"bootstrap": True`` to fit that member on a
    bootstrap resample); when None, ``size`` members are chosen by
    :func:`_default_member_specs` from the kind of features seen at fit. Member ``i`` is seeded
    with the ``i``-th child of ``numpy.random.SeedSequence(random_state)``.

    Attributes
    ----------
    classes_ : ndarray of shape (K,)
    members_ : list of fitted member estimators
    member_specs_ : list of dict
        The member configs actually used.
    """

    def __init__(
        self,
        classes: Sequence[Any] | None = None,
        members: Sequence[dict] | None = None,
        size: int = 5,
        random_state: int = 0,
    ) -> None:
        self.classes = classes
        self.members = members
        self.size = size
        self.random_state = random_state

    def fit(self, X, y) -> CommitteeClassifier:
        X = _as_float32_features(X)
        y = np.asarray(y)
        self.classes_ = _resolve_classes(self.classes, y)
        if self.members is not None:
            specs = [dict(spec) for spec in self.members]
        else:
            specs = _default_member_specs(self.size, sp.issparse(X))
        if not specs:
            raise ModelConfigError("a committee needs at least one member")
        for spec in specs:
            if spec.get("type", "logreg") not in COMMITTEE_MEMBER_TYPES:
                raise ModelConfigError(
                    f"committee member type {spec.get('type')!r} is not one of {list(COMMITTEE_MEMBER_TYPES)}"
                )
        member_seeds = [
            int(sequence.generate_state(1)[0])
            for sequence in np.random.SeedSequence(self.random_state).spawn(len(specs))
        ]
        self.members_ = []
        for spec, seed in zip(specs, member_seeds, strict=True):
            config = {key: value for key, value in spec.items() if key != "bootstrap"}
            member = make_model(config, seed, self.classes_.tolist())
            rows = np.random.default_rng(seed).integers(0, X.shape[0], X.shape[0]) if spec.get("bootstrap") else None
            self.members_.append(member.fit(X, y) if rows is None else member.fit(X[rows], y[rows]))
        self.member_specs_ = specs
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba_members(self, X) -> np.ndarray:
        """Each member's probabilities, float32 ``(M, N, K)``."""
        check_is_fitted(self, "members_")
        X = _as_float32_features(X)
        return np.stack([member.predict_proba(X) for member in self.members_]).astype(np.float32, copy=False)

    def predict_proba(self, X) -> np.ndarray:
        """Mean of the members' probabilities, float32 ``(N, K)``."""
        return self.predict_proba_members(X).mean(axis=0)


def _complement_nb(classes: Sequence[Any] | None, random_state: int, **params) -> LabelSetAdapter:
    from sklearn.naive_bayes import ComplementNB

    del random_state  # naive Bayes is deterministic
    return LabelSetAdapter(ComplementNB(**params), classes=classes)


def _random_forest(classes: Sequence[Any] | None, random_state: int, **params) -> LabelSetAdapter:
    from sklearn.ensemble import RandomForestClassifier

    return LabelSetAdapter(RandomForestClassifier(random_state=random_state, **params), classes=classes)


_MODEL_BUILDERS: dict[str, tuple[Callable[..., BaseEstimator], tuple[str, ...]]] = {
    "logreg": (LogisticRegressionClassifier, ("C", "class_weight", "max_iter", "calibration")),
    "mlp": (TorchMLPClassifier, ("hidden", "epochs", "dropout", "lr", "batch_size")),
    "committee": (CommitteeClassifier, ("members", "size")),
    "complement_nb": (_complement_nb, ("alpha", "norm")),
    "random_forest": (_random_forest, ("n_estimators", "max_depth", "min_samples_leaf", "max_features")),
}


def make_model(config: dict | None, seed: int, classes: Sequence[Any] | None = None) -> BaseEstimator:
    """An unfitted model for a config.

    Parameters
    ----------
    config : dict
        ``{"type": "logreg", "C": 1.0, "class_weight": None, "calibration": "none"}`` (the default
        type; ``calibration`` one of :data:`CALIBRATIONS`),
        ``{"type": "mlp", "hidden": 128, "epochs": 30, "dropout": 0.2, "lr": 1e-3}``,
        ``{"type": "committee", "size": 5}`` or ``{"type": "committee", "members": [...]}``,
        ``{"type": "complement_nb", "alpha": 1.0}``, ``{"type": "random_forest", ...}``.
    seed : int
        Seeds every random choice of the fit.
    classes : sequence, optional
        The project's full, ordered label list; probabilities always have these columns.
        When None, the labels seen at fit.

    Raises
    ------
    ModelConfigError
        Unknown type or parameter.
    """
    params = dict(config or {})
    model_type = params.pop("type", "logreg")
    if model_type not in _MODEL_BUILDERS:
        raise ModelConfigError(f"unknown model type {model_type!r}; choose one of {sorted(_MODEL_BUILDERS)}")
    builder, allowed = _MODEL_BUILDERS[model_type]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ModelConfigError(f"unknown {model_type} parameters {unknown}; allowed: {list(allowed)}")
    return builder(classes=classes, random_state=int(seed), **params)


def linear_head(model: BaseEstimator) -> tuple[np.ndarray, np.ndarray] | None:
    """The linear head of a logistic regression, or None for other models.

    Returns
    -------
    W : float32 ndarray of shape (D, K)
    b : float32 ndarray of shape (K,)
        ``softmax(X @ W + b)`` equals ``model.predict_proba(X)``. A binary model comes as the
        equivalent K = 2 head (logits ``∓z/2``), so every head is scored the same way.
    """
    if not isinstance(model, LogisticRegressionClassifier):
        return None
    check_is_fitted(model, "coef_")
    return np.ascontiguousarray(model.coef_.T), model.intercept_.copy()


def mlp_layers(model: BaseEstimator) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """The layers ``[(W1 (D, H), b1 (H,)), (W2 (H, K), b2 (K,))]`` of a torch MLP, else None.

    ``predict_proba(X) = softmax(relu(X @ W1 + b1) @ W2 + b2)``; dropout (rate
    ``model.dropout``, after the ReLU) is off at prediction.
    """
    if not isinstance(model, TorchMLPClassifier):
        return None
    check_is_fitted(model, "coefs_")
    return [(W.copy(), b.copy()) for W, b in zip(model.coefs_, model.intercepts_, strict=True)]
