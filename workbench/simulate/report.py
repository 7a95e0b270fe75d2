"""The simulation report: learning curves across seeds, AUBC, labels-to-target, label quality, timings.

Definitions (also written into report.json under "method"):

- ``labels``: pool items with a final label (agreed, or adjudicated by the simulated reviewer).
- ``labels_spent``: annotations submitted by the simulated annotators (``labels × overlap``: every
  labeled item has exactly ``overlap`` annotations; skips are not annotations). The eval split's
  gold labels are not spent labels (see ``eval_annotations_not_counted``).
- ``accuracy``: what RoundService.run_retrain measured on the eval split, whose labels are the
  dataset's true labels; the same eval items for every strategy and seed.
- ``curve``: one point per round, mean and sample standard deviation (ddof=1) over seeds.
- ``aubc``: area under the budget curve, normalised: the trapezoid integral of mean accuracy over
  the labels axis divided by the labels range (last − first point), i.e. mean accuracy over the
  budget. 1.0 is a perfect model from the first point on.
- ``labels_to_95`` / ``labels_to_98`` / ``labels_to_99``: the first curve point whose mean accuracy
  reaches 95 % / 98 % / 99 % of ``full_pool_accuracy`` (null if none does).
- ``full_pool_accuracy``: the project's model trained on every pool item with its true label,
  scored on the same eval items.
- ``final_label_accuracy``: share of the labeled pool items whose final label equals the true
  label (mean over seeds).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.simulate.data import CrowdData, LabeledData

if TYPE_CHECKING:
    from workbench.simulate.runner import SimulationConfig, Template

TARGETS = (0.95, 0.98, 0.99)
METHOD = {
    "labels": "pool items with a final label (agreed or adjudicated)",
    "labels_spent": "annotations submitted by simulated annotators (labels x overlap); eval gold labels excluded",
    "accuracy": "RoundService.run_retrain's accuracy on the eval split, whose labels are the true labels "
    "(same eval items for every strategy and seed)",
    "curve_std": "sample standard deviation across seeds (ddof=1; 0 with one seed)",
    "aubc": "trapezoid integral of mean accuracy over labels, divided by (last labels - first labels)",
    "labels_to_X": "first curve point whose mean accuracy >= X% of full_pool_accuracy; with --until, runs go "
    "on past the budget until they reach until x full_pool_accuracy, and a run that stopped "
    "is carried forward at its last accuracy (optimistic for that strategy)",
    "aubc_and_final": "aubc, final_accuracy and against_random use the curve points up to the budget only",
    "full_pool_accuracy": "the project's model trained on every pool item's true label, same eval items",
    "final_label_accuracy": "share of labeled pool items whose final label equals the true label",
    "no_model_point": "a round without a model (fewer than 2 distinct labels) scores the majority label "
    "of the labeled items",
    "against_random": "per seed, the strategy's AUBC minus random's (same seed: same cold-start set and "
    "annotator noise) over the points both reached; mean and 95% t-interval over seeds",
    "model_signal": "full-pool accuracy's exact 95% interval against the eval split's majority-label rate",
    "eval_split": "labeled once with the true labels by gold oracles through the queue before the runs; "
    "not counted in labels_spent",
}


def aubc(points: list[tuple[int, float]]) -> float | None:
    """Normalised area under the budget curve: trapezoid(mean acc, labels) / labels range."""
    if not points:
        return None
    xs = np.asarray([p[0] for p in points], dtype=float)
    ys = np.asarray([p[1] for p in points], dtype=float)
    if len(xs) == 1 or xs[-1] == xs[0]:
        return float(ys.mean())
    return float(np.sum((ys[1:] + ys[:-1]) / 2 * np.diff(xs)) / (xs[-1] - xs[0]))


def _aubc_at(curve: list[dict[str, Any]], shared: set[int]) -> float:
    """AUBC of a run's curve on the label counts every compared run has."""
    value = aubc([(p["labels"], p["accuracy"]) for p in curve if p["labels"] in shared])
    assert value is not None, "the compared runs share no label count"  # was None - None, a TypeError
    return value


