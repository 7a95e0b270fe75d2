"""Alerts against real receivers: an HTTP server and an SMTP server (aiosmtpd) on 127.0.0.1, the real
worker, real rounds, imports and adjudications, on SQLite and PostgreSQL. Nothing is mocked."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select, text, update
from sqlmodel import Session

from tests.helpers import add_items, annotators, set_final_labels
from tests.test_ui_support import ui_url, uwb  # noqa: F401 - fixtures
from workbench.cli import main as cli
from workbench.db.models import AlertAttempt, Annotation, Job, utcnow
from workbench.domain import Actor, JobKind, JobState
from workbench.domain.alerts import AlertEvent, AlertKind, DeliveryState
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from aiosmtpd.smtp import SMTP, Envelope, LoginPassword, Session as SMTPSession

OP = Actor.operator()


# -- receivers ---------------------------------------------------------------------------------
class Receiver:
    """A webhook receiver: records each POST (time, path, JSON) and answers the next scripted status."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[tuple[float, str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.received.append((time.monotonic(), self.path, json.loads(body)))
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T0KEN-SECRET-123"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(statuses: list[int] | None = None) -> Receiver:
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def hanging():
    """A dead webhook that accepts the connection and never answers (the worst case: a timeout)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    sock.close()


@pytest.fixture
def smtp(monkeypatch):
    """aiosmtpd on 127.0.0.1 with AUTH (LOGIN/PLAIN without TLS, for the test); the WORKBENCH_SMTP_*
    environment points at it. Yields the list of (envelope, parsed message) it accepted."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from tests.e2e.conftest import free_port

    class Inbox(list):
        logins: list

    inbox = Inbox()
    logins: list = []

    class Handler:
        async def handle_DATA(self, server: SMTP, session: SMTPSession, envelope: Envelope) -> str:
            inbox.append((envelope, message_from_bytes(envelope.content)))
            return "250 Message accepted for delivery"

    def authenticator(
        server: SMTP, session: SMTPSession, envelope: Envelope, mechanism: str, auth_data: LoginPassword
    ) -> AuthResult:
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.login == b"alerts" and auth_data.password == b"smtp-pass-word")

    port = free_port()
    controller = Controller(
        Handler(), hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False
    )
    controller.start()
    for name, value in {
        "WORKBENCH_SMTP_HOST": "127.0.0.1",
        "WORKBENCH_SMTP_PORT": str(port),
        "WORKBENCH_SMTP_USER": "alerts",
        "WORKBENCH_SMTP_PASSWORD": "smtp-pass-word",
        "WORKBENCH_SMTP_TLS": "none",
        "WORKBENCH_ALERT_FROM": "workbench@example.org",
    }.items():
        monkeypatch.setenv(name, value)
    inbox.logins = logins  # type: ignore[attr-defined]
    yield inbox
    controller.stop()


# -- builders ----------------------------------------------------------------------------------
def _review_project(wb, name: str = "al") -> tuple:
    """A project with two items in review (the annotators disagreed) and a reviewer."""
    project = wb.projects.create(
        name, "text", ["cat", "dog"], settings={"eval_fraction": 0.0, "random_share": 0.0}, actor=OP
    )
    add_items(wb.engine, project.id, 3)
    a, b = annotators(wb, 2, prefix=f"{name}-ann")
    (reviewer,) = annotators(wb, 1, role="reviewer", prefix=f"{name}-rev")
    for first, second in (("cat", "dog"), ("cat", "cat"), ("dog", "cat")):
        la, lb = wb.queue.claim(name, actor=a), wb.queue.claim(name, actor=b)
        wb.queue.submit(la.lease_id, first, actor=a)
        wb.queue.submit(lb.lease_id, second, actor=b)
    return project, reviewer


def _age_annotations(engine, project_id: int, hours: float) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            update(Annotation)
            .where(Annotation.project_id == project_id)
            .values(created_at=utcnow() - timedelta(hours=hours))
        )


def _alert_jobs(engine, project_id: int) -> list[Job]:
    with Session(engine) as session:
        return list(
            session.execute(select(Job).where(Job.project_id == project_id, Job.kind == JobKind.ALERT)).scalars()
        )


def _attempts(engine) -> int:
    with Session(engine) as session:
        return len(session.execute(select(AlertAttempt)).scalars().all())


