"""Domain vocabulary: named states and roles, plain dataclasses the services return, pure rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import PurePath
from typing import Any

from workbench.domain.rounds import (  # re-exported: the typed results services return
    ClassMetrics as ClassMetrics,
    EvalMetrics as EvalMetrics,
    JobPayload as JobPayload,
    JobResult as JobResult,
    LearningCurvePoint as LearningCurvePoint,
    ModelExport as ModelExport,
    RankedBy as RankedBy,
    RegisteredModel as RegisteredModel,
    RoundResult as RoundResult,
    RunComparison as RunComparison,
    TrackingOutcome as TrackingOutcome,
    TrackingStatus as TrackingStatus,
    VersionJobResult as VersionJobResult,
)
from workbench.errors import WorkbenchError


class ProjectKind(StrEnum):
    TEXT = "text"
    TABULAR = "tabular"
    IMAGE = "image"


class Role(StrEnum):
    ANNOTATOR = "annotator"
    REVIEWER = "reviewer"
    ADMIN = "admin"


class DuplicatePolicy(StrEnum):
    """What an import does with a row whose content repeats an earlier item's, exactly or nearly
    (`--on-near-duplicate`)."""

    KEEP = "keep"  # import it, unflagged (pool/eval leakage is still flagged)
    SKIP = "skip"  # leave it out of the import (the report counts it)
    FLAG = "flag"  # import it and flag it (the default)


class Split(StrEnum):
    POOL = "pool"
    EVAL = "eval"


class ItemState(StrEnum):
    """Where an item stands in the double-labeling flow."""

    OPEN = "open"  # needs more annotations
    REVIEW = "review"  # annotations disagree; waits for a reviewer
    FINAL = "final"  # has a final label (agreed or adjudicated)
    AMBIGUOUS = "ambiguous"  # a reviewer found no single right label
    EXCLUDED = "excluded"  # a reviewer removed it from the dataset
    QUARANTINED = "quarantined"  # cannot be shown or featurized (a broken image): out of queue and rounds


class LeaseState(StrEnum):
    ACTIVE = "active"
    SUBMITTED = "submitted"
    SKIPPED = "skipped"
    EXPIRED = "expired"


class AnnotationSource(StrEnum):
    HUMAN = "human"
    IMPORT = "import"  # a prelabel brought in by import; never counts toward overlap


class ClaimReason(StrEnum):
    """Why the queue served an item (stored on the lease, shown under "Why this item?")."""

    PARTIAL = "partial"  # another annotator already labeled it; finish it first
    EVAL = "eval"  # the eval split's share of the queue
    CONTROL = "control"  # the random control arm (for an unbiased comparison)
    RANKED = "ranked"  # the top of the latest ranking by the project's strategy
    RANDOM = "random"  # no ranking yet (or it is used up): a random open item
    GOLD = "gold"  # the queue's pick of a gold item; stored and shown as RANDOM, so nothing gives it away
    IMPORT = "import"  # no claim: the annotation came in with an imported file (a Label Studio task)


class ExportFormat(StrEnum):
    """File formats of every export (items, annotations, dataset versions).

    csv/jsonl/parquet are tables (one row per item, annotation or version row); ``label-studio``
    is a JSON array of Label Studio tasks (one per item, its annotations and prelabels inside);
    ``prodigy`` is JSONL in Prodigy's shape (one line per human annotation); ``hf`` is a folder
    (Parquet per split and a dataset card), for dataset versions only.
    """

    CSV = "csv"
    JSONL = "jsonl"
    PARQUET = "parquet"
    LABEL_STUDIO = "label-studio"
    PRODIGY = "prodigy"
    HF = "hf"

    @property
    def mime(self) -> str:
        return {
            "csv": "text/csv",
            "jsonl": "application/x-ndjson",
            "parquet": "application/vnd.apache.parquet",
            "label-studio": "application/json",
            "prodigy": "application/x-ndjson",
            "hf": "inode/directory",
        }[self.value]

    @property
    def extension(self) -> str:
        """The file extension a download of this format gets."""
        return {"label-studio": "json", "prodigy": "jsonl"}.get(self.value, self.value)

    @classmethod
    def parse(cls, value: ExportFormat | str | None, path: object = None) -> ExportFormat:
        """The format named, else the one `path`'s extension names; a WorkbenchError if neither."""
        text = str(value or (PurePath(str(path)).suffix if path is not None else "")).lower().lstrip(".")
        text = {"json": "label-studio", "labelstudio": "label-studio", "ls": "label-studio"}.get(text, text)
        try:
            return cls(text)
        except ValueError:
            named = text or (PurePath(str(path)).name if path is not None else "")
            raise WorkbenchError(f"unknown export format {named!r}; use one of: {', '.join(cls)}") from None


