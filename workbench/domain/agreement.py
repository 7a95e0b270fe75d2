"""Inter-annotator agreement: pure functions over a list of judgments (numpy only).

A *judgment* is one annotator's label for one item. Every function takes a sequence of
:class:`Judgment` and, where the statistic depends on the label space, the ordered label set.
Items judged once take part in nothing that needs a pair (percent agreement, alpha, per-label
agreement, the pair confusion matrix); they still count in ``n_items`` / ``n_judgments`` and in
:func:`annotator_vs_adjudicated`.

Notation used in the docstrings: item ``i`` has ``n_i`` judgments, ``n_ik`` of them with label
``k``; ``K`` is the number of labels.

Undefined values are never NaN: a statistic with nothing to compute on is ``None``, and the
degenerate "no variation at all" cases of kappa and alpha are 1.0 (see each function).

Bad input raises ``ValueError``: a label outside the label set (the message names the label), the
same annotator judging the same item twice (the message names the item and the annotator), a label
set with repeated labels.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "AgreementReport",
    "AnnotatorScore",
    "Judgment",
    "PairKappa",
    "agreement_report",
    "annotator_vs_adjudicated",
    "cohen_kappa_pairs",
    "krippendorff_alpha_nominal",
    "pair_confusion",
    "per_label_agreement",
    "percent_agreement",
]


# --------------------------------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Judgment:
    """One annotator's label for one item (``item`` and ``annotator`` are any hashable ids)."""

    item: Hashable
    annotator: Hashable
    label: str


@dataclass(frozen=True)
class PairKappa:
    """Cohen's kappa of two annotators over the items both judged.

    ``annotator_a`` sorts before ``annotator_b`` (see :func:`cohen_kappa_pairs` for the order);
    ``observed`` and ``expected`` are the observed and chance agreement p_o and p_e.
    """

    annotator_a: Hashable
    annotator_b: Hashable
    n_items: int
    kappa: float
    observed: float
    expected: float


@dataclass(frozen=True)
class AnnotatorScore:
    """One annotator against the adjudicated labels: ``agreement`` is None when ``n_items`` is 0."""

    n_items: int
    agreement: float | None


@dataclass(frozen=True)
class AgreementReport:
    """Every agreement statistic of one set of judgments, as plain Python values.

    ``n_items`` counts distinct judged items, ``n_paired_items`` those with at least two judgments
    (the items percent agreement, alpha, per-label agreement and the pair confusion are computed
    on). ``dataclasses.asdict(report)`` is JSON-serialisable when item/annotator ids are str or int.
    """

    labels: tuple[str, ...]
    n_items: int
    n_judgments: int
    n_annotators: int
    n_paired_items: int
    percent_agreement: float | None
    krippendorff_alpha: float | None
    cohen_kappa: list[PairKappa]
    per_label_agreement: dict[str, float | None]
    pair_confusion: list[list[int]]
    annotator_vs_adjudicated: dict[Hashable, AnnotatorScore]


# --------------------------------------------------------------------------------------------------
# Encoding: judgments -> integer arrays (validated once)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Encoded:
    """Judgments as integer codes, sorted by (item, annotator).

    ``item``/``annotator``/``label`` are int64 arrays of length N; ``annotators`` lists the
    annotator ids in code order (sorted when the ids are mutually orderable, else in order of
    first appearance); ``item_ids`` lists item ids in code order (first appearance).
    """

    labels: tuple[str, ...]
    item_ids: list[Hashable]
    annotators: list[Hashable]
    item: np.ndarray
    annotator: np.ndarray
    label: np.ndarray

    @property
    def n(self) -> int:
        return int(self.item.size)


def _label_index(labels: Iterable[str]) -> tuple[tuple[str, ...], dict[str, int]]:
    labels = tuple(labels)
    index: dict[str, int] = {}
    for label in labels:
        if label in index:
            raise ValueError(f"label set repeats the label {label!r}")
        index[label] = len(index)
    return labels, index


def _ordered(ids: list[Hashable]) -> list[Hashable]:
    """Ids sorted when they can be; otherwise kept in order of first appearance."""
    try:
        return sorted(ids)  # type: ignore[type-var]
    except TypeError:
        return ids


