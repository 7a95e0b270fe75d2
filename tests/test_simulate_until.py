"""`workbench simulate --until`: runs go on past the budget until they reach a share of the full-pool
accuracy, so labels-to-99% is always measured; AUBC and the paired comparison stay within the budget."""

from __future__ import annotations

import json

import pytest

from tests.conftest import shared_dataset
from workbench.cli import main
from workbench.simulate.report import aubc, extended_curve, paired_against_random, summarize_strategy


def _run(strategy, seed, points):
    return {
        "strategy": strategy,
        "seed": seed,
        "labels": points[-1][0],
        "labels_spent": points[-1][0],
        "final_label_accuracy": 1.0,
        "adjudications": 0,
        "skips": 0,
        "seconds": 1.0,
        "curve": [{"labels": n, "accuracy": a} for n, a in points],
    }


def test_runs_that_stopped_are_carried_forward_past_the_budget_only():
    runs = [
        _run("random", 0, [(20, 0.5), (40, 0.7), (60, 0.9)]),  # reached at 60
        _run("random", 1, [(20, 0.5), (40, 0.6), (60, 0.8), (80, 0.95)]),
    ]  # reached at 80
    assert extended_curve(runs, 40) == [(60, pytest.approx(0.85)), (80, pytest.approx(0.925))]
    summary = summarize_strategy(runs, full_pool_accuracy=0.9, budget=40)
    assert summary["aubc"] == pytest.approx((0.5 + 0.65) / 2)  # points up to the budget only
    assert summary["final_accuracy_mean"] == pytest.approx(0.65)
    assert summary["labels_to_99"] == 80 and summary["labels_to_99_past_budget"]  # mean 0.925 >= 0.891
    assert summary["max_labels"] == 80
    without = summarize_strategy(runs, full_pool_accuracy=0.9)
    assert without["labels_to_99"] is None  # the old reading: only points every seed reached


def test_the_paired_comparison_ignores_points_past_the_budget():
    by_strategy = {
        "random": [_run("random", s, [(20, 0.5), (40, 0.6), (60, 0.9)]) for s in (0, 1)],
        "margin": [_run("margin", s, [(20, 0.5), (40, 0.6 + 0.1 * s), (60, 0.1)]) for s in (0, 1)],
    }
    assert paired_against_random(by_strategy, budget=40)["margin"]["aubc_minus_random_by_seed"] == pytest.approx(
        [0.0, 0.05]
    )


def test_until_labels_past_the_budget_to_the_target(tmp_path, home):
    """300 SMS on TF-IDF, random only, budget 40: the runs go on until 99% of full-pool accuracy."""
    sms = shared_dataset("sms_spam_collection")
    out = tmp_path / "report.json"
    code = main(
        [
            "simulate",
            str(sms / "SMSSpamCollection"),
            "--format",
            "tsv",
            "--no-header",
            "--columns",
            "label,text",
            "--label-col",
            "label",
            "--text-col",
            "text",
            "--max-items",
            "300",
            "--featurizer",
            "tfidf",
            "--strategies",
            "random",
            "--seeds",
            "2",
            "--budget",
            "40",
            "--batch-size",
            "20",
            "--overlap",
            "1",
            "--until",
            "0.99",
            "--jobs",
            "1",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["featurizer"].startswith("text-tfidf/")
    assert list(report["full_pool_accuracy_by_featurizer"]) == [report["featurizer"]]
    st = report["strategies"]["random"]
    target = 0.99 * report["full_pool_accuracy"]
    assert st["labels_to_99"] is not None
    for run in report["runs"]:
        accuracies = [p["accuracy"] for p in run["curve"]]
        # Each run stops at its first round at or above the target (or when the pool ran out).
        assert accuracies[-1] >= target - 1e-9 or run["labels"] == report["n_pool"]
        assert all(a < target - 1e-9 for p, a in zip(run["curve"][:-1], accuracies[:-1]) if p["labels"] >= 40)
    within = [(p["labels"], p["accuracy_mean"]) for p in st["curve"] if p["labels"] <= 40 and p["n_seeds"] == 2]
    assert [labels for labels, _ in within] == [20, 40]
    assert st["aubc"] == pytest.approx(aubc(within))  # AUBC over the budget, not the extension
