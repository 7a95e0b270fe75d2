"""End to end in Chromium: two annotators label by keyboard in two browser contexts and disagree
once, a reviewer adjudicates, an admin runs a retrain round and sees its metrics, hostile text is
shown literally without any dialog, and an annotator typing the URL of a page above their role is
refused. Saves a screenshot of each page to docs/screenshots/."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import Server, idle as _idle, shot as _shot
from workbench.domain import Actor

if TYPE_CHECKING:
    from playwright.sync_api import Dialog

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed").expect

PASSWORD = "password-123"
HOSTILE_TEXT = "<script>alert('xss')</script> **not bold** [link](javascript:alert(1))"
HOSTILE_CONTEXT = "<img src=x onerror=alert('ctx')>"
HOSTILE_ID = "<b>id</b>"
DISAGREE = "The service was slow but friendly."
WORDS = {"pos": ["great", "lovely", "superb", "fine"], "neg": ["awful", "bad", "poor", "broken"]}
VIEWPORT = {"width": 1200, "height": 780}
DWELL_MS = 400  # above the default minimum dwell time (250 ms), as a person would be


def _seed(url: str) -> None:
    from sqlalchemy import insert, update
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
    demo = wb.projects.create(
        "demo", "text", ["pos", "neg"], settings={"eval_fraction": 0.0, "random_share": 0.0}, actor=Actor.operator()
    )
    rows = [
        ("d-0", DISAGREE, {}),
        ("d-1", "A lovely afternoon.", {}),
        (HOSTILE_ID, HOSTILE_TEXT, {"note": HOSTILE_CONTEXT}),
    ]
    with Session(wb.engine) as s, s.begin():
        s.execute(
            insert(Item),
            [
                {
                    "project_id": demo.id,
                    "external_id": ext,
                    "split": "pool",
                    "state": "open",
                    "slots_taken": 0,
                    "n_annotations": 0,
                    "random_key": i / 10,
                    "content": {"text": text, **({"context": ctx} if ctx else {})},
                }
                for i, (ext, text, ctx) in enumerate(rows)
            ],
        )
    # a second project, already double-labeled through the services, for the admin's round
    sent = wb.projects.create(
        "sentiment", "text", ["pos", "neg"], settings={"random_share": 0.0}, actor=Actor.operator()
    )
    rng = random.Random(0)
    gold = {f"s-{i}": "pos" if i % 2 else "neg" for i in range(48)}
    with Session(wb.engine) as s, s.begin():
        s.execute(
            insert(Item),
            [
                {
                    "project_id": sent.id,
                    "external_id": ext,
                    "split": "pool",
                    "state": "open",
                    "slots_taken": 0,
                    "n_annotations": 0,
                    "random_key": rng.random(),
                    "content": {"text": " ".join(rng.choice(WORDS[label]) for _ in range(6))},
                }
                for ext, label in gold.items()
            ],
        )
        s.execute(
            update(Item)
            .where(Item.project_id == sent.id, Item.external_id.in_([f"s-{i}" for i in range(0, 48, 4)]))
            .values(split="eval")
        )
    typing = wb.projects.create(
        "typing", "text", ["yes", "no"], settings={"eval_fraction": 0.0, "random_share": 0.0}, actor=Actor.operator()
    )
    with Session(wb.engine) as s, s.begin():
        s.execute(
            insert(Item),
            [
                {
                    "project_id": typing.id,
                    "external_id": f"t-{i}",
                    "split": "pool",
                    "state": "open",
                    "slots_taken": 0,
                    "n_annotations": 0,
                    "random_key": i / 10,
                    "content": {"text": f"Typing item {i}."},
                }
                for i in range(3)
            ],
        )
    for who in ("ann1", "ann2"):
        person = wb.users.authenticate(who, PASSWORD)
        while (claim := wb.queue.claim("sentiment", actor=person)) is not None:
            wb.queue.submit(claim.lease_id, gold[claim.external_id], actor=person)
    wb.engine.dispose()


@pytest.fixture(scope="module")
def app(server: Server) -> Server:
    _seed(server.url)
    server.start()
    return server


@pytest.fixture(scope="module")
def dialogs() -> list[str]:
    return []


def _page(browser, dialogs):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(20_000)

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return context, page


def _sign_in(page, app: Server, name: str, path: str = "") -> None:
    page.goto(f"{app.base}/{path}")
    page.get_by_label("User name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_test_id("stSidebar").get_by_text(f"{name} (", exact=False).wait_for()


def _item_text(page) -> str | None:
    """The item on screen (the first plain-text element of the main area), or None when done."""
    main = page.get_by_test_id("stMain")
    for _ in range(50):
        _idle(page)
        if main.get_by_text("Nothing left for you").count():
            return None
        text = main.get_by_test_id("stText").first.inner_text()
        if text:
            return text
    raise AssertionError("no item text on the label page")


def _label_by_keyboard(page, choose) -> list[str]:
    """Answer items by pressing the key `choose(text)` returns until nothing is left."""
    seen = []
    main = page.get_by_test_id("stMain")
    main.get_by_test_id("stText").first.wait_for()
    current = _item_text(page)
    while current is not None:
        seen.append(current)
        page.wait_for_timeout(DWELL_MS)  # a person looks at the item before answering
        page.keyboard.press(choose(current))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            _idle(page)
            now = _item_text(page)
            if now != current:
                break
        else:
            raise AssertionError(f"the item did not change after a key press: {current!r}")
        current = now
        assert len(seen) <= 10
    return seen


def test_sign_in_page(app, browser, dialogs):
    context, page = _page(browser, dialogs)
    page.goto(app.base)
    page.get_by_label("User name", exact=True).wait_for()
    _shot(page, "signin")
    page.get_by_label("User name", exact=True).fill("ann1")
    page.get_by_label("Password", exact=True).fill("wrong-password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("unknown user or wrong password").wait_for()
    context.close()


def test_two_annotators_label_by_keyboard_and_disagree_once(app, browser, dialogs):
    first_ctx, first = _page(browser, dialogs)
    second_ctx, second = _page(browser, dialogs)
    _sign_in(first, app, "ann1")
    _sign_in(second, app, "ann2")  # both signed in at once, in separate browser contexts

    # ann1 says pos (key 1) to everything; the hostile item shows literally on the way
    hostile = first.get_by_test_id("stMain").get_by_text(HOSTILE_TEXT, exact=True)
    seen_first = []
    main = first.get_by_test_id("stMain")
    main.get_by_test_id("stText").first.wait_for()
    while (current := _item_text(first)) is not None:
        if current == HOSTILE_TEXT:
            expect(hostile).to_be_visible()
            expect(first.get_by_text(f"note: {HOSTILE_CONTEXT}", exact=True)).to_be_visible()
            expect(first.get_by_text(f"Item {HOSTILE_ID}", exact=False)).to_be_visible()
            _shot(first, "label")
        seen_first += _label_by_keyboard_once(first, current, "1")
    assert sorted(seen_first) == sorted([DISAGREE, "A lovely afternoon.", HOSTILE_TEXT])

    # ann2 says neg (key 2) to the one item, pos to the others
    seen_second = _label_by_keyboard(second, lambda text: "2" if text == DISAGREE else "1")
    assert sorted(seen_second) == sorted(seen_first)
    expect(second.get_by_text("Nothing left for you")).to_be_visible()
    # the progress counts moved: 3 labels each
    expect(second.get_by_test_id("stMetric").filter(has_text="My labels in total")).to_contain_text("3")
    # nothing executed: no dialog, no injected element
    for page in (first, second):
        assert page.locator("img[src='x']").count() == 0
        assert page.locator("b", has_text="id").count() == 0
    assert dialogs == []
    first_ctx.close()
    second_ctx.close()


def _label_by_keyboard_once(page, current: str, key: str) -> list[str]:
    page.wait_for_timeout(DWELL_MS)  # a person looks at the item before answering
    page.keyboard.press(key)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        _idle(page)
        if _item_text(page) != current:
            return [current]
    raise AssertionError(f"the item did not change after pressing {key}: {current!r}")


def test_reviewer_adjudicates_the_disagreement(app, browser, dialogs):
    context, page = _page(browser, dialogs)
    _sign_in(page, app, "rev")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Review").click()
    main = page.get_by_test_id("stMain")
    main.get_by_text(DISAGREE, exact=True).wait_for()
    expect(main.get_by_text("Annotator: ann1", exact=True)).to_be_visible()
    expect(main.get_by_text("Label: neg", exact=True)).to_be_visible()
    expect(main.get_by_role("radio", name="Choose a label")).not_to_be_checked()  # no default decision
    page.wait_for_timeout(DWELL_MS)
    page.keyboard.press("1")  # the key of pos: decision "choose a label", label pos, focus on the reason
    expect(main.get_by_role("radio", name="Choose a label")).to_be_checked()
    page.wait_for_function(
        "() => (document.activeElement.getAttribute('aria-label') || '').startsWith('Reason (required')"
    )  # the reason box has the focus
    page.keyboard.type("Slow but friendly reads as positive. <img src=x onerror=alert('reason')>")
    _shot(page, "review")
    expect(main.get_by_role("button", name="Adjudicate")).to_be_in_viewport()
    page.keyboard.press("Enter")  # confirms from the reason box
    main.get_by_text("settled: pos", exact=False).wait_for()
    main.get_by_text("No disagreements waiting").wait_for()
    main.get_by_role("tab", name="Agreement", exact=True).click()
    main.get_by_text("Krippendorff's alpha").wait_for()
    _shot(page, "agreement")
    assert page.locator("img[src='x']").count() == 0
    assert dialogs == []
    context.close()


def _pick_project(page, name: str) -> None:
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stSelectbox").click()
    page.get_by_role("option", name=name, exact=True).click()
    _idle(page)


def test_admin_runs_a_round_and_sees_the_new_versions_metrics(app, browser, dialogs):
    context, page = _page(browser, dialogs)
    _sign_in(page, app, "admin")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Rounds").click()
    main = page.get_by_test_id("stMain")
    main.get_by_role("button", name="Start a retrain round").wait_for()
    _pick_project(page, "sentiment")
    main.get_by_text("No model run yet.").wait_for()
    main.get_by_role("button", name="Start a retrain round").click()
    main.get_by_test_id("stProgress").wait_for()
    main.get_by_text("Round done: version 1", exact=False).wait_for(timeout=90_000)
    accuracy = main.get_by_test_id("stMetric").filter(has_text="Eval accuracy")
    accuracy.wait_for()
    assert accuracy.inner_text().strip().endswith("%")
    _shot(page, "rounds")
    assert dialogs == []
    context.close()


def test_admin_data_and_users_pages(app, browser, dialogs):
    context, page = _page(browser, dialogs)
    _sign_in(page, app, "admin")
    nav = page.get_by_test_id("stSidebarNav")
    nav.get_by_role("link", name="Data").click()
    main = page.get_by_test_id("stMain")
    main.get_by_role("button", name="Create project").wait_for()
    _shot(page, "data")
    # an import is checked row by row in the browser before anything is written
    main.get_by_role("tab", name="Import and export", exact=True).click()
    main.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        files=[
            {
                "name": "news.csv",
                "mimeType": "text/csv",
                "buffer": b"id,text\nn1,fine text\nn2,\nn1,<script>alert('dup')</script>\n",
            }
        ]
    )
    main.get_by_role("button", name="Check the file").click()
    main.get_by_text("2 of 3 rows refused", exact=False).wait_for()
    expect(main.get_by_role("button", name="Import 1 item")).to_be_disabled()
    _shot(page, "import")
    nav.get_by_role("link", name="Users").click()
    page.get_by_test_id("stMain").get_by_role("button", name="Add user").wait_for()
    _shot(page, "users")
    context.close()


def test_s_asks_for_a_reason_typed_without_firing_keys_then_u_undoes(app, browser, dialogs):
    from sqlalchemy import create_engine, text

    context, page = _page(browser, dialogs)
    _sign_in(page, app, "ann3")
    _pick_project(page, "typing")
    first = _item_text(page)
    page.wait_for_timeout(DWELL_MS)
    page.keyboard.press("s")  # asks for a reason, with the box focused
    reason = page.get_by_test_id("stMain").get_by_placeholder("skipped")
    reason.wait_for()
    expect(reason).to_be_focused()
    page.keyboard.type("1 unsure scan 2")  # digits, s and u typed into the box are text, not keys
    _idle(page)
    assert _item_text(page) == first
    expect(reason).to_have_value("1 unsure scan 2")
    page.keyboard.press("Enter")  # skips with the typed reason
    deadline = time.monotonic() + 15
    while _item_text(page) == first and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    second = _item_text(page)
    assert second != first
    _label_by_keyboard_once(page, second, "1")
    assert _item_text(page) not in (first, second)
    page.keyboard.press("u")  # the last label (on `second`) is taken back: `second` is shown again
    page.get_by_text("Took back your last label").wait_for()
    assert _item_text(page) == second
    engine = create_engine(app.url)
    with engine.connect() as conn:
        reasons = conn.execute(text("SELECT skip_reason FROM lease WHERE skip_reason IS NOT NULL")).scalars().all()
        labels = conn.execute(
            text("SELECT count(*) FROM annotation a JOIN app_user u ON u.id = a.annotator_id WHERE u.name = 'ann3'")
        ).scalar_one()
    engine.dispose()
    assert reasons == ["1 unsure scan 2"] and labels == 0
    context.close()


@pytest.mark.parametrize(
    "path, role", [("review", "reviewer"), ("users", "admin"), ("rounds", "reviewer"), ("data", "admin")]
)
def test_annotator_typing_a_page_url_is_refused(app, browser, dialogs, path, role):
    context, page = _page(browser, dialogs)
    _sign_in(page, app, "ann3", path)  # a typed URL leads through sign-in to that page
    main = page.get_by_test_id("stMain")
    main.get_by_text(f"This page needs the {role} role; ann3 is annotator.").wait_for()
    _idle(page)
    assert main.get_by_test_id("stDataFrame").count() == 0
    assert main.get_by_role("button").count() == 0
    # the menu stays, offering an annotator nothing above their role, and a link leads back to Label
    nav_links = [
        link.inner_text().split("\n")[-1] for link in page.get_by_test_id("stSidebarNav").get_by_role("link").all()
    ]
    assert nav_links == ["Label", "Statistics", "Account"]
    expect(main.get_by_role("link", name="Back to Label")).to_be_visible()
    if path == "review":
        _shot(page, "refused")
    context.close()


def test_no_dialog_was_ever_opened(dialogs):
    assert dialogs == []
