"""BALD (Bayesian active learning by disagreement) with MC-dropout samples.

References
----------
N. Houlsby, F. Huszár, Z. Ghahramani, M. Lengyel, "Bayesian Active Learning for Classification
and Preference Learning", arXiv:1112.5745, 2011.
Y. Gal, R. Islam, Z. Ghahramani, "Deep Bayesian Active Learning with Image Data", ICML 2017.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from strategies._information import entropy
from strategies._validate import check_features, check_mc_samples
from strategies.registry import Input, Strategy, register
from strategies.select import QueryResult, select_top_k


def score_bald(mc_samples: np.ndarray) -> np.ndarray:
    """Mutual information between the prediction and the model parameters.

    ``I(y; w | x) = H[mean_t p_t] - mean_t H[p_t]``: the entropy of the averaged prediction minus
    the average entropy of the individual stochastic forward passes (nats).

    Parameters
    ----------
    mc_samples : np.ndarray, shape (T, N, K)
        Class probabilities from T stochastic forward passes (e.g. dropout kept on).

    Returns
    -------
    np.ndarray, shape (N,)
        Non-negative up to rounding; 0 when every pass predicts the same distribution.
    """
    entropy_of_mean = entropy(mc_samples.mean(axis=0), axis=1)
    mean_of_entropies = entropy(mc_samples, axis=2).mean(axis=0)
    return entropy_of_mean - mean_of_entropies


def mc_dropout_samples(module, X, T: int, *, seed: int, batch_size: int = 4096) -> np.ndarray:
    """Class probabilities from ``T`` forward passes of a torch module with dropout active.

    The module is put in eval mode with only its dropout layers in train mode (batch norm keeps
    its running statistics); the original train/eval flags are restored afterwards. Torch's
    global RNG state is saved and restored, so the call is reproducible for a given ``seed`` and
    leaves other torch randomness untouched. Torch is imported here, not at package import.

    Parameters
    ----------
    module : torch.nn.Module
        Maps a float32 tensor of shape (B, D) to logits of shape (B, K), or (B, 1) / (B,) for a
        binary model (one logit, probability of the second class = sigmoid).
    X : np.ndarray or scipy.sparse CSR, shape (N, D)
    T : int
        Number of stochastic passes, at least 2.
    seed : int
        Seed for the dropout masks.
    batch_size : int
        Rows per forward pass (bounds memory).

    Returns
    -------
    np.ndarray of float32, shape (T, N, K)
    """
    import torch

    if T < 2:
        raise ValueError(f"MC dropout needs at least 2 passes, got T={T}")
    X = check_features(X)
    dropout_types = (torch.nn.modules.dropout._DropoutNd,)
    training_flags = {submodule: submodule.training for submodule in module.modules()}
    batches = []
    try:
        module.eval()
        for submodule in module.modules():
            if isinstance(submodule, dropout_types):
                submodule.train()
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            for start in range(0, X.shape[0], batch_size):
                rows = X[start : start + batch_size]
                rows = rows.toarray() if sp.issparse(rows) else np.asarray(rows)
                inputs = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))
                passes = torch.stack([module(inputs) for _ in range(T)])
                batches.append(_probabilities_from_logits(passes, torch))
    finally:
        for submodule, was_training in training_flags.items():
            submodule.train(was_training)
    return np.concatenate(batches, axis=1)


def _probabilities_from_logits(logits, torch) -> np.ndarray:
    """(T, B, K) logits -> softmax; (T, B, 1) or (T, B) single logits -> [1 - sigmoid, sigmoid]."""
    if logits.ndim == 2 or logits.shape[-1] == 1:
        positive = torch.sigmoid(logits.reshape(logits.shape[0], logits.shape[1]))
        proba = torch.stack([1 - positive, positive], dim=-1)
    else:
        proba = torch.softmax(logits, dim=-1)
    return proba.to(torch.float32).numpy()


def bald_selection(mc_samples: np.ndarray, n: int, *, rng: np.random.Generator) -> QueryResult:
    """Top ``n`` items by BALD; ``mc_samples`` has shape (T, N, K), T >= 2 (see :func:`mc_dropout_samples`)."""
    return select_top_k(score_bald(check_mc_samples(mc_samples)), n, rng=rng)


register(
    Strategy(
        name="bald",
        input=Input.MC_SAMPLES,
        needs_features=False,
        select=bald_selection,
        description="items where stochastic forward passes disagree most (mutual information)",
        row_scorer=score_bald,
    )
)
