"""In Chromium: an annotator served items whose images broke after import (a truncated file, a
decompression bomb swapped in) gets the next item with a one-line notice, never a traceback or a
server path, and can go on labeling; an admin sees the quarantined items with the reason."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.e2e.conftest import SCREENSHOTS, Server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")

PASSWORD = "password-123456"
VIEWPORT = {"width": 1200, "height": 780}


def _png(color: int, side: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (color, 90, 200 - color // 2)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def app(tmp_path_factory, browser):
    from sqlalchemy import insert, select
    from sqlmodel import Session

    from workbench.db.models import Item, RankEntry
    from workbench.domain import Actor
    from workbench.services import Workbench

    tmp = tmp_path_factory.mktemp("broken-images")
    server = Server(tmp)
    root = tmp / "images"
    root.mkdir()
    names = ["broken.png", "bomb.png", "good.png"]
    for i, name in enumerate(names):
        (root / name).write_bytes(_png(60 * i))
    operator = Actor.operator()
    wb = Workbench.open(server.url)
    for name, role in (("admin", "admin"), ("ann1", "annotator")):
        wb.users.add(name, role, PASSWORD, actor=operator)
    project = wb.projects.create(
        "photos", "image", ["cat", "dog"], actor=operator, settings={"eval_fraction": 0.0, "random_share": 0.0}
    )
    report = wb.imports.run_folder("photos", root, actor=operator, eval_fraction=0.0)
    assert report.ok, report.lines()
    with Session(wb.engine) as s, s.begin():  # the ranking serves the two that break first
        ids = dict(s.execute(select(Item.external_id, Item.id)).all())
        s.execute(
            insert(RankEntry),
            [
                {
                    "project_id": project.id,
                    "position": i,
                    "item_id": ids[name],
                    "score": 1.0 - i / 10,
                    "strategy": "margin",
                }
                for i, name in enumerate(names)
            ],
        )
    wb.engine.dispose()
    # After import, on disk: one file is cut short, another replaced by a 30000x30000 bomb.
    data = (root / "broken.png").read_bytes()
    (root / "broken.png").write_bytes(data[: len(data) // 2])
    Image.new("1", (30000, 30000)).save(root / "bomb.png")
    server.start()
    server.root = root
    yield server
    server.stop()


def _sign_in(page, app: Server, name: str) -> None:
    page.goto(app.base)
    page.get_by_label("User name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_test_id("stSidebar").get_by_text(f"{name} (", exact=False).wait_for()


def _idle(page) -> None:
    page.wait_for_timeout(150)
    page.wait_for_function(
        "() => { const app = document.querySelector('[data-testid=\"stApp\"]');"
        " const state = app && app.getAttribute('data-test-script-state');"
        " return state && state !== 'running' && state !== 'rerunRequested'"
        " && !document.querySelector('[data-stale=\"true\"]'); }"
    )


def _shot(page, name: str) -> None:
    _idle(page)
    page.wait_for_timeout(400)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=96, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def _no_leaks(page, app: Server) -> str:
    body = page.get_by_test_id("stApp").inner_text()
    assert "Traceback" not in body and "Error:" not in body.replace("error:", "")
    assert str(app.root) not in body and "/tmp/" not in body and "site-packages" not in body
    return body


def test_annotator_gets_the_next_item_when_images_break(app, browser):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    _sign_in(page, app, "ann1")
    main = page.get_by_test_id("stMain")
    main.get_by_text("good.png", exact=True).wait_for()
    _idle(page)
    body = _no_leaks(page, app)
    assert "was set aside for an admin: the image cannot be shown" in body
    assert main.get_by_role("img").count() >= 1
    assert main.get_by_role("button", name="cat").count() == 1  # labeling goes on
    _shot(page, "label_broken_image")
    page.wait_for_timeout(400)  # a person looks before answering
    main.get_by_role("button", name="cat").click()
    main.get_by_text("Nothing left for you", exact=False).wait_for()
    assert "My skips\n\n0" in page.get_by_test_id("stMain").inner_text()  # set aside is not a skip
    context.close()
    # Signed in again later, in a new browser: never stuck on the broken items.
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    _sign_in(page, app, "ann1")
    page.get_by_test_id("stMain").get_by_text("Nothing left for you", exact=False).wait_for()
    _no_leaks(page, app)
    context.close()


def test_admin_sees_the_quarantined_items(app, browser):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    _sign_in(page, app, "admin")
    page.get_by_test_id("stSidebarNav").get_by_text("Data", exact=True).click()
    main = page.get_by_test_id("stMain")
    main.get_by_role("tab", name="Import and export").click()
    main.get_by_text("Quarantined items (2)").wait_for()
    main.get_by_text("Quarantined items (2)").scroll_into_view_if_needed()
    _idle(page)
    table = main.get_by_test_id("stDataFrame").last.inner_text()
    _no_leaks(page, app)
    _shot(page, "quarantine")
    assert table is not None
    context.close()
