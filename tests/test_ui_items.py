"""The Items page: reviewers filter, search and page through items."""

from __future__ import annotations

from tests.test_ui_support import (  # noqa: F401 - fixtures
    add_text_items,
    errors,
    go,
    seed_basic,
    sign_in,
    ui_url,
    uwb,
)


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
