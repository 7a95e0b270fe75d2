"""Score a whole pool from its features and a model, chunk by chunk, in float32.

``score_pool`` is the one entry point the services layer needs once a model exists: it turns
(features, model, strategy name) into a :class:`QueryResult`. Linear and MLP heads are evaluated
straight from their weights in float32 chunks (no float64 copy of the pool); any other model's
``predict_proba`` is called one chunk at a time. Per-item strategies write each chunk's scores
into one float32 vector of length N and select the top n from it, so the extra memory is that
vector plus one chunk's temporaries (chunks are sized to stay within a few percent of the pool).

Binary heads (one logit ``z``) with least confidence, margin or entropy skip probabilities
altogether: all three are decreasing functions of ``|2 sigmoid(z) - 1|``, hence of ``|z|``, so
the pool is ranked by ``-|z|`` and only the chosen items' scores are computed. That costs one
float32 matrix-vector product per chunk.

Probabilities are laid out class-major in memory (classes, members, rows) and handed to the
scorers as (members, rows, classes) views: every reduction over the few classes then runs as
a vectorised operation across rows instead of one short reduction per row (5-10x faster).

Threads: on a small machine whose cores are shared, call ``score_pool`` under
``threadpoolctl.threadpool_limits(1, user_api="blas")``. After each chunk's matrix product,
OpenBLAS's worker threads keep spinning and compete with the element-wise work that follows;
on 2 shared cores, 5-member QBC over 10^6 x 64 took 0.22 s with one BLAS thread and 1.0 s with
the default. (This package imports numpy and scipy only, so it cannot set that itself.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from strategies._rows import Rows
from strategies._validate import check_features, check_n, check_rng
from strategies.registry import REGISTRY, Strategy
from strategies.select import QueryResult, select_top_k

#: Chunks are sized so one chunk's temporaries stay under this fraction of the pool's bytes...
CHUNK_MEMORY_FRACTION = 0.05
#: ...and under this many bytes, so the element-wise passes over them run in cache. The chunk of
#: the pool itself is a view (dense float32) and only streams through the matrix product.
CHUNK_TEMPORARY_BYTES = 8 * 2**20
MIN_CHUNK_ROWS = 1024
#: Few, large chunks for heads with one logit: each BLAS call wakes its threads, which costs
#: more than the chunk's 4 bytes a row when other processes share the cores.
MAX_CHUNK_ROWS = 262_144
#: Float32 temporaries per class and member while turning logits into scores (softmax, scorer).
_TEMPORARIES_PER_OUTPUT = 6
#: MC-dropout passes per item for BALD (Gal et al. 2017 use 20 for their image experiments).
MC_PASSES = 20


@dataclass(frozen=True, eq=False)
class LinearHead:
    """A linear classifier given by its weights: ``logits = X @ weights + biases``.

    Attributes
    ----------
    weights : np.ndarray, shape (D, K), or (D, 1) / (D,) for a binary model
        With K >= 2 outputs, probabilities are ``softmax(logits)``. With one output ``z``,
        ``P(class 1) = sigmoid(z)`` and ``P(class 0) = 1 - sigmoid(z)``. A scikit-learn
        ``LogisticRegression`` is ``LinearHead(clf.coef_.T, clf.intercept_)``.
    biases : np.ndarray, shape (K,), or a scalar for a binary model
    """

    weights: np.ndarray
    biases: np.ndarray

    def __post_init__(self) -> None:
        weights, biases = _as_layer(self.weights, self.biases, "LinearHead")
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "biases", biases)

    @property
    def n_features(self) -> int:
        return self.weights.shape[0]

    @property
    def n_outputs(self) -> int:
        return self.weights.shape[1]

    def single_logit(self, rows: Rows) -> np.ndarray:
        """Float32 logit of shape (c,) of a one-output head, for float32 rows of shape (c, D)."""
        logit = np.asarray(rows @ self.weights[:, 0])
        logit += self.biases[0]
        return logit

    def class_major_logits(self, rows: Rows) -> np.ndarray:
        """Float32 logits of shape (K, c), class-major, for float32 rows of shape (c, D)."""
        return _class_major_affine(rows, self.weights, self.biases)


@dataclass(frozen=True, eq=False)
class MLPHead:
    """A multi-layer perceptron given by its layers: ReLU between layers, none after the last.

    Attributes
    ----------
    layers : sequence of (weights, biases)
        ``weights`` of shape (D_in, D_out), ``biases`` of shape (D_out,). The last layer's
        outputs are logits, read as in :class:`LinearHead` (one output = binary sigmoid).
    dropout : float in [0, 1)
        Dropout rate after each hidden ReLU, as trained (off for :meth:`class_major_logits`;
        on, with fresh masks per pass, in :meth:`mc_probabilities`). 0 = no MC dropout.
    """

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    dropout: float = 0.0

    def __post_init__(self) -> None:
        layers = tuple(_as_layer(weights, biases, "MLPHead layer") for weights, biases in self.layers)
        if not layers:
            raise ValueError("MLPHead needs at least one layer")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"MLPHead dropout must be in [0, 1), got {self.dropout}")
        object.__setattr__(self, "dropout", float(self.dropout))
        for (previous, _), (current, _) in zip(layers, layers[1:]):
            if previous.shape[1] != current.shape[0]:
                raise ValueError(
                    f"MLPHead layers do not chain: {previous.shape[1]} outputs feed {current.shape[0]} inputs"
                )
        object.__setattr__(self, "layers", layers)

    @property
    def n_features(self) -> int:
        return self.layers[0][0].shape[0]

    @property
    def n_outputs(self) -> int:
        return self.layers[-1][0].shape[1]

    def single_logit(self, rows: Rows) -> np.ndarray:
        """Float32 logit of shape (c,) of a one-output head, for float32 rows of shape (c, D)."""
        return self.class_major_logits(rows)[0]

    def class_major_logits(self, rows: Rows) -> np.ndarray:
        """Float32 logits of shape (K, c), class-major, for float32 rows of shape (c, D)."""
        activations = rows
        for weights, biases in self.layers[:-1]:
            activations = np.asarray(activations @ weights)
            activations += biases
            np.maximum(activations, 0, out=activations)
        weights, biases = self.layers[-1]
        return _class_major_affine(activations, weights, biases)

    @property
    def supports_mc_dropout(self) -> bool:
        return self.dropout > 0 and len(self.layers) >= 2

    def mc_probabilities(self, rows: Rows, passes: int, rng: np.random.Generator) -> np.ndarray:
        """MC-dropout class probabilities, a (T, c, K) float32 view of class-major (K, T, c) memory.

        The first layer is computed once; each of the ``passes`` stochastic passes draws fresh
        inverted-dropout masks (keep with probability ``1 - dropout``, scale by its inverse)
        after every hidden ReLU, as the network was trained (Gal & Ghahramani, 2016).
        """
        if not self.supports_mc_dropout:
            raise ValueError("MC dropout needs an MLP with a hidden layer and a dropout rate above 0")
        if passes < 2:
            raise ValueError(f"MC dropout needs at least 2 passes, got {passes}")
        keep = np.float32(1.0 - self.dropout)
        weights, biases = self.layers[0]
        first = np.asarray(rows @ weights)
        first += biases
        np.maximum(first, 0, out=first)
        out = None
        for t in range(passes):
            activations = first
            for index, (weights, biases) in enumerate(self.layers[1:], start=1):
                activations = activations * (rng.random(activations.shape, dtype=np.float32) < keep)
                activations /= keep
                if index == len(self.layers) - 1:
                    break
                activations = np.asarray(activations @ weights)
                activations += biases
                np.maximum(activations, 0, out=activations)
            proba = _class_major_probabilities(_class_major_affine(activations, weights, biases))
            if out is None:
                out = np.empty((proba.shape[0], passes, proba.shape[1]), dtype=np.float32)
            out[:, t] = proba
        assert out is not None  # passes >= 2
        return out.transpose(1, 2, 0)


def _class_major_affine(rows: Rows, weights: np.ndarray, biases: np.ndarray) -> np.ndarray:
    """``(rows @ weights + biases).T`` computed straight into a C-contiguous (K, c) float32 array."""
    if sp.issparse(rows):
        logits = np.ascontiguousarray(np.asarray(rows @ weights).T)
    else:
        logits = np.matmul(weights.T, rows.T)
    logits += biases[:, None]
    return logits


def _as_layer(weights: object, biases: object, what: str) -> tuple[np.ndarray, np.ndarray]:
    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim == 1:
        weights = weights[:, None]
    if weights.ndim != 2:
        raise ValueError(f"{what} weights must have shape (D, K), got shape {weights.shape}")
    biases = np.asarray(biases, dtype=np.float32).reshape(-1)
    if biases.shape != (weights.shape[1],):
        raise ValueError(f"{what} biases must have shape ({weights.shape[1]},), got shape {biases.shape}")
    if not (np.isfinite(weights).all() and np.isfinite(biases).all()):
        raise ValueError(f"{what} weights or biases contain NaN or infinite values")
    return np.ascontiguousarray(weights), biases


def _class_major_probabilities(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from class-major logits, in place where possible.

    Parameters
    ----------
    logits : np.ndarray, shape (K, ...)
        K >= 2: softmax over axis 0. K == 1: binary, ``[1 - sigmoid(z), sigmoid(z)]``.

    Returns
    -------
    np.ndarray, shape (max(K, 2), ...), dtype of ``logits``
    """
    if logits.shape[0] == 1:
        positive = expit(logits)
        return np.concatenate([1 - positive, positive], axis=0)
    logits -= logits.max(axis=0)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=0)
    return logits


