"""The Health page: reviewers see the flags, exclude items with a reason, and see drift."""

from __future__ import annotations

from tests.test_ui_support import (  # noqa: F401 - fixtures
    add_text_items,
    errors,
    go,
    infos,
    seed_basic,
    sign_in,
    ui_url,
    uwb,
)
from workbench.domain import Actor


def test_reviewer_sees_flags_and_excludes_a_duplicate(uwb):
    project = seed_basic(uwb, n_items=0)
    add_text_items(
        uwb,
        project.id,
        [
            "the same words again",
            "the same words again",
            "a different text",
            "write to jane.doe@example.com please",
            "one more plain text",
        ],
    )
    report = uwb.health.check("demo", actor=Actor.operator())
    assert report.exact_duplicates == 1
    at = go(sign_in("rev"), "health")
    assert not errors(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Exact duplicates"] == "1" and metrics["Personal data"] == "1"
    assert "Run the health check now" not in [b.label for b in at.button]  # admins only
    table = at.dataframe[0].value
    assert list(table["flag"]) == ["Exact duplicates"]
    at.multiselect(key="health_exclude_ids").select(table["item"].iloc[0])
    at.text_input(key="health_exclude_reason").input("a copy of t0")
    at.button(key="FormSubmitter:health_exclude-Exclude").click().run()
    assert not errors(at)
    assert any("Excluded 1 item(s)" in text for text in infos(at))
    counts = uwb.projects.progress("demo", actor=Actor.operator())
    assert counts.count("pool", "excluded") == 1


def test_annotators_cannot_open_the_health_page(uwb):
    seed_basic(uwb)
    at = go(sign_in("ann1"), "health")
    assert errors(at) and "reviewer" in errors(at)[0]
