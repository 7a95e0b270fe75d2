"""Members and annotator statistics in Chromium: an annotator who belongs to one project sees only
it in the picker and their own statistics; an admin adds a member on the Users page, after which
the annotator's picker offers that project too; the overview charts every annotator.
Screenshots: members-picker, my-statistics, members, overview-statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import Server, choose, idle, new_page, shot, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

PASSWORD = "password-123"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _seed(url: str) -> None:
    from sqlalchemy import update
    from sqlmodel import Session

    from tests.helpers import add_items
    from workbench.db.models import Annotation
    from workbench.domain import Actor
    from workbench.services import Workbench

    op = Actor.operator()
    wb = Workbench.open(url)
    for name, role in (("admin", "admin"), ("rev", "reviewer"), ("ann1", "annotator"), ("ann2", "annotator")):
        wb.users.add(name, role, PASSWORD, actor=op)
    for project in ("alpha", "beta"):
        p = wb.projects.create(
            project, "text", ["pos", "neg"], settings={"eval_fraction": 0.0, "random_share": 0.0}, actor=op
        )
        add_items(wb.engine, p.id, 12)
    wb.members.remove("beta", "ann1", actor=op)  # ann1 works on alpha only
    people = {n: wb.users.authenticate(n, PASSWORD) for n in ("ann1", "ann2")}
    # two days of labels on alpha: ann2 disagrees on every third item and is slower
    start = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=2)
    made = []
    for i in range(8):
        first = wb.queue.claim("alpha", actor=people["ann1"])
        made.append(wb.queue.submit(first.lease_id, "pos" if i % 2 else "neg", actor=people["ann1"], duration_ms=2500))
        second = wb.queue.claim("alpha", actor=people["ann2"])
        other = ("neg" if i % 2 else "pos") if i % 3 == 0 else ("pos" if i % 2 else "neg")
        made.append(wb.queue.submit(second.lease_id, other, actor=people["ann2"], duration_ms=6000 + 500 * i))
    wb.queue.skip(wb.queue.claim("alpha", actor=people["ann1"]).lease_id, "cannot tell", actor=people["ann1"])
    reviewer = wb.users.authenticate("rev", PASSWORD)
    for case in wb.review.queue("alpha", actor=reviewer):
        wb.review.adjudicate(case.item_id, "label", label="pos", reason="reads positive", actor=reviewer)
    with Session(wb.engine) as session, session.begin():
        for n, result in enumerate(made):
            at = start + timedelta(days=n // 8, seconds=30 * n)
            session.execute(update(Annotation).where(Annotation.id == result.annotation_id).values(created_at=at))
    wb.engine.dispose()


@pytest.fixture(scope="module")
def app(server: Server) -> Server:
    _seed(server.url)
    server.start()
    return server


def _picker_options(page: Page, screenshot: str | None = None) -> list[str]:
    """The project picker's options, read from the open list (photographed open when asked)."""
    box = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox")
    idle(page)
    box.click()
    page.get_by_role("option").first.wait_for()
    options = [o.inner_text() for o in page.get_by_role("option").all()]
    if screenshot:
        shot(page, screenshot)  # with the list open
    page.keyboard.press("Escape")
    idle(page)
    return options


def _nav(page: Page, name: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name).click()
    idle(page)


def test_an_annotator_of_one_project_sees_only_it_and_their_own_statistics(app, browser):
    context, page = new_page(browser, height=1400)
    sign_in(page, app.base, "ann1", PASSWORD)
    assert _picker_options(page, "members-picker") == ["alpha"]
    _nav(page, "Statistics")
    main = page.get_by_test_id("stMain")
    main.get_by_text("My statistics").wait_for()
    labels = main.get_by_test_id("stMetric").filter(has_text="Labels per hour")
    assert labels.inner_text().split("\n")[-1].strip() not in ("", "n/a")
    kappa = main.get_by_test_id("stMetric").filter(has_text="Kappa with the other labeler")
    assert kappa.inner_text().split("\n")[-1].strip() not in ("", "n/a")
    main.get_by_test_id("stVegaLiteChart").first.wait_for()
    assert main.get_by_test_id("stVegaLiteChart").count() == 5
    assert "ann2" not in main.inner_text()  # nobody else's figures
    shot(page, "my-statistics")
    context.close()


def test_admin_adds_a_member_in_the_app_and_the_annotator_then_sees_the_project(app, browser):
    context, page = new_page(browser, height=1000)
    sign_in(page, app.base, "admin", PASSWORD)
    _nav(page, "Users")
    main = page.get_by_test_id("stMain")
    main.get_by_text("Project members").wait_for()
    choose(page, main.get_by_test_id("stSelectbox").filter(has=page.get_by_text("Project", exact=True)), "beta")
    form = main.get_by_test_id("stForm").filter(has_text="Add member")
    choose(page, form.get_by_test_id("stSelectbox").first, "ann1")
    form.get_by_role("button", name="Add member").click()
    main.get_by_text("ann1 works on beta now.").wait_for()
    main.get_by_text("Project members").scroll_into_view_if_needed()
    shot(page, "members")
    context.close()

    context, page = new_page(browser)
    sign_in(page, app.base, "ann1", PASSWORD)
    assert _picker_options(page) == ["alpha", "beta"]
    context.close()


def test_the_overview_charts_every_annotator(app, browser):
    context, page = new_page(browser, height=2600)
    sign_in(page, app.base, "rev", PASSWORD, path="overview")
    main = page.get_by_test_id("stMain")
    main.get_by_text("Annotators", exact=True).wait_for()
    table = main.get_by_test_id("stDataFrame").last
    table.wait_for()
    main.get_by_test_id("stVegaLiteChart").nth(4).wait_for()  # the charts render one after another
    assert main.get_by_test_id("stVegaLiteChart").count() >= 5
    main.get_by_text("Annotators", exact=True).scroll_into_view_if_needed()
    shot(page, "overview-statistics")
    context.close()
