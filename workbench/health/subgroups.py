"""Model quality per subgroup of a sensitive column, computed with fairlearn's MetricFrame.

Per group: size, accuracy, and the selection rate of each label (share predicted as that label).
Across groups, per label treated as the positive class:
- disparate-impact ratio: the smallest group selection rate over the largest (demographic parity
  ratio; the "80% rule" flags values below 0.8);
- equalized-odds difference: the larger of the gaps between groups in true-positive rate and in
  false-positive rate (Hardt, Price & Srebro 2016).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SMALL_GROUP = 30  # fewer eval items than this in a group: its figures are noise


@dataclass(frozen=True)
class GroupMetrics:
    group: str
    size: int
    accuracy: float
    selection_rate: dict[str, float]  # label -> share of the group predicted as it


@dataclass(frozen=True)
class SubgroupReport:
    column: str
    groups: tuple[GroupMetrics, ...]
    disparate_impact: dict[str, float]  # label -> min / max selection rate across groups
    equalized_odds_difference: dict[str, float]  # label -> max(TPR gap, FPR gap)
    worst_group: str
    worst_accuracy: float
    small_groups: tuple[str, ...]  # groups with fewer than SMALL_GROUP items


def subgroup_metrics(
    column: str, y_true: Sequence[str], y_pred: Sequence[str], groups: Sequence[object], labels: Sequence[str]
) -> SubgroupReport:
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_ratio,
        equalized_odds_difference,
        selection_rate,
    )
    from sklearn.metrics import accuracy_score

    truth = np.asarray([str(v) for v in y_true], dtype=object)
    predicted = np.asarray([str(v) for v in y_pred], dtype=object)
    group_of = np.asarray(["" if g is None else str(g) for g in groups], dtype=object)
    metrics = {"accuracy": accuracy_score, "size": lambda t, p: len(t)}
    for label in labels:
        metrics[f"rate:{label}"] = (lambda lab: lambda t, p: selection_rate(t, p, pos_label=lab))(label)
    frame = MetricFrame(metrics=metrics, y_true=truth, y_pred=predicted, sensitive_features=group_of)
    by_group = frame.by_group
    out = []
    for group, row in by_group.iterrows():
        out.append(
            GroupMetrics(
                str(group),
                int(row["size"]),
                float(row["accuracy"]),
                {label: float(row[f"rate:{label}"]) for label in labels},
            )
        )
    impact, odds = {}, {}
    for label in labels:
        t = (truth == label).astype(int)
        p = (predicted == label).astype(int)
        impact[label] = float(demographic_parity_ratio(t, p, sensitive_features=group_of))
        odds[label] = float(equalized_odds_difference(t, p, sensitive_features=group_of))
    worst = min(out, key=lambda g: g.accuracy)
    return SubgroupReport(
        column,
        tuple(out),
        impact,
        odds,
        worst.group,
        worst.accuracy,
        tuple(g.group for g in out if g.size < SMALL_GROUP),
    )
