"""A sign-in attacker process for the parallel lockout test (kept apart so a spawned child imports
only what it needs)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Event


def attempt(url: str, frozen_ts: float, tries: int, ready: Queue[int], go: Event, results: Queue[list[str]]) -> None:
    from workbench.db.engine import make_engine
    from workbench.errors import PermissionDenied
    from workbench.services.users import UserService

    engine = make_engine(url, migrate=False)
    frozen = datetime.fromtimestamp(frozen_ts, UTC)
    # A frozen clock: the lock set by the FREE_FAILURES-th attempt cannot lapse during the test, so
    # any check past that number would be a race the lockout lost (not the backoff letting one in).
    users = UserService(engine, clock=lambda: frozen)
    with engine.connect():
        pass  # connected before the start signal
    ready.put(1)
    go.wait(60)
    outcomes = []
    for _ in range(tries):
        try:
            users.authenticate("target", "wrong-guess-123")
            outcomes.append("in")
        except PermissionDenied as exc:
            outcomes.append("locked" if "try again" in str(exc) else "wrong")
    engine.dispose()
    results.put(outcomes)
