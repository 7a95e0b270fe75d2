"""The Settings page in Chromium, as an admin uses it: add, retire and rename labels, change the
queue settings, archive (the annotator's project list empties) and unarchive, then delete by
typing the name. Each change is read back after a reload of the page, and from the database.
Saves docs/screenshots/settings.png."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import Server, choose, idle, shot, sign_in
from workbench.domain import Actor

pytestmark = [pytest.mark.browser, pytest.mark.slow]
pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")

PASSWORD = "password-123"
OP = Actor.operator()


def _seed(url: str) -> None:
    from tests.helpers import add_items
    from workbench.services import Workbench

    wb = Workbench.open(url)
    wb.users.add("admin", "admin", PASSWORD, actor=OP)
    wb.users.add("ann1", "annotator", PASSWORD, actor=OP)
    project = wb.projects.create("news", "text", ["sports", "politics", "weather"], actor=OP)
    add_items(wb.engine, project.id, 5)
    wb.engine.dispose()


@pytest.fixture(scope="module")
def app(server: Server) -> Server:
    _seed(server.url)
    server.start()
    return server


def _wb(app: Server):
    from workbench.services import Workbench

    return Workbench.open(app.url)


def _submit(page, form_button: str) -> None:
    page.get_by_test_id("stMain").get_by_role("button", name=form_button, exact=True).click()
    idle(page)


def _main(page):
    return page.get_by_test_id("stMain")


def test_admin_changes_a_project_on_the_settings_page(app, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    sign_in(page, app.base, "admin", PASSWORD, path="settings")
    main = _main(page)
    main.get_by_text("Settings", exact=True).first.wait_for()

    main.get_by_label("New label (or a retired one, to offer it again)").fill("culture")
    _submit(page, "Add label")
    main.get_by_text("label culture added", exact=False).wait_for()

    choose(page, main.get_by_test_id("stSelectbox").filter(has_text="Label to retire"), "weather")
    _submit(page, "Retire label")
    main.get_by_text("label weather retired", exact=False).wait_for()

    choose(page, main.get_by_test_id("stSelectbox").filter(has_text="Label to rename"), "sports")
    main.get_by_label("New name").fill("sport")
    _submit(page, "Rename label")
    main.get_by_text("label sports renamed to sport", exact=False).wait_for()

    ttl = main.get_by_label("Lease time (seconds)")
    ttl.fill("900")
    ttl.press("Tab")
    choose(page, main.get_by_test_id("stSelectbox").filter(has_text="Strategy").get_by_role("combobox"), "entropy")
    _submit(page, "Save queue settings")
    main.get_by_text("lease_ttl_s: 600 → 900", exact=False).wait_for()  # markdown shows -> as an arrow

    page.reload()  # what was saved is what the page shows after a reload
    idle(page)
    main = _main(page)
    main.get_by_test_id("stDataFrame").first.wait_for()
    assert main.get_by_label("Lease time (seconds)").input_value() == "900"
    main.get_by_text("news: text, active; 2 annotators per item, strategy entropy").wait_for()
    shot(page, "settings")

    wb = _wb(app)
    info = wb.projects.get("news", actor=OP)
    assert info.offered == ("sport", "politics", "culture") and info.retired == ("weather",)
    assert info.strategy == "entropy" and info.settings["lease_ttl_s"] == 900

    main.get_by_text("Archive or delete", exact=True).scroll_into_view_if_needed()
    shot(page, "settings-archive-delete")
    main.get_by_role("button", name="Archive project").click()
    idle(page)
    main.get_by_text("Archived news", exact=False).wait_for()
    annotator = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(annotator, app.base, "ann1", PASSWORD, path="label")
    _main(annotator).get_by_text("No projects yet", exact=False).wait_for()  # hidden from annotators
    main.get_by_role("button", name="Unarchive project").click()
    idle(page)
    main.get_by_text("Unarchived", exact=False).wait_for()

    main.get_by_label("Type news to delete it").fill("new")
    _submit(page, "Delete project")
    main.get_by_text("type the project's name again", exact=False).wait_for()
    main.get_by_label("Type news to delete it").fill("news")
    _submit(page, "Delete project")
    done = main.get_by_text("Deleted news; its full export is in", exact=False)
    done.wait_for()
    assert Path(done.inner_text().rsplit(" ", 1)[1].rstrip(".")).is_file()
    assert wb.projects.list(actor=OP) == []
    wb.engine.dispose()
    annotator.context.close()
    context.close()