# -- rules -------------------------------------------------------------------------------------
def test_rules_are_added_listed_and_removed_and_bad_input_writes_nothing(wb):
    wb.projects.create("r", "text", ["a", "b"], actor=OP)
    for kwargs, message in (
        ({"kind": "nonsense", "webhook_env": "HOOK"}, "unknown alert kind"),
        ({"kind": "agreement", "threshold": 2.0, "webhook_env": "HOOK"}, "between -1 and 1"),
        ({"kind": "agreement"}, "needs a channel"),
        ({"kind": "agreement", "webhook_env": "https://hooks.example/T/SECRET"}, "not the URL"),
        ({"kind": "agreement", "webhook_env": "bad name"}, "not an environment variable"),
        ({"kind": "review_age", "email_to": "nobody"}, "not an e-mail address"),
    ):
        with pytest.raises(WorkbenchError, match=message):
            wb.alerts.add_rule("r", actor=OP, **kwargs)
    assert wb.alerts.rules("r", actor=OP) == []
    rule = wb.alerts.add_rule("r", "agreement", webhook_env="TEAM_HOOK", email_to="ops@example.org", actor=OP)
    assert (rule.kind, rule.threshold, rule.channels) == (
        AlertKind.AGREEMENT,
        0.667,
        "webhook $TEAM_HOOK, email ops@example.org",
    )
    age = wb.alerts.add_rule("r", AlertKind.REVIEW_AGE, threshold=2, email_to="ops@example.org", actor=OP)
    assert [r.id for r in wb.alerts.rules("r", actor=OP)] == [rule.id, age.id]
    wb.alerts.remove_rule("r", rule.id, actor=OP)
    assert [r.kind for r in wb.alerts.rules("r", actor=OP)] == [AlertKind.REVIEW_AGE]
    with pytest.raises(WorkbenchError, match="no alert rule"):
        wb.alerts.remove_rule("r", rule.id, actor=OP)


def test_a_project_without_rules_queues_no_check(wb):
    project, reviewer = _review_project(wb)
    wb.review.adjudicate(
        wb.review.queue("al", actor=reviewer)[0].item_id, "label", label="cat", reason="x", actor=reviewer
    )
    assert _alert_jobs(wb.engine, project.id) == []


# -- each rule firing --------------------------------------------------------------------------
def test_review_age_fires_once_until_cleared_and_every_delivery_is_logged(wb, receiver, monkeypatch):
    hook = receiver()
    monkeypatch.setenv("TEAM_HOOK", hook.url)
    project, reviewer = _review_project(wb)
    rule = wb.alerts.add_rule("al", "review_age", threshold=1.0, webhook_env="TEAM_HOOK", actor=OP)

    result = wb.alerts.run_check("al", events=[AlertEvent.REVIEW], actor=OP)
    assert (result.fired, len(hook.received)) == (0, 0)  # the items waited seconds, not an hour
    _age_annotations(wb.engine, project.id, hours=3)
    result = wb.alerts.run_check("al", events=[AlertEvent.REVIEW], actor=OP)
    assert (result.fired, result.sent) == (1, 1)
    _, path, payload = hook.received[0]
    assert path == "/hooks/T0KEN-SECRET-123"
    assert payload["text"].startswith("[workbench] al: an item has waited 3.0 h in review")
    assert payload["workbench"]["kind"] == "review_age" and payload["workbench"]["rule_id"] == rule.id
    assert {f["title"] for f in payload["attachments"][0]["fields"]} >= {"project", "oldest item", "threshold"}
    assert wb.alerts.rules("al", actor=OP)[0].active == ("",)

    # Still true: no second alert.
    assert wb.alerts.run_check("al", events=[AlertEvent.REVIEW], actor=OP).fired == 0
    assert len(hook.received) == 1
    # Cleared once every item in review is decided ...
    for case in wb.review.queue("al", actor=reviewer):
        wb.review.adjudicate(case.item_id, "label", label="cat", reason="settled", actor=reviewer)
    assert wb.alerts.run_check("al", events=[AlertEvent.REVIEW], actor=OP).cleared == 1
    assert wb.alerts.rules("al", actor=OP)[0].active == ()
    # ... and fires again when the condition comes back.
    item = wb.review.queue("al", state="final", actor=reviewer)[0]
    with Session(wb.engine) as session, session.begin():
        session.execute(text("UPDATE item SET state = 'review' WHERE id = :id"), {"id": item.item_id})
    assert wb.alerts.run_check("al", events=[AlertEvent.REVIEW], actor=OP).fired == 1
    assert len(hook.received) == 2

    log = wb.alerts.deliveries("al", actor=OP)
    assert [(d.state, d.attempts, d.target) for d in log] == [(DeliveryState.SENT, 1, "$TEAM_HOOK")] * 2
    assert [(a.number, a.ok, a.result) for a in log[0].attempt_log] == [(1, True, "HTTP 200")]


