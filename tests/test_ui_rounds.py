"""The rounds page: start a round, follow the job, metrics per version, learning curve, confusion
matrix, run comparison, version diff and downloads (the worker runs in-process here)."""

from __future__ import annotations

import random

import pytest

from tests.test_ui_support import (  # noqa: F401 - fixtures
    PASSWORD,
    actor,
    add_text_items,
    errors,
    go,
    sign_in,
    texts,
    ui_url,
    uwb,
)
from workbench.domain import Actor
from workbench.worker import run_worker

WORDS = {"pos": ["great", "lovely", "superb", "fine"], "neg": ["awful", "bad", "poor", "broken"]}


def _seed(uwb, n=40):
    for name, role in (("admin", "admin"), ("rev", "reviewer"), ("ann1", "annotator"), ("ann2", "annotator")):
        uwb.users.add(name, role, PASSWORD, actor=Actor.operator())
    project = uwb.projects.create(
        "sent", "text", ["pos", "neg"], settings={"random_share": 0.0}, actor=Actor.operator()
    )
    rng = random.Random(0)
    gold = {}
    texts_ = []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        gold[f"item-{i}"] = label
        texts_.append(" ".join(rng.choice(WORDS[label]) for _ in range(6)))
    add_text_items(uwb, project.id, texts_)
    from sqlalchemy import update
    from sqlmodel import Session

    from workbench.db.models import Item

    with Session(uwb.engine) as s, s.begin():  # every 4th item is an eval item
        s.execute(update(Item).where(Item.external_id.in_([f"item-{i}" for i in range(0, n, 4)])).values(split="eval"))
    return gold


def _label(uwb, gold, limit):
    for who in ("ann1", "ann2"):
        person = actor(uwb, who)
        for _ in range(limit):
            claim = uwb.queue.claim("sent", actor=person)
            if claim is None:
                break
            uwb.queue.submit(claim.lease_id, gold[claim.external_id], actor=person)


def _round(at, ui_url):
    at.button(key="rounds_start").click().run()
    assert not errors(at), errors(at)
    assert "queued" in at.get("progress")[0].proto.text
    assert run_worker(ui_url, once=True) == 1
    at.run()
    return at


@pytest.mark.slow
def test_round_metrics_curve_compare_diff_download(uwb, ui_url):
    gold = _seed(uwb)
    _label(uwb, gold, 20)
    at = go(sign_in("rev"), "rounds")
    assert "No model run yet." in [c.value for c in at.caption]
    _round(at, ui_url)
    assert any("Round done: version 1" in s.value.replace("\\", "") for s in at.success)
    runs = next(df.value for df in at.dataframe if "training labels" in df.value.columns)
    assert runs["version"].tolist() == [1] and runs["accuracy"].notna().all()
    versions = next(df.value for df in at.dataframe if "pool labels" in df.value.columns)
    assert versions["version"].tolist() == [1]

    _label(uwb, gold, 40)
    _round(at, ui_url)
    runs = next(df.value for df in at.dataframe if "training labels" in df.value.columns)
    assert runs["version"].tolist() == [1, 2]
    assert runs["training labels"].iloc[1] > runs["training labels"].iloc[0]
    charts = at.get("vega_lite_chart")
    assert len(charts) >= 2  # learning curve and confusion matrix

    v1, v2 = uwb.versions.list("sent", actor=Actor.operator())
    assert f"{v2.n_items - v1.n_items} added · 0 removed · 0 relabeled" in texts(at)
    at.button(key="cmp_go").click().run()
    assert not errors(at)
    labels = [m.label for m in at.metric]
    assert "McNemar p" in labels

    at.selectbox(key="dl_version").select(2)
    at.selectbox(key="dl_fmt").select("jsonl")
    at.button(key="dl_prepare").click().run()
    assert at.get("download_button")[0].label == "Download version 2 (jsonl)"
    assert at.session_state["dl_ready"].data.count(b"\n") == v2.n_items

    admin = go(sign_in("admin"), "data")  # versions are also among the Data page's exports
    admin.radio(key="export_what").set_value("version").run()
    admin.selectbox(key="export_version").select(1)
    admin.radio(key="export_fmt").set_value("csv")
    admin.button(key="export_prepare").click().run()
    assert not errors(admin)
    assert admin.get("download_button")[0].label == f"Download version-1.csv ({v1.n_items} rows)"


def test_annotator_cannot_start_rounds(uwb):
    _seed(uwb, n=4)
    at = go(sign_in("ann1"), "rounds")
    assert "needs the reviewer role" in errors(at)[0]
    assert "rounds_start" not in [b.key for b in at.button]


def test_a_round_not_logged_to_mlflow_shows_one_warning_line(uwb, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    import socket

    with socket.socket() as s:  # a port that was free and is closed again: nothing listens there
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    gold = _seed(uwb)
    uwb.projects.update_settings("sent", mlflow_tracking_uri=dead, actor=Actor.operator())
    _label(uwb, gold, 20)
    run_id = uwb.rounds.run_retrain("sent", actor=Actor.operator()).run_id
    at = go(sign_in("rev"), "rounds")
    assert not errors(at), errors(at)
    lines = [w.value.replace("\\", "") for w in at.warning]
    assert lines == [f"MLflow: run {run_id} not logged to {dead}: connection refused. The round itself finished."]
    runs = next(df.value for df in at.dataframe if "training labels" in df.value.columns)
    assert runs["MLflow"].tolist() == ["failed"]


@pytest.mark.slow
def test_run_detail_shows_worst_group_figures_with_a_small_group_warning(uwb, tmp_path):
    """A tabular round on 600 adult rows with `sex` and `race` sensitive: the run's detail shows
    worst-group accuracy, disparate impact and equalized-odds difference per column, equal to the
    service's figures, and warns about the races with fewer than 30 eval items."""
    from tests.helpers import set_final_labels
    from tests.test_health import _adult

    for name, role in (("admin", "admin"), ("rev", "reviewer")):
        uwb.users.add(name, role, PASSWORD, actor=Actor.operator())
    frame = _adult("adult.data").iloc[:600].copy()
    frame.insert(0, "id", [f"a{i}" for i in range(len(frame))])
    frame.to_csv(tmp_path / "adult.csv", index=False)
    info = uwb.projects.create(
        "adult",
        "tabular",
        ["<=50K", ">50K"],
        actor=Actor.operator(),
        settings={"sensitive_cols": ["sex", "race"], "eval_fraction": 0.3},
    )
    assert uwb.imports.run("adult", tmp_path / "adult.csv", actor=Actor.operator(), seed=1).ok
    set_final_labels(uwb.engine, info.id, dict(zip(frame["id"], frame["income"])))
    uwb.rounds.run_retrain("adult", actor=Actor.operator())
    at = go(sign_in("rev"), "rounds")
    assert not errors(at), errors(at)
    metrics = {m.label: m.value for m in at.metric}
    expected = {r.column: r for r in uwb.health.subgroups("adult", actor=Actor.operator())}
    for column in ("sex", "race"):
        report = expected[column]
        assert metrics[f"Worst-group accuracy · {column}"] == f"{report.worst_accuracy:.1%}"
        assert metrics[f"Disparate impact · {column}"] == f"{min(report.disparate_impact.values()):.3f}"
        assert metrics[f"Equalized-odds difference · {column}"] == (
            f"{max(report.equalized_odds_difference.values()):.3f}"
        )
    warnings = [w.value for w in at.warning]
    assert expected["race"].small_groups and any(
        w.startswith("race: fewer than 30 eval items in") for w in (x.replace("\\", "") for x in warnings)
    )
