"""The label page's cost per click: SQL statements counted with an SQLAlchemy event hook (BEGIN
included), and the project looked up at most once per rerun."""

from __future__ import annotations

import re
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, event

from tests.test_ui_support import (  # noqa: F401 - fixtures
    seed_basic,
    sign_in,
    ui_url,
    uwb,
)

# Measured with this test: 36 before the label page's own changes, 25 after them, 32 once the
# quality engine's claim and submit steps were in; issue 10 asks for 15. Now: the submit reads its
# lease, item and pause flag in one statement; the claim's picks are one SQLite statement (UNION ALL
# of the picks in draw order, each row carrying the item shown); both write their audit rows in one
# statement; single reads (the session check, the picker, the page's counts) run without a BEGIN;
# the picker reads every project in two statements. Every few seconds two more run: the sweep of
# lapsed leases (queue.SWEEP_EVERY_S) and the guidelines read (queue.PROJECT_CACHE_S).
MAX_STATEMENTS = 15
MAX_STATEMENTS_CACHES_COLD = 17


@contextmanager
def counted():
    statements: list[str] = []

    def hook(
        conn: Connection, cursor: object, statement: str, parameters: object, context: object, executemany: bool
    ) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", hook)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", hook)


def _project_reads(statements: list[str]) -> int:
    """Statements that read the project table (the picker's list is one name query plus one load
    per project; everything after it gets the loaded project passed down)."""
    return sum(1 for s in statements if re.search(r"\bFROM project\b", s))


def _one_click(at, key: str) -> list[str]:
    with counted() as statements:
        at.button(key=key).click().run()
    assert not at.exception
    shown = "\n".join(f"{i + 1:2d}. {s.split(chr(10))[0][:110]}" for i, s in enumerate(statements))
    print(f"\n{len(statements)} statements for one click:\n{shown}")
    # one project: the picker's list (projects, then their labels) is the one lookup of the rerun
    assert _project_reads(statements) <= 2, shown
    return statements


def test_one_click_costs_at_most_15_statements_and_one_project_lookup(uwb, monkeypatch):
    from workbench.services import queue

    # Clicks a few seconds apart, as a person labels (a loaded machine must not expire the caches).
    monkeypatch.setattr(queue, "SWEEP_EVERY_S", 600.0)
    monkeypatch.setattr(queue, "PROJECT_CACHE_S", 600.0)
    seed_basic(uwb, n_items=8)
    at = sign_in("ann1")
    at.button(key="label_btn_0").click().run()  # warm: caches and the first claim
    statements = _one_click(at, "label_btn_1")
    assert len(statements) <= MAX_STATEMENTS, "\n".join(statements)
    # Caches expired: the sweep of lapsed leases and the guidelines read run as well.
    monkeypatch.setattr(queue, "SWEEP_EVERY_S", 0.0)
    monkeypatch.setattr(queue, "PROJECT_CACHE_S", 0.0)
    at.button(key="label_btn_0").click().run()  # refresh the caches with the new lifetimes
    statements = _one_click(at, "label_btn_1")
    assert len(statements) <= MAX_STATEMENTS_CACHES_COLD, "\n".join(statements)
    assert any(s.startswith("UPDATE lease SET state") and "expires_at <" in s for s in statements)
