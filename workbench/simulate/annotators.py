"""Simulated people: annotators who answer with a set accuracy, real crowd workers replayed from
their judgments, and the reviewer who settles disagreements.

Randomness is derived from (seed, who, item) rather than drawn from one stream, so an annotator
gives the same answer to the same item whichever strategy brought it to them: strategies are
compared on the same annotator mistakes (paired runs), and a run replays exactly.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

from workbench.domain import ReviewCase

ADJUDICATORS = ("gold", "majority")
SKIP_REASON = "did not judge this item in the crowd data"


def _rng(*parts: object) -> random.Random:
    # A str seed is hashed with SHA-512 by random.Random: stable across processes and runs
    # (unlike hash()), so a replay gives the same draws.
    return random.Random("|".join(map(str, parts)))


class NoisyAnnotator:
    """Answers the true label with probability `accuracy`, else a label drawn uniformly from the
    other labels of the project."""

    def __init__(self, name: str, accuracy: float, labels: Sequence[str], seed: int) -> None:
        if not 0.0 <= accuracy <= 1.0:
            raise ValueError(f"annotator accuracy must be within 0..1, got {accuracy}")
        self.name, self.accuracy, self.labels, self.seed = name, accuracy, list(labels), seed

    def answer(self, external_id: str, truth: str) -> str:
        if self.accuracy >= 1.0:
            return truth
        rng = _rng(self.seed, self.name, external_id)
        if rng.random() < self.accuracy:
            return truth
        others = [label for label in self.labels if label != truth]
        return rng.choice(others) if others else truth


class CrowdReplay:
    """Real workers: a worker answers an item with the label they gave it in the crowd file, or
    not at all (None) when they did not judge it."""

    def __init__(self, judgments: dict[str, dict[str, str]]) -> None:
        self.judgments = judgments

    def answer(self, worker: str, external_id: str) -> str | None:
        return self.judgments.get(external_id, {}).get(worker)

    def judges(self, external_id: str) -> list[str]:
        return sorted(self.judgments.get(external_id, {}))


class Adjudicator:
    """The simulated reviewer. gold: the true label. majority: the most common answer among the
    item's annotations (what the reviewer sees), ties broken by a seeded draw."""

    def __init__(self, mode: str, truth: dict[str, str], seed: int) -> None:
        if mode not in ADJUDICATORS:
            raise ValueError(f"unknown adjudicator {mode!r}; use one of {', '.join(ADJUDICATORS)}")
        self.mode, self.truth, self.seed = mode, truth, seed

    def decide(self, case: ReviewCase) -> tuple[str, str]:
        """(label, reason) for one review case."""
        if self.mode == "gold":
            return self.truth[case.external_id], "simulated reviewer: the dataset's true label"
        counts = Counter(answer.label for answer in case.answers)
        top = max(counts.values())
        tied = sorted(label for label, n in counts.items() if n == top)
        if len(tied) == 1:
            return tied[0], f"simulated reviewer: majority of {len(case.answers)} answers"
        label = _rng(self.seed, "adjudicate", case.external_id).choice(tied)
        return label, f"simulated reviewer: tie between {', '.join(tied)} broken at random"
