"""Typed results of retrain rounds: metrics, comparisons, a round's outcome, the ranking in force.

These cross layers as frozen dataclasses; they become JSON only where a row is written
(``to_json``) and are rebuilt from it where a row is read (``from_json``). Rows written before a
field existed read back with its default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from workbench.domain.advice import Advice
from workbench.domain.alerts import AlertJobResult


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in data.items() if key in names}


def _pair(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    low, high = value
    return (float(low), float(high))


@dataclass(frozen=True)
class ClassMetrics:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvalMetrics:
    """A model run's metrics on the labeled eval items (``n == 0``: nothing to evaluate on).

    ``accuracy_ci95`` is a percentile bootstrap interval; ``confusion_matrix`` has rows = final
    label, columns = predicted, in the project's label order; ``ece`` is the expected
    calibration error (15 bins); ``n_train`` the number of training labels.
    """

    n: int = 0
    n_train: int = 0
    accuracy: float | None = None
    accuracy_ci95: tuple[float, float] | None = None
    macro_f1: float | None = None
    ece: float | None = None
    per_class: tuple[ClassMetrics, ...] = ()
    confusion_matrix: tuple[tuple[int, ...], ...] = ()

    @property
    def evaluated(self) -> bool:
        return self.n > 0 and self.accuracy is not None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> EvalMetrics:
        data = dict(data or {})
        data["accuracy_ci95"] = _pair(data.get("accuracy_ci95"))
        data["per_class"] = tuple(ClassMetrics(**_known(ClassMetrics, row)) for row in data.get("per_class") or ())
        data["confusion_matrix"] = tuple(tuple(int(v) for v in row) for row in data.get("confusion_matrix") or ())
        return cls(**_known(cls, data))


class TrackingStatus(StrEnum):
    LOGGED = "logged"
    FAILED = "failed"


@dataclass(frozen=True)
class TrackingOutcome:
    """Where a model run was logged in MLflow after its round committed, or why it was not.

    A failure never fails the round; ``error`` is one line (shown on the Rounds page).
    """

    status: TrackingStatus
    uri: str
    mlflow_run_id: str | None = None
    experiment_id: str | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def logged(self) -> bool:
        return self.status == TrackingStatus.LOGGED

    def describe(self) -> str:
        """One line, e.g. ``logged as MLflow run 3f2a… at http://…`` or ``not logged to http://…: why``."""
        if self.logged:
            return f"logged as MLflow run {self.mlflow_run_id} at {self.uri}"
        return f"not logged to {self.uri}: {self.error}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> TrackingOutcome | None:
        if not data:
            return None
        data = _known(cls, data)
        data["status"] = TrackingStatus(data["status"])
        return cls(**data)


@dataclass(frozen=True)
class RegisteredModel:
    """A model run registered in the MLflow model registry."""

    name: str
    version: str
    source: str
    mlflow_run_id: str
    uri: str


@dataclass(frozen=True)
class ModelExport:
    """A model run written out for serving: the files in ``directory`` and what they hold."""

    directory: str
    files: tuple[str, ...]
    model_sha256: str
    featurizer_sha256: str
    n_eval_checked: int  # eval predictions the export reproduced before it was written


@dataclass(frozen=True)
class RunComparison:
    """Two runs' predictions on the same labeled eval items (paired): run B minus run A."""

    n_eval: int
    accuracy_a: float
    accuracy_b: float
    difference: float
    difference_ci95: tuple[float, float]
    only_a_correct: int
    only_b_correct: int
    mcnemar_p: float
    run_a: int | None = None
    run_b: int | None = None


@dataclass(frozen=True)
class LearningCurvePoint:
    run_id: int
    version_number: int
    n_labels: int
    n_eval: int
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    macro_f1: float | None


@dataclass(frozen=True)
class RankedBy:
    """Which strategy really ranked the pool (or an item), on which model run, and why.

    ``strategy`` is the strategy that made the ranking; ``project_strategy`` the one the project
    asks for. They differ while there is no usable model: then ``model_free`` is True and the
    ranking is a cold-start seed set (``strategy`` names it).
    """

    strategy: str
    project_strategy: str
    model_run_id: int | None
    model_free: bool

    @property
    def is_fallback(self) -> bool:
        return self.strategy != self.project_strategy

    def describe(self) -> str:
        """In words, e.g. ``cold start (no usable model yet; project strategy: margin)``."""
        name = self.strategy.replace("_", " ")
        if self.is_fallback and self.model_free:
            return f"{name} (no usable model yet; project strategy: {self.project_strategy})"
        on_run = f" on model run {self.model_run_id}" if self.model_run_id is not None else ""
        if self.is_fallback:  # the project's strategy changed after this ranking was made
            return f"{name}{on_run} (project strategy now: {self.project_strategy}; the next round uses it)"
        return name + on_run


@dataclass(frozen=True)
class RoundResult:
    """What a retrain (or rescore) round published: one version, one model run, one ranking.

    ``version`` is None for a rescore (no version is cut); ``run_id`` is None when no model could
    be trained (fewer than two distinct labels). ``version_reused`` says the labels had not
    changed since the latest version, so no new version was cut.
    """

    strategy: str
    project_strategy: str
    ranked: int
    run_id: int | None = None
    model_free: bool = False
    version: int | None = None
    version_hash: str | None = None
    version_reused: bool = False
    n_train: int = 0
    n_eval: int = 0
    label_counts: dict[str, int] = field(default_factory=dict)
    metrics: EvalMetrics | None = None
    timings: dict[str, float] = field(default_factory=dict)
    tracking: TrackingOutcome | None = None  # set after the publish commit; not in the job's result

    @property
    def ranked_by(self) -> RankedBy:
        return RankedBy(self.strategy, self.project_strategy, None if self.model_free else self.run_id, self.model_free)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["metrics"] = self.metrics.to_json() if self.metrics is not None else None
        data["tracking"] = self.tracking.to_json() if self.tracking is not None else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoundResult:
        data = dict(data)
        metrics = data.get("metrics")
        data["metrics"] = EvalMetrics.from_json(metrics) if metrics else None
        data["tracking"] = TrackingOutcome.from_json(data.get("tracking"))
        data.setdefault("strategy", "")
        data.setdefault("project_strategy", data["strategy"])
        data.setdefault("ranked", 0)
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class VersionJobResult:
    """What a version job cut."""

    version: int
    version_hash: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VersionJobResult:
        return cls(**_known(cls, data))


# What a finished job stored: a round (retrain/rescore), a dataset version, an alert evaluation or
# a strategy advice.
JobResult = RoundResult | VersionJobResult | AlertJobResult | Advice


@dataclass(frozen=True)
class JobPayload:
    """What a worker needs to run a job: the project's id (never its name) and the parameters."""

    project_id: int
    kind: str
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed}

    @classmethod
    def from_json(cls, project_id: int, kind: str, data: dict[str, Any] | None) -> JobPayload:
        return cls(project_id=project_id, kind=str(kind), seed=int((data or {}).get("seed", 0)))
