"""Every registered strategy runs a real retrain round on SQLite, and the queue then serves the
ranking that strategy made (the claim carries its name, score and model run); a strategy the
project's model cannot serve is refused when the project is created or updated, naming those it can.
Also: a round publishes its version, run and ranking in one transaction, and a retry with unchanged
labels reuses the version."""

from __future__ import annotations

import shutil
from datetime import UTC

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlmodel import Session

import strategies
from tests.helpers import add_text_items, annotators, set_final_labels
from workbench.db.engine import make_engine
from workbench.db.models import DatasetVersion, EvalPrediction, ModelRun, RankEntry
from workbench.domain import Actor
from workbench.errors import WorkbenchError
from workbench.services import Workbench

OPERATOR = Actor.operator()
WORDS = {"pos": "great lovely superb fine happy", "neg": "awful bad poor broken sad", "mid": "okay plain average"}
LABELS = ["pos", "neg", "mid"]
N_ITEMS = 150
#: The smallest model of each family that can serve a strategy (None: the project default, logreg).
FAMILY_MODELS = {
    "committee": {"type": "committee", "size": 3},
    "mlp": {"type": "mlp", "hidden": 16, "epochs": 8, "dropout": 0.3},
}


def _texts() -> tuple[list[str], dict[str, str]]:
    rng = np.random.default_rng(0)
    texts, gold = [], {}
    for i in range(N_ITEMS):
        label = LABELS[i % 3]
        words = WORDS[label].split() + WORDS[LABELS[(i + 1) % 3]].split()[: int(rng.integers(0, 3))]
        texts.append(" ".join(rng.choice(words, size=6)) + f" n{i}")
        gold[f"t{i}"] = label
    return texts, gold


def _model_for(strategy: strategies.Strategy) -> dict | None:
    if strategy.families is None:
        return None
    return FAMILY_MODELS[sorted(strategy.families)[0]]