def test_agreement_below_threshold_fires_by_email(wb, smtp):
    _review_project(wb)  # 2 of 3 items disagree: alpha is negative
    wb.alerts.add_rule("al", "agreement", threshold=0.5, email_to="leads@example.org", actor=OP)
    result = wb.alerts.run_check("al", events=[AlertEvent.REVIEW], actor=OP)
    assert (result.fired, result.sent, result.failed) == (1, 1, 0)
    envelope, message = smtp[0]
    assert envelope.rcpt_tos == ["leads@example.org"] and envelope.mail_from == "workbench@example.org"
    assert message["Subject"].startswith("[workbench] al: Krippendorff's alpha -")
    assert "is below 0.500" in message["Subject"]
    assert "items labeled twice: 3" in message.get_payload()
    assert smtp.logins == [(b"alerts", b"smtp-pass-word")]
    assert wb.alerts.deliveries("al", actor=OP)[0].last_result == "250 accepted for leads@example.org"


def test_a_flagged_annotator_fires_for_that_annotator_and_clears_when_paused(wb, receiver, monkeypatch):
    from workbench.services.quality import QualityService

    hook = receiver()
    monkeypatch.setenv("TEAM_HOOK", hook.url)
    wb.projects.create(
        "q", "text", ["pos", "neg"], overlap=3, settings={"eval_fraction": 0.0, "random_share": 0.0}, actor=OP
    )
    project = wb.projects.get("q", actor=OP)
    add_items(wb.engine, project.id, 32)  # the quality estimate flags from 30 labels on
    good1, good2, bad = annotators(wb, 3, prefix="q")
    for _ in range(32):
        leases = [(who, wb.queue.claim("q", actor=who)) for who in (good1, good2, bad)]
        assert len({lease.item_id for _, lease in leases}) == 1  # pairs complete first: one item, three labels
        truth = "pos" if int(leases[0][1].external_id.split("-")[1]) % 3 else "neg"
        for who, lease in leases:
            wrong = "neg" if truth == "pos" else "pos"
            wb.queue.submit(lease.lease_id, wrong if who is bad else truth, actor=who)
    wb.alerts.add_rule("q", "annotator", webhook_env="TEAM_HOOK", actor=OP)
    QualityService(wb.engine).refresh("q", actor=OP)  # what every round does
    result = wb.alerts.run_check("q", events=[AlertEvent.ROUND], actor=OP)
    assert result.fired == 1
    assert hook.received[0][2]["workbench"]["subject"] == "q2"
    assert "annotator q2 is flagged as low quality" in hook.received[0][2]["text"]
    assert wb.alerts.rules("q", actor=OP)[0].active == ("q2",)
    QualityService(wb.engine).set_paused("q", "q2", True, actor=OP)
    assert wb.alerts.run_check("q", events=[AlertEvent.ROUND], actor=OP).cleared == 1


