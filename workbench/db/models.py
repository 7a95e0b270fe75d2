"""The schema: one set of tables for SQLite and PostgreSQL.

Invariants live in constraints as well as in the services: a race surfaces as an IntegrityError
(retryable), never as a third label or a label outside the project's label set.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Index,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Aware UTC; stored as UTC on both databases (SQLModel's UTCDateTime)."""
    return datetime.now(UTC)


def _json(**kw: Any) -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False, **kw))


class Project(SQLModel, table=True):
    __table_args__ = (
        CheckConstraint("kind IN ('text', 'tabular', 'image')", name="ck_project_kind"),
        CheckConstraint("overlap >= 1 AND overlap <= 10", name="ck_project_overlap"),
    )
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    kind: str
    overlap: int = 2
    strategy: str = "margin"
    settings: dict = _json()
    created_at: datetime = Field(default_factory=utcnow)
    # Archived: read-only (every write service refuses) and hidden from annotators and reviewers.
    archived_at: datetime | None = None
    # When an admin last changed its overlap, strategy, labels or settings (the queue's project
    # cache reloads when this moves).
    changed_at: datetime | None = None


class ProjectLabel(SQLModel, table=True):
    """The label set: annotations, adjudications and final labels reference it by foreign key.

    A retired label keeps its annotations and final labels but is no longer offered. A renamed
    label keeps its row, retired, with `renamed_to` naming the row that replaced it (the current
    name every annotation, adjudication and final label now carries; dataset versions, model runs
    and the audit log keep the name they were made with)."""

    __tablename__ = "project_label"
    project_id: int = Field(foreign_key="project.id", primary_key=True)
    name: str = Field(primary_key=True, max_length=200)
    position: int
    retired_at: datetime | None = None
    renamed_to: str | None = Field(default=None, max_length=200)


class ProjectPurge(SQLModel, table=True):
    """A permit, alive only inside the transaction that deletes a project: the append-only
    triggers let that project's audit rows and dataset versions go, and nothing else."""

    __tablename__ = "project_purge"
    project_id: int = Field(primary_key=True)