@pytest.fixture
def sqlite_wb(tmp_path, home, _sqlite_template):
    path = tmp_path / "rounds.db"
    shutil.copyfile(_sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield Workbench(engine)
    engine.dispose()


def _project(wb: Workbench, name: str, strategy: str, model: dict | None) -> tuple[object, dict[str, str]]:
    settings = {"eval_fraction": 0.0, "random_share": 0.0}  # claims go straight to the ranking
    if model is not None:
        settings["model"] = model
    info = wb.projects.create(name, "text", LABELS, strategy=strategy, settings=settings, actor=OPERATOR)
    texts, gold = _texts()
    add_text_items(wb.engine, info.id, texts, eval_fraction=0.25)
    return info, gold


def _label_half_the_pool_and_all_eval(wb: Workbench, info, gold: dict[str, str]) -> None:
    from workbench.db.models import Item

    with Session(wb.engine) as s:
        splits = dict(s.execute(select(Item.external_id, Item.split).where(Item.project_id == info.id)).all())
    chosen = {k: v for i, (k, v) in enumerate(gold.items()) if splits[k] == "eval" or i % 2 == 0}
    set_final_labels(wb.engine, info.id, chosen)


@pytest.mark.parametrize("name", list(strategies.REGISTRY))
def test_every_registered_strategy_runs_a_round_and_the_queue_serves_its_ranking(sqlite_wb, name):
    wb = sqlite_wb
    strategy = strategies.REGISTRY[name]
    info, gold = _project(wb, f"p-{name}", name, _model_for(strategy))
    _label_half_the_pool_and_all_eval(wb, info, gold)

    result = wb.rounds.run_retrain(info.name, actor=OPERATOR, seed=3)

    assert result.run_id is not None and result.metrics.evaluated, result
    assert result.strategy == name and result.project_strategy == name and result.ranked > 0
    assert result.model_free == (not strategy.needs_model)
    with Session(wb.engine) as s:
        entries = (
            s.execute(select(RankEntry).where(RankEntry.project_id == info.id).order_by(RankEntry.position))
            .scalars()
            .all()
        )
        run = s.get(ModelRun, result.run_id)
    expected_run = None if result.model_free else run.id
    assert {(e.strategy, e.model_run_id) for e in entries} == {(name, expected_run)}

    # Replay the decision from the stored model and features: the same ranking, item for item.
    pipeline = wb.rounds.pipeline
    project = wb.rounds.resolve(info.name, actor=OPERATOR)
    with Session(wb.engine) as s:
        from workbench.services.round_pipeline import RANK_SIZE, _load_pool

        pool = _load_pool(s, project)
    X = pipeline.featurize(project, pool)
    candidates = pool.candidates()
    model = pipeline.load(run)
    replay = strategies.rank_pool(X[candidates], model, name, RANK_SIZE, np.random.default_rng(3))
    assert replay.strategy == name
    assert [int(pool.ids[candidates[i]]) for i in replay.indices] == [e.item_id for e in entries]
    np.testing.assert_allclose(replay.scores, [e.score for e in entries], rtol=1e-5)

    if (
        strategy.row_scorer is not None
        and strategy.score_selector is strategies.select_top_k
        and strategy.input in ("proba", "committee")
    ):
        # Independently of the heads read from the weights: the model's own predict_proba.
        rows = X[candidates]
        proba = model.predict_proba_members(rows) if strategy.input == "committee" else model.predict_proba(rows)
        scores = strategy.row_scorer(np.asarray(proba, dtype=np.float64))
        assert entries[0].score == pytest.approx(scores.max(), abs=1e-4)

    (annotator,) = annotators(wb, 1, prefix=f"a-{name}-")
    claim = wb.queue.claim(info.name, actor=annotator)
    assert claim.reason == "ranked" and claim.item_id == entries[0].item_id
    assert (claim.strategy, claim.model_run_id) == (name, expected_run)
    assert claim.score == pytest.approx(entries[0].score)


def test_a_round_without_a_model_ranks_by_cold_start_and_says_so(sqlite_wb):
    wb = sqlite_wb
    info, _ = _project(wb, "cold", "margin", None)
    result = wb.rounds.run_retrain(info.name, actor=OPERATOR)
    assert (result.strategy, result.project_strategy, result.run_id) == ("cold_start", "margin", None)
    assert result.ranked == 10 * len(LABELS)
    assert result.ranked_by.describe() == "cold start (no usable model yet; project strategy: margin)"
    assert wb.rounds.ranked_by(info, actor=OPERATOR).describe() == result.ranked_by.describe()
    (annotator,) = annotators(wb, 1)
    claim = wb.queue.claim(info.name, actor=annotator)
    assert (claim.reason, claim.strategy, claim.model_run_id) == ("ranked", "cold_start", None)


@pytest.mark.parametrize("name", sorted(n for n, s in strategies.REGISTRY.items() if s.families is not None))
def test_check_strategy_refuses_what_the_model_cannot_serve_at_create_and_update(sqlite_wb, name):
    wb = sqlite_wb
    strategy = strategies.REGISTRY[name]
    servable_by_logreg = strategies.servable_strategies("logreg")
    assert name not in servable_by_logreg
    with pytest.raises(WorkbenchError) as refused:
        wb.projects.create("p", "text", LABELS, strategy=name, actor=OPERATOR)
    message = str(refused.value)
    assert f"strategy {name!r} needs" in message and "logreg" in message
    assert all(other in message for other in servable_by_logreg), message
    for family in strategy.families:
        assert f"set the model type to {family}" in message
    assert wb.projects.list(actor=Actor.operator()) == []

    info = wb.projects.create("p", "text", LABELS, actor=OPERATOR)
    with pytest.raises(WorkbenchError, match="choose one of .*margin"):
        wb.projects.update_settings("p", strategy=name, actor=OPERATOR)
    assert wb.projects.get("p", actor=Actor.operator()).strategy == "margin"

    model = FAMILY_MODELS[sorted(strategy.families)[0]]
    served = wb.projects.update_settings("p", strategy=name, model=model, actor=OPERATOR)
    assert served.strategy == name and served.settings["model"] == model
    with pytest.raises(WorkbenchError, match=f"strategy {name!r} needs"):  # the model cannot be swapped away
        wb.projects.update_settings("p", model={"type": "logreg"}, actor=OPERATOR)
    assert wb.projects.get("p", actor=Actor.operator()).settings["model"] == model and info.id == served.id


def test_bald_is_refused_for_an_mlp_without_dropout(sqlite_wb):
    with pytest.raises(WorkbenchError, match="dropout 0"):
        sqlite_wb.projects.create(
            "p", "text", LABELS, strategy="bald", settings={"model": {"type": "mlp", "dropout": 0.0}}, actor=OPERATOR
        )


def test_a_failed_publish_leaves_nothing_and_the_retry_reuses_the_version(sqlite_wb, monkeypatch):
    wb = sqlite_wb
    info, gold = _project(wb, "atomic", "margin", None)
    _label_half_the_pool_and_all_eval(wb, info, gold)
    from workbench.services import round_pipeline

    real = round_pipeline._replace_ranking

    def crash(*args, **kwargs):
        raise RuntimeError("killed mid-publish")

    monkeypatch.setattr(round_pipeline, "_replace_ranking", crash)
    with pytest.raises(RuntimeError):
        wb.rounds.run_retrain(info.name, actor=OPERATOR)

    def count(table) -> int:
        with Session(wb.engine) as s:
            return s.execute(select(func.count()).select_from(table)).scalar_one()

    assert (count(DatasetVersion), count(ModelRun), count(EvalPrediction), count(RankEntry)) == (0, 0, 0, 0)

    monkeypatch.setattr(round_pipeline, "_replace_ranking", real)
    first = wb.rounds.run_retrain(info.name, actor=OPERATOR)
    assert first.version == 1 and not first.version_reused
    again = wb.rounds.run_retrain(info.name, actor=OPERATOR)  # same labels: the same version
    assert again.version == 1 and again.version_reused and again.run_id != first.run_id
    assert count(DatasetVersion) == 1 and count(ModelRun) == 2
    from workbench.db.models import Item

    with Session(wb.engine) as s:
        n_eval_split = s.execute(
            select(func.count()).where(Item.project_id == info.id, Item.split == "eval")
        ).scalar_one()
    assert count(EvalPrediction) == 2 * n_eval_split  # every eval-split item, labeled or not, per run
    comparison = wb.rounds.compare(info.name, first.run_id, again.run_id, actor=OPERATOR)
    assert comparison.n_eval == first.n_eval and comparison.difference == 0 and comparison.mcnemar_p == 1.0


def test_why_this_item_names_the_strategy_that_ranked_it_with_run_and_score():
    from datetime import datetime

    from workbench.domain import ClaimedItem, ProjectInfo, ProjectKind, Split
    from workbench.ui.render import why

    project = ProjectInfo(id=1, name="p", kind=ProjectKind.TEXT, labels=("a", "b"), overlap=2, strategy="margin")

    def claim(strategy: str, run: int | None, score: float) -> ClaimedItem:
        return ClaimedItem(
            lease_id=1,
            item_id=1,
            external_id="x",
            split=Split.POOL,
            content={},
            labels=("a", "b"),
            slot=1,
            reason="ranked",
            strategy=strategy,
            score=score,
            model_run_id=run,
            expires_at=datetime.now(UTC),
        )

    cold = why(claim("cold_start", None, 0.0526), project)
    assert cold.startswith("Ranked by cold start (no usable model yet; project strategy: margin), score 0.053")
    ranked = why(claim("margin", 7, 0.98123), project)
    assert ranked.startswith("Ranked by margin on model run 7, score 0.981: ")
    assert "two most likely labels are closest" in ranked
    changed = why(claim("margin", 7, 0.5), ProjectInfo(**{**project.__dict__, "strategy": "entropy"}))
    assert changed.startswith("Ranked by margin on model run 7 (project strategy now: entropy; the next round uses it)")
    bald = why(claim("bald", 3, 0.2), ProjectInfo(**{**project.__dict__, "strategy": "bald"}))
    assert bald.startswith("Ranked by bald on model run 3, score 0.200") and "dropout" in bald