@pytest.mark.slow
def test_accuracy_drop_between_rounds_fires_after_the_round(wb, receiver, monkeypatch):
    """Two real rounds: the second is trained on flipped labels, so its eval accuracy collapses."""
    hook = receiver()
    monkeypatch.setenv("TEAM_HOOK", hook.url)
    project = wb.projects.create("acc", "text", ["good", "bad"], settings={"eval_fraction": 0.0}, actor=OP)
    from tests.helpers import add_text_items

    words = {"good": "great lovely fine wonderful happy", "bad": "awful terrible poor horrible sad"}
    texts = [f"{words['good' if i % 2 else 'bad']} number {i}" for i in range(60)]
    add_text_items(wb.engine, project.id, texts, eval_fraction=0.4, seed=3)
    truth = {f"t{i}": "good" if i % 2 else "bad" for i in range(60)}
    set_final_labels(wb.engine, project.id, truth)
    wb.alerts.add_rule("acc", "accuracy_drop", webhook_env="TEAM_HOOK", actor=OP)
    first = wb.rounds.run_retrain("acc", actor=OP)
    assert first.metrics.accuracy > 0.9
    assert wb.alerts.run_check("acc", events=[AlertEvent.ROUND], actor=OP).unknown  # one round: nothing to compare
    with Session(wb.engine) as session:  # flip only the pool labels: the eval split keeps the truth
        pool = set(session.execute(text("SELECT external_id FROM item WHERE split = 'pool'")).scalars())
    set_final_labels(
        wb.engine, project.id, {k: ("bad" if v == "good" else "good") for k, v in truth.items() if k in pool}
    )
    second = wb.rounds.run_retrain("acc", actor=OP)
    assert second.metrics.accuracy < 0.5
    queued = [j for j in _alert_jobs(wb.engine, project.id) if j.state == JobState.QUEUED]
    assert len(queued) == 1 and queued[0].payload == {"events": ["round"]}  # the round queued the check
    result = wb.alerts.run_check("acc", actor=OP, job_id=queued[0].id)
    assert (result.fired, result.sent) == (1, 1)
    assert "eval accuracy fell from" in hook.received[0][2]["text"]
    assert wb.jobs.get(queued[0].id, actor=OP).state == JobState.DONE


def test_drift_at_import_fires_through_the_worker(wb, db_url, receiver, monkeypatch, tmp_path):
    from workbench.worker import run_worker

    hook = receiver()
    monkeypatch.setenv("TEAM_HOOK", hook.url)
    wb.projects.create("dr", "text", ["a", "b"], actor=OP)
    first = tmp_path / "first.csv"
    first.write_text("id,text\n" + "".join(f"x{i},the cat sat on the mat {i}\n" for i in range(60)))
    wb.imports.run("dr", first, actor=OP)
    set_final_labels(wb.engine, wb.projects.get("dr", actor=OP).id, {f"x{i}": "ab"[i % 2] for i in range(60)})
    wb.versions.create("dr", actor=OP)
    wb.alerts.add_rule("dr", "drift", webhook_env="TEAM_HOOK", actor=OP)
    second = tmp_path / "second.csv"
    second.write_text(
        "id,text\n"
        + "".join(
            f"y{i},quarterly revenue guidance exceeded analyst consensus estimates by a wide margin again {i}\n"
            for i in range(60)
        )
    )
    wb.imports.run("dr", second, actor=OP)
    assert run_worker(db_url, once=True) == 1  # the alert job the import queued
    assert len(hook.received) == 1
    assert "the newest import drifted" in hook.received[0][2]["text"]


# -- channels: retry, dead channels, test --------------------------------------------------------
def test_a_failing_webhook_is_retried_with_backoff_by_the_worker(wb, db_url, receiver, monkeypatch):
    import workbench.worker as worker

    hook = receiver([500])  # the first attempt gets a 500, the next a 200
    monkeypatch.setenv("TEAM_HOOK", hook.url)
    monkeypatch.setenv("WORKBENCH_ALERT_RETRY_S", "0.5")
    monkeypatch.setattr(worker, "ALERT_RETRY_CHECK_S", 0.1)
    project, reviewer = _review_project(wb)
    _age_annotations(wb.engine, project.id, hours=5)
    wb.alerts.add_rule("al", "review_age", threshold=1, webhook_env="TEAM_HOOK", actor=OP)
    wb.review.adjudicate(
        wb.review.queue("al", actor=reviewer)[0].item_id, "label", label="cat", reason="x", actor=reviewer
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_worker, args=(db_url,), kwargs={"stop": stop, "poll_s": 0.05})
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(hook.received) < 2:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=30)
    (delivery,) = wb.alerts.deliveries("al", actor=OP)
    assert delivery.state == DeliveryState.SENT
    assert [(a.number, a.ok, a.result) for a in delivery.attempt_log] == [
        (1, False, "HTTP 500: ok"),
        (2, True, "HTTP 200"),
    ]
    gap = (delivery.attempt_log[1].at - delivery.attempt_log[0].at).total_seconds()
    assert gap >= 0.5  # it waited for the backoff
    assert hook.received[1][0] - hook.received[0][0] >= 0.5