def score_pool(
    X: Rows,
    model: Any,
    strategy_name: str,
    n: int,
    *,
    rng: np.random.Generator,
    chunk_rows: int | None = None,
    mc_passes: int = MC_PASSES,
    **extra: object,
) -> QueryResult:
    """Rank a pool with a registered strategy, computing the model's predictions chunk by chunk.

    Parameters
    ----------
    X : np.ndarray (incl. np.memmap) or scipy.sparse CSR, shape (N, D)
        The pool's features; float32 is read without copying the pool.
    model : LinearHead, MLPHead, object with ``predict_proba``, or a list of them
        A list of at least 2 for committee strategies (``input == "committee"``). Ignored by
        strategies that need no model (``"pool_size"``, ``"features"``); passed as ``model=``
        to plug-ins (``"model"``).
    strategy_name : str
        A key of :data:`strategies.REGISTRY`. ``"mc_samples"`` strategies (BALD) need an
        :class:`MLPHead` with ``dropout > 0``: its MC-dropout passes are drawn chunk by chunk
        from ``rng`` (for a torch module, use :func:`strategies.mc_dropout_samples` instead).
    n : int
        How many items to choose, ``1 <= n <= N``.
    rng : np.random.Generator
        Tie-breaking (and any other) randomness.
    chunk_rows : int, optional
        Rows per chunk; by default sized to keep one chunk's temporaries under both 5% of the
        pool's bytes and 8 MiB, between 1024 and 262144 rows.
    mc_passes : int
        Stochastic forward passes per item for ``"mc_samples"`` strategies.
    **extra
        Further keywords for the strategy (e.g. ``labeled_features=`` for ``margin_batch``);
        ``features=X`` is passed automatically to strategies with ``needs_features``.

    Returns
    -------
    QueryResult
        ``n`` positions into X, best first, with their scores.
    """
    check_rng(rng)
    strategy = _lookup(strategy_name)
    X = check_features(X)
    pool_size = X.shape[0]
    n = check_n(n, pool_size)
    if chunk_rows is not None and chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    if strategy.input == "pool_size":
        return strategy(pool_size, n, rng=rng, **extra)
    if strategy.input == "features":
        return strategy(X, n, rng=rng, **extra)
    if strategy.input == "model":
        return strategy(None, n, rng=rng, model=model, features=X, **extra)
    if strategy.input == "mc_samples":
        return _score_mc_dropout(X, model, strategy, n, rng=rng, passes=mc_passes, chunk_rows=chunk_rows, extra=extra)
    committee = strategy.input == "committee"
    predictor = _PoolPredictor(X, _members(model, committee=committee), chunk_rows)
    if strategy.needs_features:
        extra = {"features": X, **extra}
    if strategy.row_scorer is None:
        return strategy(predictor.all_probabilities(committee=committee), n, rng=rng, **extra)
    if strategy.decreasing_in_binary_margin and predictor.is_single_logit and not extra:
        ranking = select_top_k(predictor.negative_abs_logits(), n, rng=rng)
        chosen_proba = predictor.probabilities(_rows_as_float32(X[ranking.indices]))[0]
        return QueryResult(ranking.indices, strategy.row_scorer(chosen_proba))
    scores = predictor.streamed_scores(strategy.row_scorer, committee=committee)
    return strategy.score_selector(scores, n, rng=rng, **extra)