def _encode(judgments: Iterable[Judgment], labels: Iterable[str] | None) -> _Encoded:
    judgments = list(judgments)
    n = len(judgments)
    item_index: dict[Hashable, int] = {}
    annotator_index: dict[Hashable, int] = {}
    item = np.fromiter((item_index.setdefault(j.item, len(item_index)) for j in judgments), np.int64, n)
    annotator = np.fromiter(
        (annotator_index.setdefault(j.annotator, len(annotator_index)) for j in judgments), np.int64, n
    )
    if labels is None:  # the label space is whatever occurs (only for label-free statistics)
        label_tuple, label_index = _label_index(dict.fromkeys(j.label for j in judgments))
    else:
        label_tuple, label_index = _label_index(labels)
    try:
        label = np.fromiter((label_index[j.label] for j in judgments), np.int64, n)
    except KeyError as exc:
        raise ValueError(f"label {exc.args[0]!r} is not in the label set {list(label_tuple)!r}") from None

    # Annotator codes in sorted order (stable, human-friendly pair order).
    first_seen = list(annotator_index)
    annotators = _ordered(first_seen)
    if annotators is not first_seen:
        rank = {a: r for r, a in enumerate(annotators)}
        remap = np.fromiter((rank[a] for a in first_seen), np.int64, len(first_seen))
        annotator = remap[annotator] if n else annotator

    order = np.lexsort((annotator, item))
    item, annotator, label = item[order], annotator[order], label[order]
    if n > 1:
        same = (item[1:] == item[:-1]) & (annotator[1:] == annotator[:-1])
        if same.any():
            k = int(np.flatnonzero(same)[0])
            raise ValueError(
                f"annotator {annotators[annotator[k]]!r} judged item {list(item_index)[item[k]]!r} more than once"
            )
    return _Encoded(label_tuple, list(item_index), annotators, item, annotator, label)


