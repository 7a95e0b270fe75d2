"""In Chromium: a round whose MLflow tracking server is dead finishes, and the Rounds page says so in
one readable line (issue 16). Saves docs/screenshots/rounds-mlflow-failure.png."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Server, free_port
from tests.e2e.test_browser import PASSWORD, _idle, _page, _pick_project, _shot, _sign_in
from tests.helpers import add_text_items, set_final_labels
from workbench.domain import Actor

pytestmark = [pytest.mark.browser, pytest.mark.slow]
pytest.importorskip("mlflow", reason="the mlflow extra is not installed")

DEAD = f"http://127.0.0.1:{free_port()}"  # bound once, then closed: nothing listens there


@pytest.fixture(scope="module")
def app(server: Server) -> Server:
    from workbench.services import Workbench

    wb = Workbench.open(server.url)
    wb.users.add("admin", "admin", PASSWORD, actor=Actor.operator())
    project = wb.projects.create(
        "tracked",
        "text",
        ["pos", "neg"],
        settings={"featurizer": {"method": "tfidf"}, "mlflow_tracking_uri": DEAD},
        actor=Actor.operator(),
    )
    words = {"pos": "great lovely superb fine", "neg": "awful bad poor broken"}
    texts = [f"{words['pos' if i % 2 else 'neg']} {i}" for i in range(60)]
    add_text_items(wb.engine, project.id, texts, eval_fraction=0.3)
    set_final_labels(wb.engine, project.id, {f"t{i}": "pos" if i % 2 else "neg" for i in range(60)})
    wb.engine.dispose()
    server.start()
    return server


def test_the_rounds_page_shows_a_dead_tracking_server_in_one_line(app, browser):
    dialogs: list[str] = []
    context, page = _page(browser, dialogs)
    page.set_default_timeout(90_000)  # the app and its worker share 2 busy cores
    _sign_in(page, app, "admin")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Rounds").click()
    main = page.get_by_test_id("stMain")
    main.get_by_role("button", name="Start a retrain round").wait_for()
    _pick_project(page, "tracked")
    main.get_by_role("button", name="Start a retrain round").click()
    main.get_by_text("Round done: version 1", exact=False).wait_for(timeout=300_000)  # a busy machine
    expected = f"MLflow: run 1 not logged to {DEAD}: connection refused. The round itself finished."
    # The outcome is written just after the round's commit: a reload shows it.
    warning = main.get_by_test_id("stAlert").filter(has_text="MLflow: run 1")
    for _ in range(20):
        if warning.count():
            break
        page.wait_for_timeout(500)
        page.reload()
        _idle(page)
    assert warning.inner_text().strip() == expected
    _shot(page, "rounds-mlflow-failure")
    box = warning.bounding_box()
    assert box is not None and box["height"] < 70, box  # one line (plus the alert's padding) at 1200 px
    assert main.get_by_text("Eval accuracy").count() >= 1  # the round's metrics are there
    page.set_viewport_size({"width": 640, "height": 900})
    _idle(page)
    assert warning.inner_text().strip() == expected  # wraps, but is still the one sentence
    _shot(page, "rounds-mlflow-failure-narrow")
    assert dialogs == []
    context.close()
