"""The strategy advisor's result: each strategy replayed on the project's own labels, against random.

The advisor (workbench.services.advisor) runs ``workbench simulate`` on the project's final-labeled
items: every strategy the project's model can serve, and random, over a few seeds. Per strategy it
keeps the mean learning curve and its AUBC minus random's, paired by seed, with a 95% t-interval
(workbench.simulate.report.paired_against_random). The recommendation is the strategy with the
largest mean difference among those whose interval lies wholly above zero; with none, the advice
is to keep the project's strategy. The advice never changes the project's strategy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

RANDOM = "random"


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The keys ``cls`` has (a result stored by a later release may carry more)."""
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in data.items() if key in names}


class Verdict(StrEnum):
    """A strategy's AUBC against random's, from the paired interval over seeds."""

    ABOVE = "above"  # the whole 95% interval is above zero
    BELOW = "below"  # the whole interval is below zero
    NO_DIFFERENCE = "no difference detected"  # the interval holds zero
    BASELINE = "baseline"  # random itself

    @classmethod
    def of(cls, text: str) -> Verdict:
        return cls(text)


@dataclass(frozen=True)
class CurvePoint:
    """Mean eval accuracy over seeds after ``labels`` labeled pool items (sample std over seeds)."""

    labels: int
    accuracy: float
    std: float = 0.0


@dataclass(frozen=True)
class StrategyAdvice:
    """One strategy's replay: its mean curve, AUBC, and AUBC minus random's with the interval.

    ``same_as`` names the strategy whose runs stand for this one: with two labels, strategies that
    rank by a decreasing function of the margin (least confidence, margin, entropy) pick the same
    items, so they are replayed once.
    """

    strategy: str
    curve: tuple[CurvePoint, ...]
    aubc: float | None
    verdict: Verdict
    diff_mean: float | None = None  # AUBC minus random's, mean over seeds
    diff_low: float | None = None  # its 95% t-interval (None with one seed or no spread)
    diff_high: float | None = None
    diffs_by_seed: tuple[float, ...] = ()
    same_as: str | None = None
    is_current: bool = False

    @property
    def beats_random(self) -> bool:
        return self.verdict is Verdict.ABOVE and self.diff_low is not None and self.diff_low > 0


@dataclass(frozen=True)
class Advice:
    """What one advisor run measured and recommends (stored as the advise job's result)."""

    n_labels: int  # final-labeled items the replay used
    n_pool: int  # of them, replayed as the pool (the rest is the eval split, the same in every run)
    n_eval: int
    seeds: tuple[int, ...]
    batch_size: int
    initial: int  # the cold-start seed set every run starts from
    current_strategy: str  # the project's strategy when the advice was made
    strategies: tuple[StrategyAdvice, ...]
    recommended: str | None  # None: no strategy beats random yet
    sentence: str
    featurizer: str = ""
    full_pool_accuracy: float | None = None
    model_above_majority: bool = True  # the model trained on every pool label beats the majority label
    seconds: float = 0.0
    skipped: tuple[str, ...] = field(default_factory=tuple)  # strategies left out, with why

    def get(self, strategy: str) -> StrategyAdvice | None:
        return next((s for s in self.strategies if s.strategy == strategy), None)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for item in data["strategies"]:
            item["verdict"] = str(item["verdict"])
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Advice:
        data = _known(cls, data)
        data["seeds"] = tuple(data.get("seeds") or ())
        data["skipped"] = tuple(data.get("skipped") or ())
        data["strategies"] = tuple(
            StrategyAdvice(
                **{
                    **_known(StrategyAdvice, s),
                    "curve": tuple(CurvePoint(**_known(CurvePoint, p)) for p in s.get("curve") or ()),
                    "verdict": Verdict(s["verdict"]),
                    "diffs_by_seed": tuple(s.get("diffs_by_seed") or ()),
                }
            )
            for s in data.get("strategies") or ()
        )
        return cls(**data)


def recommend(strategies: tuple[StrategyAdvice, ...], current: str) -> tuple[str | None, str]:
    """(recommended strategy or None, one sentence). The best is the largest mean AUBC gain over
    random among the strategies whose whole 95% interval is above zero."""
    winners = [s for s in strategies if s.strategy != RANDOM and s.beats_random]
    if not winners:
        return None, f"No strategy beats random yet; keep {current}."
    best = max(winners, key=lambda s: (s.diff_mean or 0.0, s.strategy == current))
    interval = f"{best.diff_low:+.3f} to {best.diff_high:+.3f}"
    gain = f"AUBC {best.diff_mean:+.3f} over random (95% interval {interval})"
    if best.strategy == current:
        return best.strategy, f"Keep {current}: it beats random on this project's labels, {gain}."
    return best.strategy, f"Consider {best.strategy}: {gain}; the project uses {current}."