def labels_to(points: list[tuple[int, float]], target: float) -> int | None:
    for labels, accuracy in points:
        if accuracy >= target - 1e-12:
            return int(labels)
    return None


def aggregate_curve(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_labels: dict[int, list[float]] = defaultdict(list)
    for run in runs:
        for point in run["curve"]:
            by_labels[point["labels"]].append(point["accuracy"])
    return [
        {
            "labels": labels,
            "accuracy_mean": float(statistics.fmean(values)),
            "accuracy_std": float(statistics.stdev(values)) if len(values) > 1 else 0.0,
            "n_seeds": len(values),
        }
        for labels, values in sorted(by_labels.items())
    ]


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(statistics.fmean(present)) if present else None


def extended_curve(runs: list[dict[str, Any]], budget: int) -> list[tuple[int, float]]:
    """The mean curve past the budget (``--until``), where runs stopped once they reached the target:
    a run that stopped is carried forward at its last accuracy. That is optimistic for the arm
    (a curve can dip after reaching the target), so labels-to-target past the budget is if
    anything too low, never too high. Points up to the budget are the ordinary mean curve."""
    grid = sorted({p["labels"] for run in runs for p in run["curve"] if p["labels"] > budget})
    out: list[tuple[int, float]] = []
    for labels in grid:
        values = []
        for run in runs:
            reached = [p for p in run["curve"] if p["labels"] <= labels]
            if not reached:
                return out
            values.append(reached[-1]["accuracy"])
        out.append((labels, float(statistics.fmean(values))))
    return out


def _range(values: list[float | None]) -> list[float] | None:
    present = [v for v in values if v is not None]
    return [min(present), max(present)] if present else None


def _sum_counts(counts: list[dict[str, int]], n: int) -> dict[str, float]:
    total: dict[str, float] = defaultdict(float)
    for c in counts:
        for key, value in c.items():
            total[key] += value / n
    return dict(total)


def _issue_means(runs: list[dict[str, Any]]) -> dict[str, Any]:
    issues = [run["label_issues"] for run in runs if run.get("label_issues")]
    if not issues:
        return {}
    return {
        "label_issue_precision_at_k": _mean([i["label_issue_precision_at_k"] for i in issues]),
        "label_issue_recall": _mean([i["label_issue_recall"] for i in issues]),
        "label_issue_recall_at_k": _mean([i["recall_at_k"] for i in issues]),
        "label_issue_precision_at_k_by_seed": [i["label_issue_precision_at_k"] for i in issues],
        "label_issue_recall_by_seed": [i["label_issue_recall"] for i in issues],
        "label_issues_flipped": _mean([i["flipped"] for i in issues]),
        "label_issues_k": _mean([i["k"] for i in issues]),
        "label_issues_corrected_in_diff": _mean([i["corrected_in_diff"] for i in issues]),
        "label_issue_examples": issues[0]["examples"],
    }


def worker_flags(
    runs: list[dict[str, Any]], crowd: CrowdData | None, truth: dict[str, str], pool_ids: set[str] | None = None
) -> dict[str, Any] | None:
    """When quality flagged each real worker, against how accurate they really were: chance-level
    workers (true accuracy < 0.6 over at least 100 judgments) should be flagged early; workers at
    0.7 or better should not be flagged at all."""
    if crowd is None:
        return None
    judged: dict[str, list[bool]] = defaultdict(list)
    for item, answers in crowd.judgments.items():
        if item in truth and (pool_ids is None or item in pool_ids):
            for worker, label in answers.items():
                judged[worker].append(label == truth[item])
    accuracy = {w: float(np.mean(v)) for w, v in judged.items() if v}
    chance = sorted(w for w, v in judged.items() if len(v) >= 100 and accuracy[w] < 0.6)
    good = {w for w, a in accuracy.items() if a >= 0.7}
    per_seed = []
    for run in runs:
        flagged = run.get("first_flagged") or {}
        per_seed.append(
            {
                "seed": run["seed"],
                "chance_workers_flagged_after": {w: flagged.get(w) for w in chance},
                "good_workers_flagged": sorted(w for w in flagged if w in good),
                "labels_by_chance_workers": sum((run.get("labels_by_worker") or {}).get(w, 0) for w in chance),
            }
        )
    after = [v for seed in per_seed for v in seed["chance_workers_flagged_after"].values()]
    return {
        "chance_workers": {w: {"true_accuracy": round(accuracy[w], 3), "judgments": len(judged[w])} for w in chance},
        "all_chance_workers_flagged": all(v is not None for v in after) if after else None,
        "max_labels_before_flag": max((v for v in after if v is not None), default=None),
        "good_workers_flagged_mean": _mean([len(seed["good_workers_flagged"]) for seed in per_seed]),
        "per_seed": per_seed,
    }


def summarize_strategy(
    runs: list[dict[str, Any]], full_pool_accuracy: float, budget: int | None = None
) -> dict[str, Any]:
    curve = aggregate_curve(runs)
    n_seeds = len(runs)
    # Points every seed reached (a pool that ran dry early would otherwise bias the tail).
    complete = [p for p in curve if p["n_seeds"] == n_seeds and (budget is None or p["labels"] <= budget)]
    points = [(p["labels"], p["accuracy_mean"]) for p in complete]
    beyond = extended_curve(runs, budget) if budget is not None else []
    spent = [run["labels_spent"] for run in runs]
    out: dict[str, Any] = {
        "curve": curve,
        "aubc": aubc(points),
        **{f"labels_to_{round(t * 100)}": labels_to(points + beyond, t * full_pool_accuracy) for t in TARGETS},
        "labels_to_99_past_budget": bool(beyond) and labels_to(points, 0.99 * full_pool_accuracy) is None,
        "max_labels": max((p["labels"] for run in runs for p in run["curve"]), default=0),
        "final_accuracy_mean": complete[-1]["accuracy_mean"] if complete else None,
        "final_accuracy_std": complete[-1]["accuracy_std"] if complete else None,
        "final_label_accuracy": _mean([run["final_label_accuracy"] for run in runs]),
        "final_label_accuracy_by_seed": [run["final_label_accuracy"] for run in runs],
        "labels": int(round(statistics.fmean(run["labels"] for run in runs))),
        "labels_spent": int(round(statistics.fmean(spent))),
        "labels_spent_by_seed": spent,
        "adjudications": _mean([run["adjudications"] for run in runs]),
        "skips": _mean([run["skips"] for run in runs]),
        "labels_per_item": _mean([run.get("labels_per_item") for run in runs]),
        "review_share": _mean([run.get("review_share") for run in runs]),
        "gold_labels_spent": _mean([run.get("gold_labels_spent", 0) for run in runs]),
        "final_label_accuracy_range": _range([run["final_label_accuracy"] for run in runs]),
        "final_by": _sum_counts([run.get("final_by") or {} for run in runs], len(runs)),
        **_issue_means(runs),
        "seconds_per_run": _mean([run["seconds"] for run in runs]),
        "cpu_seconds_per_run": _mean([run.get("cpu_seconds") for run in runs]),
        "seeds": [run["seed"] for run in runs],
    }
    return out


def _profile(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Where the time went, summed over runs: service calls and the round's own steps."""
    calls: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    steps: dict[str, float] = defaultdict(float)
    for run in runs:
        for name, timing in run["timings"].items():
            calls[name][0] += timing["calls"]
            calls[name][1] += timing["seconds"]
        for name, seconds in run["round_steps"].items():
            steps[name] += seconds
    total = sum(seconds for _, seconds in calls.values()) or 1.0
    return {
        "calls": {
            name: {
                "calls": int(n),
                "seconds": round(s, 2),
                "ms_per_call": round(1000 * s / max(n, 1), 2),
                "share": round(s / total, 3),
            }
            for name, (n, s) in sorted(calls.items())
        },
        "retrain_steps_seconds": {name: round(s, 2) for name, s in sorted(steps.items())},
        "run_seconds_total": round(sum(run["seconds"] for run in runs), 2),
        "run_cpu_seconds_total": round(sum(run.get("cpu_seconds", 0.0) for run in runs), 2),
    }


def paired_against_random(
    by_strategy: dict[str, list[dict[str, Any]]], budget: int | None = None
) -> dict[str, dict[str, Any]]:
    """Each strategy's AUBC minus random's, paired by seed (the same seed draws the same cold-start
    set and the same annotator noise), with a 95% t-interval over seeds.

    Each run's AUBC is taken over the curve points every run of both strategies reached. The
    verdict is "above" or "below" when the interval excludes 0, else "no difference detected".
    """
    from scipy import stats

    baseline = {run["seed"]: run for run in by_strategy.get("random", [])}
    out: dict[str, dict[str, Any]] = {}
    for name, runs in by_strategy.items():
        pairs = [(run, baseline[run["seed"]]) for run in runs if name != "random" and run["seed"] in baseline]
        if not pairs:
            continue
        shared = set.intersection(*({p["labels"] for p in run["curve"]} for pair in pairs for run in pair))
        if budget is not None:  # points past the budget (--until) are not comparable across arms
            shared = {labels for labels in shared if labels <= budget}
        diffs = np.asarray([_aubc_at(a["curve"], shared) - _aubc_at(b["curve"], shared) for a, b in pairs])
        mean = float(diffs.mean())
        low: float | None
        high: float | None
        if len(diffs) > 1 and diffs.std(ddof=1) > 0:
            half = float(stats.t.ppf(0.975, len(diffs) - 1) * diffs.std(ddof=1) / np.sqrt(len(diffs)))
            low, high = mean - half, mean + half
            verdict = "above" if low > 0 else "below" if high < 0 else "no difference detected"
        else:
            low = high = None
            verdict = "above" if mean > 0 else "below" if mean < 0 else "no difference detected"
        out[name] = {
            "aubc_minus_random_mean": mean,
            "aubc_minus_random_ci95": [low, high],
            "aubc_minus_random_by_seed": [float(d) for d in diffs],
            "n_seeds": len(diffs),
            "verdict": verdict,
        }
    return out


def model_signal(eval_label_counts: dict[str, int], full_pool_accuracy: float) -> dict[str, Any]:
    """Whether the model, trained on the whole pool, beats always answering the eval split's
    majority label: the exact (Clopper-Pearson) 95% interval of its eval accuracy against that rate.
    When it does not, no query strategy can be told apart from another on this dataset."""
    from scipy import stats

    n_eval = sum(eval_label_counts.values())
    majority = max(eval_label_counts.values()) / n_eval if n_eval else 0.0
    correct = int(round(full_pool_accuracy * n_eval))
    interval = stats.binomtest(correct, n_eval).proportion_ci(confidence_level=0.95, method="exact")
    return {
        "majority_baseline": majority,
        "full_pool_accuracy_ci95": [interval.low, interval.high],
        "above_majority": bool(interval.low > majority),
    }


def build_report(
    data: LabeledData,
    config: SimulationConfig,
    template: Template,
    runs: list[dict[str, Any]],
    *,
    budget: int,
    initial: int,
    crowd: CrowdData | None,
    wall_seconds: float,
) -> dict[str, Any]:
    from workbench.simulate.runner import config_dict

    by_strategy: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in sorted(runs, key=lambda r: (r["strategy"], r["seed"])):
        by_strategy[run["strategy"]].append(run)
    return {
        "dataset": data.name,
        "kind": data.kind,
        "n_items": template.n_items,
        "n_pool": template.n_pool,
        "n_eval": template.n_eval,
        "labels_set": template.labels,
        "eval_label_counts": template.eval_label_counts,
        "dropped_rows": data.dropped,
        "full_pool_accuracy": template.full_pool_accuracy,
        "settings": {
            **config_dict(config),
            "budget": budget,
            "initial": initial,
            "annotators": template.annotators if crowd is not None else len(template.annotators),
            "crowd": None
            if crowd is None
            else {
                "rows": crowd.n_rows,
                "workers": len(crowd.workers),
                "items": len(crowd.judgments),
                "duplicates_ignored": crowd.duplicates,
            },
        },
        "eval_annotations_not_counted": template.eval_annotations,
        "method": METHOD,
        "model_signal": model_signal(template.eval_label_counts, template.full_pool_accuracy),
        "featurizer": getattr(template, "featurizer", ""),
        "full_pool_accuracy_by_featurizer": getattr(template, "full_pool_accuracy_by_featurizer", {}),
        "strategies": {
            name: summarize_strategy(by_strategy[name], template.full_pool_accuracy, budget)
            for name in config.strategies
            if name in by_strategy
        },
        "against_random": paired_against_random(by_strategy, budget),
        "worker_flags": {
            name: worker_flags(by_strategy[name], crowd, data.truth(), None)
            for name in config.strategies
            if name in by_strategy
        }
        if crowd is not None
        else None,
        "timing": {
            "wall_seconds": round(wall_seconds, 2),
            "setup_seconds": {k: round(v, 2) for k, v in template.seconds.items()},
            **_profile(runs),
        },
        "runs": sorted(runs, key=lambda r: (r["strategy"], r["seed"])),
    }


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "—" if value is None else format(value, spec)


def summary_table(report: dict[str, Any]) -> str:
    """The printed summary: one line per strategy."""
    s = report["settings"]
    head = (
        f"{report['dataset']}: {report['n_items']} items ({report['n_pool']} pool, {report['n_eval']} eval), "
        f"full-pool accuracy {report['full_pool_accuracy']:.4f}; budget {s['budget']} labels, "
        f"initial {s['initial']}, batch {s['batch_size']}"
        + "".join(f" ({size} from {start})" for start, size in s.get("batch_schedule") or ())
        + f", overlap {s['overlap']}, "
        f"adjudicator {s['adjudicator']}, {len(s['seeds'])} seed(s)"
        + (f"; features {report['featurizer'].split(':')[0]}" if report.get("featurizer") else "")
        + "".join(
            f"; full-pool accuracy with {key.split(':')[0]} {value:.4f}"
            for key, value in (report.get("full_pool_accuracy_by_featurizer") or {}).items()
            if key != report.get("featurizer")
        )
        + (f"; runs go on past the budget until {s['until']:.0%} of full-pool accuracy" if s.get("until") else "")
    )
    columns = [
        "strategy",
        "AUBC",
        "acc@end",
        "±std",
        "to95%",
        "to98%",
        "to99%",
        "final-label acc",
        "labels",
        "spent",
        "per item",
        "reviewed",
        "adjud.",
        "s/run",
    ]
    rows = []
    for name, st in report["strategies"].items():
        rows.append(
            [
                name,
                _fmt(st["aubc"], ".4f"),
                _fmt(st["final_accuracy_mean"], ".4f"),
                _fmt(st["final_accuracy_std"], ".4f"),
                *(str(st[f"labels_to_{t}"]) if st[f"labels_to_{t}"] is not None else "—" for t in (95, 98, 99)),
                _fmt(st["final_label_accuracy"], ".4f"),
                str(st["labels"]),
                str(st["labels_spent"]),
                _fmt(st.get("labels_per_item"), ".3f"),
                _fmt(st.get("review_share"), ".3f"),
                _fmt(st["adjudications"], ".1f"),
                _fmt(st["seconds_per_run"], ".1f"),
            ]
        )
    widths = [max(len(columns[i]), *(len(r[i]) for r in rows)) for i in range(len(columns))]
    lines = [head, "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(columns, widths)))]
    lines += [
        "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))) for row in rows
    ]
    lines += comparison_lines(report)
    lines += policy_lines(report)
    t = report["timing"]
    calls = t["calls"]
    per_label = [
        f"{name} {c['ms_per_call']:.1f} ms"
        for name, c in calls.items()
        if name in ("claim", "submit", "skip", "adjudicate")
    ]
    lines.append(
        f"wall {t['wall_seconds']:.1f} s (setup {sum(t['setup_seconds'].values()):.1f} s, runs' CPU "
        f"{t['run_cpu_seconds_total']:.0f} s); per call: "
        + ", ".join(per_label)
        + (f", round {calls['retrain']['ms_per_call'] / 1000:.2f} s" if "retrain" in calls else "")
    )
    return "\n".join(lines)


def comparison_lines(report: dict[str, Any]) -> list[str]:
    """The paired comparison with random, and a warning when the model has nothing to learn from."""
    lines = []
    paired = report.get("against_random") or {}
    if paired:
        lines.append(
            "AUBC minus random's, paired by seed (95% interval): "
            + "; ".join(
                f"{name} {p['aubc_minus_random_mean']:+.4f}"
                + (
                    f" [{p['aubc_minus_random_ci95'][0]:+.4f}, {p['aubc_minus_random_ci95'][1]:+.4f}]"
                    if p["aubc_minus_random_ci95"][0] is not None
                    else ""
                )
                + f" {p['verdict']}"
                for name, p in paired.items()
            )
        )
    signal = report.get("model_signal")
    if signal and not signal["above_majority"]:
        low, high = signal["full_pool_accuracy_ci95"]
        lines.append(
            f"warning: even trained on every pool item the model scores {report['full_pool_accuracy']:.3f} "
            f"(95% interval {low:.3f}-{high:.3f}), not measurably above always answering the majority "
            f"label ({signal['majority_baseline']:.3f}): the features carry no usable signal, so "
            "strategies cannot be told apart on this data"
        )
    return lines


def policy_lines(report: dict[str, Any]) -> list[str]:
    """Label-issue and worker-flag figures, when the run has them."""
    lines = []
    for name, st in report["strategies"].items():
        if st.get("label_issue_precision_at_k") is not None:
            lines.append(
                f"{name}: label-error queue, {st['label_issues_flipped']:.0f} labels flipped, K = "
                f"{st['label_issues_k']:.0f}: precision at K {st['label_issue_precision_at_k']:.3f}, "
                f"recall {st['label_issue_recall']:.3f} (recall at K {st['label_issue_recall_at_k']:.3f})"
            )
        flags = (report.get("worker_flags") or {}).get(name)
        if flags and flags["chance_workers"]:
            lines.append(
                f"{name}: {len(flags['chance_workers'])} chance-level workers; all flagged in every seed: "
                f"{flags['all_chance_workers_flagged']}, after at most {flags['max_labels_before_flag']} "
                f"labels each; workers at 0.7+ flagged: {flags['good_workers_flagged_mean']:.1f} per seed"
            )
    return lines


def markdown_table(report: dict[str, Any]) -> str:
    """The same figures as a Markdown table (for the README)."""
    lines = [
        "| strategy | AUBC | accuracy at budget (±std) | labels to 95% | to 98% | to 99% | final-label acc. | "
        "labels | labels spent |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, st in report["strategies"].items():
        lines.append(
            f"| {name} | {_fmt(st['aubc'], '.4f')} | {_fmt(st['final_accuracy_mean'], '.4f')} "
            f"(±{_fmt(st['final_accuracy_std'], '.4f')}) | "
            + " | ".join(str(st[f"labels_to_{t}"]) if st[f"labels_to_{t}"] is not None else "—" for t in (95, 98, 99))
            + f" | {_fmt(st['final_label_accuracy'], '.4f')} | {st['labels']} | {st['labels_spent']} |"
        )
    comparison = comparison_lines(report)
    return "\n".join(lines + (["", *comparison] if comparison else []))
