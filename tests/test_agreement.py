"""Inter-annotator agreement (workbench.domain.agreement): hand-computed fixtures, reference
implementations (scikit-learn, krippendorff) on random and on real crowd data, bad input, speed."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time
import warnings

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from tests.conftest import shared_dataset
from workbench.domain.agreement import (
    AgreementReport,
    AnnotatorScore,
    Judgment,
    PairKappa,
    agreement_report,
    annotator_vs_adjudicated,
    cohen_kappa_pairs,
    krippendorff_alpha_nominal,
    pair_confusion,
    per_label_agreement,
    percent_agreement,
)

# --------------------------------------------------------------------------------------------------
# Hand-computed: 10 items x 2 annotators, binary
# --------------------------------------------------------------------------------------------------
#
#              B: yes   B: no
#   A: yes       4        1      | 5
#   A: no        2        3      | 5
#               ---      ---
#                6        4        n = 10
#
# items 0-3 (yes, yes), item 4 (yes, no), items 5-6 (no, yes), items 7-9 (no, no)
#
# p_o   = (4 + 3) / 10                        = 0.7
# p_e   = (5*6 + 5*4) / 10^2 = 50 / 100       = 0.5
# kappa = (0.7 - 0.5) / (1 - 0.5)             = 0.4
#
# percent agreement: 7 of 10 items agree       = 0.7
# pair confusion (one pair per item): [[yes-yes 4, yes-no 1+2=3], [3, no-no 3]]
# specific agreement: yes = 2*4 / (2*4 + 3) = 8/11; no = 2*3 / (2*3 + 3) = 6/9 = 2/3
#
# alpha (nominal): n = 20 pairable values; n_yes = 5 + 6 = 11, n_no = 5 + 4 = 9
#   o_yy = 2 * 4 = 8, o_nn = 2 * 3 = 6   (each agreeing pair of an item with m=2 adds 2/(m-1) = 2)
#   alpha = 1 - (n-1)(n - o_yy - o_nn) / (n^2 - n_yes^2 - n_no^2)
#         = 1 - 19 * (20 - 14) / (400 - 121 - 81) = 1 - 114/198 = 84/198 = 14/33 = 0.4242...
#
# adjudicated {0: yes, 4: no, 5: yes, 7: no, 99: yes (nobody judged item 99)}:
#   A on items 0, 4, 5, 7 says yes, yes, no, no -> right on 0 and 7 -> 2/4 = 0.5
#   B on items 0, 4, 5, 7 says yes, no, yes, no -> right on all     -> 4/4 = 1.0

YN = ["yes", "no"]
PAIRS_10 = [("yes", "yes")] * 4 + [("yes", "no")] + [("no", "yes")] * 2 + [("no", "no")] * 3
J10 = [Judgment(i, who, lab) for i, pair in enumerate(PAIRS_10) for who, lab in zip("AB", pair, strict=True)]
ADJ10 = {0: "yes", 4: "no", 5: "yes", 7: "no", 99: "yes"}


def test_hand_computed_two_annotators():
    [pk] = cohen_kappa_pairs(J10, YN)
    assert (pk.annotator_a, pk.annotator_b, pk.n_items) == ("A", "B", 10)
    assert pk.observed == pytest.approx(0.7)
    assert pk.expected == pytest.approx(0.5)
    assert pk.kappa == pytest.approx(0.4)
    assert pk.kappa == pytest.approx(cohen_kappa_score([p[0] for p in PAIRS_10], [p[1] for p in PAIRS_10]))

    assert percent_agreement(J10) == pytest.approx(0.7)
    assert pair_confusion(J10, YN) == [[4, 3], [3, 3]]
    assert per_label_agreement(J10, YN) == pytest.approx({"yes": 8 / 11, "no": 2 / 3})
    assert krippendorff_alpha_nominal(J10, YN) == pytest.approx(14 / 33, abs=1e-12)

    scores = annotator_vs_adjudicated(J10, ADJ10)
    assert scores == {"A": AnnotatorScore(4, 0.5), "B": AnnotatorScore(4, 1.0)}


# --------------------------------------------------------------------------------------------------
# Hand-computed alpha: published examples with missing values
# --------------------------------------------------------------------------------------------------

NA = None

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", example C (nominal, any
# number of observers, missing data): 4 observers x 12 units, published alpha_nominal = 0.743.
KRIPP_2011 = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, NA, NA, NA],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NA, 3],
    "C": [NA, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NA],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NA],
}
# Pairable values per unit (unit 12 has one value, so it does not count):
#   u1 [1,1,1] u2 [2,2,3,2] u3 [3,3,3,3] u4 [3,3,3,3] u5 [2,2,2,2] u6 [1,2,3,4] u7 [4,4,4,4]
#   u8 [1,1,2,1] u9 [2,2,2,2] u10 [5,5,5] u11 [1,1]            -> n = 40
# Diagonal coincidences o_cc = sum_u n_uc(n_uc - 1)/(m_u - 1):
#   o_11 = 3*2/2 (u1) + 3*2/3 (u8) + 2*1/1 (u11) = 3 + 2 + 2 = 7
#   o_22 = 3*2/3 (u2) + 4 (u5) + 4 (u9)                      = 10
#   o_33 = 4 (u3) + 4 (u4) = 8;  o_44 = 4 (u7);  o_55 = 3*2/2 (u10) = 3   -> sum o_cc = 32
# Margins n_c: 1 -> 9, 2 -> 13, 3 -> 10, 4 -> 5, 5 -> 3;  sum n_c^2 = 81+169+100+25+9 = 384
# alpha = 1 - (n-1)(n - sum o_cc)/(n^2 - sum n_c^2) = 1 - 39*8/(1600-384) = 1 - 312/1216 = 0.743421

# Wikipedia, "Krippendorff's alpha", computational example: 3 coders x 15 units, alpha = 0.691.
WIKIPEDIA = {
    "A": [NA, NA, NA, NA, NA, 3, 4, 1, 2, 1, 1, 3, 3, NA, 3],
    "B": [1, NA, 2, 1, 3, 3, 4, 3, NA, NA, NA, NA, NA, NA, NA],
    "C": [NA, NA, 2, 1, 3, 4, 4, NA, 2, 1, 1, 3, 3, NA, 4],
}
# Pairable units: u3 [2,2] u4 [1,1] u5 [3,3] u6 [3,3,4] u7 [4,4,4] u8 [1,3] u9 [2,2] u10 [1,1]
#   u11 [1,1] u12 [3,3] u13 [3,3] u15 [3,4]                      -> n = 26 (u1, u2, u14 drop out)
# sum o_cc = 2+2+2 (u3-u5) + 2*1/2 (u6) + 3*2/2 (u7) + 2+2+2+2+2 (u9-u13) = 20
# n_c: 1 -> 7, 2 -> 4, 3 -> 10, 4 -> 5;  sum n_c^2 = 49+16+100+25 = 190
# alpha = 1 - 25*(26-20)/(676-190) = 1 - 150/486 = 0.691358


def _from_table(table: dict[str, list]) -> list[Judgment]:
    return [
        Judgment(unit, coder, str(value))
        for coder, row in table.items()
        for unit, value in enumerate(row, start=1)
        if value is not None
    ]


def _as_reliability(table: dict[str, list]) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in table.values()], dtype=float)


@pytest.mark.parametrize(
    ("table", "labels", "exact", "published"),
    [
        (KRIPP_2011, ["1", "2", "3", "4", "5"], 1 - 312 / 1216, 0.743),
        (WIKIPEDIA, ["1", "2", "3", "4"], 1 - 150 / 486, 0.691),
    ],
    ids=["krippendorff2011", "wikipedia"],
)
def test_alpha_published_examples(table, labels, exact, published):
    alpha = krippendorff_alpha_nominal(_from_table(table), labels)
    assert alpha == pytest.approx(exact, abs=1e-12)
    assert round(alpha, 3) == published
    reference = krippendorff.alpha(reliability_data=_as_reliability(table), level_of_measurement="nominal")
    assert alpha == pytest.approx(reference, abs=1e-9)


def test_pair_statistics_on_krippendorff_example():
    judgments = _from_table(KRIPP_2011)
    labels = ["1", "2", "3", "4", "5"]
    # u1 [1,1,1] -> 3 pairs, all agree: 1.0; u2 [2,2,3,2] -> 3 of 6 pairs agree: 0.5; u3,u4,u5,u7,u9
    # -> 1.0 each; u6 [1,2,3,4] -> 0.0; u8 [1,1,2,1] -> 0.5; u10 [5,5,5] -> 1.0; u11 [1,1] -> 1.0
    # mean over the 11 pairable units = (1 + .5 + 1 + 1 + 1 + 0 + 1 + .5 + 1 + 1 + 1) / 11 = 9/11
    assert percent_agreement(judgments) == pytest.approx(9 / 11)
    # label "2": u2 C(3,2)=3 agreeing pairs, 3*(4-1)=9 occurrences; u5, u9: 6 and 12 each; u6: 0
    # and 3; u8: 0 and 3  -> 2*(3+6+6) / (9+12+12+3+3) = 30/39
    assert per_label_agreement(judgments, labels)["2"] == pytest.approx(30 / 39)
    report = agreement_report(judgments, labels, {})
    assert (report.n_items, report.n_judgments, report.n_annotators, report.n_paired_items) == (12, 41, 4, 11)


# --------------------------------------------------------------------------------------------------
# Brute force and reference implementations on random data
# --------------------------------------------------------------------------------------------------


def _random_judgments(seed: int, n_labels: int, n_items: int = 80, n_annotators: int = 7, p: float = 0.45):
    """Each annotator judges each item with probability p; labels skewed so kappa varies."""
    rng = np.random.default_rng(seed)
    labels = [f"L{k}" for k in range(n_labels)]
    truth = rng.integers(0, n_labels, n_items)
    skill = rng.uniform(0.0, 0.9, n_annotators)
    out = []
    for a in range(n_annotators):
        for i in range(n_items):
            if rng.random() < p:
                lab = truth[i] if rng.random() < skill[a] else rng.integers(0, n_labels)
                out.append(Judgment(f"item{i}", f"ann{a}", labels[lab]))
    rng.shuffle(out)
    return out, labels


def _brute_force(judgments, labels):
    by_item: dict = {}
    for j in judgments:
        by_item.setdefault(j.item, []).append(j.label)
    index = {lab: k for k, lab in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    agree_on = dict.fromkeys(labels, 0)
    occurs = dict.fromkeys(labels, 0)
    shares = []
    for labs in by_item.values():
        pairs = list(itertools.combinations(labs, 2))
        if not pairs:
            continue
        shares.append(sum(x == y for x, y in pairs) / len(pairs))
        for x, y in pairs:
            if x == y:
                matrix[index[x]][index[x]] += 1
                agree_on[x] += 1
            else:
                matrix[index[x]][index[y]] += 1
                matrix[index[y]][index[x]] += 1
            occurs[x] += 1
            occurs[y] += 1
    per_label = {lab: (2 * agree_on[lab] / occurs[lab] if occurs[lab] else None) for lab in labels}
    return sum(shares) / len(shares), matrix, per_label


@pytest.mark.parametrize("n_labels", [2, 3, 5, 8])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_against_references(seed, n_labels):
    judgments, labels = _random_judgments(seed, n_labels)
    report = agreement_report(judgments, labels, {})

    # pairwise statistics: brute force over itertools.combinations
    pa, matrix, per_label = _brute_force(judgments, labels)
    assert report.percent_agreement == pytest.approx(pa, abs=1e-12)
    assert report.pair_confusion == matrix
    assert report.per_label_agreement.keys() == per_label.keys()
    for lab, value in per_label.items():
        got = report.per_label_agreement[lab]
        assert (got is None) == (value is None)
        if value is not None:
            assert got == pytest.approx(value, abs=1e-12)
            # consistency with the confusion matrix: 2 M_kk / (2 M_kk + sum_{l != k} M_kl)
            k = labels.index(lab)
            row = report.pair_confusion[k]
            assert got == pytest.approx(2 * row[k] / (row[k] + sum(row)), abs=1e-12)

    # Cohen's kappa: every pair with a common item, against scikit-learn
    labelled = {(j.annotator, j.item): j.label for j in judgments}
    annotators = sorted({j.annotator for j in judgments})
    items = sorted({j.item for j in judgments})
    expected_pairs = []
    for a, b in itertools.combinations(annotators, 2):
        common = [i for i in items if (a, i) in labelled and (b, i) in labelled]
        if common:
            expected_pairs.append((a, b, common))
    assert [(p.annotator_a, p.annotator_b, p.n_items) for p in report.cohen_kappa] == [
        (a, b, len(c)) for a, b, c in expected_pairs
    ]
    checked = 0
    for pk, (a, b, common) in zip(report.cohen_kappa, expected_pairs, strict=True):
        y1 = [labelled[a, i] for i in common]
        y2 = [labelled[b, i] for i in common]
        assert pk.observed == pytest.approx(np.mean(np.array(y1) == np.array(y2)), abs=1e-12)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn warns on the undefined (p_e = 1) case
            reference = cohen_kappa_score(y1, y2, labels=labels)
        if math.isnan(reference):
            assert pk.expected == 1.0 and pk.kappa == 1.0
        else:
            assert pk.kappa == pytest.approx(reference, abs=1e-12)
            checked += 1
    assert checked >= 15

    # Krippendorff's alpha against the krippendorff package (annotators x items, NaN = missing)
    rel = np.full((len(annotators), len(items)), np.nan)
    for (a, i), lab in labelled.items():
        rel[annotators.index(a), items.index(i)] = labels.index(lab)
    reference = krippendorff.alpha(
        reliability_data=rel, value_domain=list(range(n_labels)), level_of_measurement="nominal"
    )
    assert report.krippendorff_alpha == pytest.approx(reference, abs=1e-9)

    # standalone functions agree with the report
    assert percent_agreement(judgments) == report.percent_agreement
    assert krippendorff_alpha_nominal(judgments, labels) == report.krippendorff_alpha
    assert cohen_kappa_pairs(judgments, labels) == report.cohen_kappa
    assert per_label_agreement(judgments, labels) == report.per_label_agreement
    assert pair_confusion(judgments, labels) == report.pair_confusion


def test_annotator_vs_adjudicated_random():
    judgments, labels = _random_judgments(5, 4)
    rng = np.random.default_rng(9)
    items = sorted({j.item for j in judgments})
    adjudicated = {i: (None if rng.random() < 0.2 else labels[rng.integers(0, 4)]) for i in items[::2]}
    scores = annotator_vs_adjudicated(judgments, adjudicated)
    for ann, score in scores.items():
        mine = [j for j in judgments if j.annotator == ann and adjudicated.get(j.item) is not None]
        assert score.n_items == len(mine)
        assert score.agreement == pytest.approx(sum(j.label == adjudicated[j.item] for j in mine) / len(mine))
    assert list(scores) == sorted({j.annotator for j in judgments})


# --------------------------------------------------------------------------------------------------
# Edge cases and bad input
# --------------------------------------------------------------------------------------------------


def test_degenerate_cases_are_nan_free():
    # Both annotators used one and the same label: p_e = 1, kappa := 1.0; alpha (D_e = 0) := 1.0
    same = [Judgment(i, a, "x") for i in range(3) for a in ("u", "v")]
    [pk] = cohen_kappa_pairs(same, ["x", "y"])
    assert (pk.kappa, pk.observed, pk.expected, pk.n_items) == (1.0, 1.0, 1.0, 3)
    assert krippendorff_alpha_nominal(same, ["x", "y"]) == 1.0
    assert per_label_agreement(same, ["x", "y"]) == {"x": 1.0, "y": None}

    # Maximal disagreement with balanced labels: kappa = (0 - 0.5)/(1 - 0.5) = -1
    opposite = [Judgment(0, "u", "x"), Judgment(0, "v", "y"), Judgment(1, "u", "y"), Judgment(1, "v", "x")]
    assert cohen_kappa_pairs(opposite, ["x", "y"])[0].kappa == pytest.approx(-1.0)

    # Nothing to pair: items judged once
    single = [Judgment(0, "u", "x"), Judgment(1, "v", "y")]
    report = agreement_report(single, ["x", "y"], {0: "x"})
    assert report.percent_agreement is None and report.krippendorff_alpha is None
    assert report.cohen_kappa == [] and report.pair_confusion == [[0, 0], [0, 0]]
    assert report.per_label_agreement == {"x": None, "y": None}
    assert report.annotator_vs_adjudicated == {"u": AnnotatorScore(1, 1.0), "v": AnnotatorScore(0, None)}
    assert (report.n_items, report.n_judgments, report.n_annotators, report.n_paired_items) == (2, 2, 2, 0)

    empty = agreement_report([], ["x", "y"], {})
    assert empty == AgreementReport(
        ("x", "y"), 0, 0, 0, 0, None, None, [], {"x": None, "y": None}, [[0, 0], [0, 0]], {}
    )
    assert percent_agreement([]) is None


def test_unorderable_ids_keep_first_appearance_order():
    judgments = [
        Judgment("i", 2, "x"),
        Judgment("i", "b", "x"),
        Judgment(("t", 1), 2, "y"),
        Judgment(("t", 1), "b", "x"),
    ]
    [pk] = cohen_kappa_pairs(judgments, ["x", "y"])
    assert (pk.annotator_a, pk.annotator_b, pk.n_items, pk.observed) == (2, "b", 2, 0.5)


def test_bad_input():
    with pytest.raises(ValueError, match="'maybe'"):
        cohen_kappa_pairs([Judgment(1, "u", "yes"), Judgment(1, "v", "maybe")], YN)
    with pytest.raises(ValueError, match="'maybe'"):
        agreement_report([Judgment(1, "u", "yes")], YN, {1: "maybe"})
    with pytest.raises(ValueError, match=r"'ann7'.*'item3'"):
        agreement_report(
            [Judgment("item3", "ann7", "yes"), Judgment("item3", "x", "no"), Judgment("item3", "ann7", "no")], YN, {}
        )
    with pytest.raises(ValueError, match=r"'ann7'.*'item3'"):
        percent_agreement([Judgment("item3", "ann7", "yes"), Judgment("item3", "ann7", "yes")])
    with pytest.raises(ValueError, match="repeats"):
        pair_confusion([], ["yes", "yes"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        J10[0].label = "no"  # type: ignore[misc]


def test_report_is_plain_and_json_serialisable():
    report = agreement_report(J10, YN, ADJ10)
    data = dataclasses.asdict(report)
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["cohen_kappa"][0]["kappa"] == pytest.approx(0.4)
    assert data["annotator_vs_adjudicated"] == {
        "A": {"n_items": 4, "agreement": 0.5},
        "B": {"n_items": 4, "agreement": 1.0},
    }

    def plain(value):
        if isinstance(value, dict):
            return all(plain(k) and plain(v) for k, v in value.items())
        if isinstance(value, list | tuple):
            return all(plain(v) for v in value)
        return value is None or type(value) in (str, int, float, bool)

    assert plain(data)
    assert isinstance(report.cohen_kappa[0], PairKappa)


# --------------------------------------------------------------------------------------------------
# Real crowd data: Snow et al. (2008) RTE and TEMP, 10 AMT workers per item
# --------------------------------------------------------------------------------------------------


@pytest.mark.shared
@pytest.mark.parametrize(
    ("filename", "labels", "shape"),
    [("rte.standardized.tsv", ["0", "1"], (8000, 800, 164)), ("temp.standardized.tsv", ["1", "2"], (4620, 462, 76))],
    ids=["rte", "temp"],
)
def test_crowd_snow2008(filename, labels, shape):
    folder = shared_dataset("crowd_snow2008_rte_temp")
    frame = pd.read_csv(folder / filename, sep="\t", dtype=str)
    frame = frame.rename(columns={"!amt_worker_ids": "worker", "orig_id": "item"})
    judgments = [Judgment(i, w, r) for i, w, r in zip(frame["item"], frame["worker"], frame["response"], strict=True)]
    gold = dict(zip(frame["item"], frame["gold"], strict=False))

    report = agreement_report(judgments, labels, gold)
    assert (report.n_judgments, report.n_items, report.n_annotators) == shape
    assert report.n_paired_items == report.n_items  # every item has 10 judgments

    # reliability matrix: workers x items, label index, NaN = missing
    workers, worker_idx = np.unique(frame["worker"].to_numpy(dtype=str), return_inverse=True)
    _, item_idx = np.unique(frame["item"].to_numpy(dtype=str), return_inverse=True)
    rel = np.full((len(workers), item_idx.max() + 1), np.nan)
    rel[worker_idx, item_idx] = [labels.index(r) for r in frame["response"]]
    row = {w: k for k, w in enumerate(workers.tolist())}

    # Cohen's kappa of the five most-overlapping worker pairs equals scikit-learn on those pairs
    top = sorted(report.cohen_kappa, key=lambda p: (-p.n_items, p.annotator_a, p.annotator_b))[:5]
    assert top[0].n_items >= 300
    for pk in top:
        a, b = rel[row[pk.annotator_a]], rel[row[pk.annotator_b]]
        common = ~np.isnan(a) & ~np.isnan(b)
        assert int(common.sum()) == pk.n_items
        reference = cohen_kappa_score(a[common], b[common], labels=list(range(len(labels))))
        assert pk.kappa == pytest.approx(reference, abs=1e-12)
        print(f"{filename}: kappa({pk.annotator_a}, {pk.annotator_b}) = {pk.kappa:.4f} on {pk.n_items} items")

    # Krippendorff's alpha equals the krippendorff package on the same reliability matrix
    reference = krippendorff.alpha(reliability_data=rel, value_domain=[0, 1], level_of_measurement="nominal")
    assert report.krippendorff_alpha == pytest.approx(reference, abs=1e-9)
    print(f"{filename}: alpha = {report.krippendorff_alpha:.4f}, percent agreement = {report.percent_agreement:.4f}")

    # PROVENANCE.md: mean single-judgment accuracy against gold is 0.729 (RTE) / 0.734 (TEMP)
    scores = report.annotator_vs_adjudicated.values()
    pooled = sum(s.n_items * s.agreement for s in scores) / sum(s.n_items for s in scores)
    assert pooled == pytest.approx({"rte.standardized.tsv": 0.729, "temp.standardized.tsv": 0.734}[filename], abs=5e-4)


# --------------------------------------------------------------------------------------------------
# Speed
# --------------------------------------------------------------------------------------------------


def test_report_speed_200k_judgments():
    rng = np.random.default_rng(42)
    n_items, n_annotators = 100_000, 50
    first = rng.integers(0, n_annotators, n_items)
    second = (first + rng.integers(1, n_annotators, n_items)) % n_annotators  # never the same annotator
    labels = ["a", "b", "c", "d", "e"]
    lab1 = rng.integers(0, 5, n_items)
    lab2 = np.where(rng.random(n_items) < 0.7, lab1, rng.integers(0, 5, n_items))
    judgments = [Judgment(i, f"ann{a}", labels[k]) for i, a, k in zip(range(n_items), first.tolist(), lab1.tolist())]
    judgments += [Judgment(i, f"ann{a}", labels[k]) for i, a, k in zip(range(n_items), second.tolist(), lab2.tolist())]
    adjudicated = {i: labels[k] for i, k in enumerate(lab1.tolist()) if i % 4 == 0}

    start = time.perf_counter()
    report = agreement_report(judgments, labels, adjudicated)
    elapsed = time.perf_counter() - start
    print(f"agreement_report on {len(judgments):,} judgments: {elapsed:.3f} s")

    assert report.n_judgments == 200_000 and report.n_items == n_items and report.n_annotators == n_annotators
    assert report.percent_agreement == pytest.approx(np.mean(lab1 == lab2))
    assert len(report.cohen_kappa) == n_annotators * (n_annotators - 1) // 2
    assert sum(p.n_items for p in report.cohen_kappa) == n_items
    assert sum(map(sum, report.pair_confusion)) == 2 * n_items - int(np.sum(lab1 == lab2))
    assert elapsed < 10
