"""Annotator quality (Dawid-Skene via crowd-kit), pausing, posteriors, adaptive overlap in the live
queue, and the label-error queue, on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select
from sqlmodel import Session

from tests.helpers import add_items, annotators
from workbench.db.models import AuditLog, Item
from workbench.domain import Actor
from workbench.errors import PermissionDenied
from workbench.services.quality import QualityService, beta_interval, estimate, is_flagged

if TYPE_CHECKING:
    from collections.abc import Callable

    from workbench.services import Workbench

LABELS = ["pos", "neg"]


def truth_of(external_id: str) -> str:
    return LABELS[int(external_id.split("-")[1]) % 2]


def test_estimate_separates_a_chance_annotator_from_good_ones():
    rng = random.Random(0)
    judgments = []
    for i in range(80):
        true = LABELS[i % 2]
        judgments += [
            (i, "good1", true),
            (i, "good2", true if rng.random() < 0.9 else LABELS[1 - i % 2]),
            (i, "coin", rng.choice(LABELS)),
        ]
    found, posteriors, chance = estimate(judgments, LABELS)
    by = {a.annotator: a for a in found}
    assert chance == pytest.approx(0.5, abs=0.05)
    assert by["coin"].flagged and not by["good1"].flagged and not by["good2"].flagged
    assert by["good1"].accuracy > 0.9 and by["coin"].accuracy < 0.7
    assert by["coin"].accuracy_low < by["coin"].accuracy < by["coin"].accuracy_high
    assert sum(posteriors[i][0] == LABELS[i % 2] for i in range(80)) >= 70  # DS cannot always break good1-good2 splits
    # Single-labeled items check nobody: an annotator alone on every item stays unestimated.
    alone, _, _ = estimate([(i, "solo", "pos") for i in range(40)] + [(100, "x", "pos"), (100, "y", "pos")], LABELS)
    solo = next(a for a in alone if a.annotator == "solo")
    assert solo.n_checked == 0 and solo.accuracy is None and not solo.flagged and solo.reliability == pytest.approx(0.7)


def test_adjudications_anchor_the_estimate_of_an_annotator_whose_items_went_to_review_alone():
    # A chance-level annotator labels 40 items alone (the look-ahead sent each to review after
    # their label); a reviewer decided each. Unanchored nothing checks them; anchored they are flagged.
    rng = random.Random(1)
    judgments = [(i, "coin", rng.choice(LABELS)) for i in range(40)]
    judgments += [(j, w, LABELS[j % 2]) for j in range(100, 140) for w in ("good1", "good2")]
    decided = {i: LABELS[i % 2] for i in range(40)}
    plain = {a.annotator: a for a in estimate(judgments, LABELS)[0]}
    assert plain["coin"].n_checked == 0 and not plain["coin"].flagged
    anchored = {a.annotator: a for a in estimate(judgments, LABELS, adjudicated=decided)[0]}
    assert anchored["coin"].n_checked == 40 and anchored["coin"].flagged
    assert anchored["coin"].adjudication_agreement == pytest.approx(anchored["coin"].accuracy, abs=0.1)
    assert not anchored["good1"].flagged and anchored["good1"].accuracy > 0.95


def test_gold_items_anchor_the_estimate_and_give_gold_accuracy():
    # Two annotators who always disagree: without gold nobody can tell who is right.
    judgments = [(i, "right", LABELS[i % 2]) for i in range(40)] + [(i, "wrong", LABELS[1 - i % 2]) for i in range(40)]
    gold = {i: LABELS[i % 2] for i in range(0, 40, 4)}
    found, posteriors, _ = estimate(judgments, LABELS, gold=gold)
    by = {a.annotator: a for a in found}
    assert by["right"].gold_accuracy == 1.0 and by["wrong"].gold_accuracy == 0.0 and by["right"].n_gold == 10
    assert by["right"].accuracy > 0.9 > 0.1 > by["wrong"].accuracy
    assert posteriors[1] == ("neg", pytest.approx(1.0, abs=1e-3)) or posteriors[1][0] == "neg"


def test_interval_and_flag_rule():
    low, high = beta_interval(27.5, 50)
    assert low < 0.5 < high
    assert is_flagged(50, low, high, 0.5)
    assert not is_flagged(29, low, high, 0.5)  # too few labels to say
    assert not is_flagged(200, 0.80, 0.90, 0.5)
    assert is_flagged(700, 0.55, 0.62, 0.5)  # above chance, but barely


@pytest.fixture
def project(wb):
    return wb.projects.create(
        "qual",
        "text",
        LABELS,
        overlap=3,
        settings={"eval_fraction": 0.0, "random_share": 0.0, "lease_ttl_s": 3600},
        actor=Actor.operator(),
    )


def _label_all(wb: Workbench, name: str, people: list[Actor], answer: Callable[[Actor, str], str]) -> None:
    """Each annotator in turn claims and answers until nobody gets anything."""
    progress = True
    while progress:
        progress = False
        for person in people:
            claimed = wb.queue.claim(name, actor=person)
            if claimed is not None:
                wb.queue.submit(claimed.lease_id, answer(person, claimed.external_id), actor=person)
                progress = True


def test_service_flags_pauses_and_paused_labels_stop_counting(wb, project):
    add_items(wb.engine, project.id, 40)
    good1, good2, coin, late = annotators(wb, 4)
    reviewer = annotators(wb, 1, "reviewer", "rev")[0]

    def answer(person: Actor, external_id: str) -> str:
        return "pos" if person.name == coin.name else truth_of(external_id)  # coin: always "pos", at chance

    _label_all(wb, "qual", [good1, good2, coin], answer)
    quality = QualityService(wb.engine)
    with pytest.raises(PermissionDenied):
        quality.report("qual", actor=good1)
    report = quality.report("qual", actor=reviewer)
    by = {a.annotator: a for a in report.annotators}
    assert by[coin.name].n_labels == 40 and by[coin.name].flagged
    assert not by[good1.name].flagged and by[good1.name].accuracy > 0.9
    assert 0.85 < by[good1.name].accuracy_low < by[good1.name].accuracy_high <= 1.0
    with Session(wb.engine) as s:
        stored = s.execute(
            select(Item.posterior_label, Item.posterior, Item.external_id).where(Item.project_id == project.id)
        ).all()
    assert all(label == truth_of(e) and p > 0.9 for label, p, e in stored)

    # Pausing is for admins; a paused annotator gets nothing, and their label on an open item
    # no longer counts: the item asks for another one.
    with pytest.raises(PermissionDenied):
        quality.set_paused("qual", coin.name, True, actor=reviewer)
    add_items(wb.engine, project.id, 1, start=100)
    for person in (coin, good1):
        claimed = wb.queue.claim("qual", actor=person)
        wb.queue.submit(claimed.lease_id, "pos", actor=person)
    quality.set_paused("qual", coin.name, True, actor=Actor.operator())
    assert wb.queue.claim("qual", actor=coin) is None
    claimed = wb.queue.claim("qual", actor=good2)
    assert claimed.external_id == "item-100"
    assert wb.queue.submit(claimed.lease_id, "pos", actor=good2).item_state == "open"  # 2 counting of 3
    claimed = wb.queue.claim("qual", actor=late)
    assert claimed.external_id == "item-100" and claimed.slot == 4
    assert wb.queue.submit(claimed.lease_id, "pos", actor=late).item_state == "final"
    assert {a.annotator: a for a in quality.stored("qual", actor=reviewer)}[coin.name].paused


def test_adaptive_overlap_in_the_live_queue_records_why(wb):
    wb.projects.create(
        "ad",
        "text",
        LABELS,
        settings={
            "eval_fraction": 0.0,
            "random_share": 0.0,
            "overlap_policy": "adaptive",
            "min_labels": 1,
            "max_labels": 3,
            # A third label at 0.95 could settle the novices' disagreement below (0.5 -> 0.95), so
            # the look-ahead asks for it; at the default 0.8 it goes to review (the next test).
            "lookahead_reliability": 0.95,
        },
        actor=Actor.operator(),
    )
    project = wb.projects.get("ad", actor=Actor.operator())
    add_items(wb.engine, project.id, 4)
    expert, novice1, novice2 = annotators(wb, 3)
    from workbench.db.models import AnnotatorQuality

    with Session(wb.engine) as s, s.begin():
        s.add(AnnotatorQuality(project_id=project.id, user_id=expert.id, reliability=0.97, confusion={}))
    claimed = wb.queue.claim("ad", actor=expert)
    assert wb.queue.submit(claimed.lease_id, truth_of(claimed.external_id), actor=expert).item_state == "final"
    claimed = wb.queue.claim("ad", actor=novice1)
    assert wb.queue.submit(claimed.lease_id, "pos", actor=novice1).item_state == "open"  # 0.7 < 0.9
    again = wb.queue.claim("ad", actor=novice2)
    assert again.item_id == claimed.item_id and again.reason == "partial"
    assert wb.queue.submit(again.lease_id, "neg", actor=novice2).item_state == "open"  # a disagreement: a third
    # The expert can settle a new item alone, so they get the new ones first and the item that
    # needs a third label only when nothing new is left (a novice would get it first).
    for _ in range(2):
        fresh = wb.queue.claim("ad", actor=expert)
        assert fresh.item_id != claimed.item_id and fresh.reason != "partial"
        assert wb.queue.submit(fresh.lease_id, truth_of(fresh.external_id), actor=expert).item_state == "final"
    third = wb.queue.claim("ad", actor=expert)
    assert third.item_id == claimed.item_id and third.reason == "partial"
    assert wb.queue.submit(third.lease_id, "pos", actor=expert).item_state == "final"
    with Session(wb.engine) as s:
        items = {i.id: i for i in s.execute(select(Item).where(Item.project_id == project.id)).scalars()}
        reasons = [
            a.details.get("reason")
            for a in s.execute(select(AuditLog).where(AuditLog.action == "item.resolved")).scalars()
        ]
    assert items[claimed.item_id].final_by == "adaptive_posterior" and items[claimed.item_id].n_annotations == 3
    assert any(r and r.startswith("1 label: annotator reliability 0.97") for r in reasons)


def _adaptive(wb, name: str, *, max_labels: int, items: int):
    wb.projects.create(
        name,
        "text",
        LABELS,
        settings={"eval_fraction": 0.0, "random_share": 0.0, "overlap_policy": "adaptive", "max_labels": max_labels},
        actor=Actor.operator(),
    )
    project = wb.projects.get(name, actor=Actor.operator())
    add_items(wb.engine, project.id, items)
    return project


def test_a_disagreement_more_labels_cannot_settle_goes_to_review_at_once(wb):
    _adaptive(wb, "la", max_labels=3, items=2)
    novice1, novice2 = annotators(wb, 2)
    first = wb.queue.claim("la", actor=novice1)
    assert wb.queue.submit(first.lease_id, "pos", actor=novice1).item_state == "open"
    second = wb.queue.claim("la", actor=novice2)
    assert second.item_id == first.item_id
    # 0.7 against 0.7: posterior 0.5; a third label at the look-ahead's 0.8 reaches only 0.8 < 0.9.
    assert wb.queue.submit(second.lease_id, "neg", actor=novice2).item_state == "review"
    with Session(wb.engine) as s:
        item = s.get(Item, first.item_id)
        assert item.n_annotations == 2 and "review now" in (item.reason or "")


def _predict(wb, project_id: int, predictions: dict[int, tuple[str, float]], interval: tuple[float, float]) -> None:
    """Store a model run with this eval-accuracy interval and its predictions, as a round would."""
    from workbench.db.models import DatasetVersion, ItemPrediction, ModelRun

    with Session(wb.engine) as s, s.begin():
        version = DatasetVersion(
            project_id=project_id, number=1, content_hash="0" * 64, n_items=0, trigger="t", manifest={}
        )
        s.add(version)
        s.flush()
        run = ModelRun(
            project_id=project_id,
            version_id=version.id,
            artifact_path="artifacts/m.skops",
            artifact_sha256="0" * 64,
            metrics={"n": 200, "accuracy": sum(interval) / 2, "accuracy_ci95": list(interval)},
        )
        s.add(run)
        s.flush()
        for item_id, (label, confidence) in predictions.items():
            s.add(
                ItemPrediction(
                    item_id=item_id, project_id=project_id, model_run_id=run.id, predicted=label, confidence=confidence
                )
            )


@pytest.mark.parametrize(("interval", "one_label_settles"), [((0.9, 0.96), True), ((0.45, 0.62), False)])
def test_the_latest_model_is_a_prior_trusted_by_its_eval_interval(wb, interval, one_label_settles):
    project = _adaptive(wb, "mp", max_labels=2, items=2)
    with Session(wb.engine) as s:
        ids = sorted(s.execute(select(Item.id).where(Item.project_id == project.id)).scalars())
    _predict(wb, project.id, {i: ("pos", 0.97) for i in ids}, interval)
    (novice,) = annotators(wb, 1)
    claimed = wb.queue.claim("mp", actor=novice)  # reliability unknown: 0.7
    state = wb.queue.submit(claimed.lease_id, "pos", actor=novice).item_state
    with Session(wb.engine) as s:
        item = s.get(Item, claimed.item_id)
    if one_label_settles:
        # trusted at 0.9: prior for pos 0.1 + 0.8 * 0.97 = 0.876; with a 0.7 label: 0.94 >= 0.9.
        assert state == "final" and item.final_label == "pos" and item.final_by == "agreement"
        assert "model agrees at 0.97 (eval accuracy 0.90)" in item.reason
    else:
        # not measurably above chance (0.45 at the low end): no weight, one 0.7 label is not enough.
        assert state == "open" and "model not above chance, ignored" in item.reason
    if one_label_settles:  # the setting off: the same label on the other item is not enough
        wb.projects.update_settings("mp", model_prior=False, actor=Actor.operator())
        other = wb.queue.claim("mp", actor=novice)
        assert other.item_id != claimed.item_id
        assert wb.queue.submit(other.lease_id, "pos", actor=novice).item_state == "open"


def test_dawid_skene_posterior_can_settle_review_items(wb):
    wb.projects.create(
        "ds",
        "text",
        LABELS,
        overlap=3,
        settings={"eval_fraction": 0.0, "random_share": 0.0, "aggregation": "dawid_skene", "posterior_accept": 0.9},
        actor=Actor.operator(),
    )
    project = wb.projects.get("ds", actor=Actor.operator())
    add_items(wb.engine, project.id, 40)
    a, b, c = annotators(wb, 3)
    reviewer = annotators(wb, 1, "reviewer", "rev")[0]
    rng = random.Random(3)
    # Everyone labels everything; a is always right, b and c 75% of the time, so many items disagree
    # (with two annotators and no gold, nobody could tell who is right).
    _label_all(
        wb,
        "ds",
        [a, b, c],
        lambda p, e: truth_of(e) if p.name == a.name or rng.random() < 0.75 else LABELS[1 - LABELS.index(truth_of(e))],
    )
    waiting = wb.review.count_waiting("ds", actor=reviewer)
    assert waiting > 3
    QualityService(wb.engine).refresh("ds", actor=reviewer)
    with Session(wb.engine) as s:
        items = s.execute(select(Item).where(Item.project_id == project.id)).scalars().all()
    settled = [i for i in items if i.final_by == "dawid_skene"]
    assert settled and all(i.final_label == i.posterior_label and i.posterior >= 0.9 for i in settled)
    assert wb.review.count_waiting("ds", actor=reviewer) == waiting - len(settled)
    version = wb.versions.create("ds", actor=Actor.operator())
    rows = wb.versions.rows("ds", version.number, actor=Actor.operator())
    assert set(rows["aggregation"]) <= {"agreement", "dawid_skene"} and "dawid_skene" in set(rows["aggregation"])


def test_quality_command_prints_flags_pauses_and_writes_json(db_url, wb, project, capsys, tmp_path):
    import json

    from workbench.cli import main

    add_items(wb.engine, project.id, 36)
    good1, good2, coin = annotators(wb, 3)
    _label_all(wb, "qual", [good1, good2, coin], lambda p, e: "pos" if p.name == coin.name else truth_of(e))
    out_file = tmp_path / "quality.json"
    code = main(["--database-url", db_url, "quality", "qual", "--json", str(out_file)])
    out, _ = capsys.readouterr()
    assert code == 0
    coin_line = next(line for line in out.splitlines() if line.startswith(coin.name))
    assert "NOT ABOVE CHANCE" in coin_line and "flagged and not paused: " + coin.name in out
    assert "NOT ABOVE CHANCE" not in next(line for line in out.splitlines() if line.startswith(good1.name))
    data = json.loads(out_file.read_text())
    assert {a["annotator"]: a["flagged"] for a in data["annotators"]}[coin.name] is True
    assert main(["--database-url", db_url, "quality", "qual", "--pause", coin.name]) == 0
    out, _ = capsys.readouterr()
    assert f"{coin.name} paused" in out and "paused" in next(ln for ln in out.splitlines() if ln.startswith(coin.name))
    assert main(["--database-url", db_url, "quality", "qual", "--pause", "nobody"]) == 1


def test_label_error_queue_sends_likely_wrong_labels_back_with_a_reason(wb, home):
    import numpy as np

    from workbench.db.bulk import insert_items
    from workbench.services.quality import find_label_issues, mark_gold

    wb.projects.create(
        "blobs",
        "tabular",
        LABELS,
        overlap=1,
        settings={"eval_fraction": 0.0, "random_share": 0.0},
        actor=Actor.operator(),
    )
    project = wb.projects.get("blobs", actor=Actor.operator())
    rng = np.random.default_rng(0)
    n = 120
    truth = {f"b{i}": LABELS[i % 2] for i in range(n)}
    with Session(wb.engine) as s, s.begin():
        insert_items(
            s,
            project.id,
            (
                (
                    f"b{i}",
                    {"features": {"x": str(rng.normal(3.0 * (i % 2), 0.7)), "y": str(rng.normal(0, 1))}},
                    "pool",
                    rng.random(),
                )
                for i in range(n)
            ),
        )
    flipped = {f"b{i}" for i in range(0, n, 12)}  # 10 wrong labels, an obvious 2-blob problem
    worker = annotators(wb, 1)[0]
    reviewer = annotators(wb, 1, "reviewer", "rev")[0]
    mark_gold(wb.engine, "blobs", {"b1": "neg"}, actor=Actor.operator())  # gold is never sent back
    _label_all(wb, "blobs", [worker], lambda p, e: LABELS[1 - LABELS.index(truth[e])] if e in flipped else truth[e])
    before = wb.versions.create("blobs", actor=Actor.operator())
    result = find_label_issues(wb.engine, "blobs", k=10, actor=reviewer, home=home)
    sent = {i.external_id for i in result.sent_to_review}
    assert result.folds == 5 and result.n_checked == n and len(sent) == 10
    assert len(sent & flipped) >= 8  # precision at K
    issue = result.sent_to_review[0]
    assert issue.reason.startswith(f"label issue: model gives P({issue.suggested!r}) = ")
    assert f"final label {issue.label!r}" in issue.reason and issue.suggested != issue.label
    cases = wb.review.queue("blobs", actor=reviewer)
    assert {c.external_id for c in cases} == sent
    for case in cases:  # the reviewer corrects (or confirms): the next version's diff shows it
        wb.review.adjudicate(case.item_id, "label", actor=reviewer, label=truth[case.external_id], reason="checked")
    after = wb.versions.create("blobs", actor=Actor.operator())
    diff = wb.versions.diff("blobs", before.number, after.number, actor=Actor.operator())
    assert {e for e, _, _ in diff.relabeled} == sent & flipped
    again = find_label_issues(wb.engine, "blobs", k=10, actor=reviewer, home=home)
    assert not {i.external_id for i in again.sent_to_review} & sent  # reviewed once, not sent again


def test_reviewer_sees_the_posterior_as_a_suggestion_and_why(wb):
    wb.projects.create(
        "sug",
        "text",
        LABELS,
        overlap=2,
        settings={"eval_fraction": 0.0, "random_share": 0.0, "aggregation": "dawid_skene"},
        actor=Actor.operator(),
    )
    project = wb.projects.get("sug", actor=Actor.operator())
    add_items(wb.engine, project.id, 1)
    a, b = annotators(wb, 2)
    reviewer = annotators(wb, 1, "reviewer", "rev")[0]
    for person, label in ((a, "pos"), (b, "neg")):
        claimed = wb.queue.claim("sug", actor=person)
        wb.queue.submit(claimed.lease_id, label, actor=person)
    QualityService(wb.engine).refresh("sug", actor=reviewer)
    (case,) = wb.review.queue("sug", actor=reviewer)
    assert case.suggestion in LABELS and 0.5 <= case.suggestion_p <= 1.0
    assert case.reason == "2 labels disagree (fixed overlap 2)"
    assert case.final_label is None  # nothing is preselected as the final label


def test_stress_with_adaptive_overlap_keeps_every_invariant(db_url, capsys, tmp_path):
    """8 annotator processes with reliabilities 0.6-0.98 drain 200 items under the adaptive policy:
    never more than max_labels, never the same annotator twice, no acknowledged submit lost, every
    item's state explained by replaying the policy on its labels, every unsettled item in review."""
    import json

    from workbench.cli import main

    out_file = tmp_path / "stress.json"
    code = main(
        [
            "--database-url",
            db_url,
            "stress",
            "--annotators",
            "8",
            "--items",
            "200",
            "--think-ms",
            "0",
            "2",
            "--overlap-policy",
            "adaptive",
            "--json",
            str(out_file),
        ]
    )
    out, _ = capsys.readouterr()
    inv = json.loads(out_file.read_text())["invariants"]
    assert code == 0 and "invariants: ALL HOLD" in out, out
    assert inv["overlap_policy"] == "adaptive" and inv["items_complete"] == 200
    assert inv["items_with_too_many_annotations"] == 0 and inv["items_with_repeated_annotator"] == 0
    assert inv["lost_submits"] == 0 and inv["items_in_wrong_state"] == 0
    per_item = inv["labels_per_item"]
    assert per_item["1"] > 0 and per_item["3"] > 0  # the policy really varies the overlap


