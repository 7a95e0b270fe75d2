"""The annotator's and reviewer's day in Chromium, as a person uses it: keys that mean what they
say (the digits demo), keys bound to the item on screen (the burst test), a phone-sized window,
changing one's own recent labels, and review by keyboard at 1280x720."""

from __future__ import annotations

import re
import time

import pytest

from tests.e2e.conftest import SCREENSHOTS, Server, choose as _choose, idle as _idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed").expect

PASSWORD = "password-123"
DWELL_MS = 250  # the default minimum dwell time
LOOK_MS = 600  # how long a person looks before answering, in these tests
DIGITS = [str(d) for d in range(10)]

# Records, in the page, every change of the item on screen and every key press (the browser's clock).
RECORDER = """
(() => {
  window.__shown = []; window.__presses = [];
  const now = () => performance.timeOrigin + performance.now();
  const read = () => {
    const el = document.querySelector('[data-testid="stMain"] [data-testid="stText"]');
    return el ? el.innerText : null;
  };
  const check = () => {
    const text = read();
    const last = window.__shown.length ? window.__shown[window.__shown.length - 1].text : undefined;
    if (text !== last) window.__shown.push({ t: now(), text });
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, characterData: true });
  document.addEventListener("keydown", (e) => window.__presses.push({ t: now(), key: e.key }), true);
})();
"""


def _seed(url: str) -> None:
    from sqlalchemy import insert
    from sqlmodel import Session

    from workbench.db.models import Item
    from workbench.domain import Actor
    from workbench.services import Workbench

    wb = Workbench.open(url)
    for name, role in (
        ("admin", "admin"),
        ("rev", "reviewer"),
        ("ann1", "annotator"),
        ("ann2", "annotator"),
        ("burst", "annotator"),
        ("phone", "annotator"),
    ):
        wb.users.add(name, role, PASSWORD, actor=Actor.operator())
    plain = {"eval_fraction": 0.0, "random_share": 0.0}

    def items(project_id: int, prefix: str, n: int) -> None:
        with Session(wb.engine) as s, s.begin():
            s.execute(
                insert(Item),
                [
                    {
                        "project_id": project_id,
                        "external_id": f"{prefix}-{i}",
                        "split": "pool",
                        "state": "open",
                        "slots_taken": 0,
                        "n_annotations": 0,
                        "random_key": i / (n + 1),
                        "content": {"text": f"{prefix} item {i}"},
                    }
                    for i in range(n)
                ],
            )

    # "aa-digits" sorts first, so it is the project a fresh sign-in lands on
    items(wb.projects.create("aa-digits", "text", DIGITS, settings=plain, actor=Actor.operator()).id, "digit", 12)
    items(
        wb.projects.create("burst", "text", ["yes", "no"], overlap=1, settings=plain, actor=Actor.operator()).id,
        "burst",
        40,
    )
    review = wb.projects.create("review", "text", ["cat", "dog", "bird"], settings=plain, actor=Actor.operator())
    items(review.id, "rv", 3)
    wb.guidelines.update(
        "review",
        "# Animals\n\nLabel the animal **named first**.",
        actor=Actor.operator(),
        label_notes={"cat": "any cat, big or small"},
    )
    for who, answer in (("ann1", "cat"), ("ann2", "dog")):
        person = wb.users.authenticate(who, PASSWORD)
        while (claim := wb.queue.claim("review", actor=person)) is not None:
            wb.queue.submit(claim.lease_id, answer, actor=person)
    wb.engine.dispose()


@pytest.fixture(scope="module")
def app(server: Server) -> Server:
    _seed(server.url)
    server.start()
    return server


def _page(browser, width: int = 1200, height: int = 780):
    context = browser.new_context(viewport={"width": width, "height": height})
    context.add_init_script(RECORDER)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.on("dialog", lambda dialog: (_ for _ in ()).throw(AssertionError(f"dialog: {dialog.message}")))
    return context, page


