"""Stopping advice (issue 13, deliverable 6): the round pipeline predicts a fixed random stop set
of pool items with every model run, compares it with the previous run (Cohen's kappa and the bound
it implies) and the previous model's error on the items labeled since (ranked picks against the
control arm); the Rounds page and `workbench rounds` read it. Real rounds on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from tests.helpers import add_text_items, annotators, set_final_labels
from workbench.db.models import Item, ModelRun, StopPrediction
from workbench.domain import Actor
from workbench.domain.stopping import Stability, advise, cohen_kappa, f_measure_bound, stopping_round
from workbench.errors import PermissionDenied

if TYPE_CHECKING:
    from workbench.domain.stopping import StoppingRound

OPERATOR = Actor.operator()
WORDS = {"pos": "great lovely superb fine happy", "neg": "awful bad poor broken sad"}


def _round(
    run_id: int,
    acc: float | None,
    ci: tuple[float, float] | None,
    kappa: float | None,
    arms: dict[str, list[int]] | None = None,
) -> StoppingRound:
    return stopping_round(run_id, run_id, 10 * run_id, acc, ci, Stability(stop_n=100, kappa=kappa, arms=arms or {}))


def test_kappa_and_its_bound():
    assert cohen_kappa(["a", "b", "a"], ["a", "b", "a"]) == (1.0, 1.0)
    assert cohen_kappa(["a", "a"], ["a", "a"]) == (1.0, 1.0)  # 0/0 in sklearn: identical counts as 1
    kappa, agreement = cohen_kappa(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert agreement == 0.75 and kappa == pytest.approx(0.5)
    assert f_measure_bound(0.99) == pytest.approx(4 * 0.01 / 0.99)
    assert f_measure_bound(None) is None and f_measure_bound(-0.2) is None


def test_the_sentence_says_stop_only_when_kappa_and_accuracy_are_both_settled():
    first = _round(1, 0.80, (0.74, 0.86), None)
    assert "not yet: 0 rounds with a stop-set kappa, 3 needed" in advise([first]).sentence
    stable = [first] + [_round(i, 0.85, (0.80, 0.90), 0.995) for i in (2, 3, 4)]
    advice = advise(stable)
    assert advice.stop and advice.sentence.startswith(
        "more labels are unlikely to change the model: kappa ≥ 0.99 for the last 3 rounds and eval accuracy flat"
    )
    changing = stable[:-1] + [_round(4, 0.86, (0.81, 0.91), 0.97)]
    assert not advise(changing).stop and "kappa 0.970 < 0.99" in advise(changing).sentence
    moving = [first, _round(2, 0.70, (0.64, 0.76), 0.999), _round(3, 0.85, (0.8, 0.9), 0.999)]
    moving.append(_round(4, 0.86, (0.81, 0.91), 0.999))
    assert not advise(moving).stop and "0.700" in advise(moving).sentence and "outside" in advise(moving).sentence
    arms = [_round(2, 0.8, (0.7, 0.9), 0.9, {"ranked": [40, 20], "control": [10, 1]})]
    assert "50% of 40 ranked picks and 10% of 10 control-arm picks" in advise(arms).strategy_vs_control
    assert "no control-arm labels yet" in advise([first]).strategy_vs_control


def test_rounds_store_stop_set_kappa_and_arms_and_the_cli_prints_the_advice(wb, home, db_url, capsys, tmp_path):
    info = wb.projects.create(
        "stop",
        "text",
        ["pos", "neg"],
        overlap=1,
        settings={"random_share": 0.3, "eval_fraction": 0.0, "featurizer": {"method": "tfidf"}},
        actor=OPERATOR,
    )
    rng = np.random.default_rng(0)
    texts, truth = [], {}
    for i in range(160):
        label = ("pos", "neg")[i % 2]
        words = WORDS[label].split() + WORDS[("neg", "pos")[i % 2]].split()[: int(rng.integers(0, 3))]
        texts.append(" ".join(rng.choice(words, size=6)) + f" n{i}")
        truth[f"t{i}"] = label
    add_text_items(wb.engine, info.id, texts, eval_fraction=0.25)
    with Session(wb.engine) as s:
        splits = dict(s.execute(select(Item.external_id, Item.split).where(Item.project_id == info.id)).all())
    set_final_labels(wb.engine, info.id, {k: v for k, v in truth.items() if splits[k] == "eval"})
    (ann,) = annotators(wb, 1)
    flip = random.Random(1)

    def label(n: int) -> None:
        for _ in range(n):
            claimed = wb.queue.claim("stop", actor=ann)
            answer = truth[claimed.external_id]
            if flip.random() < 0.1:  # a little noise, so the model keeps changing early on
                answer = "neg" if answer == "pos" else "pos"
            wb.queue.submit(claimed.lease_id, answer, actor=ann)

    label(12)
    for _ in range(4):
        wb.rounds.run_retrain("stop", actor=OPERATOR)
        label(15)
    with Session(wb.engine) as s:
        runs = s.execute(select(ModelRun).where(ModelRun.project_id == info.id).order_by(ModelRun.id)).scalars().all()
        per_run = dict(
            s.execute(select(StopPrediction.model_run_id, func.count()).group_by(StopPrediction.model_run_id)).all()
        )
        n_pool = s.execute(select(func.count()).where(Item.project_id == info.id, Item.split == "pool")).scalar_one()
    assert len(runs) == 4 and all(per_run[r.id] == n_pool for r in runs)  # every pool item: fewer than 1000
    assert runs[0].stability["kappa"] is None  # nothing to compare the first run with
    for before, run in zip(runs, runs[1:]):
        st = run.stability
        assert st["previous_run_id"] == before.id and st["stop_n"] == n_pool
        assert -1.0 <= st["kappa"] <= 1.0 and 0.0 <= st["agreement"] <= 1.0
        arms = st["arms"]
        assert sum(n for n, _ in arms.values()) == 15  # the items labeled since the previous run
        assert all(0 <= wrong <= n for n, wrong in arms.values())
    assert "control" in runs[-1].stability["arms"] or "control" in runs[-2].stability["arms"]

    with pytest.raises(PermissionDenied):
        wb.rounds.stopping("stop", actor=ann)
    advice = wb.rounds.stopping("stop", actor=OPERATOR)
    assert [r.run_id for r in advice.rounds] == [r.id for r in runs]
    assert advice.rounds[-1].kappa == pytest.approx(runs[-1].stability["kappa"])
    assert advice.sentence.startswith(("not yet", "more labels are unlikely"))

    from workbench.cli import main

    out = tmp_path / "advice.json"
    assert main(["--database-url", db_url, "rounds", "stop", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "kappa" in printed and "strategy against control arm" in printed and advice.sentence in printed
    assert '"sentence"' in out.read_text()
