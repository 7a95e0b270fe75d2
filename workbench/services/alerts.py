"""Alerts: rules per project, evaluated by the worker after every round, import and review batch,
and delivered by the worker on a webhook or by e-mail, retried with backoff, every attempt logged.

The actions that raise alerts (rounds, imports, adjudications) only call :func:`queue_check` once
their own transaction has committed: one indexed read when the project has no rule, else one small
write that queues an ``alert`` job (or adds the event to the one already queued, so a burst of
adjudications is checked once). The worker runs the job: it evaluates the rules, records which
conditions hold (an alert fires when its condition starts to hold, and not again until it clears),
writes one delivery row per channel, and attempts the due deliveries. A failed attempt is retried
after WORKBENCH_ALERT_RETRY_S (default 30 s) doubling each time, up to WORKBENCH_ALERT_ATTEMPTS
(default 5); the worker queues a check whenever a retry is due. Nothing an action waits for ever
touches the network.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, overload

from sqlalchemy import Engine, delete, func, select, update
from sqlmodel import Session, col

from workbench.db.models import (
    AlertAttempt,
    AlertDelivery,
    AlertRule,
    AlertState,
    Annotation,
    Item,
    Job,
    ModelRun,
    utcnow,
)
from workbench.domain import Actor, AnnotationSource, ItemState, JobKind, JobState, ProjectInfo, Role
from workbench.domain.alerts import (
    AlertChannel,
    AlertEvent,
    AlertJobResult,
    AlertKind,
    AlertRuleInfo,
    AttemptInfo,
    DeliveryInfo,
    DeliveryState,
    Firing,
    check_channels,
    check_threshold,
    parse_kind,
)
from workbench.domain.rounds import EvalMetrics
from workbench.errors import NotFound, WorkbenchError
from workbench.services._auth import requires
from workbench.services._channels import Sent, post_webhook, send_email, timeout_s, url_host
from workbench.services._tx import audit, reading, write
from workbench.services.projects import load_project, load_project_by_id

log = logging.getLogger("workbench.alerts")

DEFAULT_RETRY_S = 30.0
DEFAULT_ATTEMPTS = 5
MAX_BACKOFF_S = 3600.0
CLAIM_BATCH = 50


def retry_base_s() -> float:
    return float(os.environ.get("WORKBENCH_ALERT_RETRY_S") or DEFAULT_RETRY_S)


def max_attempts() -> int:
    return max(1, int(os.environ.get("WORKBENCH_ALERT_ATTEMPTS") or DEFAULT_ATTEMPTS))


def backoff_s(attempts: int) -> float:
    """The wait before the next attempt, after `attempts` failed ones: base, 2×base, 4×base, …"""
    return min(retry_base_s() * 2 ** max(0, attempts - 1), MAX_BACKOFF_S)


@overload
def _aware(value: datetime) -> datetime: ...
@overload
def _aware(value: None) -> None: ...
def _aware(value: datetime | None) -> datetime | None:
    from datetime import UTC

    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


# -- the hook the actions call -----------------------------------------------------------------
def _queue(session: Session, project_id: int, events: Iterable[AlertEvent]) -> int:
    """Queue an alert check for the project (merging into a queued one); returns its job id."""
    wanted = {AlertEvent(e).value for e in events}
    job = session.execute(
        select(Job)
        .where(col(Job.project_id) == project_id, col(Job.kind) == JobKind.ALERT, col(Job.state) == JobState.QUEUED)
        .limit(1)
        .with_for_update()
    ).scalar_one_or_none()
    if job is not None:
        merged = sorted(wanted | set((job.payload or {}).get("events") or ()))
        if merged != (job.payload or {}).get("events"):
            job.payload = {"events": merged}
        assert job.id is not None  # a loaded row
        return job.id
    job = Job(project_id=project_id, kind=JobKind.ALERT, payload={"events": sorted(wanted)}, message="queued")
    session.add(job)
    session.flush()
    assert job.id is not None  # flushed
    return job.id


def queue_check(engine: Engine, project_id: int, event: AlertEvent) -> int | None:
    """After an action has committed: queue an alert check when the project has a rule. Never
    raises (an alert must not fail the action that raised it); returns the job id, or None."""
    try:
        with reading(engine) as session:
            has_rule = session.execute(
                select(col(AlertRule.id))
                .where(col(AlertRule.project_id) == project_id, col(AlertRule.enabled).is_(True))
                .limit(1)
            ).first()
        if has_rule is None:
            return None
        return write(engine, lambda session: _queue(session, project_id, [event]))
    except Exception as exc:  # the action is committed; the next event checks again
        log.warning("could not queue an alert check for project %s: %s: %s", project_id, type(exc).__name__, exc)
        return None


# -- conditions --------------------------------------------------------------------------------
class _Unknown(Exception):
    """The rule cannot be evaluated now (no data yet): its state is left as it is."""


def _agreement(engine: Engine, project: ProjectInfo, threshold: float) -> list[tuple[str, bool, Firing]]:
    from workbench.services.agreement import AgreementService

    report = AgreementService(engine).report(project.name, actor=Actor.operator())
    alpha = report.krippendorff_alpha
    if alpha is None:
        raise _Unknown("no item is labeled twice yet")
    firing = Firing(
        AlertKind.AGREEMENT,
        "",
        alpha,
        threshold,
        f"Krippendorff's alpha {alpha:.3f} is below {threshold:.3f}",
        f"{report.n_paired_items} item(s) labeled twice or more by {report.n_annotators} annotator(s).",
        fields={"alpha": round(alpha, 4), "items labeled twice": report.n_paired_items},
    )
    return [("", alpha < threshold, firing)]


def _accuracy_drop(engine: Engine, project: ProjectInfo, threshold: float) -> list[tuple[str, bool, Firing]]:
    with reading(engine) as session:
        rows = session.execute(
            select(col(ModelRun.id), col(ModelRun.metrics))
            .where(col(ModelRun.project_id) == project.id)
            .order_by(col(ModelRun.id).desc())
        ).all()
    runs = [(run_id, m) for run_id, m in ((r, EvalMetrics.from_json(raw)) for r, raw in rows) if m.evaluated][:2]
    if len(runs) < 2:
        raise _Unknown("fewer than two evaluated rounds")
    (last_id, last), (prev_id, prev) = runs
    assert last.accuracy is not None and prev.accuracy is not None  # both evaluated
    upper = last.accuracy_ci95[1] if last.accuracy_ci95 else last.accuracy
    margin = max(0.0, upper - last.accuracy)
    drop = prev.accuracy - last.accuracy
    firing = Firing(
        AlertKind.ACCURACY_DROP,
        "",
        drop,
        threshold,
        f"eval accuracy fell from {prev.accuracy:.1%} to {last.accuracy:.1%} (run {prev_id} to run {last_id})",
        f"The drop of {drop:.1%} is more than the new run's interval ({margin:.1%} above its accuracy)"
        + (f" plus the threshold {threshold:.1%}." if threshold else "."),
        fields={
            "previous accuracy": round(prev.accuracy, 4),
            "accuracy": round(last.accuracy, 4),
            "95% interval": [round(v, 4) for v in last.accuracy_ci95] if last.accuracy_ci95 else None,
            "run": last_id,
        },
    )
    return [("", drop > margin + threshold, firing)]


def _drift(engine: Engine, project: ProjectInfo, threshold: float) -> list[tuple[str, bool, Firing]]:
    from workbench.services.health import HealthService

    try:
        report = HealthService(engine).drift(project.name, actor=Actor.operator())
    except WorkbenchError as exc:
        raise _Unknown(str(exc)) from None
    auc = report.domain_auc
    holds = bool(report.drifted_features) or (auc is not None and auc > threshold)
    features = ", ".join(report.drifted_features) or "no single feature"
    firing = Firing(
        AlertKind.DRIFT,
        "",
        auc,
        threshold,
        f"the newest import drifted from the latest version ({features})",
        f"{report.n_new} new item(s) against {report.n_reference}; domain-classifier AUC "
        + ("—" if auc is None else f"{auc:.3f}")
        + f" (threshold {threshold:.2f}).",
        fields={"drifted features": list(report.drifted_features), "domain AUC": auc, "new items": report.n_new},
    )
    return [("", holds, firing)]


def _annotators(engine: Engine, project: ProjectInfo, threshold: float) -> list[tuple[str, bool, Firing]]:
    from workbench.services.quality import MIN_LABELS_TO_FLAG, QualityService

    out = []
    for a in QualityService(engine).stored(project.name, actor=Actor.operator()):
        low = a.n_labels >= MIN_LABELS_TO_FLAG and a.accuracy is not None and a.accuracy < threshold
        interval = "" if a.accuracy_low is None else f" (95% interval {a.accuracy_low:.3f}–{a.accuracy_high:.3f})"
        firing = Firing(
            AlertKind.ANNOTATOR,
            a.annotator,
            a.accuracy,
            threshold,
            f"annotator {a.annotator} is flagged as low quality"
            if a.flagged
            else f"annotator {a.annotator}'s estimated accuracy is below {threshold:.3f}",
            f"Estimated accuracy {'—' if a.accuracy is None else f'{a.accuracy:.3f}'}{interval} over "
            f"{a.n_labels} label(s). Pause them with `workbench quality {project.name} --pause {a.annotator}`.",
            fields={"annotator": a.annotator, "accuracy": a.accuracy, "labels": a.n_labels},
        )
        out.append((a.annotator, (a.flagged or low) and not a.paused, firing))
    return out


def _review_age(engine: Engine, project: ProjectInfo, threshold: float) -> list[tuple[str, bool, Firing]]:
    """How long the oldest item in review has waited since its last label."""
    with reading(engine) as session:
        waited = (
            select(col(Item.external_id), func.max(col(Annotation.created_at)).label("since"))
            .join(Annotation, col(Annotation.item_id) == col(Item.id))
            .where(
                col(Item.project_id) == project.id,
                col(Item.state) == ItemState.REVIEW,
                col(Annotation.source) == AnnotationSource.HUMAN,
            )
            .group_by(col(Item.id), col(Item.external_id))
            .subquery()
        )
        oldest = session.execute(select(waited.c.external_id, waited.c.since).order_by(waited.c.since).limit(1)).first()
        waiting = session.execute(
            select(func.count()).where(col(Item.project_id) == project.id, col(Item.state) == ItemState.REVIEW)
        ).scalar_one()
    if oldest is None:
        hours, holds, name = 0.0, False, ""
    else:
        since = _aware(oldest.since if isinstance(oldest.since, datetime) else datetime.fromisoformat(oldest.since))
        hours = (utcnow() - since).total_seconds() / 3600
        holds, name = hours > threshold, oldest.external_id
    firing = Firing(
        AlertKind.REVIEW_AGE,
        "",
        hours,
        threshold,
        f"an item has waited {hours:.1f} h in review (over {threshold:g} h)",
        f"{waiting} item(s) wait for a reviewer; the oldest is {name!r}.",
        fields={"oldest item": name, "hours": round(hours, 2), "waiting": waiting},
    )
    return [("", holds, firing)]


_CONDITIONS = {
    AlertKind.AGREEMENT: _agreement,
    AlertKind.ACCURACY_DROP: _accuracy_drop,
    AlertKind.DRIFT: _drift,
    AlertKind.ANNOTATOR: _annotators,
    AlertKind.REVIEW_AGE: _review_age,
}


# -- messages ----------------------------------------------------------------------------------
def _message(project: str, firing: Firing, rule_id: int | None) -> tuple[str, str, dict[str, Any]]:
    """(subject, text, webhook payload): Slack reads `text` and the attachment's fields; the
    `workbench` object is for machines."""
    subject = f"[workbench] {project}: {firing.title}"
    fields = {"project": project, "alert": firing.kind.value, **firing.fields}
    if firing.threshold is not None:
        fields["threshold"] = firing.threshold
    text = "\n".join([subject, "", firing.detail, ""] + [f"{k}: {v}" for k, v in fields.items()])
    payload = {
        "text": f"{subject}\n{firing.detail}",
        "attachments": [
            {
                "color": "#36a64f" if firing.kind is AlertKind.TEST else "danger",
                "title": firing.title,
                "text": firing.detail,
                "fields": [{"title": k, "value": str(v), "short": True} for k, v in fields.items()],
            }
        ],
        "workbench": {
            "project": project,
            "kind": firing.kind.value,
            "rule_id": rule_id,
            "subject": firing.subject,
            "value": firing.value,
            "threshold": firing.threshold,
            "event": firing.event.value if firing.event else None,
            "at": utcnow().isoformat(),
            "fields": firing.fields,
        },
    }
    return subject, text, payload


def _channels(rule: AlertRule) -> list[tuple[AlertChannel, str]]:
    return ([(AlertChannel.WEBHOOK, f"${rule.webhook_env}")] if rule.webhook_env else []) + (
        [(AlertChannel.EMAIL, rule.email_to)] if rule.email_to else []
    )


def _new_delivery(project: ProjectInfo, rule_id: int | None, firing: Firing, channel: AlertChannel, target: str):
    subject, text, payload = _message(project.name, firing, rule_id)
    return AlertDelivery(
        project_id=project.id,
        rule_id=rule_id,
        kind=firing.kind.value,
        channel=channel.value,
        target=target,
        subject=subject[:500],
        text=text,
        payload=payload,
        state=DeliveryState.PENDING.value,
        next_attempt_at=utcnow(),
        created_at=utcnow(),
    )


def _send(channel: str, target: str, subject: str, text: str, payload: dict, url: str | None = None) -> Sent:
    if channel == AlertChannel.WEBHOOK:
        if url is None:
            name = target.removeprefix("$")
            url = os.environ.get(name)
            if not url:
                return Sent(False, f"{name} is not set in the sender's environment", 0.0)
        return post_webhook(url, payload)
    return send_email(target, subject, text)


def _record(session: Session, delivery_id: int, sent: Sent, *, final: bool) -> None:
    """Log an attempt and move the delivery on: sent, retried later, or failed for good."""
    delivery = session.get(AlertDelivery, delivery_id, with_for_update=True)
    assert delivery is not None  # the caller created or claimed it; deliveries are not deleted meanwhile
    now = utcnow()
    delivery.attempts += 1
    session.add(
        AlertAttempt(
            delivery_id=delivery_id,
            number=delivery.attempts,
            at=now,
            ok=sent.ok,
            result=sent.result[:500],
            duration_ms=round(sent.duration_ms, 1),
        )
    )
    delivery.last_result = sent.result[:500]
    if sent.ok:
        delivery.state, delivery.delivered_at, delivery.next_attempt_at = DeliveryState.SENT.value, now, None
    elif final or delivery.attempts >= max_attempts():
        delivery.state, delivery.next_attempt_at = DeliveryState.FAILED.value, None
    else:
        delivery.next_attempt_at = now + timedelta(seconds=backoff_s(delivery.attempts))


def _delivery_info(d: AlertDelivery, project: str, attempts: Iterable[AlertAttempt] = ()) -> DeliveryInfo:
    assert d.id is not None  # a stored row
    return DeliveryInfo(
        id=d.id,
        project=project,
        rule_id=d.rule_id,
        kind=AlertKind(d.kind),
        channel=AlertChannel(d.channel),
        target=d.target,
        subject=d.subject,
        text=d.text,
        state=DeliveryState(d.state),
        attempts=d.attempts,
        last_result=d.last_result,
        created_at=d.created_at,
        delivered_at=d.delivered_at,
        next_attempt_at=d.next_attempt_at,
        attempt_log=tuple(AttemptInfo(a.number, a.at, a.ok, a.result, a.duration_ms) for a in attempts),
    )


class AlertService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- rules (admin) ---------------------------------------------------------------------------
    @requires(Role.ADMIN)
    def add_rule(
        self,
        project_name: str,
        kind: AlertKind | str,
        *,
        actor: Actor,
        threshold: float | None = None,
        webhook_env: str | None = None,
        email_to: str | None = None,
    ) -> AlertRuleInfo:
        """Watch a condition: `threshold` (the kind's default when None), and at least one channel."""
        kind = parse_kind(kind)
        value = check_threshold(kind, threshold)
        webhook_env, email_to = check_channels(webhook_env, email_to)

        def work(session: Session) -> AlertRuleInfo:
            project = load_project(session, project_name)
            rule = AlertRule(
                project_id=project.id,
                kind=kind.value,
                threshold=value,
                webhook_env=webhook_env,
                email_to=email_to,
                created_by=actor.id,
                created_at=utcnow(),
            )
            session.add(rule)
            session.flush()
            audit(
                session,
                "alert.rule_add",
                actor_id=actor.id,
                project_id=project.id,
                rule_id=rule.id,
                kind=kind.value,
                threshold=value,
                webhook_env=webhook_env,
                email_to=email_to,
            )
            return self._rule_info(rule, project.name, ())

        return write(self.engine, work)

    @requires(Role.ADMIN)
    def rules(self, project_name: str, *, actor: Actor) -> list[AlertRuleInfo]:
        """The project's rules, with the subjects whose condition holds now."""
        with reading(self.engine) as session:
            project = load_project(session, project_name)
            rules = (
                session.execute(
                    select(AlertRule).where(col(AlertRule.project_id) == project.id).order_by(col(AlertRule.id))
                )
                .scalars()
                .all()
            )
            active: dict[int, list[str]] = {}
            for rule_id, subject in session.execute(
                select(col(AlertState.rule_id), col(AlertState.subject))
                .where(col(AlertState.rule_id).in_([r.id for r in rules]), col(AlertState.active).is_(True))
                .order_by(col(AlertState.subject))
            ):
                active.setdefault(rule_id, []).append(subject)
        return [self._rule_info(r, project.name, active.get(r.id, ())) for r in rules]

    @staticmethod
    def _rule_info(rule: AlertRule, project: str, active: Iterable[str]) -> AlertRuleInfo:
        assert rule.id is not None  # a stored row
        return AlertRuleInfo(
            id=rule.id,
            project=project,
            kind=AlertKind(rule.kind),
            threshold=rule.threshold,
            webhook_env=rule.webhook_env,
            email_to=rule.email_to,
            enabled=rule.enabled,
            created_at=rule.created_at,
            active=tuple(active),
        )

    @requires(Role.ADMIN)
    def remove_rule(self, project_name: str, rule_id: int, *, actor: Actor) -> None:
        """Delete a rule and its state; its deliveries stay in the log (without the rule)."""

        def work(session: Session) -> None:
            project = load_project(session, project_name)
            rule = session.get(AlertRule, rule_id, with_for_update=True)
            if rule is None or rule.project_id != project.id:
                raise NotFound(f"project {project.name!r} has no alert rule {rule_id}")
            session.execute(delete(AlertState).where(col(AlertState.rule_id) == rule_id))
            session.execute(update(AlertDelivery).where(col(AlertDelivery.rule_id) == rule_id).values(rule_id=None))
            session.delete(rule)
            audit(session, "alert.rule_remove", actor_id=actor.id, project_id=project.id, rule_id=rule_id)

        write(self.engine, work)

    @requires(Role.ADMIN)
    def deliveries(self, project_name: str, *, actor: Actor, limit: int = 20) -> list[DeliveryInfo]:
        """The newest deliveries of the project, each with its attempts."""
        with reading(self.engine) as session:
            project = load_project(session, project_name)
            rows = (
                session.execute(
                    select(AlertDelivery)
                    .where(col(AlertDelivery.project_id) == project.id)
                    .order_by(col(AlertDelivery.id).desc())
                    .limit(limit)
                )
                .scalars()
                .all()
            )
            attempts: dict[int, list[AlertAttempt]] = {}
            for a in session.execute(
                select(AlertAttempt)
                .where(col(AlertAttempt.delivery_id).in_([d.id for d in rows]))
                .order_by(col(AlertAttempt.delivery_id), col(AlertAttempt.number))
            ).scalars():
                attempts.setdefault(a.delivery_id, []).append(a)
        return [_delivery_info(d, project.name, attempts.get(d.id, ())) for d in rows]

    # -- the worker's side -------------------------------------------------------------------------
    @requires(Role.ADMIN)
    def run_check(
        self,
        project: ProjectInfo | str | int,
        *,
        actor: Actor,
        job_id: int | None = None,
        events: Iterable[AlertEvent | str] = (),
    ) -> AlertJobResult:
        """Evaluate the project's rules (drift only after an import), fire the conditions that
        started to hold, clear those that stopped, then attempt every due delivery. A job's
        events come from its payload; the job is completed with the result."""
        with reading(self.engine) as session:
            if isinstance(project, str):
                project = load_project(session, project)
            elif isinstance(project, int):
                project = load_project_by_id(session, project)
            if job_id is not None:
                job = session.get(Job, job_id)
                events = [*events, *((job.payload or {}).get("events") or ())] if job is not None else events
            rules = (
                session.execute(
                    select(AlertRule).where(col(AlertRule.project_id) == project.id, col(AlertRule.enabled).is_(True))
                )
                .scalars()
                .all()
            )
        events = {AlertEvent(e) for e in events}
        event = next((e for e in (AlertEvent.ROUND, AlertEvent.IMPORT, AlertEvent.REVIEW) if e in events), None)
        outcomes: dict[int, list[tuple[str, bool, Firing]]] = {}
        unknown = []
        for rule in rules if event is not None else ():
            kind = AlertKind(rule.kind)
            if kind is AlertKind.DRIFT and AlertEvent.IMPORT not in events:
                continue  # drift is measured on what an import brought
            try:
                outcomes[rule.id] = _CONDITIONS[kind](self.engine, project, rule.threshold)
            except _Unknown as why:
                unknown.append(f"rule {rule.id} ({kind.value}): {why}")
            except Exception as exc:  # one broken rule must not silence the others
                log.warning("alert rule %s could not be evaluated: %s: %s", rule.id, type(exc).__name__, exc)
                unknown.append(f"rule {rule.id} ({kind.value}): {type(exc).__name__}: {exc}")

        def apply(session: Session) -> tuple[int, int]:
            fired = cleared = 0
            now = utcnow()
            locked = {
                r.id: r
                for r in session.execute(
                    select(AlertRule).where(col(AlertRule.id).in_(list(outcomes))).with_for_update()
                ).scalars()
            }
            for rule_id, conditions in outcomes.items():
                rule = locked.get(rule_id)
                if rule is None:  # removed meanwhile
                    continue
                states = {
                    s.subject: s
                    for s in session.execute(select(AlertState).where(col(AlertState.rule_id) == rule_id)).scalars()
                }
                seen = set()
                for subject, holds, firing in conditions:
                    seen.add(subject)
                    state = states.get(subject)
                    if state is None:
                        state = AlertState(rule_id=rule_id, subject=subject, active=False, checked_at=now)
                        session.add(state)
                    state.value, state.checked_at = firing.value, now
                    if holds and not state.active:
                        state.active, state.fired_at = True, now
                        fired += 1
                        for channel, target in _channels(rule):
                            session.add(_new_delivery(project, rule_id, replace(firing, event=event), channel, target))
                        audit(
                            session,
                            "alert.fired",
                            project_id=project.id,
                            rule_id=rule_id,
                            kind=rule.kind,
                            subject=subject,
                            value=firing.value,
                        )
                    elif not holds and state.active:
                        state.active, state.cleared_at = False, now
                        cleared += 1
                for subject, state in states.items():  # e.g. an annotator no longer estimated
                    if subject not in seen and state.active:
                        state.active, state.cleared_at = False, now
                        cleared += 1
            return fired, cleared

        fired, cleared = write(self.engine, apply) if outcomes else (0, 0)
        sent, failed = self._deliver_due(project)
        result = AlertJobResult(fired=fired, cleared=cleared, sent=sent, failed=failed, unknown=tuple(unknown))
        if job_id is not None:
            from workbench.services.jobs import complete_job

            write(self.engine, lambda session: complete_job(session, job_id, result))
        return result

    def _deliver_due(self, project: ProjectInfo) -> tuple[int, int]:
        """Attempt each due delivery of the project once. Each is leased first (its next attempt
        pushed past the send timeout), so two workers never send the same one at once."""
        lease = timedelta(seconds=2 * timeout_s() + 60)

        def claim(session: Session) -> list[tuple[int, str, str, str, str, dict]]:
            now = utcnow()
            rows = (
                session.execute(
                    select(AlertDelivery)
                    .where(
                        col(AlertDelivery.project_id) == project.id,
                        col(AlertDelivery.state) == DeliveryState.PENDING,
                        col(AlertDelivery.next_attempt_at) <= now,
                    )
                    .order_by(col(AlertDelivery.id))
                    .limit(CLAIM_BATCH)
                    .with_for_update(skip_locked=True)
                )
                .scalars()
                .all()
            )
            for d in rows:
                d.next_attempt_at = now + lease
            return [(d.id, d.channel, d.target, d.subject, d.text, dict(d.payload)) for d in rows]

        sent = failed = 0
        for delivery_id, channel, target, subject, text, payload in write(self.engine, claim):
            outcome = _send(channel, target, subject, text, payload)
            write(self.engine, partial(_record, delivery_id=delivery_id, sent=outcome, final=False))
            sent, failed = sent + outcome.ok, failed + (not outcome.ok)
        return sent, failed

    @requires(Role.ADMIN)
    def queue_due(self, *, actor: Actor) -> list[int]:
        """Queue an alert check for every project with a delivery due for (another) attempt; the
        worker calls this every few seconds. Returns the projects' ids."""
        with reading(self.engine) as session:
            projects = list(
                session.execute(
                    select(col(AlertDelivery.project_id))
                    .where(
                        col(AlertDelivery.state) == DeliveryState.PENDING,
                        col(AlertDelivery.next_attempt_at) <= utcnow(),
                    )
                    .distinct()
                ).scalars()
            )
        for project_id in projects:
            write(self.engine, partial(_queue, project_id=project_id, events=[AlertEvent.RETRY]))
        return projects

    # -- test -------------------------------------------------------------------------------------
    @requires(Role.ADMIN)
    def send_test(
        self, project_name: str, *, actor: Actor, webhook_url: str | None = None, email_to: str | None = None
    ) -> list[DeliveryInfo]:
        """Send a test alert now, from this process, once (no retry): to the webhook URL and/or
        address given, else through every channel of the project's rules. Each is logged."""
        if email_to is not None:
            check_channels(None, email_to)
        with reading(self.engine) as session:
            project = load_project(session, project_name)
            rules = session.execute(select(AlertRule).where(col(AlertRule.project_id) == project.id)).scalars().all()
        targets: list[tuple[AlertChannel, str, str | None]] = []
        if webhook_url:
            targets.append((AlertChannel.WEBHOOK, url_host(webhook_url), webhook_url))
        if email_to:
            targets.append((AlertChannel.EMAIL, email_to, None))
        if not targets:
            for rule in rules:
                for channel, target in _channels(rule):
                    if (channel, target, None) not in targets:
                        targets.append((channel, target, None))
        if not targets:
            raise WorkbenchError(
                f"project {project.name!r} has no alert rule to take channels from: "
                "give --webhook URL or --email ADDRESS"
            )
        firing = Firing(
            AlertKind.TEST,
            "",
            None,
            None,
            "test alert",
            f"A test alert from the Workbench for project {project.name!r}: this channel works.",
        )
        out = []
        for channel, target, url in targets:

            def create(session: Session, c=channel, t=target) -> int:
                row = _new_delivery(project, None, firing, c, t)
                session.add(row)
                session.flush()
                audit(session, "alert.test", actor_id=actor.id, project_id=project.id, channel=c.value, target=t)
                return row.id

            delivery_id = write(self.engine, create)
            with reading(self.engine) as session:
                row = session.get(AlertDelivery, delivery_id)
                assert row is not None  # created above
                message = (row.channel, row.target, row.subject, row.text, dict(row.payload))
            outcome = _send(*message, url=url)
            write(self.engine, partial(_record, delivery_id=delivery_id, sent=outcome, final=True))
            with reading(self.engine) as session:
                row = session.get(AlertDelivery, delivery_id)
                assert row is not None  # created above
                attempts = session.execute(
                    select(AlertAttempt)
                    .where(col(AlertAttempt.delivery_id) == delivery_id)
                    .order_by(col(AlertAttempt.number))
                ).scalars()
                out.append(_delivery_info(row, project.name, list(attempts)))
        return out
