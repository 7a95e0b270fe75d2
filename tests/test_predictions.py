"""The latest model's predictions (issues 14 and 15), on SQLite and PostgreSQL: a round stores a
predicted label and confidence for every item it scores, in its publish transaction, replaced by
the next round; the item browser filters and exports on them and lists each run's predictions of
an item; each round measures prediction drift of the new batch against the eval split."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from tests.helpers import set_final_labels
from workbench.db.bulk import insert_items
from workbench.db.models import EvalPrediction, Item, ItemPrediction, ModelRun
from workbench.domain import Actor, Split
from workbench.health.drift import prediction_drift
from workbench.services.browse import BrowseFilter, PredictionSource

OPERATOR = Actor.operator()
LABELS = ["pos", "neg"]
WORDS = {"pos": "great lovely superb fine happy", "neg": "awful bad poor broken sad"}


def _texts(n: int, rng: np.random.Generator, *, only: str | None = None, start: int = 0):
    """(external id, text, label) of n items; both labels alternate unless `only` is given."""
    for i in range(start, start + n):
        label = only or LABELS[i % 2]
        words = WORDS[label].split()
        yield f"t{i}", " ".join(rng.choice(words, size=5)) + f" w{i}", label


def _add(wb, project_id: int, rows, *, eval_every: int = 0) -> None:
    with Session(wb.engine) as session, session.begin():
        insert_items(
            session,
            project_id,
            (
                (external_id, {"text": text}, "eval" if eval_every and k % eval_every == 0 else "pool", k / 1000)
                for k, (external_id, text, _) in enumerate(rows)
            ),
        )


@pytest.fixture
def trained(wb, home):
    """A text project of 200 items (every 5th in the eval split), half the pool and all of eval
    labeled, after one round."""
    info = wb.projects.create(
        "pred", "text", LABELS, actor=OPERATOR, settings={"eval_fraction": 0.0, "random_share": 0.0}
    )
    rows = list(_texts(200, np.random.default_rng(0)))
    _add(wb, info.id, rows, eval_every=5)
    labels = {e: label for k, (e, _, label) in enumerate(rows) if k % 5 == 0 or k % 4 != 3}
    set_final_labels(wb.engine, info.id, labels)
    result = wb.rounds.run_retrain("pred", actor=OPERATOR)
    assert result.run_id is not None
    return wb, info, result


def _predictions(wb, project_id: int) -> list[ItemPrediction]:
    with Session(wb.engine) as s:
        return list(
            s.execute(
                select(ItemPrediction).where(ItemPrediction.project_id == project_id).order_by(ItemPrediction.item_id)
            ).scalars()
        )


def test_a_round_stores_every_scored_items_prediction_and_the_next_replaces_them(trained):
    wb, info, result = trained
    stored = _predictions(wb, info.id)
    with Session(wb.engine) as s:
        n_items = s.execute(select(func.count()).where(Item.project_id == info.id)).scalar_one()
        eval_pred = dict(
            s.execute(
                select(EvalPrediction.item_id, EvalPrediction.predicted).where(
                    EvalPrediction.model_run_id == result.run_id
                )
            ).all()
        )
    assert len(stored) == n_items == 200
    assert {p.model_run_id for p in stored} == {result.run_id}
    assert all(p.predicted in LABELS and 0.5 <= p.confidence <= 1.0 for p in stored)
    # The same model: the eval items' stored labels are the run's eval predictions.
    assert {p.item_id: p.predicted for p in stored if p.item_id in eval_pred} == eval_pred
    # The confidence is the model's largest class probability.
    pipeline = wb.rounds.pipeline
    project = wb.rounds.resolve("pred", actor=OPERATOR)
    with Session(wb.engine) as s:
        from workbench.services.round_pipeline import _load_pool

        pool = _load_pool(s, project)
        run = s.get(ModelRun, result.run_id)
    proba = pipeline.load(run).predict_proba(pipeline.featurize(project, pool))
    np.testing.assert_allclose([p.confidence for p in stored], proba.max(axis=1), rtol=1e-6)

    again = wb.rounds.run_retrain("pred", actor=OPERATOR)
    replaced = _predictions(wb, info.id)
    assert len(replaced) == 200 and {p.model_run_id for p in replaced} == {again.run_id}


def test_a_failed_publish_leaves_the_previous_predictions(trained, monkeypatch):
    wb, info, first = trained
    from workbench.services import round_pipeline

    def crash(*args, **kwargs):
        raise RuntimeError("killed mid-publish")

    monkeypatch.setattr(round_pipeline, "_replace_ranking", crash)  # runs after the predictions are written
    with pytest.raises(RuntimeError):
        wb.rounds.run_retrain("pred", actor=OPERATOR)
    assert {p.model_run_id for p in _predictions(wb, info.id)} == {first.run_id}
    with Session(wb.engine) as s:
        assert s.execute(select(func.count()).select_from(ModelRun)).scalar_one() == 1


def test_rescore_predicts_items_imported_after_the_round(trained):
    wb, info, result = trained
    _add(wb, info.id, _texts(10, np.random.default_rng(1), start=500))
    assert len(_predictions(wb, info.id)) == 200
    wb.rounds.run_rescore("pred", actor=OPERATOR)
    stored = _predictions(wb, info.id)
    assert len(stored) == 210 and {p.model_run_id for p in stored} == {result.run_id}


@pytest.mark.parametrize("dense", [False, True], ids=["from-the-range", "walked-in-id-order"])
def test_browse_filters_on_predicted_label_and_confidence_and_exports_them(trained, dense, monkeypatch):
    wb, info, result = trained
    if dense:  # every filter takes the path of a filter that matches many items
        from workbench.services import browse

        monkeypatch.setattr(browse, "SPARSE_PREDICTIONS", 0)
    stored = {p.item_id: p for p in _predictions(wb, info.id)}
    with Session(wb.engine) as s:
        external = dict(s.execute(select(Item.id, Item.external_id).where(Item.project_id == info.id)).all())
        split = dict(s.execute(select(Item.id, Item.split).where(Item.project_id == info.id)).all())
    confidences = sorted(p.confidence for p in stored.values())
    low, high = confidences[40], confidences[160]

    def expected(label=None, lo=None, hi=None, only_split=None):
        return [
            external[i]
            for i, p in sorted(stored.items())
            if (label is None or p.predicted == label)
            and (lo is None or p.confidence >= lo)
            and (hi is None or p.confidence <= hi)
            and (only_split is None or split[i] == only_split)
        ]

    cases = [
        BrowseFilter(predicted_label="pos"),
        BrowseFilter(predicted_label="neg", confidence_min=low),
        BrowseFilter(predicted_label="pos", confidence_min=low, confidence_max=high),
        BrowseFilter(confidence_max=high),
        BrowseFilter(predicted_label="neg", split=Split.EVAL, confidence_max=high),
    ]
    for f in cases:
        want = expected(f.predicted_label, f.confidence_min, f.confidence_max, f.split and f.split.value)
        assert want, f
        page = wb.browse.page("pred", actor=OPERATOR, filters=f, limit=500)
        assert [r.external_id for r in page.rows] == want and page.total == len(want), f
        for row in page.rows:
            assert (row.predicted_label, row.confidence) == (
                stored[row.item_id].predicted,
                stored[row.item_id].confidence,
            )
        # Paging in id order: the second page follows the first.
        first, second = (wb.browse.page("pred", actor=OPERATOR, filters=f, offset=k, limit=10).rows for k in (0, 10))
        assert [r.external_id for r in (*first, *second)] == want[:20]
        exported = list(csv.reader(io.StringIO(wb.browse.export_csv("pred", actor=OPERATOR, filters=f).decode())))
        assert exported[0][-2:] == ["predicted_label", "confidence"]
        assert [r[0] for r in exported[1:]] == want
        by_external = {external[i]: p for i, p in stored.items()}
        assert all(
            r[-2] == by_external[r[0]].predicted and abs(float(r[-1]) - by_external[r[0]].confidence) < 1e-4
            for r in exported[1:]
        )
    # Without a prediction filter the page still shows each row's prediction.
    plain = wb.browse.page("pred", actor=OPERATOR, limit=5)
    assert all(r.predicted_label == stored[r.item_id].predicted for r in plain.rows)
    # A sort other than import order over a prediction filter.
    from workbench.services.browse import SortKey

    by_external_id = wb.browse.page(
        "pred", actor=OPERATOR, filters=BrowseFilter(predicted_label="pos", sort=SortKey.EXTERNAL_ID), limit=500
    )
    assert [r.external_id for r in by_external_id.rows] == sorted(expected("pos"))


def test_item_detail_lists_each_runs_predictions(trained):
    wb, info, first = trained
    second = wb.rounds.run_retrain("pred", actor=OPERATOR)
    with Session(wb.engine) as s:
        eval_item = (
            s.execute(
                select(Item.external_id).where(Item.project_id == info.id, Item.split == "eval").order_by(Item.id)
            )
            .scalars()
            .first()
        )
        stop_item = (
            s.execute(
                select(Item.external_id)
                .where(Item.project_id == info.id, Item.split == "pool")
                .order_by(Item.random_key, Item.id)
            )
            .scalars()
            .first()
        )
    detail = wb.browse.detail("pred", eval_item, actor=OPERATOR)
    seen = [(e.model_run_id, e.source) for e in detail.predictions]
    assert seen == [
        (second.run_id, PredictionSource.LATEST),
        (second.run_id, PredictionSource.EVAL),
        (first.run_id, PredictionSource.EVAL),
    ]
    assert detail.predictions[0].confidence is not None and detail.predictions[1].confidence is None
    assert detail.predictions[0].label == detail.predictions[1].label
    stop = wb.browse.detail("pred", stop_item, actor=OPERATOR)
    assert {(e.model_run_id, e.source) for e in stop.predictions} >= {
        (second.run_id, PredictionSource.STOP),
        (first.run_id, PredictionSource.STOP),
        (second.run_id, PredictionSource.LATEST),
    }


def test_prediction_drift_flags_a_skewed_batch_and_not_one_from_the_same_distribution():
    rng = np.random.default_rng(7)
    reference = rng.choice(["a", "b", "c"], size=2000, p=[0.5, 0.3, 0.2])
    same = rng.choice(["a", "b", "c"], size=800, p=[0.5, 0.3, 0.2])
    skewed = rng.choice(["a", "b", "c"], size=800, p=[0.8, 0.1, 0.1])
    calm = prediction_drift(["a", "b", "c"], reference, same)
    assert not calm.drifted and calm.p_value > 0.05 and calm.dof == 2
    moved = prediction_drift(["a", "b", "c"], reference, skewed)
    assert moved.drifted and moved.p_value < 1e-10 and moved.largest_shift.label == "a"
    # The statistic is Pearson's, from the counts.
    from scipy import stats

    table = np.array([[s.reference_count for s in moved.shares], [s.new_count for s in moved.shares]])
    assert moved.statistic == pytest.approx(stats.chi2_contingency(table).statistic)
    assert [s.new_count for s in moved.shares] == [int((skewed == k).sum()) for k in "abc"]
    assert sum(s.new_share for s in moved.shares) == pytest.approx(1.0)
    # Nothing to test: an empty batch, or a single label predicted anywhere.
    assert prediction_drift(["a", "b"], reference, []).p_value is None
    assert not prediction_drift(["a", "b"], ["a"] * 5, ["a"] * 5).drifted


def _round_after_batch(wb, info, *, only: str | None) -> object:
    _add(wb, info.id, _texts(150, np.random.default_rng(3), only=only, start=1000))
    wb.rounds.run_retrain("pred", actor=OPERATOR)
    return wb.health.prediction_drift("pred", actor=OPERATOR)


def test_a_round_flags_a_batch_skewed_to_one_class(trained):
    wb, info, _ = trained
    report = _round_after_batch(wb, info, only="pos")
    assert report is not None and report.n_new == 150 and report.n_reference == 40
    assert report.drifted and report.p_value < 0.001
    assert report.largest_shift.label == "pos" and report.shares[0].new_share > 0.9


def test_a_round_does_not_flag_a_batch_from_the_same_distribution(trained, db_url):
    wb, info, _ = trained
    report = _round_after_batch(wb, info, only=None)
    assert report is not None and report.n_new == 150 and not report.drifted and report.p_value > 0.05
    wb.engine.dispose()
    done = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "--database-url", db_url, "health", "pred", "--no-store"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert f"prediction drift (model run {report.model_run_id}): 150 new vs 40 eval items" in done.stdout
    assert "no drift" in done.stdout and "pos" in done.stdout
