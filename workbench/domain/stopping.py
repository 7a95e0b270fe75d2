"""Stopping advice: when more labels are unlikely to change the model (issue 13, deliverable 6).

Three signals, computed per round by the round pipeline and stored with each model run
(``ModelRun.stability``), read back by ``RoundQueries.stopping``:

- **Stabilizing predictions** (Bloodgood & Vijay-Shanker 2009): Cohen's kappa between this run's
  and the previous run's predictions on a fixed random *stop set* of pool items (no labels
  needed, so it can be large). Bloodgood & Grothendieck (2013) prove that kappa above T bounds the
  difference in F-measure between the two models by 4(1 - T) / T; the report shows that bound and
  the plainer one that the two models' accuracies on the stop set differ by at most their
  disagreement (1 - agreement).
- **Eval accuracy** with its 95 % bootstrap interval, run by run.
- **Strategy against the control arm**: the previous model's error rate on the items labeled since,
  for the items the strategy picked and for the random control arm. While the strategy finds items
  the model gets wrong more often than random picks do, it is still finding something to learn.

The sentence: "more labels are unlikely to change the model: kappa ≥ 0.99 for the last 3 rounds
and eval accuracy flat within its interval", or why not yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

KAPPA_STOP = 0.99
ROUNDS_STABLE = 3
STOP_SET_SIZE = 1000  # pool items; predictions only, no labels needed


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> tuple[float, float]:
    """(Cohen's kappa, observed agreement) of two label sequences of equal length (sklearn's
    kappa; two identical constant sequences, where kappa is 0/0, count as kappa 1)."""
    from sklearn.metrics import cohen_kappa_score

    if not len(a):
        raise ValueError("no items to compare")
    agreement = float(np.mean(np.asarray(a, dtype=object) == np.asarray(b, dtype=object)))
    if agreement == 1.0:
        return 1.0, 1.0
    return float(cohen_kappa_score(list(a), list(b))), agreement


def f_measure_bound(kappa: float | None) -> float | None:
    """Bloodgood & Grothendieck's bound on the F-measure difference implied by kappa > 0."""
    if kappa is None or kappa <= 0:
        return None
    return 4 * (1 - kappa) / kappa


