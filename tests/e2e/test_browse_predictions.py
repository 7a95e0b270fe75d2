"""End to end in Chromium: after a round, a reviewer filters the Items page on what the model
predicts and how sure it is, sees the predicted label and confidence per row, opens an item's
predictions of each run, and reads the prediction drift on the Health page. Saves
docs/screenshots/browse-predictions.png."""

from __future__ import annotations

import os
import random

import pytest

from tests.e2e.conftest import choose, idle, new_page, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed").expect

PASSWORD = "password-123"
WORDS = {
    "pos": ["great", "lovely", "superb", "fine", "happy", "warm"],
    "neg": ["awful", "bad", "poor", "broken", "sad", "cold"],
    "mid": ["okay", "plain", "average", "usual"],
}


def _seed(url: str, home: str) -> None:
    from sqlalchemy import update
    from sqlmodel import Session

    from workbench.db.bulk import insert_items
    from workbench.db.models import Item
    from workbench.domain import Actor
    from workbench.services import Workbench

    os.environ["WORKBENCH_HOME"] = home
    wb = Workbench.open(url)
    wb.users.add("rev", "reviewer", PASSWORD, actor=Actor.operator())
    info = wb.projects.create("reviews", "text", ["pos", "neg"], settings={"random_share": 0.0}, actor=Actor.operator())
    rng = random.Random(0)
    rows, gold = [], {}
    for i in range(300):
        label = "pos" if i % 2 == 0 else "neg"
        words = rng.choices(WORDS[label], k=4) + rng.choices(WORDS["mid"], k=rng.randint(0, 4))
        rng.shuffle(words)
        rows.append(
            (
                f"review-{i:03d}",
                {"text": "The stay was " + " ".join(words) + "."},
                "eval" if i % 5 == 0 else "pool",
                rng.random(),
            )
        )
        gold[f"review-{i:03d}"] = label
    with Session(wb.engine) as s, s.begin():
        insert_items(s, info.id, rows)
        for external_id, label in list(gold.items())[:160]:
            s.execute(
                update(Item)
                .where(Item.project_id == info.id, Item.external_id == external_id)
                .values(state="final", final_label=label, n_annotations=2, slots_taken=2)
            )
    wb.rounds.run_retrain("reviews", actor=Actor.operator())
    wb.engine.dispose()


def test_reviewer_filters_items_on_the_models_prediction(server, browser):
    _seed(server.url, str(server.home))
    server.start()
    context, page = new_page(browser, 1360, 900)
    try:
        sign_in(page, server.base, "rev", PASSWORD, "items")
        expect(page.get_by_text("Model confidence")).to_be_visible()
        choose(page, page.get_by_role("combobox", name="Model predicts"), "neg")
        # Narrow the confidence to at most 0.96 with the slider's upper handle (keyboard steps of 0.01).
        handles = page.get_by_role("slider")
        upper = handles.nth(1)
        upper.focus()
        for _ in range(4):
            upper.press("ArrowLeft")
        idle(page)
        caption = page.get_by_text("matching item(s)")
        expect(caption).to_be_visible()
        grid = page.get_by_test_id("stDataFrame").first
        expect(grid).to_be_visible()
        # Open the first row's history, on the model predictions tab.
        grid.click(position={"x": 14, "y": 54})
        idle(page)
        page.get_by_role("tab", name="Model predictions").click()
        idle(page)
        expect(page.get_by_role("tabpanel").get_by_test_id("stDataFrame")).to_be_visible()
        page.mouse.wheel(0, 120)
        shot(page, "browse-predictions")
    finally:
        context.close()