def test_a_delivery_gives_up_after_its_attempts(wb, receiver, monkeypatch):
    hook = receiver([503, 503, 503])
    monkeypatch.setenv("TEAM_HOOK", hook.url)
    monkeypatch.setenv("WORKBENCH_ALERT_RETRY_S", "0.2")
    monkeypatch.setenv("WORKBENCH_ALERT_ATTEMPTS", "2")
    project, _ = _review_project(wb)
    _age_annotations(wb.engine, project.id, hours=5)
    wb.alerts.add_rule("al", "review_age", threshold=1, webhook_env="TEAM_HOOK", actor=OP)
    wb.alerts.run_check("al", events=[AlertEvent.REVIEW], actor=OP)
    (pending,) = wb.alerts.deliveries("al", actor=OP)
    assert (pending.state, pending.attempts) == (DeliveryState.PENDING, 1)
    assert wb.alerts.run_check("al", events=[AlertEvent.RETRY], actor=OP).failed == 0  # not due yet
    assert wb.alerts.queue_due(actor=OP) == []
    time.sleep(0.25)
    assert wb.alerts.queue_due(actor=OP) == [project.id]  # the worker would queue this check now
    assert wb.alerts.run_check("al", events=[AlertEvent.RETRY], actor=OP).failed == 1
    (given_up,) = wb.alerts.deliveries("al", actor=OP)
    assert (given_up.state, given_up.attempts, given_up.next_attempt_at) == (DeliveryState.FAILED, 2, None)
    assert len(hook.received) == 2


def test_a_dead_webhook_never_blocks_the_import_or_the_adjudication(wb, hanging, monkeypatch, tmp_path, capsys):
    """The actions return before any delivery is attempted: they only queue a job (structural),
    and the worker's attempt then times out, is logged and is scheduled again."""
    monkeypatch.setenv("DEAD_HOOK", hanging)
    monkeypatch.setenv("WORKBENCH_ALERT_TIMEOUT_S", "1")
    project, reviewer = _review_project(wb)
    wb.projects.create("plain", "text", ["cat", "dog"], actor=OP)  # the same import without rules
    _age_annotations(wb.engine, project.id, hours=5)
    wb.alerts.add_rule("al", "review_age", threshold=1, webhook_env="DEAD_HOOK", actor=OP)
    rows = tmp_path / "rows.csv"
    rows.write_text("id,text\n" + "".join(f"n{i},some new text {i}\n" for i in range(200)))

    timings = {}
    for name in ("plain", "al"):
        started = time.perf_counter()
        wb.imports.run(name, rows, actor=OP)
        timings[name] = time.perf_counter() - started
    started = time.perf_counter()
    wb.review.adjudicate(
        wb.review.queue("al", actor=reviewer)[0].item_id, "label", label="cat", reason="x", actor=reviewer
    )
    timings["adjudicate"] = time.perf_counter() - started
    # Structural: when the actions returned, nothing had been attempted; one check waits for the worker.
    assert _attempts(wb.engine) == 0
    (job,) = _alert_jobs(wb.engine, project.id)
    assert job.state == JobState.QUEUED and job.payload == {"events": ["import", "review"]}  # one check for both

    started = time.perf_counter()
    result = wb.alerts.run_check("al", actor=OP, job_id=job.id)  # the worker's side
    waited = time.perf_counter() - started
    assert (result.fired, result.sent, result.failed) == (1, 0, 1)
    (delivery,) = wb.alerts.deliveries("al", actor=OP)
    assert delivery.state == DeliveryState.PENDING and delivery.next_attempt_at > utcnow()
    assert delivery.attempt_log[0].result == "timed out after 1 s"
    with capsys.disabled():
        print(
            f"\n[dead webhook] import 200 rows: {timings['al']:.3f} s with the rule, {timings['plain']:.3f} s "
            f"without (ratio {timings['al'] / timings['plain']:.2f}); adjudicate {timings['adjudicate'] * 1000:.0f} ms;"
            f" the worker's attempt took {waited:.2f} s"
        )


