"""The overlap policy (workbench.domain.overlap.decide): pure, hand-computed cases."""

from __future__ import annotations

import pytest

from workbench.domain.overlap import (
    GivenLabel,
    ModelView,
    Next,
    OverlapPolicy,
    OverlapSettings,
    decide,
    posterior,
)

LABELS = ("ham", "spam")
FIXED = OverlapSettings(policy=OverlapPolicy.FIXED, overlap=2)
ADAPTIVE = OverlapSettings(policy=OverlapPolicy.ADAPTIVE, min_labels=1, max_labels=3, confidence=0.9)


def g(label: str, r: float | None = None, who: str = "a") -> GivenLabel:
    return GivenLabel(who, label, r)


def test_fixed_policy_is_the_first_release_rule():
    assert decide([g("ham")], settings=FIXED, label_set=LABELS).next == Next.MORE
    agreed = decide([g("ham", who="a"), g("ham", who="b")], settings=FIXED, label_set=LABELS)
    assert (agreed.next, agreed.label) == (Next.FINAL, "ham")
    assert decide([g("ham", who="a"), g("spam", who="b")], settings=FIXED, label_set=LABELS).next == Next.REVIEW


def test_posterior_one_coin_by_hand():
    # r = 0.9 for ham, r = 0.6 for spam: odds ham:spam = 0.9*0.4 : 0.1*0.6 = 0.36 : 0.06
    post = posterior([g("ham", 0.9), g("spam", 0.6, "b")], LABELS)
    assert post["ham"] == pytest.approx(0.36 / 0.42)


def test_a_reliable_annotator_alone_settles_a_pool_item_and_says_why():
    decision = decide([g("spam", 0.96)], settings=ADAPTIVE, label_set=LABELS)
    assert (decision.next, decision.label) == (Next.FINAL, "spam")
    assert decision.confidence == pytest.approx(0.96)
    assert decision.reason.startswith("1 label: annotator reliability 0.96")
    assert "posterior 0.96" in decision.reason


def test_an_unknown_annotator_needs_a_second_label_then_a_third_on_disagreement():
    first = decide([g("spam")], settings=ADAPTIVE, label_set=LABELS)  # reliability unknown: 0.7
    assert first.next == Next.MORE and first.labels_wanted == 2
    split = decide([g("spam", 0.9), g("ham", 0.8, "b")], settings=ADAPTIVE, label_set=LABELS)
    assert split.next == Next.MORE and split.labels_wanted == 3  # 0.69; a third 0.8 label reaches 0.90
    # Three weak annotators who disagree at the maximum: review.
    last = decide([g("spam", 0.7), g("ham", 0.7, "b"), g("spam", 0.55, "c")], settings=ADAPTIVE, label_set=LABELS)
    assert last.next == Next.REVIEW and "max 3 labels" in last.reason
    # ... but unanimous at the maximum is final even below the confidence.
    weak = decide([g("spam", 0.6), g("spam", 0.6, "b"), g("spam", 0.6, "c")], settings=ADAPTIVE, label_set=LABELS)
    assert (weak.next, weak.label) == (Next.FINAL, "spam")


def test_look_ahead_sends_an_item_to_review_when_more_labels_cannot_settle_it():
    # Two 0.8 annotators disagree: posterior 0.5. One more agreeing 0.8 label reaches only 0.8 < 0.9,
    # so the third label is not bought; the item goes to review now and says why.
    split = decide([g("spam", 0.8), g("ham", 0.8, "b")], settings=ADAPTIVE, label_set=LABELS)
    assert split.next == Next.REVIEW and split.labels_wanted == 2
    assert "even 1 more agreeing label at reliability 0.80 would reach only 0.80 < 0.90: review now" in split.reason
    # Max 2: one label from an annotator estimated near chance (0.55) cannot be settled by one more
    # 0.8 label (0.55*0.8 / (0.55*0.8 + 0.45*0.2) = 0.83), so review now; from 0.7 it can (0.90).
    max2 = OverlapSettings(policy=OverlapPolicy.ADAPTIVE, min_labels=1, max_labels=2, confidence=0.9)
    weak = decide([g("spam", 0.55)], settings=max2, label_set=LABELS)
    assert weak.next == Next.REVIEW and weak.confidence == pytest.approx(0.55)
    assert decide([g("spam", 0.7)], settings=max2, label_set=LABELS).next == Next.MORE
    # Off (0), the old rule: ask for the label anyway; min_labels is honoured before any look-ahead.
    off = OverlapSettings(policy=OverlapPolicy.ADAPTIVE, max_labels=2, confidence=0.9, lookahead_reliability=0)
    assert decide([g("spam", 0.55)], settings=off, label_set=LABELS).next == Next.MORE
    min2 = OverlapSettings(policy=OverlapPolicy.ADAPTIVE, min_labels=2, max_labels=3, confidence=0.9)
    assert decide([g("spam", 0.55)], settings=min2, label_set=LABELS).next == Next.MORE
    with pytest.raises(ValueError, match="lookahead_reliability"):
        OverlapSettings(policy=OverlapPolicy.ADAPTIVE, lookahead_reliability=0.3).check()


def test_the_model_is_a_prior_in_proportion_to_its_eval_accuracy():
    agrees = ModelView({"ham": 0.07, "spam": 0.93}, eval_accuracy=0.95)
    decision = decide([g("spam", 0.8)], settings=ADAPTIVE, label_set=LABELS, model=agrees)
    assert decision.next == Next.FINAL and "model agrees at 0.93" in decision.reason
    # A model at chance carries no weight: the same label is not enough.
    chance = ModelView({"ham": 0.07, "spam": 0.93}, eval_accuracy=0.5)
    undecided = decide([g("spam", 0.8)], settings=ADAPTIVE, label_set=LABELS, model=chance)
    assert undecided.next == Next.MORE and "not above chance" in undecided.reason


def test_eval_items_always_get_max_of_2_and_min_labels_whatever_the_reliability():
    one = decide([g("spam", 0.99)], settings=ADAPTIVE, label_set=LABELS, split="eval")
    assert one.next == Next.MORE and one.labels_wanted == 2
    two = decide([g("spam", 0.99), g("spam", 0.5, "b")], settings=ADAPTIVE, label_set=LABELS, split="eval")
    assert two.next == Next.FINAL
    three = OverlapSettings(policy=OverlapPolicy.ADAPTIVE, min_labels=3, max_labels=4)
    assert decide([g("spam"), g("spam", who="b")], settings=three, label_set=LABELS, split="eval").next == Next.MORE


def test_min_labels_is_honoured_and_settings_are_checked():
    two = OverlapSettings(policy=OverlapPolicy.ADAPTIVE, min_labels=2, max_labels=3)
    assert decide([g("spam", 0.99)], settings=two, label_set=LABELS).next == Next.MORE
    with pytest.raises(ValueError):
        OverlapSettings(policy=OverlapPolicy.ADAPTIVE, min_labels=3, max_labels=2).check()
    with pytest.raises(ValueError):
        OverlapSettings(policy=OverlapPolicy.ADAPTIVE, min_labels=1, max_labels=1).check()
    assert OverlapSettings.from_project(2, {"overlap_policy": "adaptive", "max_labels": 4}).capacity == 4
