"""Alerts: the rules a project watches, the channels they go out on, and what a delivery did.

A rule watches one condition with one threshold. A condition has a subject (an annotator for the
quality rule, else the project as a whole); each (rule, subject) fires once when the condition
starts to hold and is silent until it clears. Deliveries are durable rows the worker sends, with
every attempt logged.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from workbench.errors import WorkbenchError


class AlertKind(StrEnum):
    AGREEMENT = "agreement"  # Krippendorff's alpha below the threshold
    ACCURACY_DROP = "accuracy_drop"  # eval accuracy fell by more than its interval (plus the threshold)
    DRIFT = "drift"  # drift at import: a drifted feature, or a domain-classifier AUC above the threshold
    ANNOTATOR = "annotator"  # an annotator flagged by the quality estimate (or below the threshold accuracy)
    REVIEW_AGE = "review_age"  # an item has waited in review longer than the threshold, in hours
    TEST = "test"  # `workbench alert test`: no rule, no condition

    @property
    def describe(self) -> str:
        return _DESCRIBE[self]


_DESCRIBE = {
    AlertKind.AGREEMENT: "Krippendorff's alpha below the threshold",
    AlertKind.ACCURACY_DROP: "eval accuracy fell by more than its 95% interval plus the threshold since the last round",
    AlertKind.DRIFT: "drift in an import: a drifted feature, or a domain-classifier AUC above the threshold",
    AlertKind.ANNOTATOR: "an annotator flagged by the quality estimate, or with accuracy below the threshold",
    AlertKind.REVIEW_AGE: "an item waiting in review for longer than the threshold, in hours",
    AlertKind.TEST: "a test alert",
}

# (lowest, highest, default) of each rule kind's threshold.
THRESHOLDS: dict[AlertKind, tuple[float, float, float]] = {
    AlertKind.AGREEMENT: (-1.0, 1.0, 0.667),
    AlertKind.ACCURACY_DROP: (0.0, 1.0, 0.0),
    AlertKind.DRIFT: (0.5, 1.0, 0.6),
    AlertKind.ANNOTATOR: (0.0, 1.0, 0.0),
    AlertKind.REVIEW_AGE: (0.001, 24.0 * 365, 24.0),
}

RULE_KINDS = tuple(k for k in AlertKind if k is not AlertKind.TEST)


class AlertChannel(StrEnum):
    WEBHOOK = "webhook"  # a JSON POST with a Slack-compatible payload
    EMAIL = "email"  # a message over SMTP


class AlertEvent(StrEnum):
    """What asked for the rules to be evaluated."""

    ROUND = "round"
    IMPORT = "import"
    REVIEW = "review"
    RETRY = "retry"  # only deliveries were due; conditions are evaluated all the same


class DeliveryState(StrEnum):
    PENDING = "pending"  # waiting for its (next) attempt
    SENT = "sent"
    FAILED = "failed"  # gave up after its attempts


ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")


def parse_kind(value: AlertKind | str) -> AlertKind:
    try:
        kind = AlertKind(value)
    except ValueError:
        kind = None
    if kind is None or kind is AlertKind.TEST:
        raise WorkbenchError(f"unknown alert kind {value!r}; use one of: {', '.join(RULE_KINDS)}")
    return kind


def check_threshold(kind: AlertKind, threshold: float | None) -> float:
    low, high, default = THRESHOLDS[kind]
    value = default if threshold is None else float(threshold)
    if not low <= value <= high:
        raise WorkbenchError(f"a {kind.value} threshold is between {low:g} and {high:g}; got {value:g}")
    return value


def check_channels(webhook_env: str | None, email_to: str | None) -> tuple[str | None, str | None]:
    """The channels of a rule: the NAME of an environment variable holding the webhook URL (the URL
    carries a token, so it is never stored), and an e-mail address; at least one."""
    webhook_env = (webhook_env or "").strip() or None
    email_to = (email_to or "").strip() or None
    if webhook_env is None and email_to is None:
        raise WorkbenchError("a rule needs a channel: --webhook-env VAR (the variable holding the URL) or --email")
    if webhook_env is not None:
        if "://" in webhook_env:
            raise WorkbenchError(
                "give the NAME of an environment variable holding the webhook URL, not the URL "
                "(its token would be stored in the database)"
            )
        if not ENV_NAME.match(webhook_env):
            raise WorkbenchError(f"{webhook_env!r} is not an environment variable name")
    if email_to is not None and not EMAIL.match(email_to):
        raise WorkbenchError(f"{email_to!r} is not an e-mail address")
    return webhook_env, email_to


@dataclass(frozen=True)
class AlertRuleInfo:
    id: int
    project: str
    kind: AlertKind
    threshold: float
    webhook_env: str | None
    email_to: str | None
    enabled: bool
    created_at: datetime
    active: tuple[str, ...] = ()  # subjects whose condition holds now ("" is the project itself)

    @property
    def channels(self) -> str:
        parts = ([f"webhook ${self.webhook_env}"] if self.webhook_env else []) + (
            [f"email {self.email_to}"] if self.email_to else []
        )
        return ", ".join(parts)


@dataclass(frozen=True)
class AttemptInfo:
    number: int
    at: datetime
    ok: bool
    result: str
    duration_ms: float


@dataclass(frozen=True)
class DeliveryInfo:
    id: int
    project: str
    rule_id: int | None
    kind: AlertKind
    channel: AlertChannel
    target: str  # "$VAR" for a rule's webhook, the host for a test URL, the address for e-mail
    subject: str
    text: str
    state: DeliveryState
    attempts: int
    last_result: str
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None
    attempt_log: tuple[AttemptInfo, ...] = ()


@dataclass(frozen=True)
class Firing:
    """One condition that started to hold: what the message says."""

    kind: AlertKind
    subject: str  # "" for the project, else e.g. the annotator's name
    value: float | None
    threshold: float | None
    title: str
    detail: str
    event: AlertEvent | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertJobResult:
    """What one alert check did: conditions that fired and cleared, and deliveries attempted."""

    fired: int = 0
    cleared: int = 0
    sent: int = 0
    failed: int = 0  # attempts that failed (a retry is scheduled, or the delivery gave up)
    unknown: tuple[str, ...] = ()  # rules that could not be evaluated now, with why

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlertJobResult:
        names = {f.name for f in fields(cls)}
        data = {k: v for k, v in (data or {}).items() if k in names}
        data["unknown"] = tuple(data.get("unknown") or ())
        return cls(**data)
