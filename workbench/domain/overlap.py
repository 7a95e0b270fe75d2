"""How many human labels an item needs: the overlap policy, as one pure function.

The live queue (QueueService.submit → resolve) and `workbench simulate` both call :func:`decide`
after every label, so a policy can be dry-run on real crowd answers before a project uses it.

- ``fixed``: every item gets exactly ``overlap`` labels; unanimous → final, else review (the
  first release's rule).
- ``adaptive``: after each label, the posterior over the labels is computed from the annotators'
  estimated reliability (one-coin model: an annotator with reliability r gives the true label with
  probability r, else one of the other K-1 labels uniformly) and, as the prior, the current
  model's probabilities for the item, trusted in proportion to how far the model's eval accuracy
  is above chance. The item is final when that posterior reaches ``confidence`` (default 0.9)
  with at least ``min_labels`` labels; otherwise it asks for another label, up to ``max_labels``;
  at ``max_labels`` a unanimous item is final and a disagreement goes to review.
  Before asking for another label it looks ahead: when even the remaining labels up to
  ``max_labels``, all agreeing with the leading label and each from an annotator of reliability
  ``lookahead_reliability`` (default 0.8, a typical good annotator; 0 turns it off), could not
  bring the posterior to ``confidence``, more labels cannot settle the item, so it goes to review
  now instead of spending them (e.g. one label from an annotator estimated at 0.55 with max 2).
- Eval items always get ``max(2, min_labels)`` labels and are resolved by agreement alone, so the
  measurement stays honest (no model, no reliability weighting).

Every decision carries a one-line reason, e.g. "1 label: annotator reliability 0.96, model agrees
at 0.93 → posterior 0.99 ≥ 0.90".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "Aggregation",
    "GivenLabel",
    "ModelView",
    "Next",
    "OverlapDecision",
    "OverlapPolicy",
    "OverlapSettings",
    "decide",
    "posterior",
]

DEFAULT_RELIABILITY = 0.7  # an annotator nothing is known about yet
RELIABILITY_CLIP = (0.05, 0.99)  # never fully trusted, never a perfect anti-oracle


class OverlapPolicy(StrEnum):
    FIXED = "fixed"
    ADAPTIVE = "adaptive"


class Aggregation(StrEnum):
    """What turns an item's labels into its final label (recorded per final label)."""

    MAJORITY = "majority"  # agreement (unanimous) or plain majority
    DAWID_SKENE = "dawid_skene"  # Dawid-Skene posterior over all human labels


class Next(StrEnum):
    MORE = "more"  # the item needs another label
    FINAL = "final"  # the item has its final label
    REVIEW = "review"  # a reviewer decides


@dataclass(frozen=True)
class GivenLabel:
    """One human label as the policy sees it: who gave it and how reliable they are estimated to
    be (None: nothing known yet)."""

    annotator: str
    label: str
    reliability: float | None = None


@dataclass(frozen=True)
class ModelView:
    """The current model's view of one item: its probability per label and its eval accuracy."""

    proba: Mapping[str, float]
    eval_accuracy: float | None = None


@dataclass(frozen=True)
class OverlapSettings:
    policy: OverlapPolicy = OverlapPolicy.FIXED
    overlap: int = 2  # fixed policy
    min_labels: int = 1
    max_labels: int = 3
    confidence: float = 0.9  # adaptive: the posterior that makes a label final
    lookahead_reliability: float = 0.8  # adaptive: the next annotators' assumed reliability (0: no look-ahead)

    @classmethod
    def from_project(cls, overlap: int, settings: Mapping[str, Any]) -> OverlapSettings:
        return cls(
            policy=OverlapPolicy(settings.get("overlap_policy", OverlapPolicy.FIXED)),
            overlap=overlap,
            min_labels=int(settings.get("min_labels", 1)),
            max_labels=int(settings.get("max_labels", 3)),
            confidence=float(settings.get("overlap_confidence", 0.9)),
            lookahead_reliability=float(settings.get("lookahead_reliability", 0.8)),
        )

    def check(self) -> None:
        """ValueError with a one-line message when the settings cannot work."""
        if not 1 <= self.overlap <= 10:
            raise ValueError("overlap must be between 1 and 10")
        if not 1 <= self.min_labels <= self.max_labels <= 10:
            raise ValueError("need 1 <= min_labels <= max_labels <= 10")
        if self.policy == OverlapPolicy.ADAPTIVE and self.max_labels < 2:
            raise ValueError("adaptive overlap needs max_labels >= 2 (eval items always get 2 labels)")
        if not 0.5 <= self.confidence < 1.0:
            raise ValueError("overlap_confidence must be within [0.5, 1)")
        if not (self.lookahead_reliability == 0 or 0.5 <= self.lookahead_reliability < 1.0):
            raise ValueError("lookahead_reliability must be 0 (off) or within [0.5, 1)")

    @property
    def eval_labels(self) -> int:
        return self.overlap if self.policy == OverlapPolicy.FIXED else max(2, self.min_labels)

    @property
    def capacity(self) -> int:
        """The most labels any item can get (the queue's slot range)."""
        return self.overlap if self.policy == OverlapPolicy.FIXED else max(self.max_labels, self.eval_labels)


@dataclass(frozen=True)
class OverlapDecision:
    next: Next
    label: str | None  # the final label when next is FINAL
    confidence: float | None  # the posterior of `label` (adaptive), or None
    labels_wanted: int  # how many labels the item should have in all
    reason: str


def _clip(r: float | None) -> float:
    low, high = RELIABILITY_CLIP
    return min(high, max(low, DEFAULT_RELIABILITY if r is None else float(r)))


