"""Hostile text stays text: item text, context, ids, user and project names, labels and reasons
with <script>, <img onerror>, javascript: links or markdown are shown literally on every page."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.test_ui_support import (  # noqa: F401 - fixtures
    HOSTILE,
    PASSWORD,
    actor,
    add_text_items,
    all_markdown,
    go,
    open_tab,
    plain,
    sign_in,
    texts,
    ui_url,
    uwb,
)
from workbench.domain import Actor
from workbench.ui import render

UI = Path(__file__).resolve().parents[1] / "workbench" / "ui"
EVIL_PROJECT = "<script>alert('project')</script>"
EVIL_USER = "<img src=x onerror=alert('user')>"
EVIL_LABELS = ["**bold**", "<b>html</b>", "[x](javascript:alert(1))"]


def _seed(uwb):
    uwb.users.add("admin", "admin", PASSWORD, actor=Actor.operator())
    uwb.users.add(EVIL_USER, "annotator", PASSWORD, actor=Actor.operator())
    project = uwb.projects.create(
        EVIL_PROJECT,
        "text",
        EVIL_LABELS,
        overlap=2,
        settings={"eval_fraction": 0.0, "random_share": 0.0},
        actor=Actor.operator(),
    )
    context = {HOSTILE[3]: HOSTILE[1], "link": HOSTILE[2]}
    add_text_items(uwb, project.id, [HOSTILE[0], HOSTILE[0]], contexts=[context, context], ids=[HOSTILE[1], HOSTILE[2]])
    # the hostile user labels the first one way, the admin (who may label) another: a review case
    for who, label in ((EVIL_USER, EVIL_LABELS[0]), ("admin", EVIL_LABELS[1])):
        person = actor(uwb, who)
        while (claim := uwb.queue.claim(EVIL_PROJECT, actor=person)).external_id != HOSTILE[1]:
            uwb.queue.skip(claim.lease_id, "<script>alert('skip')</script>", actor=person)
        uwb.queue.submit(claim.lease_id, label, actor=person)
    return project


def _check_no_markup(at):
    """No markdown-rendering element carries HTML permission or an unescaped hostile string, and
    what an escaped one shows is the literal string."""
    for element in all_markdown(at):
        proto = element.proto
        assert not getattr(proto, "allow_html", False)
        body = element.value if hasattr(element, "value") else proto.body
        _assert_inert(body)
        for evil in [*HOSTILE, EVIL_PROJECT, EVIL_USER, *EVIL_LABELS]:
            if render.md(evil) in body:
                assert evil in plain(body)
    for button in at.button:
        _assert_inert(button.label)


def _assert_inert(markdown: str) -> None:
    """Once escaped characters are taken out, nothing that starts markup is left."""
    bare = re.sub(r"\\.", "", markdown)
    for start in ("<", ">", "[", "]", "**", "__", "`", "$", "&", ":red"):
        assert start not in bare, markdown


def test_md_escapes_every_markdown_and_html_construct():
    for evil in HOSTILE:
        escaped = render.md(evil)
        assert not re.search(r"(?<!\\)[<>*_\[\]()`$:&#!|~]", escaped)
        assert plain(escaped) == evil
    assert render.md("a\nb") == "a  \nb"


def test_label_page_shows_hostile_item_text_and_context_literally(uwb):
    _seed(uwb)
    uwb.users.add("ann9", "annotator", PASSWORD, actor=Actor.operator())
    at = sign_in("ann9")
    shown = texts(at)
    assert HOSTILE[0] in shown
    assert f"{HOSTILE[3]}: {HOSTILE[1]}" in shown and f"link: {HOSTILE[2]}" in shown
    shown = [b.label.rsplit(" ⟨", 1)[0] for b in at.button if b.key.startswith("label_btn_")]
    assert shown == [render.md(x) for x in EVIL_LABELS]
    assert any(plain(c.value).startswith(f"Item {HOSTILE[2]}") for c in at.caption)
    _check_no_markup(at)


def test_hostile_user_name_in_sidebar_and_review_page(uwb):
    _seed(uwb)
    uwb.users.add("rev", "reviewer", PASSWORD, actor=Actor.operator())
    at = go(sign_in("rev"), "review")
    shown = texts(at)
    assert HOSTILE[0] in shown
    assert f"Annotator: {EVIL_USER}" in shown and f"Label: {EVIL_LABELS[0]}" in shown
    case = at.session_state["review_pick"]
    reason = "<script>alert('reason')</script> **done**"
    at.radio(key=f"adj_decision_{case}").set_value("excluded")
    at.text_input(key=f"adj_reason_{case}").input(reason)
    at.button(key=f"adjudicate_{case}").click().run()
    assert uwb.review.history(EVIL_PROJECT, actor=actor(uwb, "rev"))[0].reason == reason
    _check_no_markup(at)
    at.switch_page("views/review.py").run()
    open_tab(at, "review_tabs", "Adjudication history")
    history = next(df.value for df in at.dataframe if "reviewer" in df.value.columns)
    assert history["reason"].tolist() == [reason]
    _check_no_markup(at)


def test_hostile_signed_in_user_and_admin_pages(uwb):
    _seed(uwb)
    at = sign_in(EVIL_USER)
    assert f"{EVIL_USER} (annotator)" in texts(at)
    _check_no_markup(at)
    at = go(at, "users")  # refused, and the refusal names the user literally
    assert EVIL_USER in plain(at.error[0].value)
    _check_no_markup(at)
    admin = sign_in("admin")
    for page in ("users", "data", "review", "label"):
        go(admin, page)
        _check_no_markup(admin)
    go(admin, "users")
    assert EVIL_USER in admin.dataframe[0].value["name"].tolist()


def test_service_errors_naming_data_are_escaped(uwb):
    _seed(uwb)
    at = go(sign_in("admin"), "users")
    at.text_input(key="user_add_name").input(EVIL_USER)
    at.text_input(key="user_add_password").input("long-enough-1")
    at.button(key="FormSubmitter:user_add-Add user").click().run()
    assert EVIL_USER in plain(at.error[0].value) and "already exists" in at.error[0].value
    _check_no_markup(at)


def _ui_sources():
    return sorted(UI.rglob("*.py"))


@pytest.mark.parametrize("path", _ui_sources(), ids=lambda p: str(p.relative_to(UI)))
def test_ui_code_never_allows_raw_html(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword):
            assert node.arg != "unsafe_allow_html", f"{path}:{node.value.lineno}"
        if isinstance(node, ast.Attribute):
            # The one custom component (key capture) is JavaScript only: no HTML, and its data is
            # JSON (a lease id and key names), never item text.
            allowed = {"components"} if path.relative_to(UI).as_posix() == "components/keys.py" else set()
            assert node.attr not in {"html", "components"} - allowed, f"{path}:{node.lineno} uses st.{node.attr}"
        if isinstance(node, ast.keyword) and path.relative_to(UI).parts[0] == "components":
            assert node.arg not in ("html", "css"), f"{path}:{node.value.lineno} passes {node.arg}="
