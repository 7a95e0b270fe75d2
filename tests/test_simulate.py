"""`workbench simulate`: a tiny run through the real loop, a crowd replay, the figures, bad input."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

import numpy as np
import pytest
from sqlalchemy import create_engine, select

from tests.conftest import shared_dataset
from workbench.cli import main
from workbench.db.models import Annotation, Item, Lease, User
from workbench.domain import Answer, ItemState, ReviewCase, Split
from workbench.simulate import (
    LabelRules,
    SimulationConfig,
    TableOptions,
    aubc,
    labels_to,
    load_crowd,
    load_labeled,
    restrict_to_crowd,
    simulate,
)
from workbench.simulate.annotators import SKIP_REASON, Adjudicator, NoisyAnnotator
from workbench.simulate.report import model_signal, paired_against_random
from workbench.simulate.runner import ORACLE_PREFIX, REVIEWER


def _sms_args(path) -> list[str]:
    return [
        "simulate",
        str(path / "SMSSpamCollection"),
        "--format",
        "tsv",
        "--no-header",
        "--columns",
        "label,text",
        "--label-col",
        "label",
        "--text-col",
        "text",
    ]


# -- pure pieces ---------------------------------------------------------------------------------


def test_aubc_and_labels_to_target():
    points = [(20, 0.5), (40, 1.0), (60, 1.0)]
    assert aubc(points) == pytest.approx((0.75 * 20 + 1.0 * 20) / 40)
    assert aubc([(20, 0.8)]) == pytest.approx(0.8)
    assert labels_to(points, 0.99) == 40 and labels_to(points, 1.01) is None


def _run(strategy: str, seed: int, accuracies: list[float]) -> dict:
    return {
        "strategy": strategy,
        "seed": seed,
        "curve": [{"labels": 20 * (i + 1), "accuracy": a} for i, a in enumerate(accuracies)],
    }


def test_paired_comparison_with_random_matches_a_hand_computed_t_interval():
    from scipy import stats

    by_strategy = {
        "random": [
            _run("random", 0, [0.5, 0.6, 0.7]),
            _run("random", 1, [0.5, 0.5, 0.6]),
            _run("random", 2, [0.5, 0.7, 0.7]),
        ],
        "margin": [
            _run("margin", 0, [0.5, 0.8, 0.9]),
            _run("margin", 1, [0.5, 0.6, 0.8]),
            _run("margin", 2, [0.5, 0.7, 0.8, 0.9]),
        ],  # a point random never reached is left out
    }
    result = paired_against_random(by_strategy)
    assert set(result) == {"margin"}
    diffs = [
        aubc([(20, 0.5), (40, 0.8), (60, 0.9)]) - aubc([(20, 0.5), (40, 0.6), (60, 0.7)]),
        aubc([(20, 0.5), (40, 0.6), (60, 0.8)]) - aubc([(20, 0.5), (40, 0.5), (60, 0.6)]),
        aubc([(20, 0.5), (40, 0.7), (60, 0.8)]) - aubc([(20, 0.5), (40, 0.7), (60, 0.7)]),
    ]
    m = result["margin"]
    assert m["aubc_minus_random_by_seed"] == pytest.approx(diffs)
    mean, sd = sum(diffs) / 3, float(np.std(diffs, ddof=1))
    half = stats.t.ppf(0.975, 2) * sd / 3**0.5
    assert m["aubc_minus_random_mean"] == pytest.approx(mean)
    assert m["aubc_minus_random_ci95"] == pytest.approx([mean - half, mean + half])
    assert m["verdict"] == ("above" if mean - half > 0 else "no difference detected")
    flipped = {"random": by_strategy["margin"][:2], "margin": by_strategy["random"][:2]}
    flipped["margin"] = [dict(r, strategy="margin") for r in flipped["margin"]]
    assert paired_against_random(flipped)["margin"]["aubc_minus_random_mean"] < 0


def test_model_signal_compares_with_the_majority_label_rate():
    chance = model_signal({"0": 78, "1": 76}, 0.539)  # RTE-like: 83/154 right, majority 78/154
    assert chance["majority_baseline"] == pytest.approx(78 / 154) and not chance["above_majority"]
    low, high = chance["full_pool_accuracy_ci95"]
    assert low < 83 / 154 < high
    assert model_signal({"ham": 990, "spam": 159}, 0.9765)["above_majority"]


def test_noisy_annotator_is_paired_and_has_its_accuracy():
    labels = ["a", "b", "c"]
    annotator = NoisyAnnotator("ann", 0.7, labels, seed=3)
    answers = [annotator.answer(f"item{i}", "a") for i in range(4000)]
    assert answers == [NoisyAnnotator("ann", 0.7, labels, seed=3).answer(f"item{i}", "a") for i in range(4000)]
    share = Counter(answers)
    assert 0.67 < share["a"] / 4000 < 0.73 and abs(share["b"] - share["c"]) < 200  # errors uniform over the others
    assert all(NoisyAnnotator("p", 1.0, labels, 0).answer(str(i), "b") == "b" for i in range(50))


def test_majority_adjudicator_breaks_ties_with_its_seed():
    now = datetime.now()

    def case(*labels: str) -> ReviewCase:
        return ReviewCase(
            item_id=1,
            external_id="x",
            split=Split.POOL,
            state=ItemState.REVIEW,
            content={},
            answers=tuple(Answer(f"a{i}", label, now, None) for i, label in enumerate(labels)),
            final_label=None,
        )

    assert Adjudicator("majority", {"x": "b"}, 0).decide(case("a", "a", "b"))[0] == "a"
    assert Adjudicator("gold", {"x": "b"}, 0).decide(case("a", "a", "b"))[0] == "b"
    tie = {Adjudicator("majority", {}, seed).decide(case("a", "b"))[0] for seed in range(40)}
    assert tie == {"a", "b"}
    assert Adjudicator("majority", {}, 7).decide(case("a", "b")) == Adjudicator("majority", {}, 7).decide(
        case("a", "b")
    )


def test_headerless_tsv_splits_on_the_first_tab_and_label_rules_apply(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text('ham\tsay "hi"\there\n\nspam\tWIN now\n>50K.\tx\n', encoding="utf-8")
    data = load_labeled(
        path,
        label_col="label",
        text_col="text",
        table=TableOptions(format="tsv", header=False, columns=("label", "text")),
        rules=LabelRules(mapping=((">50K", "rich"),), strip_suffix="."),
    )
    assert data.ids == ["1", "2", "3"] and data.labels == ["ham", "spam", "rich"]
    assert list(data.content["text"]) == ['say "hi"\there', "WIN now", "x"]


# -- the loop, end to end --------------------------------------------------------------------------


def test_tiny_sms_run_writes_a_consistent_report(tmp_path, home, capsys):
    """300 SMS, random vs margin, 2 seeds in 2 spawned processes, budget 60, overlap 2."""
    sms = shared_dataset("sms_spam_collection")
    out, plot = tmp_path / "report.json", tmp_path / "curves.png"
    code = main(
        _sms_args(sms)
        + [
            "--max-items",
            "300",
            "--strategies",
            "random,margin",
            "--seeds",
            "2",
            "--budget",
            "60",
            "--batch-size",
            "20",
            "--overlap",
            "2",
            "--jobs",
            "2",
            "--out",
            str(out),
            "--plot",
            str(plot),
            "--quiet",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "margin" in printed and "AUBC" in printed
    report = json.loads(out.read_text())
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert isinstance(report["dataset"], str) and report["n_items"] == 300
    assert report["n_pool"] + report["n_eval"] == 300 and report["n_eval"] > 0
    assert 0.5 < report["full_pool_accuracy"] <= 1.0
    assert set(report["strategies"]) == {"random", "margin"}
    initial = report["settings"]["initial"]
    assert initial == 20  # one cold-start set: 10 per label
    for st in report["strategies"].values():
        labels = [p["labels"] for p in st["curve"]]
        assert labels == [20, 40, 60]
        for p in st["curve"]:
            assert 0.0 <= p["accuracy_mean"] <= 1.0 and p["accuracy_std"] >= 0.0 and p["n_seeds"] == 2
        assert 0.0 <= st["aubc"] <= 1.0
        for t in (95, 98, 99):
            assert st[f"labels_to_{t}"] is None or st[f"labels_to_{t}"] in labels
        # Perfect annotators: both annotations of every item agree, nothing is adjudicated, every
        # final label is the truth, and every labeled item cost exactly `overlap` annotations.
        assert st["final_label_accuracy"] == 1.0 and st["adjudications"] == 0
        assert st["labels"] == 60 and st["labels_spent"] == 60 * 2
        assert st["labels_spent_by_seed"] == [120, 120]
    assert set(report["against_random"]) == {"margin"}
    assert len(report["against_random"]["margin"]["aubc_minus_random_by_seed"]) == 2
    assert "AUBC minus random's, paired by seed" in printed
    assert report["model_signal"]["majority_baseline"] > 0.5  # SMS: mostly ham
    runs = report["runs"]
    assert len(runs) == 4 and {r["curve"][-1]["n_eval"] for r in runs} == {report["n_eval"]}
    # Same seed, same cold-start seed set: strategies start from the same first point.
    first = {(r["strategy"], r["seed"]): r["curve"][0]["accuracy"] for r in runs}
    assert first[("random", 0)] == first[("margin", 0)] and first[("random", 1)] == first[("margin", 1)]
    assert all(r["claim_reasons"].get("ranked", 0) == 60 and r["claim_reasons"].get("partial", 0) == 60 for r in runs)
    assert report["timing"]["calls"]["claim"]["calls"] == 4 * 120


def test_crowd_replay_submits_only_real_judgments(tmp_path, home):
    """RTE with real AMT workers: every submitted label is what that worker answered for that item;
    a worker served an item they never judged skipped it with the reason."""
    rte = shared_dataset("crowd_snow2008_rte_temp")
    rules = LabelRules(mapping=(("TRUE", "1"), ("FALSE", "0")))
    data = load_labeled(
        rte / "rte1.tsv", label_col="value", id_col="id", text_col="text,hypothesis", rules=rules, max_items=150
    )
    crowd = load_crowd(
        rte / "rte.standardized.tsv",
        item_col="orig_id",
        worker_col="!amt_worker_ids",
        label_col="response",
        rules=rules,
    )
    data = restrict_to_crowd(data, crowd, 2)
    assert "[SEP]" in data.content["text"][0]
    config = SimulationConfig(
        strategies=("margin",),
        seeds=(0,),
        budget=40,
        batch_size=20,
        overlap=2,
        adjudicator="majority",
        jobs=1,
        work_dir=str(tmp_path / "work"),
        keep_dbs=True,
    )
    report = simulate(data, config, crowd, show_progress=False, log=lambda _: None)
    st = report["strategies"]["margin"]
    assert st["labels"] == 40 and st["labels_spent"] == 80
    assert report["settings"]["crowd"]["workers"] == 164
    run = report["runs"][0]
    assert run["skips"] > 0  # most workers judged few items: they skip the others
    engine = create_engine(f"sqlite:///{tmp_path / 'work' / 'runs' / 'margin-seed0' / 'workbench.db'}")
    with engine.connect() as conn:
        rows = conn.execute(
            select(Item.external_id, Item.split, User.name, Annotation.label)
            .join(Annotation, Annotation.item_id == Item.id)
            .join(User, User.id == Annotation.annotator_id)
        ).all()
        skipped = conn.execute(
            select(Item.external_id, User.name, Lease.skip_reason)
            .join(Lease, Lease.item_id == Item.id)
            .join(User, User.id == Lease.annotator_id)
            .where(Lease.state == "skipped")
        ).all()
    engine.dispose()
    worker_rows = [r for r in rows if not r.name.startswith(ORACLE_PREFIX)]
    assert len(worker_rows) == 80 and all(r.split == "pool" for r in worker_rows)
    assert all(crowd.judgments[r.external_id][r.name] == r.label for r in worker_rows)
    assert {r.split for r in rows if r.name.startswith(ORACLE_PREFIX)} == {"eval"}
    assert len(skipped) == run["skips"]
    assert all(reason == SKIP_REASON and name not in crowd.judgments[item] for item, name, reason in skipped)
    assert all(r.name != REVIEWER for r in rows)


# -- bad input: exit 1, one line ------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--strategies", "random,nope"], "unknown strategy 'nope'"),
        (["--label-col", "category"], "no column 'category'"),
        (["--seeds", "two"], "--seeds"),
        (["--adjudicator", "gold", "--overlap", "0"], "--overlap"),
        (["--model", '{"type": "nonsense"}'], "unknown model type"),
    ],
)
def test_bad_input_exits_1_with_one_line(tmp_path, home, capsys, extra, message):
    path = tmp_path / "items.csv"
    path.write_text("id,text,label\n1,hello,a\n2,bye,b\n", encoding="utf-8")
    args = ["simulate", str(path), "--label-col", "label", "--text-col", "text", "--quiet"]
    if "--label-col" in extra:
        args = [a for a in args if a not in ("--label-col", "label")]
    assert main(args + extra) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("workbench: error:") and message in err and len(err.splitlines()) == 1


def test_headerless_file_without_columns_is_refused(tmp_path, home, capsys):
    path = tmp_path / "items.tsv"
    path.write_text("a\thello\nb\tbye\n", encoding="utf-8")
    assert main(["simulate", str(path), "--no-header", "--label-col", "label", "--text-col", "text"]) == 1
    err = capsys.readouterr().err.strip()
    assert "--columns" in err and len(err.splitlines()) == 1
