"""The Items page: reviewers filter, search and page through items."""

from __future__ import annotations

import math

from tests.test_ui_support import (  # noqa: F401 - fixtures
    add_text_items,
    errors,
    go,
    seed_basic,
    sign_in,
    ui_url,
    uwb,
)
from workbench.domain import Actor


def test_reviewer_filters_searches_and_pages(uwb):
    project = seed_basic(uwb, n_items=0)
    add_text_items(uwb, project.id, [f"note {i} about {'cats' if i % 3 == 0 else 'dogs'}" for i in range(120)])
    at = go(sign_in("rev"), "items")
    assert not errors(at)
    table = at.dataframe[0].value
    assert len(table) == 50 and table["item"].iloc[0] == "item-0"
    assert any("120 matching" in c.value for c in at.caption)
    at.button(key="items_next").click().run()
    assert at.dataframe[0].value["item"].iloc[0] == "item-50"
    at.text_input(key="items_search").input("cats").run()
    table = at.dataframe[0].value
    assert len(table) == 40 and all("cats" in text for text in table["content"])  # back to page one
    assert any("40 matching" in c.value for c in at.caption)
    at.selectbox(key="items_state").select("final").run()
    assert at.dataframe[0].value.empty


def test_annotators_cannot_open_items(uwb):
    seed_basic(uwb)
    at = go(sign_in("ann1"), "items")
    assert errors(at) and "reviewer" in errors(at)[0]


def _trained(uwb, n_eval: int = 0):
    """'demo' with 60 pos/neg pool texts (the first 40 labeled) and n_eval eval texts after one round."""
    from tests.helpers import set_final_labels

    project = seed_basic(uwb, n_items=0, labels=("pos", "neg"))
    words = {"pos": "great lovely superb fine happy", "neg": "awful bad poor broken sad"}
    texts = [f"{words['pos' if i % 2 == 0 else 'neg']} {i}" for i in range(60)]
    add_text_items(uwb, project.id, texts)
    if n_eval:
        ids = [f"eval-{i}" for i in range(n_eval)]
        add_text_items(uwb, project.id, texts[:n_eval], ids=ids, split="eval")
    set_final_labels(uwb.engine, project.id, {f"item-{i}": "pos" if i % 2 == 0 else "neg" for i in range(40)})
    result = uwb.rounds.run_retrain("demo", actor=Actor.operator())
    assert result.run_id is not None
    return result


def test_reviewer_filters_on_the_models_prediction_and_sees_each_runs_predictions(uwb):
    _trained(uwb)
    at = go(sign_in("rev"), "items")
    assert not errors(at)
    assert {"predicted", "confidence"} <= set(at.dataframe[0].value.columns)
    at.selectbox(key="items_predicted").select("neg").run()
    table = at.dataframe[0].value
    assert not errors(at) and len(table) == 30 and set(table["predicted"]) == {"neg"}
    confidences = sorted(table["confidence"])
    cut = math.ceil(confidences[15] * 100) / 100  # on the slider's step
    at.slider(key="items_confidence").set_value((0.0, cut)).run()
    narrow = at.dataframe[0].value
    assert len(narrow) >= 16 and len(narrow) == sum(c <= cut for c in confidences)
    assert all(c <= cut for c in narrow["confidence"])
    at.slider(key="items_confidence").set_value((cut, 1.0)).run()
    rest = at.dataframe[0].value
    assert len(rest) == sum(c >= cut for c in confidences)
    at.slider(key="items_confidence").set_value((0.0, 1.0)).run()
    # The detail of a selected row lists the run's prediction.
    picked = at.dataframe[0]
    assert len(picked.value) == 30
    detail = uwb.browse.detail("demo", picked.value["item"].iloc[0], actor=Actor.operator())
    assert detail.predictions and detail.predictions[0].label == "neg"


def test_the_health_page_shows_prediction_drift(uwb):
    _trained(uwb, n_eval=20)
    at = go(sign_in("rev"), "health")
    assert not errors(at)
    frames = [d.value for d in at.dataframe]
    drift = next(f for f in frames if "predicted label" in f.columns)
    assert list(drift["predicted label"]) == ["pos", "neg"]
    assert drift["new items"].sum() == 60 and drift["eval items"].sum() == 20
    assert any("No prediction drift" in text for text in [s.value for s in at.success])