def _group_pairs(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs (p, q), p < q, of positions in a sorted array that share a group value.

    Fully vectorised: position p of a run of length s at offset r pairs with the s - r - 1
    positions after it; the output has sum over runs of s(s-1)/2 pairs.
    """
    m = group.size
    if m < 2:
        empty = np.empty(0, np.int64)
        return empty, empty
    start = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    size = np.diff(np.r_[start, m])
    run_end = np.repeat(start + size, size)  # one past the last position of each position's run
    partners = run_end - np.arange(m) - 1  # positions after p in its run
    left = np.repeat(np.arange(m), partners)
    block_start = np.repeat(np.cumsum(partners) - partners, partners)
    right = left + 1 + (np.arange(left.size) - block_start)
    return left, right


@dataclass(frozen=True)
class _Counts:
    """Sparse item x label counts of the items with at least two judgments.

    One row per (item, label) that occurs: ``item`` (sorted), ``label``, ``count`` = n_ik, and
    ``size`` = n_i of that row's item. ``n_items`` = number of such items.
    """

    item: np.ndarray
    label: np.ndarray
    count: np.ndarray
    size: np.ndarray
    n_items: int


def _counts(enc: _Encoded) -> _Counts:
    k = max(len(enc.labels), 1)
    if enc.n == 0:
        z = np.empty(0, np.int64)
        return _Counts(z, z, z, z, 0)
    per_item = np.bincount(enc.item)
    keep = per_item[enc.item] >= 2
    keys, count = np.unique(enc.item[keep] * k + enc.label[keep], return_counts=True)
    item = keys // k
    return _Counts(item, keys % k, count.astype(np.int64), per_item[item], int(np.count_nonzero(per_item >= 2)))


# --------------------------------------------------------------------------------------------------
# Statistics on encoded data
# --------------------------------------------------------------------------------------------------


def _percent_agreement(c: _Counts) -> float | None:
    if c.n_items == 0:
        return None
    # per item: sum_k n_ik(n_ik - 1) / (n_i(n_i - 1)); items are contiguous runs of rows
    agree_share = c.count * (c.count - 1) / (c.size * (c.size - 1))
    return float(agree_share.sum() / c.n_items)


def _alpha(c: _Counts, n_labels: int) -> float | None:
    if c.n_items == 0:
        return None
    n = float(c.count.sum())  # pairable values
    trace = float((c.count * (c.count - 1) / (c.size - 1)).sum())  # sum_k o_kk
    n_k = np.bincount(c.label, weights=c.count, minlength=n_labels)
    chance = n * n - float((n_k * n_k).sum())  # sum_{k != l} n_k n_l
    if chance == 0:  # every pairable value has the same label: D_e = D_o = 0
        return 1.0
    return float(1.0 - (n - 1.0) * (n - trace) / chance)


def _per_label(c: _Counts, labels: tuple[str, ...]) -> dict[str, float | None]:
    k = len(labels)
    agree2 = np.bincount(c.label, weights=c.count * (c.count - 1), minlength=k)  # 2 * agreeing pairs
    occurs = np.bincount(c.label, weights=c.count * (c.size - 1), minlength=k)  # label occurrences in pairs
    return {label: (float(agree2[i] / occurs[i]) if occurs[i] > 0 else None) for i, label in enumerate(labels)}


def _pair_confusion(c: _Counts, n_labels: int) -> list[list[int]]:
    k = n_labels
    matrix = np.zeros((k, k), np.int64)
    if k == 0:
        return []
    np.add.at(matrix, (c.label, c.label), c.count * (c.count - 1) // 2)  # C(n_ik, 2) agreeing pairs
    left, right = _group_pairs(c.item)  # two distinct labels of one item: n_ik * n_il pairs
    a, b = c.label[left], c.label[right]
    off = np.bincount(a * k + b, weights=c.count[left] * c.count[right], minlength=k * k)
    off = np.rint(off).astype(np.int64).reshape(k, k)
    matrix += off + off.T
    return matrix.tolist()


def _kappa_pairs(enc: _Encoded) -> list[PairKappa]:
    left, right = _group_pairs(enc.item)
    if left.size == 0:
        return []
    n_ann = len(enc.annotators)
    k = max(len(enc.labels), 1)
    a, b = enc.annotator[left], enc.annotator[right]  # a < b: rows are sorted by (item, annotator)
    la, lb = enc.label[left], enc.label[right]
    pair_keys, pair = np.unique(a * n_ann + b, return_inverse=True)
    n_pairs = pair_keys.size
    n = np.bincount(pair, minlength=n_pairs)
    agree = np.bincount(pair[la == lb], minlength=n_pairs)
    marg_a = np.bincount(pair * k + la, minlength=n_pairs * k).reshape(n_pairs, k)
    marg_b = np.bincount(pair * k + lb, minlength=n_pairs * k).reshape(n_pairs, k)
    chance = (marg_a * marg_b).sum(axis=1)  # n^2 * p_e, exact in integers
    n2 = n * n
    degenerate = chance == n2  # p_e == 1: both used one and the same label throughout
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (n * agree - chance) / (n2 - chance)  # (p_o - p_e) / (1 - p_e)
    kappa = np.where(degenerate, np.where(agree == n, 1.0, 0.0), kappa)
    observed = agree / n
    expected = chance / n2
    ann = enc.annotators
    return [
        PairKappa(ann[int(key // n_ann)], ann[int(key % n_ann)], int(cnt), float(kp), float(po), float(pe))
        for key, cnt, kp, po, pe in zip(
            pair_keys.tolist(), n.tolist(), kappa.tolist(), observed.tolist(), expected.tolist(), strict=True
        )
    ]


def _vs_adjudicated(enc: _Encoded, adjudicated: Mapping[Any, str | None]) -> dict[Hashable, AnnotatorScore]:
    n_ann = len(enc.annotators)
    # adjudicated label of each item as a code; -1 = none. Labels outside the judged/label space
    # get their own codes so that they simply never match.
    codes = {label: i for i, label in enumerate(enc.labels)}
    target = np.fromiter(
        (-1 if (lab := adjudicated.get(item)) is None else codes.setdefault(lab, len(codes)) for item in enc.item_ids),
        np.int64,
        len(enc.item_ids),
    )
    t = target[enc.item] if enc.n else enc.item
    has = t >= 0
    n = np.bincount(enc.annotator[has], minlength=n_ann)
    hit = np.bincount(enc.annotator[has & (enc.label == t)], minlength=n_ann)
    return {
        annotator: AnnotatorScore(int(n[i]), float(hit[i] / n[i]) if n[i] else None)
        for i, annotator in enumerate(enc.annotators)
    }


# --------------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------------


def percent_agreement(judgments: Sequence[Judgment]) -> float | None:
    r"""Mean pairwise percent agreement over the items with at least two judgments.

    .. math::

        P = \frac{1}{|I_2|} \sum_{i \in I_2}
            \frac{\sum_k n_{ik}(n_{ik}-1)}{n_i(n_i-1)},
        \qquad I_2 = \{\, i : n_i \ge 2 \,\}

    i.e. for each item the share of agreeing pairs among its :math:`\binom{n_i}{2}` pairs of
    judgments, averaged with equal weight per item. With exactly two judgments per item this is
    the share of items whose two labels agree. This is the :math:`\bar P` of Fleiss' kappa
    (Fleiss 1971) without its fixed-number-of-raters assumption.

    Parameters
    ----------
    judgments : sequence of Judgment

    Returns
    -------
    float or None
        In [0, 1]; None when no item has two judgments.

    References
    ----------
    Fleiss, J. L. (1971). Measuring nominal scale agreement among many raters.
    *Psychological Bulletin*, 76(5), 378-382.
    """
    return _percent_agreement(_counts(_encode(judgments, None)))


def cohen_kappa_pairs(judgments: Sequence[Judgment], labels: Sequence[str]) -> list[PairKappa]:
    r"""Cohen's kappa for every pair of annotators with at least one item in common.

    For annotators a and b over their ``n`` common items, with :math:`n_{ak}` (:math:`n_{bk}`) the
    number of those items a (b) labelled k:

    .. math::

        p_o = \frac{\#\{\text{common items with equal labels}\}}{n}, \quad
        p_e = \sum_k \frac{n_{ak}\, n_{bk}}{n^2}, \quad
        \kappa = \frac{p_o - p_e}{1 - p_e}

    This equals ``sklearn.metrics.cohen_kappa_score`` on the two label vectors (unweighted).
    Where that is undefined, :math:`p_e = 1` (both annotators gave one and the same label to every
    common item), kappa here is 1.0 when :math:`p_o = 1` (always the case in exact arithmetic)
    and 0.0 otherwise, instead of NaN.

    Parameters
    ----------
    judgments : sequence of Judgment
    labels : sequence of str
        The label set; every judgment's label must be in it.

    Returns
    -------
    list of PairKappa
        One entry per pair, ``annotator_a`` before ``annotator_b``, ordered by (a, b) where
        annotators are ordered by their ids when those are mutually orderable and by first
        appearance otherwise. ``n_items`` is the number of common items.

    References
    ----------
    Cohen, J. (1960). A coefficient of agreement for nominal scales. *Educational and
    Psychological Measurement*, 20(1), 37-46.
    """
    return _kappa_pairs(_encode(judgments, labels))


def krippendorff_alpha_nominal(judgments: Sequence[Judgment], labels: Sequence[str]) -> float | None:
    r"""Krippendorff's alpha for nominal data, from the coincidence matrix.

    Only items with :math:`n_i \ge 2` judgments ("pairable values") count. The coincidence matrix
    is :math:`o_{kl} = \sum_i \frac{n_{ik} n_{il} - [k = l]\, n_{ik}}{n_i - 1}`, with margins
    :math:`n_k = \sum_l o_{kl}` and :math:`n = \sum_k n_k`. With the nominal distance
    :math:`\delta_{kl} = [k \ne l]`:

    .. math::

        \alpha = 1 - \frac{D_o}{D_e}
               = 1 - (n - 1)\,\frac{n - \sum_k o_{kk}}{n^2 - \sum_k n_k^2}

    computed without materialising the K x K matrix, since
    :math:`\sum_k o_{kk} = \sum_i \sum_k n_{ik}(n_{ik} - 1) / (n_i - 1)`.
    Equals ``krippendorff.alpha(reliability_data=..., level_of_measurement="nominal")``.

    Parameters
    ----------
    judgments : sequence of Judgment
    labels : sequence of str

    Returns
    -------
    float or None
        None when no item has two judgments (the ``krippendorff`` package raises there). When
        every pairable value carries the same label, :math:`D_e = D_o = 0` and alpha is 0/0; this
        function returns 1.0 there (the ``krippendorff`` package returns NaN), the same
        convention as :func:`cohen_kappa_pairs`.

    References
    ----------
    Krippendorff, K. (2011). Computing Krippendorff's Alpha-Reliability. Annenberg School for
    Communication, University of Pennsylvania. https://repository.upenn.edu/asc_papers/43
    """
    enc = _encode(judgments, labels)
    return _alpha(_counts(enc), len(enc.labels))


def per_label_agreement(judgments: Sequence[Judgment], labels: Sequence[str]) -> dict[str, float | None]:
    r"""Specific (positive) agreement per label, over all pairs of judgments of each item.

    .. math::

        p_s(k) = \frac{2 \cdot \#\{\text{pairs where both say } k\}}
                      {\sum_{\text{pairs}} \#\{\text{judgments of the pair that say } k\}}
               = \frac{\sum_i n_{ik}(n_{ik} - 1)}{\sum_i n_{ik}(n_i - 1)}

    (each judgment labelled k takes part in :math:`n_i - 1` pairs of its item). For two
    annotators and a binary task this is the positive / negative specific agreement
    :math:`2a / (2a + b + c)`. In terms of :func:`pair_confusion` ``M``:
    :math:`p_s(k) = 2 M_{kk} / (2 M_{kk} + \sum_{l \ne k} M_{kl})`.

    Parameters
    ----------
    judgments : sequence of Judgment
    labels : sequence of str

    Returns
    -------
    dict
        label -> agreement in [0, 1] for every label of ``labels`` (in that order); None where the
        label occurs in no pair (never used, or used only on items judged once).

    References
    ----------
    Uebersax, J. S. (1982). A design-independent method for measuring the reliability of
    psychiatric diagnosis. *Journal of Psychiatric Research*, 17(4), 335-342.
    Cicchetti, D. V., & Feinstein, A. R. (1990). High agreement but low kappa: II. Resolving the
    paradoxes. *Journal of Clinical Epidemiology*, 43(6), 551-558.
    """
    enc = _encode(judgments, labels)
    return _per_label(_counts(enc), enc.labels)


def pair_confusion(judgments: Sequence[Judgment], labels: Sequence[str]) -> list[list[int]]:
    r"""K x K symmetric count of label pairs over all unordered pairs of judgments of an item.

    Convention: every unordered pair of judgments of the same item is counted once. An agreeing
    pair (k, k) adds 1 to ``M[k][k]``; a disagreeing pair (k, l) adds 1 to both ``M[k][l]`` and
    ``M[l][k]``. Hence

    .. math::

        M_{kk} = \sum_i \binom{n_{ik}}{2}, \qquad M_{kl} = \sum_i n_{ik}\, n_{il} \ (k \ne l)

    The number of pairs is ``trace(M) + sum of the strict upper triangle``; row k sums to
    :math:`M_{kk} + \sum_i n_{ik}(n_i - n_{ik})`, and
    ``per_label_agreement[k] == 2 M[k][k] / (2 M[k][k] + sum_{l != k} M[k][l])``. Pooled
    agreement ``trace(M) / #pairs`` equals :func:`percent_agreement` when every item has the
    same number of judgments.

    Parameters
    ----------
    judgments : sequence of Judgment
    labels : sequence of str

    Returns
    -------
    list of list of int
        Rows and columns in the order of ``labels``.
    """
    enc = _encode(judgments, labels)
    return _pair_confusion(_counts(enc), len(enc.labels))


def annotator_vs_adjudicated(
    judgments: Sequence[Judgment], adjudicated: Mapping[Any, str | None]
) -> dict[Hashable, AnnotatorScore]:
    r"""Each annotator's agreement with the adjudicated (final) labels.

    .. math::

        \text{agreement}(a) = \frac{\#\{\text{a's judgments on adjudicated items equal to the
        adjudicated label}\}}{\#\{\text{a's judgments on adjudicated items}\}}

    Items missing from ``adjudicated``, or mapped to None (e.g. ambiguous or excluded), are
    ignored; adjudicated items nobody judged are ignored too.

    Parameters
    ----------
    judgments : sequence of Judgment
    adjudicated : mapping item -> label (or None)

    Returns
    -------
    dict
        annotator -> AnnotatorScore(n_items, agreement) for every annotator in ``judgments``
        (ordered like :func:`cohen_kappa_pairs`); ``agreement`` is None when ``n_items`` is 0.
    """
    return _vs_adjudicated(_encode(judgments, None), adjudicated)


def agreement_report(
    judgments: Sequence[Judgment],
    labels: Sequence[str],
    adjudicated: Mapping[Any, str | None] | None = None,
) -> AgreementReport:
    """All statistics of this module in one pass over the (validated once) judgments.

    Besides the checks of the other functions, adjudicated labels (other than None) must be in
    ``labels``. See :class:`AgreementReport` for the fields.
    """
    enc = _encode(judgments, labels)
    adjudicated = adjudicated or {}
    label_set = set(enc.labels)
    for item, label in adjudicated.items():
        if label is not None and label not in label_set:
            raise ValueError(
                f"adjudicated label {label!r} of item {item!r} is not in the label set {list(enc.labels)!r}"
            )
    counts = _counts(enc)
    k = len(enc.labels)
    return AgreementReport(
        labels=enc.labels,
        n_items=len(enc.item_ids),
        n_judgments=enc.n,
        n_annotators=len(enc.annotators),
        n_paired_items=counts.n_items,
        percent_agreement=_percent_agreement(counts),
        krippendorff_alpha=_alpha(counts, k),
        cohen_kappa=_kappa_pairs(enc),
        per_label_agreement=_per_label(counts, enc.labels),
        pair_confusion=_pair_confusion(counts, k),
        annotator_vs_adjudicated=_vs_adjudicated(enc, adjudicated),
    )
