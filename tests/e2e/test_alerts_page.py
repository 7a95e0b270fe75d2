"""The Overview's Alerts section in Chromium: an admin sees the project's rules (one firing) and the
latest deliveries, one sent and one waiting for its retry after a 500. Screenshot: overview-alerts."""

from __future__ import annotations

import os

import pytest

from tests.e2e.conftest import Server
from tests.e2e.test_sessions import VIEWPORT, _shot, _sign_in
from tests.test_alerts import Receiver, _age_annotations, _review_project
from workbench.domain import Actor
from workbench.domain.alerts import AlertEvent

pytestmark = [pytest.mark.browser, pytest.mark.slow]
OP = Actor.operator()


@pytest.fixture(scope="module")
def app(server: Server):
    from workbench.services import Workbench

    live, broken = Receiver(), Receiver([500] * 10)
    saved = {k: os.environ.get(k) for k in ("TEAM_HOOK", "ONCALL_HOOK", "WORKBENCH_ALERT_RETRY_S")}
    os.environ.update(TEAM_HOOK=live.url, ONCALL_HOOK=broken.url, WORKBENCH_ALERT_RETRY_S="600")
    wb = Workbench.open(server.url)
    wb.users.add("admin", "admin", "password-123", actor=OP)
    project, _ = _review_project(wb, "alpha")
    _age_annotations(wb.engine, project.id, hours=30)
    wb.alerts.add_rule("alpha", "review_age", threshold=24, webhook_env="TEAM_HOOK", actor=OP)
    wb.alerts.add_rule("alpha", "agreement", threshold=0.667, webhook_env="ONCALL_HOOK", actor=OP)
    wb.alerts.run_check("alpha", events=[AlertEvent.REVIEW], actor=OP)  # what the worker does after a review
    wb.engine.dispose()
    server.start()
    yield server
    live.close()
    broken.close()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_admin_sees_alert_rules_and_recent_deliveries(app, browser):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    _sign_in(page, app, "admin", "overview")
    main = page.get_by_test_id("stMain")
    heading = main.get_by_role("heading", name="Alerts")
    heading.wait_for()
    main.get_by_text("Latest 2 deliveries; 1 not delivered (yet).").wait_for()
    tables = main.get_by_test_id("stDataFrame")
    tables.nth(3).get_by_test_id("data-grid-canvas").wait_for()  # projects, annotators, rules, deliveries
    heading.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(1000)
    _shot(page, "overview-alerts")
    assert tables.count() == 4
    page.set_viewport_size({"width": 420, "height": 900})  # a phone: the tables scroll sideways, nothing overlaps
    page.wait_for_timeout(800)
    heading.evaluate("e => e.scrollIntoView({block: 'start'})")
    _shot(page, "overview-alerts-narrow")
    context.close()
