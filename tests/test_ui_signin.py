"""Sign-in, sign-out, role-based navigation and page refusals, through the real app (AppTest)."""

from __future__ import annotations

import pytest

from tests.test_ui_support import (  # noqa: F401 - fixtures
    PASSWORD,
    app,
    errors,
    go,
    infos,
    seed_basic,
    sign_in,
    texts,
    ui_url,
    uwb,
)
from workbench.domain import Actor, Role
from workbench.ui.nav import visible_pages


def test_sign_in_shows_the_label_page_and_sign_out_returns_to_the_form(uwb):
    seed_basic(uwb)
    at = app().run()
    assert [t.value for t in at.title] == ["Workbench"]
    assert "signout" not in [b.key for b in at.button]
    at = sign_in("ann1", at=at)
    assert "ann1 (annotator)" in texts(at)
    assert any(t.startswith("text number") for t in texts(at))  # the claimed item is on screen
    at.button(key="signout").click().run()
    assert [t.value for t in at.title] == ["Workbench"]
    assert at.text_input(key="signin_name").value == ""
    assert "wb_actor" not in at.session_state


def test_wrong_password_is_refused_and_repeated_failures_slow_down(uwb):
    seed_basic(uwb)
    at = sign_in("ann1", "wrong-password")
    assert errors(at) and "unknown user or wrong password" in errors(at)[0]
    assert "wb_actor" not in at.session_state
    for _ in range(4):
        sign_in("ann1", "wrong-password", at=at)
    assert "too many failed sign" in errors(at)[0]
    sign_in("ann1", PASSWORD, at=at)  # still locked: the right password does not get in yet
    assert "too many failed sign" in errors(at)[0]
    assert "wb_actor" not in at.session_state


def test_unknown_user_gets_the_same_message(uwb):
    seed_basic(uwb)
    at = sign_in("nobody")
    assert "unknown user or wrong password" in errors(at)[0]


@pytest.mark.parametrize(
    "role, pages",
    [
        (Role.ANNOTATOR, ["label", "statistics", "account"]),
        (Role.REVIEWER, ["overview", "label", "statistics", "review", "rounds", "items", "health", "account"]),
        (
            Role.ADMIN,
            [
                "overview",
                "label",
                "statistics",
                "review",
                "rounds",
                "items",
                "health",
                "data",
                "settings",
                "users",
                "account",
            ],
        ),
        (None, []),
    ],
)
def test_roles_decide_the_menu(role, pages):
    assert visible_pages(role) == pages


@pytest.mark.parametrize("page", ["review", "rounds", "data", "users"])
def test_annotator_is_refused_on_pages_above_their_role(uwb, page):
    seed_basic(uwb)
    at = go(sign_in("ann1"), page)
    assert errors(at) and "needs the" in errors(at)[0] and "ann1 is annotator" in errors(at)[0]
    # nothing of the page itself was rendered: no tables, no forms, no other widgets
    assert not at.dataframe and not at.text_area and not at.selectbox
    assert [b.key for b in at.button] == ["signout"]
    # a link back to where this user's work is
    [link] = [e for e in at.main if getattr(e, "proto", None) is not None and type(e).__name__ == "PageLink"] or [None]
    assert link is not None and link.proto.label == "Back to Label"


@pytest.mark.parametrize("page", ["data", "users"])
def test_reviewer_is_refused_on_admin_pages(uwb, page):
    seed_basic(uwb)
    at = go(sign_in("rev"), page)
    assert "needs the admin role" in errors(at)[0]


def test_not_signed_in_any_page_shows_the_sign_in_form(uwb):
    seed_basic(uwb)
    at = app().run()
    go(at, "users")
    assert [t.value for t in at.title] == ["Workbench"]
    assert at.text_input(key="signin_name") is not None
    assert not at.dataframe


def test_deactivation_and_demotion_apply_at_the_next_click(uwb):
    seed_basic(uwb)
    at = go(sign_in("rev"), "review")
    assert not errors(at)
    uwb.users.set_role("rev", "annotator", actor=Actor.operator())
    at.run()
    assert "needs the reviewer role" in errors(at)[0]
    uwb.users.set_active("rev", False, actor=Actor.operator())
    at.run()
    assert [t.value for t in at.title] == ["Workbench"]
    assert "this account was disabled" in infos(at)[0]


def _leases(wb):
    from sqlalchemy import text

    with wb.engine.connect() as conn:
        return conn.execute(
            text("SELECT u.name, l.state FROM lease l JOIN app_user u ON u.id = l.annotator_id ORDER BY l.id")
        ).all()


@pytest.mark.parametrize("name, header", [("rev", "Review"), ("admin", "Overview")])
def test_reviewers_and_admins_land_on_their_page_and_claim_nothing(uwb, name, header):
    seed_basic(uwb)
    at = sign_in(name)
    assert any(h.value.startswith(header) for h in at.header), [h.value for h in at.header]
    at.run()
    assert _leases(uwb) == []


def test_leaving_label_and_signing_out_release_the_lease(uwb):
    seed_basic(uwb)
    at = sign_in("ann1")
    assert _leases(uwb) == [("ann1", "active")]
    go(at, "account")
    assert _leases(uwb) == [("ann1", "expired")]
    go(at, "label")
    assert [state for _, state in _leases(uwb)] == ["expired", "active"]
    at.button(key="signout").click().run()
    assert [state for _, state in _leases(uwb)] == ["expired", "expired"]
    assert "You are signed out" in infos(at)[0]


def test_a_sign_in_creates_a_server_side_session_and_sign_out_revokes_it(uwb):
    from sqlalchemy import text

    seed_basic(uwb)
    at = sign_in("ann1")
    sid = at.session_state["wb_session_id"]
    at.button(key="signout").click().run()
    with uwb.engine.connect() as conn:
        row = conn.execute(text("SELECT revoke_reason FROM user_session WHERE id = :i"), {"i": sid}).one()
    assert row.revoke_reason == "signed out"


def test_change_own_password_on_the_account_page(uwb):
    seed_basic(uwb)
    at = go(sign_in("ann1"), "account")
    at.text_input(key="account_current").input(PASSWORD)
    at.text_input(key="account_new").input("short")
    at.text_input(key="account_again").input("short")
    at.button(key="FormSubmitter:account_password-Change password").click().run()
    assert "at least 12" in errors(at)[0]
    at.text_input(key="account_current").input(PASSWORD)
    at.text_input(key="account_new").input("a-much-better-pass")
    at.text_input(key="account_again").input("a-much-better-pass")
    at.button(key="FormSubmitter:account_password-Change password").click().run()
    assert "Password changed" in infos(at)[0]
    assert "ann1 (annotator)" in texts(at)  # still signed in here
    assert sign_in("ann1", "a-much-better-pass").session_state["wb_actor"].name == "ann1"
