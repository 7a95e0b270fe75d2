"""The users page (admin): add, set role, reset password, deactivate and reactivate."""

from __future__ import annotations

from tests.test_ui_support import (  # noqa: F401 - fixtures
    PASSWORD,
    errors,
    go,
    infos,
    seed_basic,
    sign_in,
    texts,
    ui_url,
    uwb,
)
from workbench.domain import Actor


def _users(at):
    return at.dataframe[0].value.set_index("name")


def test_admin_adds_a_user_who_can_then_sign_in(uwb):
    seed_basic(uwb)
    at = go(sign_in("admin"), "users")
    assert sorted(_users(at).index) == ["admin", "ann1", "ann2", "rev"]
    at.text_input(key="user_add_name").input("carol")
    at.selectbox(key="user_add_role").select("reviewer")
    at.text_input(key="user_add_password").input("carol-password")
    at.button(key="FormSubmitter:user_add-Add user").click().run()
    assert not errors(at)
    assert "Added carol (reviewer)" in infos(at)[0]
    assert _users(at).loc["carol", "role"] == "reviewer"
    assert sign_in("carol", "carol-password").session_state["wb_actor"].role == "reviewer"


def test_refusals_are_shown(uwb):
    seed_basic(uwb)
    at = go(sign_in("admin"), "users")
    at.text_input(key="user_add_name").input("ann1")
    at.text_input(key="user_add_password").input("long-enough-1")
    at.button(key="FormSubmitter:user_add-Add user").click().run()
    assert "already exists" in errors(at)[0]
    at.text_input(key="user_add_name").input("dave")
    at.text_input(key="user_add_password").input("short")
    at.button(key="FormSubmitter:user_add-Add user").click().run()
    assert "at least 12 characters" in errors(at)[0]


def test_set_role_reset_password_deactivate_reactivate(uwb):
    seed_basic(uwb)
    at = go(sign_in("admin"), "users")
    at.selectbox(key="user_pick").select("ann2").run()
    at.selectbox(key="user_new_role_ann2").select("reviewer")
    at.button(key="FormSubmitter:user_role-Set role").click().run()
    assert "ann2 is now reviewer" in infos(at)[0]
    assert uwb.users.get("ann2", actor=Actor.operator()).role == "reviewer"

    at.text_input(key="user_new_password").input("brand-new-pass")
    at.button(key="FormSubmitter:user_password-Reset password").click().run()
    assert "Password of ann2 reset" in infos(at)[0]
    assert sign_in("ann2", "brand-new-pass").session_state["wb_actor"].name == "ann2"
    assert "wrong password" in errors(sign_in("ann2", PASSWORD))[0]

    other = go(sign_in("ann2", "brand-new-pass"), "label")  # ann2 (now a reviewer) holds an item elsewhere
    assert any(t.startswith("text number") for t in texts(other))
    at.button(key="user_disable").click().run()
    assert "disabled" in infos(at)[0]
    assert not uwb.users.get("ann2", actor=Actor.operator()).active
    other.run()  # the other browser loses access at its next click
    assert [t.value for t in other.title] == ["Workbench"] and "this account was disabled" in infos(other)[0]
    assert "wrong password" in errors(sign_in("ann2", "brand-new-pass"))[0]
    from sqlalchemy import text

    with uwb.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM lease WHERE state = 'active'")).scalar_one() == 0
    at.button(key="user_enable").click().run()
    assert uwb.users.get("ann2", actor=Actor.operator()).active


def test_admin_cannot_deactivate_themselves_here(uwb):
    seed_basic(uwb)
    at = go(sign_in("admin"), "users")
    at.selectbox(key="user_pick").select("admin").run()
    assert "user_disable" not in [b.key for b in at.button]