def test_alert_test_sends_through_each_channel_and_prints_one_line(db_url, receiver, smtp, capsys):
    from workbench.services import Workbench

    hook = receiver()
    wb = Workbench.open(db_url)
    wb.projects.create("t", "text", ["a", "b"], actor=OP)
    code = cli(["--database-url", db_url, "alert", "test", "t", "--webhook", hook.url, "--email", "me@example.org"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    port = hook.url.split(":")[2].split("/")[0]
    assert lines[0].startswith(f"webhook http://127.0.0.1:{port}: sent (HTTP 200, ")
    assert lines[1].startswith("email me@example.org: sent (250 accepted for me@example.org, ")
    assert len(lines) == 2
    assert hook.received[0][2]["workbench"]["kind"] == "test"
    assert smtp[0][1]["Subject"] == "[workbench] t: test alert"

    # A dead channel: a failed line, exit 1, and the failure is in the log.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/x"
    assert cli(["--database-url", db_url, "alert", "test", "t", "--webhook", closed]) == 1
    (line,) = capsys.readouterr().out.strip().splitlines()
    assert line.startswith("webhook http://127.0.0.1:") and ": failed (" in line and "refused" in line.lower()

    # No secret reached the database: not the URL's token, not the SMTP password.
    with wb.engine.connect() as conn:
        dump = " ".join(
            str(row)
            for table in ("alert_delivery", "alert_attempt", "audit_log", "job")
            for row in conn.execute(text(f"SELECT * FROM {table}"))
        )
    assert "T0KEN-SECRET-123" not in dump and "smtp-pass-word" not in dump
    wb.engine.dispose()


def test_alert_commands_add_list_remove(db_url, receiver, capsys, monkeypatch):
    from workbench.services import Workbench

    wb = Workbench.open(db_url)
    wb.projects.create("c", "text", ["a", "b"], actor=OP)
    wb.engine.dispose()
    base = ["--database-url", db_url, "alert"]
    assert cli([*base, "add", "c", "review_age", "--threshold", "6", "--webhook-env", "TEAM_HOOK"]) == 0
    assert capsys.readouterr().out.strip() == "rule 1: review_age threshold 6 -> webhook $TEAM_HOOK"
    assert cli([*base, "add", "c", "agreement", "--webhook-env", "https://x.example/T"]) == 1
    assert "not the URL" in capsys.readouterr().err
    hook = receiver()
    monkeypatch.setenv("TEAM_HOOK", hook.url)
    assert cli([*base, "test", "c"]) == 0  # no option: the rules' channels
    assert capsys.readouterr().out.startswith("webhook $TEAM_HOOK: sent (HTTP 200")
    assert cli([*base, "list", "c"]) == 0
    out = capsys.readouterr().out
    assert "1\treview_age\t6\twebhook $TEAM_HOOK\tok" in out
    assert "test\twebhook $TEAM_HOOK\tsent after 1 attempt(s): HTTP 200" in out
    assert cli([*base, "remove", "c", "1"]) == 0
    assert cli([*base, "list", "c", "--deliveries", "0"]) == 0
    assert capsys.readouterr().out.strip().endswith("no alert rules in c")


# -- the admin view ----------------------------------------------------------------------------
def test_overview_shows_rules_and_deliveries_to_an_admin(uwb, receiver, monkeypatch):
    from tests.test_ui_support import go, seed_basic, sign_in

    hook = receiver([500])
    monkeypatch.setenv("TEAM_HOOK", hook.url)
    seed_basic(uwb)
    at = go(sign_in("admin"), "overview")
    assert any("No alert rules yet" in c.value for c in at.caption)
    uwb.alerts.add_rule("demo", "review_age", threshold=12, webhook_env="TEAM_HOOK", actor=OP)
    uwb.alerts.send_test("demo", actor=OP)  # the 500: a failed delivery in the log
    uwb.alerts.send_test("demo", actor=OP)
    at = go(sign_in("admin"), "overview")
    rules = next(d.value for d in at.dataframe if "watches" in d.value.columns)
    assert rules.to_dict("records") == [
        {
            "rule": 1,
            "watches": "an item waiting in review for longer than the threshold, in hours",
            "threshold": "12",
            "channels": "webhook $TEAM_HOOK",
            "now": "ok",
        }
    ]
    log = next(d.value for d in at.dataframe if "last result" in d.value.columns)
    assert log[["alert", "channel", "state", "last result"]].to_dict("records") == [
        {
            "alert": "test alert",
            "channel": "webhook $TEAM_HOOK",
            "state": "sent (1 attempt)",
            "last result": "HTTP 200",
        },
        {
            "alert": "test alert",
            "channel": "webhook $TEAM_HOOK",
            "state": "failed (1 attempt)",
            "last result": "HTTP 500: ok",
        },
    ]
    assert any("Latest 2 deliveries; 1 not delivered (yet)." == c.value for c in at.caption)