@dataclass(frozen=True)
class Stability:
    """One run against the previous one (what ModelRun.stability stores)."""

    stop_n: int = 0  # stop-set items both runs predicted
    kappa: float | None = None
    agreement: float | None = None
    previous_run_id: int | None = None
    # the previous model on the items labeled since: {"ranked"|"control": [items, wrong]}
    arms: dict[str, list[int]] = field(default_factory=dict)

    @property
    def f_bound(self) -> float | None:
        return f_measure_bound(self.kappa)

    def to_json(self) -> dict[str, Any]:
        return {
            "stop_n": self.stop_n,
            "kappa": self.kappa,
            "agreement": self.agreement,
            "previous_run_id": self.previous_run_id,
            "arms": {k: [int(v[0]), int(v[1])] for k, v in self.arms.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Stability:
        data = dict(data or {})
        return cls(
            stop_n=int(data.get("stop_n") or 0),
            kappa=data.get("kappa"),
            agreement=data.get("agreement"),
            previous_run_id=data.get("previous_run_id"),
            arms={k: [int(v[0]), int(v[1])] for k, v in (data.get("arms") or {}).items()},
        )


@dataclass(frozen=True)
class StoppingRound:
    run_id: int
    version_number: int
    n_labels: int
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    kappa: float | None
    agreement: float | None
    f_bound: float | None
    stop_n: int
    ranked_error: float | None  # previous model's error on ranked picks labeled since
    control_error: float | None  # ... on control-arm picks
    n_ranked: int
    n_control: int


@dataclass(frozen=True)
class StoppingAdvice:
    rounds: tuple[StoppingRound, ...]
    stop: bool
    sentence: str
    strategy_vs_control: str


def _rate(arm: list[int] | None) -> tuple[float | None, int]:
    if not arm or arm[0] <= 0:
        return None, int(arm[0]) if arm else 0
    return arm[1] / arm[0], int(arm[0])


def stopping_round(
    run_id: int,
    version_number: int,
    n_labels: int,
    accuracy: float | None,
    ci: tuple[float, float] | None,
    stability: Stability,
) -> StoppingRound:
    ranked, n_ranked = _rate(stability.arms.get("ranked"))
    control, n_control = _rate(stability.arms.get("control"))
    return StoppingRound(
        run_id=run_id,
        version_number=version_number,
        n_labels=n_labels,
        accuracy=accuracy,
        ci_low=ci[0] if ci else None,
        ci_high=ci[1] if ci else None,
        kappa=stability.kappa,
        agreement=stability.agreement,
        f_bound=stability.f_bound,
        stop_n=stability.stop_n,
        ranked_error=ranked,
        control_error=control,
        n_ranked=n_ranked,
        n_control=n_control,
    )


def _strategy_vs_control(rounds: Sequence[StoppingRound]) -> str:
    ranked = sum(r.n_ranked for r in rounds)
    control = sum(r.n_control for r in rounds)
    if not control:
        return "strategy against control arm: no control-arm labels yet (project setting random_share)"
    wrong_r = sum((r.ranked_error or 0) * r.n_ranked for r in rounds)
    wrong_c = sum((r.control_error or 0) * r.n_control for r in rounds)
    rate_r = wrong_r / ranked if ranked else None
    rate_c = wrong_c / control
    if rate_r is None:
        return f"strategy against control arm: no ranked labels yet; control arm {control} labels"
    verdict = (
        "the strategy still finds items the model gets wrong more often than random picks"
        if rate_r > rate_c
        else "the strategy's picks are no harder for the model than random ones"
    )
    return (
        f"strategy against control arm: the previous model was wrong on {rate_r:.0%} of {ranked} ranked "
        f"picks and {rate_c:.0%} of {control} control-arm picks; {verdict}"
    )


def advise(rounds: Sequence[StoppingRound]) -> StoppingAdvice:
    """The plain sentence over the runs (oldest first)."""
    rounds = tuple(rounds)
    vs = _strategy_vs_control(rounds)
    with_kappa = [r for r in rounds if r.kappa is not None]
    if len(with_kappa) < ROUNDS_STABLE or len(rounds) < ROUNDS_STABLE:
        why = (
            f"not yet: {len(with_kappa)} round{'s' if len(with_kappa) != 1 else ''} with a stop-set kappa, "
            f"{ROUNDS_STABLE} needed"
        )
        return StoppingAdvice(rounds, False, why, vs)
    last = rounds[-ROUNDS_STABLE:]
    low_kappa = [r for r in last if r.kappa is None or r.kappa < KAPPA_STOP]
    if low_kappa:
        worst = min((r.kappa for r in last if r.kappa is not None), default=None)
        why = (
            f"not yet: kappa {worst:.3f} < {KAPPA_STOP} within the last {ROUNDS_STABLE} rounds "
            "(the model's predictions are still changing)"
            if worst is not None
            else f"not yet: a round without a stop-set kappa within the last {ROUNDS_STABLE}"
        )
        return StoppingAdvice(rounds, False, why, vs)
    latest = last[-1]
    if latest.accuracy is None or latest.ci_low is None or latest.ci_high is None:
        return StoppingAdvice(rounds, False, "not yet: the latest round has no eval accuracy interval", vs)
    outside = [r for r in last if r.accuracy is None or not latest.ci_low <= r.accuracy <= latest.ci_high]
    if outside:
        r = outside[0]
        acc = "none" if r.accuracy is None else f"{r.accuracy:.3f}"
        why = (
            f"not yet: eval accuracy {acc} (round of run {r.run_id}) is outside the latest interval "
            f"[{latest.ci_low:.3f}, {latest.ci_high:.3f}]: still moving"
        )
        return StoppingAdvice(rounds, False, why, vs)
    sentence = (
        f"more labels are unlikely to change the model: kappa ≥ {KAPPA_STOP} for the last {ROUNDS_STABLE} rounds "
        f"and eval accuracy flat within its interval ([{latest.ci_low:.3f}, {latest.ci_high:.3f}])"
    )
    return StoppingAdvice(rounds, True, sentence, vs)
