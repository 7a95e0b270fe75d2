"""Sign-in that lasts and ends when it should, in Chromium, as a person uses it: sign in, reload,
open a new tab, type a URL, sign out and reload; an admin disables a user and that user's browser
loses access; the cookie is HttpOnly and SameSite=Strict and its token is in no page or URL; each
role lands on its page and only an annotator on Label holds a lease; label keys work right after
signing in and after choosing a project in the sidebar. Screenshots: signin, overview, users."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.conftest import Server, idle as _idle, shot as _shot
from workbench.domain import Actor

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed").expect

PASSWORD = "password-123"
VIEWPORT = {"width": 1280, "height": 760}


def _seed(url: str) -> None:
    from sqlalchemy import insert
    from sqlmodel import Session

    from workbench.db.models import Item
    from workbench.services import Workbench

    wb = Workbench.open(url)
    for name, role in (
        ("admin", "admin"),
        ("rev", "reviewer"),
        ("ann1", "annotator"),
        ("ann2", "annotator"),
        ("ann3", "annotator"),
    ):
        wb.users.add(name, role, PASSWORD, actor=Actor.operator())
    for project in ("alpha", "beta"):
        p = wb.projects.create(
            project,
            "text",
            ["pos", "neg"],
            settings={"eval_fraction": 0.0, "random_share": 0.0},
            actor=Actor.operator(),
        )
        with Session(wb.engine) as s, s.begin():
            s.execute(
                insert(Item),
                [
                    {
                        "project_id": p.id,
                        "external_id": f"{project}-{i}",
                        "split": "pool",
                        "state": "open",
                        "slots_taken": 0,
                        "n_annotations": 0,
                        "random_key": i / 20,
                        "content": {"text": f"{project} item {i}."},
                    }
                    for i in range(12)
                ],
            )
    # some history for the overview: two annotators label four items of alpha and disagree once
    for who in ("ann1", "ann2"):
        person = wb.users.authenticate(who, PASSWORD)
        for n in range(4):
            claim = wb.queue.claim("alpha", actor=person)
            wb.queue.submit(claim.lease_id, "neg" if (who == "ann2" and n == 0) else "pos", actor=person)
    wb.engine.dispose()


@pytest.fixture(scope="module")
def app(server: Server) -> Server:
    _seed(server.url)
    server.start()
    return server


def _db(app: Server, sql: str, **params):
    engine = create_engine(app.url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).all()
    finally:
        engine.dispose()


def _active_leases(app: Server, name: str) -> int:
    return _db(
        app,
        "SELECT count(*) FROM lease l JOIN app_user u ON u.id = l.annotator_id "
        "WHERE u.name = :n AND l.state = 'active'",
        n=name,
    )[0][0]


def _labels(app: Server, name: str) -> int:
    return _db(
        app, "SELECT count(*) FROM annotation a JOIN app_user u ON u.id = a.annotator_id WHERE u.name = :n", n=name
    )[0][0]


def _signed_in_as(page, name: str) -> None:
    page.get_by_test_id("stSidebar").get_by_text(f"{name} (", exact=False).wait_for()


def _sign_in(page, app: Server, name: str, path: str = "", password: str = PASSWORD) -> None:
    page.goto(f"{app.base}/{path}")
    page.get_by_label("User name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    _signed_in_as(page, name)


def _sign_in_form(page) -> None:
    page.get_by_label("User name", exact=True).wait_for()
    expect(page.get_by_test_id("stSidebar")).to_have_count(0)


def _item(page) -> str:
    main = page.get_by_test_id("stMain")
    main.get_by_text("item ", exact=False).first.wait_for()
    _idle(page)
    return main.get_by_test_id("stText").first.inner_text()


def test_sign_in_lasts_through_reload_new_tab_and_typed_url_and_ends_at_sign_out(app, browser):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(app.base)
    _sign_in_form(page)
    _shot(page, "signin")
    _sign_in(page, app, "ann1")
    _item(page)

    # the cookie: HttpOnly, SameSite=Strict, opaque; its token is nowhere in a page or URL
    cookies = {c["name"]: c for c in context.cookies()}
    session = cookies["wb_session"] if "wb_session" in cookies else None
    page.reload()  # the first page load after signing in hands the browser its session cookie
    _signed_in_as(page, "ann1")
    cookies = {c["name"]: c for c in context.cookies()}
    session = cookies["wb_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/"
    assert cookies["wb_bind"]["httpOnly"] and cookies["wb_bind"]["sameSite"] == "Strict"
    assert len(session["value"]) >= 40
    assert "wb_" not in page.evaluate("document.cookie")  # no script can read either cookie
    token = session["value"]
    [(stored,)] = _db(app, "SELECT token_hash FROM user_session WHERE revoked_at IS NULL")
    assert stored != token and token not in stored

    # a new tab and a typed URL keep the user signed in
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    tab.goto(f"{app.base}/account")
    _signed_in_as(tab, "ann1")
    tab.get_by_text("Signed in as ann1 (annotator).").wait_for()
    for p in (page, tab):
        assert token not in p.content() and token not in p.url
    tab.goto(f"{app.base}/review")  # typed, above the role: refused, with the menu and a link back
    tab.get_by_text("This page needs the reviewer role; ann1 is annotator.").wait_for()
    nav = [link.inner_text().split("\n")[-1] for link in tab.get_by_test_id("stSidebarNav").get_by_role("link").all()]
    assert nav == ["Label", "Statistics", "Account"]
    tab.get_by_role("link", name="Back to Label").click()
    tab.get_by_test_id("stMain").get_by_text("Label · ", exact=False).wait_for()
    tab.close()
    log = (app.home.parent / "app.log").read_text(errors="replace")
    assert token not in log

    # sign out, then reload: signed out (the server revoked the session; the dead cookie is dropped)
    page.bring_to_front()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("You are signed out.").wait_for()
    page.reload()
    _sign_in_form(page)
    assert "wb_session" not in {c["name"] for c in context.cookies()}
    assert _db(app, "SELECT revoke_reason FROM user_session") == [("signed out",)]
    assert _active_leases(app, "ann1") == 0  # signing out gave the item back
    context.close()


def test_admin_disables_a_user_and_their_browser_loses_access(app, browser):
    annotator = browser.new_context(viewport=VIEWPORT)
    ann = annotator.new_page()
    ann.set_default_timeout(20_000)
    _sign_in(ann, app, "ann2")
    _item(ann)
    ann.reload()
    _signed_in_as(ann, "ann2")
    assert _active_leases(app, "ann2") == 1

    admin_ctx = browser.new_context(viewport=VIEWPORT)
    admin = admin_ctx.new_page()
    admin.set_default_timeout(20_000)
    _sign_in(admin, app, "admin")
    main = admin.get_by_test_id("stMain")
    main.get_by_role("heading", name="Overview").wait_for()
    main.get_by_text("Latest round").wait_for()
    main.get_by_text("Krippendorff's alpha").wait_for()
    expect(main.get_by_test_id("stMetric").first).to_contain_text("Pool items done")
    admin.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").wait_for()
    assert _active_leases(app, "admin") == 0  # an admin opening the app claims nothing
    admin.wait_for_timeout(800)
    admin.set_viewport_size({"width": 1280, "height": 1500})  # every section, not just the first screen
    _shot(admin, "overview")
    admin.set_viewport_size(VIEWPORT)
    admin.get_by_test_id("stSidebarNav").get_by_role("link", name="Users").click()
    main.get_by_role("button", name="Add user").wait_for()
    main.get_by_test_id("stSelectbox").filter(has_text="Account").click()
    admin.get_by_role("option", name="ann2", exact=True).click()
    _idle(admin)
    main.get_by_text("ann2: annotator, active, 1 live session(s)").wait_for()
    expect(main.get_by_role("combobox", name="New role")).to_have_value("annotator")
    _shot(admin, "users")
    main.get_by_role("button", name="Disable").click()
    main.get_by_text("ann2 is disabled", exact=False).wait_for()
    assert _active_leases(app, "ann2") == 0

    ann.reload()  # the disabled user's browser: signed out, with the reason
    _sign_in_form(ann)
    ann.get_by_text("this account was disabled", exact=False).wait_for()
    ann.get_by_label("User name", exact=True).fill("ann2")
    ann.get_by_label("Password", exact=True).fill(PASSWORD)
    ann.get_by_role("button", name="Sign in").click()
    ann.get_by_text("unknown user or wrong password").wait_for()
    admin_ctx.close()
    annotator.close()


def test_reviewer_lands_on_review_and_holds_no_lease(app, browser):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(20_000)
    _sign_in(page, app, "rev")
    page.get_by_test_id("stMain").get_by_text("Review", exact=False).first.wait_for()
    _idle(page)
    page.reload()
    _signed_in_as(page, "rev")
    _idle(page)
    assert _active_leases(app, "rev") == 0
    context.close()


def test_label_keys_work_right_after_sign_in_and_after_the_sidebar(app, browser):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(app.base)
    page.get_by_label("User name", exact=True).fill("ann3")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password", exact=True).press("Enter")
    page.wait_for_timeout(300)
    # ~0.3 s after signing in, the focus has left the sign-in form: keys reach the page
    focused = page.evaluate(
        "() => { const a = document.activeElement; return a ? a.tagName + ':' + (a.getAttribute('type') || '') : '' }"
    )
    assert not focused.startswith("INPUT"), focused
    _signed_in_as(page, "ann3")
    first = _item(page)
    page.wait_for_timeout(400)
    page.keyboard.press("1")
    deadline = time.monotonic() + 15
    while _labels(app, "ann3") == 0 and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert _labels(app, "ann3") == 1
    assert _item(page) != first

    # choose another project in the sidebar: the select box lets go, and the keys work at once
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stSelectbox").click()
    page.get_by_role("option", name="beta", exact=True).click()
    page.get_by_test_id("stMain").get_by_text("Label · beta").wait_for()
    _idle(page)
    page.wait_for_timeout(400)
    focused = page.evaluate("() => { const a = document.activeElement; return a ? a.getAttribute('role') : '' }")
    assert focused != "combobox"
    page.keyboard.press("2")
    deadline = time.monotonic() + 15
    while _labels(app, "ann3") == 1 and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert _labels(app, "ann3") == 2
    # leaving Label gives the held item back
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Account").click()
    page.get_by_text("Signed in as ann3", exact=False).wait_for()
    _idle(page)
    assert _active_leases(app, "ann3") == 0
    context.close()


def test_a_key_pressed_right_after_signing_in_is_not_dropped(app, browser):
    """Enter in the password box, then a label key 0.3 s later: the key reaches the Label page,
    which either stores it for the item that was on screen or says why not (too soon)."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(app.base)
    page.get_by_label("User name", exact=True).fill("ann1")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    before = _labels(app, "ann1")
    page.get_by_label("Password", exact=True).press("Enter")
    page.wait_for_timeout(300)
    page.keyboard.press("1")
    _signed_in_as(page, "ann1")
    _idle(page)
    page.wait_for_timeout(1500)
    stored = _labels(app, "ann1") - before
    said = page.get_by_test_id("stMain").inner_text()
    print(f"\nkey 0.3 s after sign-in: stored {stored}; page says: {said[:200]!r}")
    # either it labeled the item on screen, or the page says plainly that it stored nothing
    assert stored == 1 or ("Key 1 came before the page was ready" in said or "too soon" in said.lower()), said
    context.close()