def test_quality_refreshes_every_n_labels_and_pauses_when_the_project_allows(wb, project):
    """quality_refresh_labels re-estimates between rounds (the worker's check and simulate's call
    are QualityService.refresh_if_due); pause_flagged lets that estimate pause whom it flags."""
    from workbench.worker import refresh_due_quality

    add_items(wb.engine, project.id, 40)
    good1, good2, coin = annotators(wb, 3)
    reviewer = annotators(wb, 1, "reviewer", "rev")[0]
    quality = QualityService(wb.engine)
    assert quality.refresh_if_due("qual", actor=reviewer) is None  # off by default
    wb.projects.update_settings("qual", actor=Actor.operator(), quality_refresh_labels=60, pause_flagged=True)

    def answer(person: Actor, external_id: str) -> str:
        return "pos" if person.name == coin.name else truth_of(external_id)

    _label_all(wb, "qual", [good1, good2, coin], answer)  # 120 labels, no round in between
    refresh_due_quality(wb)  # the worker's between-jobs check: due (120 new labels >= 60)
    by = {a.annotator: a for a in quality.stored("qual", actor=reviewer)}
    assert by[coin.name].flagged and by[coin.name].paused
    assert not by[good1.name].paused and not by[good2.name].paused
    assert quality.refresh_if_due("qual", actor=reviewer) is None  # nothing new since
    with Session(wb.engine) as s:
        why = [
            a.details.get("why")
            for a in s.execute(select(AuditLog).where(AuditLog.action == "annotator.pause")).scalars()
        ]
    assert why and "pause_flagged" in why[0]
    add_items(wb.engine, project.id, 1, start=100)
    assert wb.queue.claim("qual", actor=coin) is None  # paused: nothing more for them
    with pytest.raises(Exception, match="quality_refresh_labels"):
        wb.projects.update_settings("qual", actor=Actor.operator(), quality_refresh_labels=-1)


def test_dawid_skene_over_all_ten_rte_labels_beats_majority(capsys):
    """Issue 13: Dawid-Skene over every judgment of the RTE crowd >= 0.92 (majority: about 0.90)."""
    from tests.conftest import shared_dataset
    from workbench.bench.aggregate_all import main

    crowd = shared_dataset("crowd_snow2008_rte_temp") / "rte.standardized.tsv"
    assert main(["--crowd", str(crowd)]) == 0
    out = capsys.readouterr().out
    ds = float(out.split("Dawid-Skene (workbench.services.quality.estimate):")[1].split()[0])
    mv = float(out.split("majority vote (ties by a seeded coin):")[1].split()[0])
    assert ds >= 0.92 and ds > mv
