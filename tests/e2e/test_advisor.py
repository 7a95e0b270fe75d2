"""The strategy advisor in Chromium: an admin runs it from the Rounds page, the app's real worker
replays the project's ~300 final labels per strategy, and the page shows the curves, the table of
AUBC minus random with its interval and the recommendation; the project's strategy is unchanged.
A reviewer sees the advice without the button. Saves docs/screenshots/rounds-advisor.png."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Server, idle, shot, sign_in
from workbench.domain import Actor

pytestmark = [pytest.mark.browser, pytest.mark.slow]
pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")

PASSWORD = "password-123"
OP = Actor.operator()
N_LABELED = 300
ADVICE_TIMEOUT_MS = 600_000  # the replay takes about a minute on a quiet machine; this one is shared


def _seed(url: str) -> None:
    from tests.helpers import add_text_items, set_final_labels
    from tests.test_advisor import _texts
    from workbench.services import Workbench

    wb = Workbench.open(url)
    wb.users.add("admin", "admin", PASSWORD, actor=OP)
    wb.users.add("rev", "reviewer", PASSWORD, actor=OP)
    project = wb.projects.create(
        "spam",
        "text",
        ["ham", "spam"],
        strategy="entropy",
        settings={"advisor_min_labels": 250},
        actor=OP,
    )
    texts, gold = _texts(N_LABELED + 60)
    add_text_items(wb.engine, project.id, texts, eval_fraction=0.2)
    set_final_labels(wb.engine, project.id, {k: gold[k] for k in list(gold)[:N_LABELED]})
    wb.engine.dispose()


@pytest.fixture(scope="module")
def app(server: Server) -> Server:
    _seed(server.url)
    server.start()
    return server


def _wb(app: Server):
    from workbench.services import Workbench

    return Workbench.open(app.url)


@pytest.mark.timeout(900)
def test_admin_runs_the_advisor_and_reviewers_read_it(app, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1150})
    page = context.new_page()
    page.set_default_timeout(30_000)
    sign_in(page, app.base, "admin", PASSWORD, path="rounds")
    main = page.get_by_test_id("stMain")
    main.get_by_text("Strategy advisor", exact=True).wait_for()
    main.get_by_text("No advice yet.", exact=True).wait_for()
    main.get_by_role("button", name="Run the strategy advisor").click()
    main.get_by_text("Strategy advisor (job", exact=False).wait_for()

    # The worker replays; the page follows the job and shows the advice when it is done.
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stMain] [data-testid^=stAlert]')]"
        ".some(e => /beats random|over random \\(95% interval/.test(e.innerText))",
        timeout=ADVICE_TIMEOUT_MS,
    )
    idle(page)
    wb = _wb(app)
    try:
        status = wb.advisor.status("spam", actor=OP)
        assert status.advice is not None and status.failed is None, status
        advice = status.advice
        assert advice.n_labels == N_LABELED
        assert wb.projects.get("spam", actor=OP).strategy == "entropy"  # never switched
    finally:
        wb.engine.dispose()
    main.get_by_text(advice.sentence.split(":")[0], exact=False).first.wait_for()
    chart = main.locator("[data-testid=stVegaLiteChart]").last
    chart.wait_for()
    heading = main.get_by_text("Strategy advisor", exact=True)
    heading.evaluate("e => e.scrollIntoView({block: 'start'})")  # the app's main block scrolls, not the window
    page.wait_for_timeout(300)
    shot(page, "rounds-advisor")

    reviewer = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    reviewer.set_default_timeout(30_000)
    sign_in(reviewer, app.base, "rev", PASSWORD, path="rounds")
    rmain = reviewer.get_by_test_id("stMain")
    rmain.get_by_text("Strategy advisor", exact=True).wait_for()
    rmain.get_by_text(advice.sentence.split(":")[0], exact=False).first.wait_for()
    assert rmain.get_by_role("button", name="Run the strategy advisor").count() == 0
    context.close()