class ExportKind(StrEnum):
    """What an export holds."""

    ITEMS = "items"  # one row per item: final label and flattened content
    ANNOTATIONS = "annotations"  # one row per human annotation
    VERSION = "version"  # one dataset version's rows with lineage, and a manifest beside it

    @property
    def formats(self) -> tuple[ExportFormat, ...]:
        """The formats this kind can be written in (label-studio and prodigy are item/annotation
        shapes; hf is a dataset version's folder)."""
        tables = (ExportFormat.CSV, ExportFormat.JSONL, ExportFormat.PARQUET)
        if self is ExportKind.VERSION:
            return (*tables, ExportFormat.HF)
        return (*tables, ExportFormat.LABEL_STUDIO, ExportFormat.PRODIGY)


class Decision(StrEnum):
    LABEL = "label"
    AMBIGUOUS = "ambiguous"
    EXCLUDED = "excluded"


class JobKind(StrEnum):
    RETRAIN = "retrain"  # version, train, evaluate, rescore
    RESCORE = "rescore"  # re-rank the pool with the latest model (or a cold-start seed set)
    VERSION = "version"  # cut a dataset version
    ALERT = "alert"  # evaluate the alert rules and deliver what fired (workbench.services.alerts)
    ADVISE = "advise"  # replay the project's labels per strategy against random (workbench.services.advisor)


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


ROLE_RANK = {Role.ANNOTATOR: 0, Role.REVIEWER: 1, Role.ADMIN: 2}


def role_allows(role: Role | str, needed: Role | str) -> bool:
    """Roles are ordered: an admin may do what a reviewer may, a reviewer what an annotator may."""
    return ROLE_RANK[Role(role)] >= ROLE_RANK[Role(needed)]


@dataclass(frozen=True)
class Actor:
    """Who is acting: a required argument of every service call.

    A signed-in user has their user id. The local operator (the CLI, the worker, a script run by
    whoever owns the database) is ``Actor.operator()``: admin rights, no user row (``id is None``).
    There is no default actor, so a forgotten argument is a TypeError, never admin rights.
    """

    id: int | None
    name: str
    role: Role

    @classmethod
    def operator(cls) -> Actor:
        """The local operator: whoever runs the CLI or the worker on this machine."""
        return cls(id=None, name="operator", role=Role.ADMIN)

    @property
    def is_operator(self) -> bool:
        return self.id is None


@dataclass(frozen=True)
class ProjectInfo:
    """A project. `labels` is every current label name, retired ones included (their annotations
    and final labels remain, and models still learn them); `offered` is what Label and Review
    offer and keys map. Renamed-away names are in neither (see `renamed`)."""

    id: int
    name: str
    kind: ProjectKind
    labels: tuple[str, ...]
    overlap: int
    strategy: str
    settings: dict[str, Any] = field(default_factory=dict)
    retired: tuple[str, ...] = ()
    archived: bool = False
    renamed: tuple[tuple[str, str], ...] = ()  # (old name, new name), oldest first

    @property
    def offered(self) -> tuple[str, ...]:
        return tuple(label for label in self.labels if label not in self.retired)


@dataclass(frozen=True)
class Progress:
    """A project's items counted by split and state: what any role may see (no labels).

    ``counts[split][state]`` holds every split and every state (0 where there is none).
    """

    counts: dict[str, dict[str, int]]

    def count(self, split: str, state: str) -> int:
        return self.counts.get(str(split), {}).get(str(state), 0)

    def states(self, split: str) -> dict[str, int]:
        return dict(self.counts.get(str(split), {}))

    def total(self, split: str | None = None) -> int:
        """Items in the split (in every split when None)."""
        splits = [str(split)] if split is not None else list(self.counts)
        return sum(sum(self.counts.get(name, {}).values()) for name in splits)

    def done(self, split: str) -> int:
        """Items whose labelling is complete: final, in review, ambiguous or excluded."""
        return self.total(split) - self.count(split, ItemState.OPEN.value)

    def in_state(self, state: str) -> int:
        """Items in this state, over every split."""
        return sum(self.count(split, state) for split in self.counts)


@dataclass(frozen=True)
class UserInfo:
    id: int
    name: str
    role: Role
    active: bool
    created_at: datetime


