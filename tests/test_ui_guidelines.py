"""Guidelines in the app: admins edit them on Review (each save a version); Label and Review show
them collapsible as safe Markdown, and each label button carries its note as help."""

from __future__ import annotations

from tests.test_ui_support import (  # noqa: F401 - fixtures
    actor,
    errors,
    go,
    infos,
    seed_basic,
    sign_in,
    ui_url,
    uwb,
)
from workbench.domain import Actor

HOSTILE_MD = "# Rules\n\nBe **kind**. <script>alert(1)</script> <img src=x onerror=alert(2)> [x](javascript:alert(3))"


def test_admin_saves_versions_and_annotators_see_them_as_safe_markdown(uwb):
    seed_basic(uwb, n_items=2)
    at = go(sign_in("admin"), "review")
    at.session_state["review_tabs"] = "Guidelines"  # only the open tab runs
    at.run()
    form_text = next(t for t in at.text_area if t.key.startswith("guidelines_text"))
    form_text.input(HOSTILE_MD)
    next(t for t in at.text_input if t.key.endswith("_pos")).input("clearly positive")
    next(b for b in at.button if b.label == "Save as a new version").click().run()
    assert not errors(at) and "Saved guidelines version 1" in infos(at)[0]
    current = uwb.guidelines.current(uwb.projects.get("demo", actor=Actor.operator()), actor=Actor.operator())
    assert (current.version, current.label_notes) == (1, {"pos": "clearly positive"})

    ann = sign_in("ann1")
    assert any(e.label.startswith("Guidelines (version 1)") for e in ann.expander)
    rendered = [m.value for m in ann.markdown if "Rules" in m.value][0]
    assert "<script" not in rendered and "<img" not in rendered and "javascript:" not in rendered
    assert "&lt;script>" in rendered and "**kind**" in rendered
    pos = next(b for b in ann.button if b.key == "label_btn_0")
    assert pos.help == "clearly positive"


def test_reviewers_see_guidelines_but_no_editor(uwb):
    seed_basic(uwb, n_items=1)
    uwb.guidelines.update("demo", "Read twice.", actor=Actor.operator())
    at = go(sign_in("rev"), "review")
    assert any(e.label.startswith("Guidelines (version 1)") for e in at.expander)
    assert not [t for t in at.text_area if t.key.startswith("guidelines_text")]


def test_overview_counts_skips_per_reason_and_labels_before_the_current_guidelines(uwb):
    seed_basic(uwb, n_items=3)
    ann1 = actor(uwb, "ann1")
    uwb.queue.skip(uwb.queue.claim("demo", actor=ann1).lease_id, "too long", actor=ann1)
    uwb.queue.submit(uwb.queue.claim("demo", actor=ann1).lease_id, "pos", actor=ann1)  # before any guidelines
    uwb.guidelines.update("demo", "Read twice.", actor=Actor.operator())
    at = go(sign_in("admin"), "overview")
    counts = [d for d in at.dataframe if "skips" in d.value.columns][0].value
    assert counts.to_dict("records") == [{"reason": "too long", "skips": 1}]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Labels under guidelines v1"] == "0" and metrics["Labels made before it"] == "1"
