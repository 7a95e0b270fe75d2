"""Query-by-committee disagreement scorers and strategies.

Each scorer maps stacked committee probabilities of shape (M, N, K) (M members, N items,
K classes) to scores of shape (N,), higher = more disagreement. Scorers assume valid input; the
registered strategies check it (M >= 2, rows are distributions).

References
----------
H. S. Seung, M. Opper, H. Sompolinsky, "Query by committee", COLT 1992.
I. Dagan, S. P. Engelson, "Committee-based sampling for training probabilistic classifiers",
ICML 1995 (vote entropy).
A. McCallum, K. Nigam, "Employing EM and pool-based active learning for text
classification", ICML 1998 (KL divergence to the mean).
The definitions match ``modAL.disagreement`` (natural logarithm throughout).
"""

from __future__ import annotations

import numpy as np

from strategies._information import entropy, kl_divergence
from strategies._validate import check_committee
from strategies.registry import Input, Strategy, register
from strategies.select import QueryResult, select_top_k


def score_vote_entropy(committee_proba: np.ndarray) -> np.ndarray:
    """Vote entropy: entropy of the distribution of the members' predicted classes.

    Each member votes for its most likely class (``argmax_k``, first class on exact ties, like
    scikit-learn's ``predict``); the score is ``-sum_k (V_k / M) log(V_k / M)`` where ``V_k`` is
    the number of members voting for class ``k``.

    Parameters
    ----------
    committee_proba : np.ndarray, shape (M, N, K)

    Returns
    -------
    np.ndarray, shape (N,)
        In ``[0, log min(M, K)]``; takes few distinct values, so expect ties.
    """
    n_members, n_items, n_classes = committee_proba.shape
    votes = first_argmax(committee_proba).astype(np.intp)
    class_major_cells = votes * n_items + np.arange(n_items)
    vote_counts = np.bincount(class_major_cells.ravel(), minlength=n_classes * n_items)
    vote_share = vote_counts.reshape(n_classes, n_items).astype(committee_proba.dtype) / n_members
    return entropy(vote_share, axis=0)


def first_argmax(proba: np.ndarray) -> np.ndarray:
    """``proba.argmax(axis=-1)`` (the first maximum on ties), fast for either memory layout.

    When the class axis is not contiguous (class-major memory, as ``score_pool`` produces),
    ``np.argmax`` copies and scans each short row. Instead, with ``top`` the maximum over whole
    class slices, the index of the first maximum is the number of leading classes below it:
    ``sum_k prod_{j <= k} [p_j != top]``, a few vectorised passes across items (about 15x faster
    for 10 classes).
    """
    n_classes = proba.shape[-1]
    if proba.strides[-1] == proba.itemsize or n_classes > 64:
        return proba.argmax(axis=-1)
    top = proba.max(axis=-1)
    below_top_so_far = np.ones(top.shape, dtype=bool)
    leading_classes = np.zeros(top.shape, dtype=np.uint8)
    for k in range(n_classes - 1):
        below_top_so_far &= proba[..., k] != top
        leading_classes += below_top_so_far
    return leading_classes


def score_consensus_entropy(committee_proba: np.ndarray) -> np.ndarray:
    """Consensus entropy: entropy of the members' mean probabilities.

    Parameters
    ----------
    committee_proba : np.ndarray, shape (M, N, K)

    Returns
    -------
    np.ndarray, shape (N,)
        In ``[0, log K]``.
    """
    return entropy(committee_proba.mean(axis=0), axis=1)


def score_max_disagreement(committee_proba: np.ndarray) -> np.ndarray:
    """Max disagreement: ``max_m KL(p_m || p_mean)``, the largest divergence of one member from the consensus.

    Parameters
    ----------
    committee_proba : np.ndarray, shape (M, N, K)

    Returns
    -------
    np.ndarray, shape (N,)
        Non-negative; 0 when all members agree exactly.
    """
    consensus = committee_proba.mean(axis=0)
    return kl_divergence(committee_proba, consensus, axis=2).max(axis=0)


def _committee_strategy(name: str, scorer, description: str) -> Strategy:
    def select(committee_proba: np.ndarray, n: int, *, rng: np.random.Generator) -> QueryResult:
        return select_top_k(scorer(check_committee(committee_proba)), n, rng=rng)

    select.__doc__ = f"Top ``n`` items by {scorer.__name__}; input has shape (M, N, K), M >= 2."
    return Strategy(
        name=name,
        input=Input.COMMITTEE,
        needs_features=False,
        select=select,
        description=description,
        row_scorer=scorer,
    )


register(
    _committee_strategy(
        "qbc_vote", score_vote_entropy, "items whose committee members vote for the most different classes"
    )
)
register(
    _committee_strategy(
        "qbc_consensus", score_consensus_entropy, "items whose averaged committee prediction is most uncertain"
    )
)
register(
    _committee_strategy(
        "qbc_kl", score_max_disagreement, "items where one committee member diverges most from the consensus"
    )
)