@dataclass(frozen=True)
class ClaimedItem:
    """An item handed to one annotator, with why it was chosen. Never carries anyone's label."""

    lease_id: int
    item_id: int
    external_id: str
    split: Split
    content: dict[str, Any]
    labels: tuple[str, ...]
    slot: int
    reason: ClaimReason
    strategy: str | None
    score: float | None
    model_run_id: int | None
    expires_at: datetime


@dataclass(frozen=True)
class SubmitResult:
    annotation_id: int
    item_state: ItemState
    duplicate: bool  # True when this submit repeated one already stored (a double click, a retry)


@dataclass(frozen=True)
class AnnotatorStats:
    labels_today: int
    labels_total: int
    skips_total: int


@dataclass(frozen=True)
class Answer:
    annotator: str
    label: str
    created_at: datetime
    duration_ms: int | None


@dataclass(frozen=True)
class ReviewCase:
    """An item as a reviewer sees it: every annotator's answer side by side."""

    item_id: int
    external_id: str
    split: Split
    state: ItemState
    content: dict[str, Any]
    answers: tuple[Answer, ...]
    final_label: str | None
    # Why it is here (the overlap decision, or "label issue: ..."), and, with Dawid-Skene
    # aggregation, the posterior label and its probability: a suggestion, never a default choice.
    reason: str | None = None
    suggestion: str | None = None
    suggestion_p: float | None = None


@dataclass(frozen=True)
class AdjudicationInfo:
    id: int
    item_id: int
    reviewer: str
    decision: Decision
    label: str | None
    reason: str
    previous_state: ItemState
    previous_label: str | None
    created_at: datetime
    external_id: str = ""  # the item's id as imported (what every page shows)
    project_id: int | None = None


@dataclass(frozen=True)
class VersionInfo:
    id: int
    number: int
    content_hash: str
    n_items: int
    trigger: str
    created_at: datetime
    manifest: dict[str, Any]


@dataclass(frozen=True)
class VersionDiff:
    added: tuple[tuple[str, str], ...]  # (external id, label)
    removed: tuple[tuple[str, str], ...]
    relabeled: tuple[tuple[str, str, str], ...]  # (external id, old label, new label)


class QuarantineSource(StrEnum):
    RENDER = "render"  # the label page could not show it
    FEATURIZE = "featurize"  # a round could not compute its features
    ADMIN = "admin"  # an admin took it out by hand


@dataclass(frozen=True)
class QuarantinedItem:
    item_id: int
    external_id: str
    reason: str
    source: QuarantineSource
    previous_state: ItemState
    reported_by: str | None  # user name; None for the worker or the local operator
    created_at: datetime


@dataclass(frozen=True)
class JobInfo:
    id: int
    project_id: int
    kind: JobKind
    state: JobState
    progress: float
    message: str
    error: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: JobResult | None  # RoundResult for retrain/rescore, VersionJobResult for version jobs
    worker: str | None = None  # host:pid of the worker holding (or last holding) the job


@dataclass(frozen=True)
class RunInfo:
    id: int
    version_number: int
    n_train: int
    config: dict[str, Any]
    metrics: EvalMetrics
    featurizer: str
    artifact_sha256: str
    duration_s: float
    created_at: datetime
    tracking: TrackingOutcome | None = None  # MLflow: where it was logged, or why not (None: off)


@dataclass(frozen=True)
class RecentLabel:
    """One of an annotator's own labels, as their "My recent labels" list shows it."""

    annotation_id: int
    external_id: str
    label: str
    created_at: datetime
    changeable: bool  # False once a reviewer has acted on the item


@dataclass(frozen=True)
class SkipInfo:
    """A skip of an item: who, when, why (shown to reviewers and admins only)."""

    item_id: int
    external_id: str
    annotator: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class GuidelinesInfo:
    """One version of a project's guidelines: Markdown text (rendered safely) and a note per label."""

    project_id: int
    version: int
    text: str
    label_notes: dict[str, str]
    author: str | None
    created_at: datetime


@dataclass(frozen=True)
class GuidelinesUsage:
    """Labels made under the current guidelines version and before it (None: no version in use)."""

    current_version: int | None
    labels_under_current: int
    labels_before_current: int
    by_version: dict[int | None, int]


@dataclass(frozen=True)
class LabelView:
    """The label page's read besides the item: own counts, item counts, current guidelines."""

    stats: AnnotatorStats
    counts: Progress
    guidelines: GuidelinesInfo | None