def test_admin_resets_a_password_and_the_user_changes_their_own(app, browser):
    person_ctx = browser.new_context(viewport=VIEWPORT)
    person = person_ctx.new_page()
    person.set_default_timeout(20_000)
    _sign_in(person, app, "rev")
    person.reload()
    _signed_in_as(person, "rev")

    admin_ctx = browser.new_context(viewport=VIEWPORT)
    admin = admin_ctx.new_page()
    admin.set_default_timeout(20_000)
    _sign_in(admin, app, "admin", "users")
    main = admin.get_by_test_id("stMain")
    main.get_by_role("button", name="Add user").wait_for()
    main.get_by_test_id("stSelectbox").filter(has_text="Account").click()
    admin.get_by_role("option", name="rev", exact=True).click()
    _idle(admin)
    main.get_by_text(re.compile(r"rev: reviewer, active, [1-9]\d* live session")).wait_for()
    main.get_by_label("New password", exact=True).fill("qwerty123456")
    main.get_by_role("button", name="Reset password").click()
    main.get_by_text("common passwords", exact=False).wait_for()  # refused, with the reason
    main.get_by_label("New password", exact=True).fill("reset-by-the-admin")
    main.get_by_role("button", name="Reset password").click()
    main.get_by_text("Password of rev reset", exact=False).wait_for()
    admin_ctx.close()

    person.reload()  # the reset ended rev's session
    _sign_in_form(person)
    person.get_by_text("the password was changed", exact=False).wait_for()
    _sign_in(person, app, "rev", "account", password="reset-by-the-admin")
    account = person.get_by_test_id("stMain")
    account.get_by_label("Current password", exact=True).fill("reset-by-the-admin")
    account.get_by_label("New password (12 characters or more, not a common one)", exact=True).fill("my-own-secret-42")
    account.get_by_label("New password again", exact=True).fill("my-own-secret-42")
    account.get_by_role("button", name="Change password").click()
    account.get_by_text("Password changed.", exact=False).wait_for()
    person.reload()  # this browser stays signed in after changing its own password
    _signed_in_as(person, "rev")
    person_ctx.close()
    other = browser.new_context(viewport=VIEWPORT)
    page = other.new_page()
    page.set_default_timeout(20_000)
    _sign_in(page, app, "rev", password="my-own-secret-42")
    other.close()
