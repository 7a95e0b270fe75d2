"""Sessions, revocation, expiry (with an injected clock), the password policy, disabling users and
the sign-in lockout under real parallel processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from tests.helpers import add_items
from workbench.db.engine import make_engine
from workbench.db.models import AuditLog, Lease, UserSession
from workbench.domain import Actor
from workbench.domain.passwords import WeakPassword, check_password
from workbench.errors import PermissionDenied, WorkbenchError
from workbench.services import Workbench
from workbench.services.sessions import SessionEnded, SessionPolicy, SessionService, token_hash
from workbench.services.users import FREE_FAILURES, UserService

PASSWORD = "password-123"
OP = Actor.operator()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(autouse=True)
def _cheap_hashing(request, monkeypatch):
    """Cheap argon2 parameters, except where the real cost is the point (the parallel lockout)."""
    if "parallel" not in request.node.name:
        from tests.test_ui_support import cheap_hashing

        cheap_hashing(monkeypatch)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def sessions(wb, clock):
    wb.users.add("ann", "annotator", PASSWORD, actor=Actor.operator())
    wb.users.add("boss", "admin", "boss-password-1", actor=Actor.operator())
    return SessionService(
        wb.engine, policy=SessionPolicy(idle=timedelta(hours=8), absolute=timedelta(days=7)), clock=clock
    )


def _rows(wb):
    with Session(wb.engine) as s:
        return s.execute(select(UserSession)).scalars().all()


def test_sign_in_binds_and_a_page_load_adopts_a_token_whose_hash_alone_is_stored(wb, sessions):
    signed = sessions.sign_in("ann", PASSWORD, bind="browser-bind-secret")
    assert signed.actor.name == "ann" and signed.actor.id is not None
    issued = sessions.adopt("browser-bind-secret")
    assert issued is not None and len(issued.token) >= 40
    assert issued.max_age_s == 7 * 24 * 3600
    assert sessions.adopt("browser-bind-secret") is None  # one adoption only
    [row] = _rows(wb)
    assert row.token_hash == token_hash(issued.token) and issued.token not in (row.token_hash, row.bind_hash)
    assert row.bind_hash is None
    assert sessions.resolve(issued.token).session_id == signed.session_id
    assert sessions.resolve("not-a-token") is None
    # nothing in the database holds the token in clear: not the sessions, not the audit log
    with Session(wb.engine) as s:
        details = " ".join(str(d) for d in s.execute(select(AuditLog.details)).scalars())
    assert issued.token not in details and "browser-bind-secret" not in details


def test_sign_out_revokes_the_session_everywhere(wb, sessions):
    signed = sessions.sign_in("ann", PASSWORD, bind="b1")
    token = sessions.adopt("b1").token
    sessions.sign_out(signed.session_id, actor=signed.actor)
    with pytest.raises(SessionEnded, match="you signed out"):
        sessions.resolve(token)
    with pytest.raises(SessionEnded, match="you signed out"):
        sessions.current(signed.session_id, actor=signed.actor)
    other = wb.users.authenticate("boss", "boss-password-1")
    second = sessions.sign_in("ann", PASSWORD)
    with pytest.raises(WorkbenchError, match="no such session"):  # not someone else's, by id
        sessions.sign_out(second.session_id, actor=Actor(id=other.id, name="boss", role="admin"))


def test_idle_and_absolute_expiry_follow_the_clock(wb, sessions, clock):
    signed = sessions.sign_in("ann", PASSWORD, bind="b")
    token = sessions.adopt("b").token
    clock.advance(hours=7, minutes=59)
    assert sessions.resolve(token).actor.name == "ann"  # activity: idle time restarts
    clock.advance(hours=7, minutes=59)
    assert sessions.current(signed.session_id, actor=signed.actor).actor.name == "ann"
    clock.advance(hours=8, seconds=1)
    with pytest.raises(SessionEnded, match="idle too long"):
        sessions.resolve(token)
    # absolute: active every few hours, still ends after 7 days
    signed = sessions.sign_in("ann", PASSWORD, bind="c")
    token = sessions.adopt("c").token
    for _ in range(7 * 24 // 4 - 1):
        clock.advance(hours=4)
        sessions.resolve(token)
    clock.advance(hours=4, seconds=1)
    with pytest.raises(SessionEnded, match="time limit"):
        sessions.resolve(token)
    assert {r.revoke_reason for r in _rows(wb)} == {"idle", "expired"}


def test_policy_comes_from_settings(monkeypatch):
    monkeypatch.setenv("WORKBENCH_SESSION_IDLE_HOURS", "0.5")
    monkeypatch.setenv("WORKBENCH_SESSION_MAX_DAYS", "2")
    assert SessionPolicy.from_env() == SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(days=2))
    monkeypatch.setenv("WORKBENCH_SESSION_IDLE_HOURS", "soon")
    with pytest.raises(WorkbenchError, match="must be a number"):
        SessionPolicy.from_env()


def test_password_change_ends_other_sessions_and_reset_ends_all(wb, sessions):
    a = sessions.sign_in("ann", PASSWORD)
    b = sessions.sign_in("ann", PASSWORD)
    users = UserService(wb.engine)
    with pytest.raises(PermissionDenied, match="current password is wrong"):
        users.change_password("nope-nope-nope", "a-new-long-pass", actor=a.actor, keep_session=a.session_id)
    users.change_password(PASSWORD, "a-new-long-pass", actor=a.actor, keep_session=a.session_id)
    assert sessions.current(a.session_id, actor=a.actor).actor.name == "ann"
    with pytest.raises(SessionEnded, match="password was changed"):
        sessions.current(b.session_id, actor=b.actor)
    assert wb.users.authenticate("ann", "a-new-long-pass").name == "ann"
    users.reset_password("ann", "reset-by-admin-1", actor=OP)
    with pytest.raises(SessionEnded, match="password was changed"):
        sessions.current(a.session_id, actor=a.actor)


def test_disabling_a_user_ends_sessions_and_releases_leases(wb, sessions):
    project = wb.projects.create(
        "p", "text", ["a", "b"], settings={"eval_fraction": 0.0, "random_share": 0.0}, actor=Actor.operator()
    )
    add_items(wb.engine, project.id, 5)
    signed = sessions.sign_in("ann", PASSWORD, bind="bb")
    token = sessions.adopt("bb").token
    claim = wb.queue.claim("p", actor=signed.actor)
    assert claim is not None
    boss = wb.users.authenticate("boss", "boss-password-1")
    with pytest.raises(WorkbenchError, match="your own account"):
        wb.users.disable("boss", actor=boss)
    with pytest.raises(PermissionDenied):
        wb.users.disable("boss", actor=signed.actor)
    wb.users.disable("ann", actor=boss)
    with pytest.raises(SessionEnded, match="disabled"):
        sessions.resolve(token)
    with Session(wb.engine) as s:
        lease = s.get(Lease, claim.lease_id)
        assert lease.state == "expired" and lease.closed_at is not None
        assert s.execute(select(func.sum(Item_slots()))).scalar_one() == 0
    with pytest.raises(PermissionDenied, match="wrong password"):
        sessions.sign_in("ann", PASSWORD)
    wb.users.enable("ann", actor=boss)
    assert sessions.sign_in("ann", PASSWORD).actor.name == "ann"


def Item_slots():  # a column expression for the test above
    from workbench.db.models import Item

    return Item.slots_taken


def test_release_leases_gives_back_what_the_user_holds(wb, sessions):
    project = wb.projects.create(
        "p", "text", ["a", "b"], settings={"eval_fraction": 0.0, "random_share": 0.0}, actor=Actor.operator()
    )
    add_items(wb.engine, project.id, 3)
    ann = wb.users.authenticate("ann", PASSWORD)
    first = wb.queue.claim("p", actor=ann)
    assert wb.queue.release_leases(actor=ann) == 1
    assert wb.queue.release_leases(actor=ann) == 0
    again = wb.queue.claim("p", actor=ann)  # released, not skipped: it may come back to the same person
    assert again is not None and again.lease_id != first.lease_id
    with pytest.raises(TypeError):
        wb.queue.release_leases()  # the actor is required


def test_admin_lists_and_ends_sessions_without_seeing_tokens(wb, sessions):
    sessions.sign_in("ann", PASSWORD)
    sessions.sign_in("ann", PASSWORD)
    boss = wb.users.authenticate("boss", "boss-password-1")
    listed = sessions.list(actor=boss)
    assert [s.user for s in listed] == ["ann", "ann"] and all(s.ended is None for s in listed)
    assert not any(hasattr(s, "token") or hasattr(s, "token_hash") for s in listed)
    with pytest.raises(PermissionDenied):
        sessions.list(actor=wb.users.authenticate("ann", PASSWORD))
    assert sessions.end_all("ann", actor=boss) == 2
    assert sessions.list(actor=boss) == []


# -- password policy ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "password, why",
    [
        ("aaaaaaaa", "at least 12"),
        ("short-one", "at least 12"),
        ("qwerty123456", "common passwords"),
        ("Q1W2E3R4T5Y6", "common passwords"),  # case does not help
        ("aaaaaaaaaaaa", "different characters"),
        ("abababababab", "different characters"),
    ],
)
def test_weak_passwords_are_refused(password, why):
    with pytest.raises(WeakPassword, match=why):
        check_password(password)


def test_admin_passwords_can_be_required_to_be_longer(wb, monkeypatch):
    check_password("twelve-chars", admin=True)
    monkeypatch.setenv("WORKBENCH_ADMIN_PASSWORD_MIN_LENGTH", "16")
    with pytest.raises(WeakPassword, match="an admin password must have at least 16"):
        wb.users.add("root", "admin", "twelve-chars", actor=Actor.operator())
    wb.users.add("ann", "annotator", "twelve-chars", actor=Actor.operator())  # others keep the general minimum
    wb.users.add("root", "admin", "sixteen-chars-ok", actor=Actor.operator())
    with pytest.raises(WeakPassword, match="at least 16"):
        wb.users.reset_password("root", "twelve-chars", actor=OP)
    with pytest.raises(WeakPassword, match="mostly the user name"):
        wb.users.add("maximilian-x", "annotator", "maximilian-x1", actor=Actor.operator())


def test_the_common_list_is_the_shipped_one():
    from workbench.domain.passwords import common_passwords

    listed = common_passwords()
    assert len(listed) > 19_000 and "password" in listed and "q1w2e3r4t5y6" in listed


# -- lockout under parallel processes -------------------------------------------------------------
def test_lockout_holds_against_eight_parallel_processes(db_url):
    wb = Workbench.open(db_url)
    wb.users.add("target", "annotator", "the-right-password", actor=Actor.operator())
    wb.engine.dispose()
    from tests.lockout_worker import attempt

    ctx = multiprocessing.get_context("fork")  # cheap to start; each child opens its own engine
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    processes = [ctx.Process(target=attempt, args=(db_url, time.time(), 3, ready, go, results)) for _ in range(8)]
    for p in processes:
        p.start()
    for _ in processes:  # every process is up and connected before the first attempt
        ready.get(timeout=120)
    go.set()
    outcomes = [o for _ in processes for o in results.get(timeout=120)]
    for p in processes:
        p.join(timeout=30)
    checked = outcomes.count("wrong")
    engine = make_engine(db_url, migrate=False)
    with engine.connect() as conn:
        failed_audits = conn.execute(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == "user.sign_in_failed")
        ).scalar_one()
    engine.dispose()
    print(f"\n8 processes x 3 wrong passwords: {checked} checked, {outcomes.count('locked')} refused by the lock")
    assert len(outcomes) == 24 and "in" not in outcomes
    assert checked == failed_audits
    assert checked <= FREE_FAILURES, outcomes
    assert outcomes.count("locked") >= 24 - FREE_FAILURES


def test_lockout_serially_and_the_right_password_after_it(wb, clock):
    users = UserService(wb.engine, clock=clock)
    users.add("bob", "annotator", "right-password", actor=Actor.operator())
    for _ in range(FREE_FAILURES):
        with pytest.raises(PermissionDenied, match="wrong password"):
            users.authenticate("bob", "nope-nope")
    with pytest.raises(PermissionDenied, match="try again in 5 s"):
        users.authenticate("bob", "right-password")
    clock.advance(seconds=2)
    with pytest.raises(PermissionDenied, match="try again in 3 s"):  # a refusal while locked counts nothing
        users.authenticate("bob", "right-password")
    clock.advance(seconds=3)
    assert users.authenticate("bob", "right-password").name == "bob"
    with pytest.raises(PermissionDenied, match="wrong password"):  # success cleared the count
        users.authenticate("bob", "nope-nope")


# -- the CLI ------------------------------------------------------------------------------------
def test_cli_user_list_disable_enable_reset_password(db_url, capsys, monkeypatch, wb):
    import io
    import sys

    from workbench.cli import main

    def run(*argv, stdin=None):
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(["--database-url", db_url, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    project = wb.projects.create(
        "p", "text", ["a", "b"], settings={"eval_fraction": 0.0, "random_share": 0.0}, actor=Actor.operator()
    )
    add_items(wb.engine, project.id, 3)
    code, _, err = run("user", "add", "ann", "--password-stdin", stdin="aaaaaaaa\n")
    assert code == 1 and err.strip() == "workbench: error: a password must have at least 12 characters"
    assert run("user", "add", "ann", "--password-stdin", stdin="qwerty123456\n")[0] == 1
    assert run("user", "add", "ann", "--password-stdin", stdin=PASSWORD + "\n")[0] == 0
    signed = wb.sessions.sign_in("ann", PASSWORD)
    wb.queue.claim("p", actor=signed.actor)
    code, out, _ = run("user", "list")
    assert code == 0 and out.splitlines() == ["name\trole\tstate\tsessions", "ann\tannotator\tactive\t1"]
    code, out, _ = run("user", "disable", "ann")
    assert code == 0 and "ann is disabled" in out
    with pytest.raises(SessionEnded, match="disabled"):
        wb.sessions.current(signed.session_id, actor=signed.actor)
    with Session(wb.engine) as s:
        assert s.execute(select(func.count()).select_from(Lease).where(Lease.state == "active")).scalar_one() == 0
    assert run("user", "list")[1].splitlines()[1] == "ann\tannotator\tdisabled\t0"
    assert run("user", "enable", "ann")[0] == 0
    signed = wb.sessions.sign_in("ann", PASSWORD)
    code, out, _ = run("user", "reset-password", "ann", "--password-stdin", stdin="a-fresh-password\n")
    assert code == 0 and "sessions have ended" in out
    with pytest.raises(SessionEnded, match="password was changed"):
        wb.sessions.current(signed.session_id, actor=signed.actor)
    assert wb.users.authenticate("ann", "a-fresh-password").name == "ann"
    code, _, err = run("user", "disable", "nobody")
    assert code == 1 and "no user named 'nobody'" in err