def _sign_in(page, app: Server, name: str, path: str = "") -> None:
    page.goto(f"{app.base}/{path}")
    page.get_by_label("User name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_test_id("stSidebar").get_by_text(f"{name} (", exact=False).wait_for()
    _idle(page)


def _pick_project(page, name: str) -> None:
    _choose(page, page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox"), name)


def _item(page) -> str:
    _idle(page)
    return page.get_by_test_id("stMain").get_by_test_id("stText").first.inner_text()


def _wait_change(page, before: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = _item(page)
        if now != before:
            return now
        page.wait_for_timeout(50)
    raise AssertionError(f"the item did not change: {before!r}")


def _shot(page, name: str) -> None:
    from PIL import Image

    _idle(page)
    page.wait_for_timeout(400)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=96, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def _rows(app: Server, sql: str, **params):
    from sqlalchemy import create_engine, text

    engine = create_engine(app.url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).all()
    finally:
        engine.dispose()


def _labels_of(app: Server, who: str, project: str = "aa-digits"):
    return _rows(
        app,
        "SELECT i.external_id, a.label FROM annotation a JOIN item i ON i.id = a.item_id "
        "JOIN app_user u ON u.id = a.annotator_id JOIN project p ON p.id = a.project_id "
        "WHERE u.name = :who AND p.name = :project ORDER BY a.id",
        who=who,
        project=project,
    )


def test_digit_keys_store_the_digit_pressed_and_a_reload_keeps_keys_working(app, browser):
    context, page = _page(browser)
    _sign_in(page, app, "ann1")
    main = page.get_by_test_id("stMain")
    buttons = main.get_by_role("button").filter(has_text="⟨")  # no "0 ⟨1⟩" style labels any more
    assert buttons.filter(has_text="⟨1⟩").count() == 0
    expect(main.get_by_role("button", name="4", exact=True)).to_be_visible()
    first = _item(page)
    page.wait_for_timeout(LOOK_MS)
    page.keyboard.press("4")
    second = _wait_change(page, first)
    page.wait_for_timeout(LOOK_MS)
    page.keyboard.press("9")  # label 9 has its key too
    third = _wait_change(page, second)
    expect(page.get_by_text("Key ignored")).to_have_count(0)
    page.reload()
    signed_in = page.get_by_test_id("stSidebar").get_by_text("ann1 (", exact=False)
    signed_in.or_(page.get_by_label("User name", exact=True)).first.wait_for()
    if not signed_in.count():
        _sign_in(page, app, "ann1")
    _idle(page)
    assert _item(page) == third  # the held item is still this annotator's
    page.wait_for_timeout(LOOK_MS)
    page.keyboard.press("0")
    _wait_change(page, third)
    assert [label for _, label in _labels_of(app, "ann1")] == ["4", "9", "0"]
    assert [ext for ext, _ in _labels_of(app, "ann1")] == [
        f"digit-{int(t.split()[-1])}" for t in (first, second, third)
    ]
    context.close()


def test_a_key_pressed_too_soon_stores_nothing_and_says_so(app, browser):
    context, page = _page(browser)
    _sign_in(page, app, "ann2")
    first = _item(page)
    page.wait_for_timeout(LOOK_MS)
    page.keyboard.press("1")
    page.wait_for_timeout(30)
    page.keyboard.press("2")  # 30 ms later: for an item no longer shown, or shown for less than the dwell
    page.get_by_text("Key ignored", exact=False).first.wait_for()
    _idle(page)
    stored = _labels_of(app, "ann2")
    # one press at most reached the first item; the other stored nothing (the dwell time counts
    # from when the page had drawn the item, so under load the first press may be the refused one)
    assert len(stored) <= 1 and all(ext == f"digit-{int(first.split()[-1])}" for ext, _ in stored)
    context.close()


def test_burst_of_twenty_presses_labels_only_items_shown_for_the_dwell_time(app, browser):
    """20 key presses 30 ms apart: every stored label is on an item that was on screen for at least
    the dwell time when its key was pressed, and no item got a label it was not shown for."""
    context, page = _page(browser)
    _sign_in(page, app, "burst")
    _pick_project(page, "burst")
    _item(page)
    page.wait_for_timeout(LOOK_MS)
    for i in range(20):
        page.keyboard.press("1" if i % 2 == 0 else "2")
        page.wait_for_timeout(30)
    page.wait_for_timeout(1500)
    _idle(page)
    shown = page.evaluate("window.__shown")
    presses = [p for p in page.evaluate("window.__presses") if p["key"] in ("1", "2")]
    assert len(presses) == 20
    stored = _labels_of(app, "burst", "burst")
    assert stored, "the first press, after the item had been looked at, must store a label"
    assert len(stored) < 20

    def on_screen_at(t: float) -> tuple[str | None, float]:
        """The item text on screen at browser time t, and since when."""
        current, since = None, 0.0
        for change in shown:
            if change["t"] > t:
                break
            current, since = change["text"], change["t"]
        return current, since

    for external_id, label in stored:
        text = f"burst item {external_id.split('-')[1]}"
        key = "1" if label == "yes" else "2"
        fits = [
            p
            for p in presses
            if p["key"] == key and on_screen_at(p["t"])[0] == text and p["t"] - on_screen_at(p["t"])[1] >= DWELL_MS
        ]
        assert fits, (
            f"{external_id} got {label!r} without a {key!r} press while it was shown for {DWELL_MS} ms: "
            f"shown {shown[-25:]}, presses {presses}"
        )
    # the labels went to distinct items, in the order they were shown
    order = [c["text"] for c in shown if c["text"] and c["text"].startswith("burst item")]
    ids = [f"burst item {e.split('-')[1]}" for e, _ in stored]
    assert len(set(ids)) == len(ids) and ids == [t for t in order if t in ids][: len(ids)]
    context.close()


@pytest.mark.parametrize("width", [360, 420])
def test_label_buttons_keep_their_order_on_a_phone(app, browser, width):
    context, page = _page(browser, width=width, height=760)
    _sign_in(page, app, "phone")
    main = page.get_by_test_id("stMain")
    _item(page)
    buttons = [main.get_by_role("button", name=d, exact=True) for d in DIGITS]
    boxes = [b.bounding_box() for b in buttons]
    assert all(box is not None for box in boxes)
    assert all(box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5 for box in boxes), boxes
    reading_order = sorted(range(10), key=lambda i: (round(boxes[i]["y"] / 10), boxes[i]["x"]))
    assert [DIGITS[i] for i in reading_order] == DIGITS
    if width == 360:
        _shot(page, "label-phone")
    first = _item(page)
    main.get_by_role("button", name="7", exact=True).click()  # a tap
    _wait_change(page, first)
    assert _labels_of(app, "phone")[-1][1] == "7"  # (the 420 px run labels after the 360 px one)
    context.close()


def test_change_a_recent_label(app, browser):
    context, page = _page(browser)
    _sign_in(page, app, "ann2")
    main = page.get_by_test_id("stMain")
    main.get_by_text("My recent labels").click()
    _idle(page)
    table = main.get_by_test_id("stDataFrame").last
    table.wait_for()
    before = _labels_of(app, "ann2")
    assert before, "ann2 labeled in the test before"
    new = "5" if before[-1][1] != "5" else "6"
    _choose(page, main.get_by_test_id("stSelectbox").filter(has=page.get_by_text("to", exact=True)), new)
    _idle(page)
    main.get_by_role("button", name="Change", exact=True).click()
    main.get_by_text(f"is now {new}", exact=False).wait_for()
    assert _labels_of(app, "ann2")[-1] == (before[-1][0], new)
    context.close()


def test_review_by_keyboard_at_1280x720(app, browser):
    context, page = _page(browser, width=1280, height=720)
    _sign_in(page, app, "rev")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Review").click()
    _idle(page)
    _pick_project(page, "review")
    main = page.get_by_test_id("stMain")
    expect(main.get_by_text("Guidelines (version 1)")).to_be_visible()
    # Enter before any decision is refused, visibly
    main.get_by_test_id("stSelectbox").filter(has_text="Case").wait_for()
    page.wait_for_timeout(LOOK_MS)
    page.keyboard.press("Enter")
    main.get_by_text("Choose a decision first", exact=False).wait_for()
    for step, key in enumerate(["x", "a", "2"]):
        box = main.get_by_test_id("stSelectbox").filter(has_text="Case")
        picked = box.inner_text() + " " + " ".join(i.input_value() for i in box.locator("input").all())
        caption = main.get_by_text(re.compile(r"^Item rv-\d+ · ")).first.inner_text()
        shown_id = caption.split()[1]
        assert shown_id in picked  # the selector names the case shown
        for name in ("Choose a label", "Ambiguous", "Exclude"):
            expect(main.get_by_role("radio", name=name, exact=False)).not_to_be_checked()
        page.wait_for_timeout(LOOK_MS)
        # as a person types: the decision key, then the reason at once (no wait for the rerun),
        # then Enter; every letter lands in the reason box and nothing is a key for the case
        page.keyboard.press(key)
        page.keyboard.type(f"decided by key {key}", delay=20)
        expect(main.get_by_role("button", name="Adjudicate")).to_be_in_viewport(ratio=1)
        expect(main.get_by_test_id("stRadio")).to_be_in_viewport(ratio=1)
        checked = {"x": "Exclude", "a": "Ambiguous", "2": "Choose a label"}[key]
        expect(main.get_by_role("radio", name=checked, exact=False)).to_be_checked()
        if step == 2:
            _shot(page, "review")
        page.keyboard.press("Enter")  # confirms from the reason box
        deadline = time.monotonic() + 20
        while not _rows(
            app, "SELECT 1 FROM adjudication a JOIN item i ON i.id = a.item_id WHERE i.external_id = :e", e=shown_id
        ):
            assert time.monotonic() < deadline, f"{shown_id} was not settled by Enter"
            page.wait_for_timeout(200)
        _idle(page)
    main.get_by_text("No disagreements waiting").wait_for()
    decided = _rows(
        app,
        "SELECT i.external_id, a.decision, a.label, a.reason FROM adjudication a "
        "JOIN item i ON i.id = a.item_id ORDER BY a.id",
    )
    assert [(d, lab) for _, d, lab, _ in decided] == [("excluded", None), ("ambiguous", None), ("label", "dog")]
    assert [r for *_, r in decided] == [f"decided by key {k}" for k in "xa2"]
    main.get_by_role("tab", name="Adjudication history").click()
    history = main.get_by_test_id("stDataFrame").last
    history.wait_for()
    context.close()