class User(SQLModel, table=True):
    __tablename__ = "app_user"
    __table_args__ = (CheckConstraint("role IN ('annotator', 'reviewer', 'admin')", name="ck_user_role"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    role: str
    password_hash: str
    active: bool = True
    failed_logins: int = 0
    locked_until: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class UserSession(SQLModel, table=True):
    """A signed-in browser: only a SHA-256 of its random token is stored, never the token.

    `bind_hash` is the hash of the browser's binding cookie while the session waits to be handed
    to that browser (sign-in happens over the app's websocket, which cannot set a cookie; the next
    page load of the same browser receives it). Revoked sessions keep their row, with the reason.
    """

    __tablename__ = "user_session"
    __table_args__ = (Index("ix_user_session_user", "user_id", "revoked_at"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id")
    token_hash: str = Field(unique=True, max_length=64)
    bind_hash: str | None = Field(default=None, unique=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = None
    revoke_reason: str | None = Field(default=None, max_length=100)


class Item(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("project_id", "external_id", name="uq_item_external_id"),
        UniqueConstraint("id", "project_id", name="uq_item_id_project"),
        ForeignKeyConstraint(["project_id", "final_label"], ["project_label.project_id", "project_label.name"]),
        CheckConstraint("split IN ('pool', 'eval')", name="ck_item_split"),
        CheckConstraint(
            "state IN ('open', 'review', 'final', 'ambiguous', 'excluded', 'quarantined')", name="ck_item_state"
        ),
        CheckConstraint("slots_taken >= 0 AND n_annotations >= 0", name="ck_item_counts"),
        # Claims find open items by taken slots, then split and a random key (control arm, eval).
        Index("ix_item_queue", "project_id", "state", "slots_taken", "split", "random_key"),
        # The item browser filters by final label or state and pages in id order.
        Index("ix_item_project_label", "project_id", "final_label", "id"),
        Index("ix_item_project_state", "project_id", "state", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id")
    external_id: str = Field(max_length=500)
    split: str = "pool"
    state: str = "open"
    content: dict = _json()
    final_label: str | None = None
    # Active leases plus human annotations: the slots of `overlap` that are spoken for.
    slots_taken: int = 0
    n_annotations: int = 0
    random_key: float = 0.0
    created_at: datetime = Field(default_factory=utcnow)
    # Adaptive overlap: how many counting labels the item wants now (None: the project's fixed overlap).
    labels_wanted: int | None = None
    # How the final label was made (agreement | majority | dawid_skene | adjudication | gold), and
    # why the item is where it is (the overlap decision, or a label issue that sent it back to review).
    final_by: str | None = Field(default=None, max_length=40)
    reason: str | None = None
    # A known answer: the item feeds annotator quality and stays out of eval metrics and rankings.
    gold_label: str | None = Field(default=None, max_length=200)
    # The Dawid-Skene posterior label and its probability (a reviewer's suggestion, never a default).
    posterior_label: str | None = Field(default=None, max_length=200)
    posterior: float | None = None


class RankEntry(SQLModel, table=True):
    """The next few thousand pool candidates of the latest ranking, best first."""

    __tablename__ = "rank_entry"
    __table_args__ = (Index("ix_rank_entry_item", "item_id"),)
    project_id: int = Field(foreign_key="project.id", primary_key=True)
    position: int = Field(primary_key=True)
    item_id: int = Field(foreign_key="item.id")
    score: float
    strategy: str
    model_run_id: int | None = Field(default=None, foreign_key="model_run.id")


class Lease(SQLModel, table=True):
    """A claim: one annotator holds one slot of one item until it is submitted, skipped or expires."""

    __table_args__ = (
        CheckConstraint("slot >= 1", name="ck_lease_slot"),
        CheckConstraint("state IN ('active', 'submitted', 'skipped', 'expired')", name="ck_lease_state"),
        Index(
            "uq_lease_active_slot",
            "item_id",
            "slot",
            unique=True,
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
        Index(
            "uq_lease_active_annotator",
            "item_id",
            "annotator_id",
            unique=True,
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
        Index("ix_lease_state_expiry", "state", "expires_at"),
        Index("ix_lease_annotator", "annotator_id", "state"),
    )
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id")
    item_id: int = Field(foreign_key="item.id")
    annotator_id: int = Field(foreign_key="app_user.id")
    slot: int
    state: str = "active"
    # Why this item was served: ranked / partial / control / eval / cold_start, and by what.
    reason: str
    strategy: str | None = None
    score: float | None = None
    model_run_id: int | None = Field(default=None, foreign_key="model_run.id")
    claimed_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    closed_at: datetime | None = None
    skip_reason: str | None = None


class Annotation(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("item_id", "annotator_id", name="uq_annotation_item_annotator"),
        UniqueConstraint("item_id", "slot", name="uq_annotation_item_slot"),
        UniqueConstraint("lease_id", name="uq_annotation_lease"),
        ForeignKeyConstraint(["item_id", "project_id"], ["item.id", "item.project_id"]),
        ForeignKeyConstraint(["project_id", "label"], ["project_label.project_id", "project_label.name"]),
        CheckConstraint(
            "(source = 'human' AND annotator_id IS NOT NULL AND slot >= 1 AND lease_id IS NOT NULL)"
            " OR (source = 'import' AND annotator_id IS NULL AND slot IS NULL AND lease_id IS NULL)",
            name="ck_annotation_source",
        ),
        Index("ix_annotation_project_annotator", "project_id", "annotator_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id")
    item_id: int
    annotator_id: int | None = Field(default=None, foreign_key="app_user.id")
    source: str = "human"
    slot: int | None = None
    lease_id: int | None = Field(default=None, foreign_key="lease.id")
    label: str
    duration_ms: int | None = None
    # The project's guidelines version when the label was given (None: the project had none).
    guidelines_version: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Guidelines(SQLModel, table=True):
    """One version of a project's labeling guidelines (Markdown) and per-label notes; never edited."""

    __table_args__ = (
        UniqueConstraint("project_id", "version", name="uq_guidelines_version"),
        CheckConstraint("version >= 1", name="ck_guidelines_version"),
    )
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id")
    version: int
    text: str
    label_notes: dict = _json()  # label -> short description
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=utcnow)


class Adjudication(SQLModel, table=True):
    __table_args__ = (
        ForeignKeyConstraint(["item_id", "project_id"], ["item.id", "item.project_id"]),
        ForeignKeyConstraint(["project_id", "label"], ["project_label.project_id", "project_label.name"]),
        CheckConstraint(
            "(decision = 'label' AND label IS NOT NULL) OR (decision IN ('ambiguous', 'excluded') AND label IS NULL)",
            name="ck_adjudication_decision",
        ),
        CheckConstraint("length(reason) > 0", name="ck_adjudication_reason"),
        Index("ix_adjudication_item", "item_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id")
    item_id: int
    reviewer_id: int = Field(foreign_key="app_user.id")
    decision: str
    label: str | None = None
    reason: str
    previous_state: str
    previous_label: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class DatasetVersion(SQLModel, table=True):
    """An immutable snapshot of final labels (update and delete are refused by triggers)."""

    __tablename__ = "dataset_version"
    __table_args__ = (UniqueConstraint("project_id", "number", name="uq_version_number"),)
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id")
    number: int
    content_hash: str = Field(max_length=64)
    trigger: str = "manual"
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    n_items: int
    manifest: dict = _json()
    created_at: datetime = Field(default_factory=utcnow)


class DatasetVersionItem(SQLModel, table=True):
    __tablename__ = "dataset_version_item"
    version_id: int = Field(foreign_key="dataset_version.id", primary_key=True)
    item_id: int = Field(foreign_key="item.id", primary_key=True)
    split: str
    label: str
    source: str  # agreed | adjudicated
    aggregation: str | None = Field(default=None, max_length=40)  # the item's final_by when frozen
    # Lineage: the annotation ids and the adjudication behind the label.
    annotation_ids: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    adjudication_id: int | None = Field(default=None, foreign_key="adjudication.id")


class ModelRun(SQLModel, table=True):
    __tablename__ = "model_run"
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id")
    version_id: int = Field(foreign_key="dataset_version.id")
    job_id: int | None = Field(default=None, foreign_key="job.id")
    config: dict = _json()
    seed: int = 0
    featurizer: str = ""
    metrics: dict = _json()
    artifact_path: str
    artifact_sha256: str = Field(max_length=64)
    duration_s: float = 0.0
    created_at: datetime = Field(default_factory=utcnow)
    # Where the run was logged after its round committed (MLflow), or why it was not: a
    # TrackingOutcome as JSON; None when tracking was off.
    tracking: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # Issue 13, stopping advice: this run against the previous one on the stop set (kappa,
    # agreement, the bound it implies) and the previous model's error on the items labeled since,
    # ranked picks against the control arm; computed by the round pipeline ({}: not computed).
    stability: dict = _json()
    # Issue 15, prediction drift: the share of each predicted label on the batch imported since the
    # previous round against the eval split, with the chi-square test ({}: not measured).
    prediction_drift: dict = _json()


class StopPrediction(SQLModel, table=True):
    """A model run's predicted label for each item of the project's stop set (a fixed random set
    of pool items): successive runs are compared on it (Cohen's kappa) to tell when more labels
    stop changing the model."""

    __tablename__ = "stop_prediction"
    model_run_id: int = Field(foreign_key="model_run.id", primary_key=True)
    item_id: int = Field(foreign_key="item.id", primary_key=True)
    predicted: str


class EvalPrediction(SQLModel, table=True):
    """A model run's predicted label for each eval-split item, written with the run: runs are
    compared from these on the items labeled now, without loading models in the app."""

    __tablename__ = "eval_prediction"
    model_run_id: int = Field(foreign_key="model_run.id", primary_key=True)
    item_id: int = Field(foreign_key="item.id", primary_key=True)
    predicted: str


class ItemPrediction(SQLModel, table=True):
    """The latest model run's predicted label and its probability (the largest class probability)
    for each item that round scored (pool and eval), replaced whole for the project by every round
    that trains a model: the item browser filters on it and prediction drift counts it."""

    __tablename__ = "item_prediction"
    __table_args__ = (
        # The browser's filter: one predicted label, a confidence range, paged in id order (covering).
        Index("ix_item_prediction_filter", "project_id", "predicted", "item_id", "confidence"),
        # A narrow confidence range: a range scan, then the few matching ids.
        Index("ix_item_prediction_confidence", "project_id", "predicted", "confidence"),
    )
    item_id: int = Field(foreign_key="item.id", primary_key=True)
    project_id: int = Field(foreign_key="project.id")
    model_run_id: int = Field(foreign_key="model_run.id")
    predicted: str = Field(max_length=200)
    confidence: float


class Job(SQLModel, table=True):
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name="ck_job_state"),
        Index("ix_job_state", "state", "created_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id")
    kind: str
    state: str = "queued"
    progress: float = 0.0
    message: str = ""
    error: str | None = None
    payload: dict = _json()
    result: dict = _json()
    attempts: int = 0
    worker: str | None = None
    requested_by: int | None = Field(default=None, foreign_key="app_user.id")
    heartbeat_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class Quarantine(SQLModel, table=True):
    """An item taken out of the queue and the rounds because it cannot be shown or featurized
    (a broken or hostile image found at run time): why, who reported it, the state to go back to."""

    __table_args__ = (
        CheckConstraint("source IN ('render', 'featurize', 'admin')", name="ck_quarantine_source"),
        Index("ix_quarantine_project", "project_id", "released_at"),
        Index("ix_quarantine_item", "item_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id")
    item_id: int = Field(foreign_key="item.id")
    reason: str = Field(max_length=1000)
    source: str
    previous_state: str
    reported_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    released_at: datetime | None = None


class AuditLog(SQLModel, table=True):
    """Append-only (update and delete are refused by triggers)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_project_item", "project_id", "item_id"),)
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    actor_id: int | None = Field(default=None, foreign_key="app_user.id")
    project_id: int | None = Field(default=None, foreign_key="project.id")
    item_id: int | None = None
    action: str
    details: dict = _json()


class ItemFlag(SQLModel, table=True):
    """Why the health check flagged an item (duplicate, near duplicate, leakage, outlier, PII)."""

    __tablename__ = "item_flag"
    __table_args__ = (
        UniqueConstraint("item_id", "kind", name="uq_item_flag_kind"),
        Index("ix_item_flag_project_kind", "project_id", "kind"),
    )
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id")
    item_id: int = Field(foreign_key="item.id")
    kind: str = Field(max_length=40)
    reason: str
    created_at: datetime = Field(default_factory=utcnow)


class WorkerProcess(SQLModel, table=True):
    """A registered worker process and its liveness heartbeat (so `retrain --wait` can tell
    whether anyone will run a queued round, and a dead worker's jobs can be found)."""

    __tablename__ = "worker_process"
    name: str = Field(primary_key=True, max_length=200)
    host: str = Field(max_length=200)
    pid: int
    job_id: int | None = None
    started_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime = Field(default_factory=utcnow)


class AnnotatorQuality(SQLModel, table=True):
    """Each annotator's estimated quality in a project (Dawid-Skene, refreshed after every round
    and on demand), and whether an admin paused them (their labels then stop counting)."""

    __tablename__ = "annotator_quality"
    project_id: int = Field(foreign_key="project.id", primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", primary_key=True)
    n_labels: int = 0
    n_checked: int = 0  # labels on items with another label or a gold answer
    accuracy: float | None = None
    accuracy_low: float | None = None
    accuracy_high: float | None = None
    reliability: float | None = None  # what the overlap policy uses (shrunk toward the prior)
    n_gold: int = 0
    gold_accuracy: float | None = None
    n_adjudicated: int = 0
    adjudication_agreement: float | None = None
    flagged: bool = False
    confusion: dict = _json()
    paused: bool = False
    paused_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class AlertRule(SQLModel, table=True):
    """A condition a project watches, with its threshold and channels. The webhook is named by the
    environment variable that holds its URL (the URL carries a token): no secret is stored here."""

    __tablename__ = "alert_rule"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('agreement', 'accuracy_drop', 'drift', 'annotator', 'review_age')", name="ck_alert_rule_kind"
        ),
        CheckConstraint("webhook_env IS NOT NULL OR email_to IS NOT NULL", name="ck_alert_rule_channel"),
        Index("ix_alert_rule_project", "project_id", "enabled"),
    )
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id")
    kind: str = Field(max_length=40)
    threshold: float
    webhook_env: str | None = Field(default=None, max_length=200)
    email_to: str | None = Field(default=None, max_length=320)
    enabled: bool = True
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=utcnow)


class AlertState(SQLModel, table=True):
    """Whether a rule's condition holds for a subject ("" is the project; an annotator's name for the
    quality rule): an alert fires when it starts to hold and not again until it has cleared."""

    __tablename__ = "alert_state"
    rule_id: int = Field(foreign_key="alert_rule.id", primary_key=True)
    subject: str = Field(primary_key=True, max_length=200)
    active: bool = False
    value: float | None = None
    fired_at: datetime | None = None
    cleared_at: datetime | None = None
    checked_at: datetime = Field(default_factory=utcnow)


class AlertDelivery(SQLModel, table=True):
    """One message on one channel, sent by the worker and retried with backoff. `target` names
    where it goes without a secret: "$VAR" for a webhook, the address for e-mail."""

    __tablename__ = "alert_delivery"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'sent', 'failed')", name="ck_alert_delivery_state"),
        CheckConstraint("channel IN ('webhook', 'email')", name="ck_alert_delivery_channel"),
        Index("ix_alert_delivery_due", "state", "next_attempt_at"),
        Index("ix_alert_delivery_project", "project_id", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id")
    rule_id: int | None = Field(default=None, foreign_key="alert_rule.id")
    kind: str = Field(max_length=40)
    channel: str = Field(max_length=20)
    target: str = Field(max_length=320)
    subject: str = Field(max_length=500)
    text: str
    payload: dict = _json()
    state: str = "pending"
    attempts: int = 0
    last_result: str = ""
    next_attempt_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None


class AlertAttempt(SQLModel, table=True):
    """Every attempt to deliver an alert, with its result (an HTTP status, an SMTP reply, an error)."""

    __tablename__ = "alert_attempt"
    __table_args__ = (UniqueConstraint("delivery_id", "number", name="uq_alert_attempt_number"),)
    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="alert_delivery.id")
    number: int
    at: datetime = Field(default_factory=utcnow)
    ok: bool
    result: str = Field(max_length=500)
    duration_ms: float = 0.0


class ProjectMember(SQLModel, table=True):
    """Who works on a project, and as what: annotators label it, reviewers also review and export it.

    Admins need no row (they see every project). A member's role here never exceeds their user role.
    """

    __tablename__ = "project_member"
    __table_args__ = (
        CheckConstraint("role IN ('annotator', 'reviewer')", name="ck_project_member_role"),
        Index("ix_project_member_user", "user_id", "project_id"),
    )
    project_id: int = Field(foreign_key="project.id", primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", primary_key=True)
    role: str = Field(max_length=20)
    added_at: datetime = Field(default_factory=utcnow)