def model_weight(model: ModelView | None, n_labels: int) -> float:
    """How far to trust the model's probabilities as a prior: 0 at chance accuracy, 1 at perfect."""
    if model is None or model.eval_accuracy is None or n_labels < 2:
        return 0.0
    chance = 1.0 / n_labels
    return max(0.0, min(1.0, (model.eval_accuracy - chance) / (1.0 - chance)))


def posterior(
    labels: Sequence[GivenLabel], label_set: Sequence[str], model: ModelView | None = None
) -> dict[str, float]:
    """P(true label = k | the labels so far, the model), one-coin annotators, over `label_set`."""
    k = len(label_set)
    w = model_weight(model, k)
    prior = (
        {lab: (1 - w) / k + w * float(model.proba.get(lab, 0.0)) for lab in label_set}
        if w and model is not None
        else {lab: 1.0 / k for lab in label_set}
    )
    post = dict(prior)
    for given in labels:
        r = _clip(given.reliability)
        wrong = (1 - r) / (k - 1) if k > 1 else 0.0
        for lab in label_set:
            post[lab] *= r if lab == given.label else wrong
    total = sum(post.values())
    if total <= 0:
        return {lab: 1.0 / k for lab in label_set}
    return {lab: v / total for lab, v in post.items()}


def _agreement(labels: Sequence[GivenLabel]) -> tuple[str | None, bool]:
    counts = Counter(g.label for g in labels)
    if not counts:
        return None, False
    return counts.most_common(1)[0][0], len(counts) == 1


def _plural(n: int) -> str:
    return f"{n} label{'s' if n != 1 else ''}"


def _best_case(
    labels: Sequence[GivenLabel],
    label_set: Sequence[str],
    model: ModelView | None,
    leading: str,
    settings: OverlapSettings,
) -> float | None:
    """The posterior of `leading` if every label still allowed (up to max_labels) agreed with it,
    each from an annotator of the look-ahead reliability; None when the look-ahead is off."""
    if not settings.lookahead_reliability:
        return None
    more = [
        GivenLabel(f"lookahead-{k}", leading, settings.lookahead_reliability)
        for k in range(settings.max_labels - len(labels))
    ]
    return posterior([*labels, *more], label_set, model)[leading]


def decide(
    labels: Sequence[GivenLabel],
    *,
    settings: OverlapSettings,
    label_set: Sequence[str],
    split: str = "pool",
    model: ModelView | None = None,
) -> OverlapDecision:
    """What the item needs after these labels (all human, distinct annotators, paused ones left out)."""
    n = len(labels)
    top, unanimous = _agreement(labels)
    if settings.policy == OverlapPolicy.FIXED or split == "eval":
        want = settings.overlap if settings.policy == OverlapPolicy.FIXED else settings.eval_labels
        what = f"fixed overlap {want}" if settings.policy == OverlapPolicy.FIXED else f"eval item: always {want} labels"
        if n < want:
            return OverlapDecision(Next.MORE, None, None, want, f"{_plural(n)} of {want} ({what})")
        if unanimous:
            return OverlapDecision(Next.FINAL, top, None, want, f"{_plural(n)} agree on {top!r} ({what})")
        return OverlapDecision(Next.REVIEW, None, None, want, f"{_plural(n)} disagree ({what})")

    post = posterior(labels, label_set, model)
    best = max(label_set, key=lambda lab: (post[lab], lab == top))
    p = post[best]
    parts = [f"annotator reliability {', '.join(f'{_clip(g.reliability):.2f}' for g in labels)}"] if labels else []
    if model is not None and model_weight(model, len(label_set)) > 0:
        given = top if top is not None else best
        agrees = float(model.proba.get(given, 0.0))
        parts.append(
            f"model {'agrees' if agrees >= 0.5 else 'gives'} at {agrees:.2f}"
            + (f" (eval accuracy {model.eval_accuracy:.2f})" if model.eval_accuracy is not None else "")
        )
    elif model is not None:
        parts.append("model not above chance, ignored")
    why = f"{_plural(n)}: {', '.join(parts)}" if parts else _plural(n)
    if n >= settings.min_labels and p >= settings.confidence:
        return OverlapDecision(
            Next.FINAL, best, p, n, f"{why} → posterior {p:.2f} for {best!r} ≥ {settings.confidence:.2f}"
        )
    if n < settings.max_labels:
        reachable = _best_case(labels, label_set, model, best, settings)
        if n >= settings.min_labels and reachable is not None and reachable < settings.confidence:
            left = settings.max_labels - n
            return OverlapDecision(
                Next.REVIEW,
                None,
                p,
                n,
                f"{why} → posterior {p:.2f}; even {left} more agreeing "
                f"label{'s' if left != 1 else ''} at reliability {settings.lookahead_reliability:.2f} "
                f"would reach only {reachable:.2f} < {settings.confidence:.2f}: review now",
            )
        need = "minimum not reached" if n < settings.min_labels else f"posterior {p:.2f} < {settings.confidence:.2f}"
        return OverlapDecision(Next.MORE, None, p, n + 1, f"{why} → {need}: one more label")
    if unanimous and top is not None:
        return OverlapDecision(
            Next.FINAL,
            top,
            post[top],
            n,
            f"{why} → {_plural(n)} (the maximum) agree on {top!r}, posterior {post[top]:.2f}",
        )
    return OverlapDecision(
        Next.REVIEW,
        None,
        p,
        n,
        f"{why} → still unsettled at max {settings.max_labels} labels (posterior {p:.2f}): review",
    )