def _score_mc_dropout(
    X,
    model: Any,
    strategy: Strategy,
    n: int,
    *,
    rng: np.random.Generator,
    passes: int,
    chunk_rows: int | None,
    extra: dict,
) -> QueryResult:
    """A ``"mc_samples"`` strategy over the pool: MC-dropout passes of an MLP head, chunk by chunk."""
    if not isinstance(model, MLPHead) or not model.supports_mc_dropout:
        raise ValueError(
            f"strategy {strategy.name!r} needs MC-dropout samples: pass an MLPHead with dropout > 0 "
            f"(got {type(model).__name__}), or compute samples with mc_dropout_samples(module, X, T, seed=...) "
            f"and call REGISTRY[{strategy.name!r}] directly"
        )
    if model.n_features != X.shape[1]:
        raise ValueError(f"the model expects {model.n_features} features, the pool has {X.shape[1]}")
    if strategy.needs_features:
        extra = {"features": X, **extra}
    if chunk_rows is None:
        hidden = sum(weights.shape[1] for weights, _ in model.layers[:-1])
        per_row = 4 * (3 * hidden + _TEMPORARIES_PER_OUTPUT * passes * max(model.n_outputs, 2))
        budget = min(CHUNK_MEMORY_FRACTION * _pool_nbytes(X), CHUNK_TEMPORARY_BYTES)
        chunk_rows = max(MIN_CHUNK_ROWS, min(MAX_CHUNK_ROWS, int(budget // per_row)))
    if strategy.row_scorer is None:
        samples = np.concatenate(
            [
                model.mc_probabilities(_rows_as_float32(X[start : start + chunk_rows]), passes, rng)
                for start in range(0, X.shape[0], chunk_rows)
            ],
            axis=1,
        )
        return strategy(samples, n, rng=rng, **extra)
    scores = np.empty(X.shape[0], dtype=np.float32)
    for start in range(0, X.shape[0], chunk_rows):
        stop = min(start + chunk_rows, X.shape[0])
        scores[start:stop] = strategy.row_scorer(model.mc_probabilities(_rows_as_float32(X[start:stop]), passes, rng))
    return strategy.score_selector(scores, n, rng=rng, **extra)


def _lookup(strategy_name: str) -> Strategy:
    try:
        return REGISTRY[strategy_name]
    except KeyError:
        raise ValueError(f"unknown strategy {strategy_name!r}; known: {sorted(REGISTRY)}") from None


def _members(model: Any, *, committee: bool) -> list[Any]:
    is_list = isinstance(model, Sequence) and not isinstance(model, (str, bytes))
    if committee:
        if not is_list:
            raise ValueError("a committee strategy needs a list of models")
        if len(model) < 2:
            raise ValueError(f"a committee needs at least 2 members, got {len(model)}")
        members = list(model)
    else:
        if is_list:
            raise ValueError("this strategy scores one model; pass a single model, not a list")
        members = [model]
    for member in members:
        if not isinstance(member, (LinearHead, MLPHead)) and not callable(getattr(member, "predict_proba", None)):
            raise ValueError(
                f"a model must be a LinearHead, an MLPHead or have predict_proba, got {type(member).__name__}"
            )
    return members


def _rows_as_float32(rows: Rows) -> Rows:
    if sp.issparse(rows):
        return rows.astype(np.float32, copy=False)
    return np.asarray(rows, dtype=np.float32)


def _pool_nbytes(X: Rows) -> int:
    if sp.issparse(X):
        return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    return X.size * X.itemsize


class _PoolPredictor:
    """Members' class probabilities over a pool, one chunk of rows at a time."""

    def __init__(self, X: Rows, members: list[Any], chunk_rows: int | None) -> None:
        self.X = X
        self.members = members
        for member in members:
            if isinstance(member, (LinearHead, MLPHead)) and member.n_features != X.shape[1]:
                raise ValueError(f"the model expects {member.n_features} features, the pool has {X.shape[1]}")
        self.stacked_head = self._stack_linear_heads(members)
        self.chunk_rows = chunk_rows or self._default_chunk_rows()

    @staticmethod
    def _stack_linear_heads(members: list[Any]) -> LinearHead | None:
        """One head whose class-major logits are (class, member) pairs: every member in one matmul."""
        if len(members) < 2 or not all(isinstance(member, LinearHead) for member in members):
            return None
        if len({member.n_outputs for member in members}) != 1:
            return None
        weights = np.stack([member.weights for member in members], axis=2)
        biases = np.stack([member.biases for member in members], axis=1)
        return LinearHead(weights.reshape(weights.shape[0], -1), biases.reshape(-1))

    def _default_chunk_rows(self) -> int:
        n_rows, n_features = self.X.shape
        if sp.issparse(self.X):
            input_bytes = 2 * 8 * self.X.nnz / n_rows
        else:
            input_bytes = 0 if self.X.dtype == np.float32 else 4 * n_features
        member_bytes = 0.0
        for member in self.members:
            if isinstance(member, MLPHead):
                member_bytes += 4 * sum(weights.shape[1] for weights, _ in member.layers)
                n_outputs = member.n_outputs
            elif isinstance(member, LinearHead):
                n_outputs = member.n_outputs
            else:
                member_bytes += 8 * n_features
                n_outputs = len(getattr(member, "classes_", (0, 1)))
            member_bytes += 4 * _TEMPORARIES_PER_OUTPUT * max(n_outputs, 2)
        budget = min(CHUNK_MEMORY_FRACTION * _pool_nbytes(self.X), CHUNK_TEMPORARY_BYTES)
        rows = int(budget // (input_bytes + member_bytes))
        return max(MIN_CHUNK_ROWS, min(MAX_CHUNK_ROWS, rows))

    @property
    def is_single_logit(self) -> bool:
        only = self.members[0]
        return len(self.members) == 1 and isinstance(only, (LinearHead, MLPHead)) and only.n_outputs == 1

    def _chunks(self) -> Iterator[tuple[int, int, Rows]]:
        n_rows = self.X.shape[0]
        for start in range(0, n_rows, self.chunk_rows):
            stop = min(start + self.chunk_rows, n_rows)
            yield start, stop, self.X[start:stop]

    def probabilities(self, rows: Rows) -> np.ndarray:
        """Every member's probabilities for the given rows: a (M, c, K) float32 view of class-major memory."""
        if self.stacked_head is not None:
            logits = self.stacked_head.class_major_logits(_rows_as_float32(rows))
            logits = logits.reshape(-1, len(self.members), logits.shape[1])
            return _class_major_probabilities(logits).transpose(1, 2, 0)
        per_member = [self._class_major_member_probabilities(member, rows) for member in self.members]
        if len({proba.shape for proba in per_member}) != 1:
            raise ValueError(
                f"committee members predict different numbers of classes: {[p.shape[0] for p in per_member]}"
            )
        return np.stack(per_member, axis=1).transpose(1, 2, 0)

    @staticmethod
    def _class_major_member_probabilities(member: Any, rows: Rows) -> np.ndarray:
        """One member's probabilities, shape (K, c)."""
        if isinstance(member, (LinearHead, MLPHead)):
            return _class_major_probabilities(member.class_major_logits(_rows_as_float32(rows)))
        proba = np.asarray(member.predict_proba(rows), dtype=np.float32)
        if proba.ndim != 2 or proba.shape[0] != rows.shape[0] or proba.shape[1] < 2:
            raise ValueError(f"predict_proba must return shape ({rows.shape[0]}, K) with K >= 2, got {proba.shape}")
        return proba.T

    def streamed_scores(self, row_scorer, *, committee: bool) -> np.ndarray:
        """Per-item scores of the whole pool, shape (N,), float32, one chunk at a time."""
        scores = np.empty(self.X.shape[0], dtype=np.float32)
        for start, stop, rows in self._chunks():
            proba = self.probabilities(rows)
            scores[start:stop] = row_scorer(proba if committee else proba[0])
        return scores

    def negative_abs_logits(self) -> np.ndarray:
        """``-|z|`` for a single-logit head over the whole pool, shape (N,), float32."""
        head = self.members[0]
        keys = np.empty(self.X.shape[0], dtype=np.float32)
        for start, stop, rows in self._chunks():
            logit = head.single_logit(_rows_as_float32(rows))
            np.abs(logit, out=logit)
            np.negative(logit, out=keys[start:stop])
        return keys

    def all_probabilities(self, *, committee: bool) -> np.ndarray:
        """The whole pool's probabilities: (N, K), or (M, N, K) for a committee; float32."""
        proba = None
        for start, stop, rows in self._chunks():
            block = self.probabilities(rows)
            if proba is None:
                proba = np.empty((block.shape[0], self.X.shape[0], block.shape[2]), dtype=np.float32)
            proba[:, start:stop] = block
        if proba is None:
            raise ValueError("the pool has no rows")
        return proba if committee else proba[0]
