"""MLflow: log each retrain round as a run, and register a run's model in the model registry.

Optional (the ``mlflow`` extra) and off unless a tracking URI is set: the project setting
``mlflow_tracking_uri``, else ``$MLFLOW_TRACKING_URI``. The round pipeline calls
:func:`log_round` after its publish transaction has committed; whatever goes wrong here (the
package missing, a dead server, a refused write) comes back as a failed :class:`TrackingOutcome`
with a one-line reason, never as an exception, so tracking can never fail or undo a round.

One MLflow run per model run, in an experiment named after the project:

- params: dataset version id, number and content hash, the featurizer key and each of its
  settings, the model config, the project's strategy and the one that ranked, the overlap policy,
  and the training label count per class;
- metrics: every :class:`EvalMetrics` figure (accuracy and its 95% interval, macro F1, ECE, the
  per-class precision/recall/F1/support, the confusion-matrix cells), step = version number;
- artifacts: ``confusion_matrix.png``, ``eval.json`` (metrics and the eval predictions), and
  ``model/`` holding the model file and ``<file>.sha256``;
- tags: ``workbench.model_run_id``, ``workbench.project``, ``workbench.version``, ``workbench.job_id``.

Imported only where a round is tracked or a model registered: ``import mlflow`` costs about 2 s,
which neither the CLI's start-up nor the app's pages pay.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.domain.rounds import EvalMetrics, RegisteredModel, TrackingOutcome, TrackingStatus
from workbench.errors import WorkbenchError

SETTING = "mlflow_tracking_uri"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
# A dead server must not hold the worker for minutes (MLflow's defaults: 7 retries with backoff
# factor 2, 120 s timeout); and a worker does not send MLflow's usage telemetry. Values the
# operator set in the environment win.
REQUEST_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
MODEL_ARTIFACT_DIR = "model"
TAG_RUN = "workbench.model_run_id"
MAX_ERROR_CHARS = 300
_PARAM_BATCH, _METRIC_BATCH = 100, 1000  # MLflow's log_batch limits
_UNSAFE_KEY = re.compile(r"[^\w\-. /]")  # MLflow keys: alphanumerics, _ - . space /


def tracking_uri(settings: dict[str, Any]) -> str | None:
    """The URI rounds of a project are logged to, or None (tracking off)."""
    return (settings.get(SETTING) or os.environ.get(TRACKING_URI_ENV) or "").strip() or None


def mlflow_installed() -> bool:
    return importlib.util.find_spec("mlflow") is not None


@dataclass(frozen=True)
class RoundRecord:
    """What one round published, as the pipeline hands it over after the commit."""

    project: str
    model_run_id: int
    job_id: int | None
    seed: int
    version_id: int
    version_number: int
    version_hash: str
    featurizer: str  # the featurizer's key (name and every parameter)
    featurizer_settings: dict[str, Any]
    model_config: dict[str, Any]
    strategy: str  # the project's
    ranked_by: str  # the strategy that made the ranking (a cold start differs)
    overlap: int
    overlap_policy: str
    labels: tuple[str, ...]
    label_counts: dict[str, int]
    metrics: EvalMetrics
    predictions: tuple[tuple[int, str], ...]
    artifact_file: Path
    artifact_sha256: str


def one_line(error: BaseException) -> str:
    """A readable one-line reason for a tracking failure."""
    text = " ".join(str(error).split()) or type(error).__name__
    for needle, said in (
        ("Connection refused", "connection refused"),
        ("timed out", "the tracking server did not answer in time"),
        ("Name or service not known", "unknown host"),
    ):
        if needle in text:
            return said
    if isinstance(error, ImportError):
        return "the mlflow package is not installed (pip install 'workbench-al[mlflow]')"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


@contextmanager
def short_requests() -> Iterator[None]:
    """MLflow's HTTP retries and timeout kept short for the duration (unless set by the operator)."""
    added = [name for name in REQUEST_DEFAULTS if name not in os.environ]
    os.environ.update({name: REQUEST_DEFAULTS[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def log_round(record: RoundRecord, uri: str) -> TrackingOutcome:
    """Log the round as an MLflow run; any failure comes back as the outcome, never raised."""
    started = time.perf_counter()
    try:
        with short_requests():
            experiment_id, run_id = _log(record, uri)
    except Exception as error:  # tracking must never fail the round: every failure is reported
        return TrackingOutcome(
            TrackingStatus.FAILED, uri, error=one_line(error), seconds=round(time.perf_counter() - started, 4)
        )
    return TrackingOutcome(
        TrackingStatus.LOGGED,
        uri,
        mlflow_run_id=run_id,
        experiment_id=experiment_id,
        seconds=round(time.perf_counter() - started, 4),
    )


def _experiment(mlflow_client: Any, name: str) -> str:
    from mlflow.exceptions import MlflowException

    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return mlflow_client.create_experiment(name, tags={"workbench.project": name})
    except MlflowException:  # another worker created it first
        found = mlflow_client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _log(record: RoundRecord, uri: str) -> tuple[str, str]:
    from mlflow.entities import Metric, Param, RunTag

    mlflow_client = client(uri)
    experiment_id = _experiment(mlflow_client, record.project)
    tags = {
        TAG_RUN: str(record.model_run_id),
        "workbench.project": record.project,
        "workbench.version": str(record.version_number),
        "workbench.job_id": "" if record.job_id is None else str(record.job_id),
        "workbench.model_sha256": record.artifact_sha256,
    }
    run = mlflow_client.create_run(experiment_id, tags=tags, run_name=f"{record.project} run {record.model_run_id}")
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        params = [Param(key, value) for key, value in round_params(record).items()]
        metrics = [
            Metric(key, value, now, record.version_number) for key, value in round_metrics(record.metrics).items()
        ]
        for start in range(0, len(params), _PARAM_BATCH):
            mlflow_client.log_batch(run_id, params=params[start : start + _PARAM_BATCH])
        for start in range(0, len(metrics), _METRIC_BATCH):
            mlflow_client.log_batch(run_id, metrics=metrics[start : start + _METRIC_BATCH])
        with tempfile.TemporaryDirectory(prefix="workbench-mlflow-") as scratch:
            folder = Path(scratch)
            (folder / "eval.json").write_text(json.dumps(eval_document(record), separators=(",", ":")))
            if record.metrics.confusion_matrix:
                confusion_png(record.metrics.confusion_matrix, record.labels, folder / "confusion_matrix.png")
            mlflow_client.log_artifacts(run_id, str(folder))
            model_dir = folder / MODEL_ARTIFACT_DIR
            model_dir.mkdir()
            (model_dir / f"{record.artifact_file.name}.sha256").write_text(
                f"{record.artifact_sha256}  {record.artifact_file.name}\n"
            )
            mlflow_client.log_artifact(run_id, str(record.artifact_file), MODEL_ARTIFACT_DIR)
            mlflow_client.log_artifacts(run_id, str(model_dir), MODEL_ARTIFACT_DIR)
        mlflow_client.log_batch(run_id, tags=[RunTag("workbench.logged", "complete")])
        mlflow_client.set_terminated(run_id, "FINISHED")
    except BaseException:
        try:
            mlflow_client.set_terminated(run_id, "FAILED")
        except Exception:  # the server went away mid-run: the original error is the one to report
            pass
        raise
    return experiment_id, run_id


def _key(*parts: Any) -> str:
    return _UNSAFE_KEY.sub("_", ".".join(str(part) for part in parts))[:250]


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text[:6000]  # MLflow's param value limit


def round_params(record: RoundRecord) -> dict[str, str]:
    params = {
        "dataset.version_id": str(record.version_id),
        "dataset.version": str(record.version_number),
        "dataset.content_hash": record.version_hash,
        "featurizer": _value(record.featurizer),
        "strategy": record.strategy,
        "strategy.ranked_by": record.ranked_by,
        "overlap": str(record.overlap),
        "overlap_policy": record.overlap_policy,
        "seed": str(record.seed),
        "labels": _value(list(record.labels)),
        "model.sha256": record.artifact_sha256,
    }
    params.update({_key("featurizer", name): _value(v) for name, v in sorted(record.featurizer_settings.items())})
    params.update({_key("model", name): _value(v) for name, v in sorted(record.model_config.items())})
    params.update({_key("label_count", label): str(n) for label, n in record.label_counts.items()})
    return params


def round_metrics(metrics: EvalMetrics) -> dict[str, float]:
    """Every figure of the run's evaluation, named flat (None figures are left out)."""
    figures: dict[str, Any] = {
        "n_eval": metrics.n,
        "n_train": metrics.n_train,
        "accuracy": metrics.accuracy,
        "macro_f1": metrics.macro_f1,
        "ece": metrics.ece,
    }
    if metrics.accuracy_ci95 is not None:
        figures["accuracy_ci95_low"], figures["accuracy_ci95_high"] = metrics.accuracy_ci95
    for row in metrics.per_class:
        for name in ("precision", "recall", "f1", "support"):
            figures[_key("class", row.label, name)] = getattr(row, name)
    labels = [row.label for row in metrics.per_class]
    if len(labels) == len(metrics.confusion_matrix):
        for truth, cells in zip(labels, metrics.confusion_matrix):
            for predicted, count in zip(labels, cells):
                figures[_key("confusion", truth, predicted)] = count
    return {name: float(value) for name, value in figures.items() if value is not None}


def eval_document(record: RoundRecord) -> dict[str, Any]:
    return {
        "workbench_model_run_id": record.model_run_id,
        "project": record.project,
        "version": record.version_number,
        "labels": list(record.labels),
        "metrics": record.metrics.to_json(),
        "predictions": [{"item_id": item_id, "predicted": label} for item_id, label in record.predictions],
    }


def confusion_png(matrix: tuple[tuple[int, ...], ...], labels: tuple[str, ...], path: Path) -> None:
    """The confusion matrix as a PNG (rows: final label, columns: predicted, counts in the cells).

    Drawn with Pillow: matplotlib's text layout took 0.3-0.5 s a figure here, a third of a warm
    round, against a few milliseconds for this.
    """
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=14)
    cell, pad, line = 56, 8, 20
    caption = "rows: final label, columns: predicted"
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    margin = int(max((probe.textlength(str(label), font=font) for label in labels), default=0)) + 2 * pad
    n = len(labels)
    width = max(margin + n * cell + pad, int(probe.textlength(caption, font=font)) + 2 * pad)
    height = margin + n * cell + pad + line
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    peak = max((max(row) for row in matrix), default=0) or 1
    light, dark = (247, 251, 255), (8, 48, 107)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            share = count / peak
            colour = tuple(round(a + (b - a) * share) for a, b in zip(light, dark))
            box = (margin + j * cell, margin + i * cell, margin + (j + 1) * cell - 1, margin + (i + 1) * cell - 1)
            draw.rectangle(box, fill=colour, outline=(200, 200, 200))
            centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
            draw.text(centre, str(count), fill="white" if share > 0.5 else "black", font=font, anchor="mm")
    for k, label in enumerate(labels):
        draw.text((margin - pad, margin + k * cell + cell / 2), str(label), fill="black", font=font, anchor="rm")
        # Column labels run upwards, so long labels do not overlap.
        text = Image.new("RGB", (margin - pad, line), "white")
        ImageDraw.Draw(text).text((0, line / 2), str(label), fill="black", font=font, anchor="lm")
        image.paste(text.rotate(90, expand=True), (margin + k * cell + (cell - line) // 2, 0))
    draw.text((pad, height - 4), caption, fill="black", font=font, anchor="ls")
    image.save(path, format="PNG")


def register(outcome: TrackingOutcome, name: str, *, model_run_id: int) -> RegisteredModel:
    """A new version of registered model ``name`` from the run's logged ``model/`` artifacts."""
    assert outcome.mlflow_run_id is not None  # a logged run (the caller checks outcome.logged)
    if not mlflow_installed():
        raise WorkbenchError("the mlflow package is not installed (pip install 'workbench-al[mlflow]')")
    from mlflow.exceptions import MlflowException

    with short_requests():
        try:
            mlflow_client = client(outcome.uri)
            run = mlflow_client.get_run(outcome.mlflow_run_id)
            try:
                project = run.data.tags.get("workbench.project", "")
                mlflow_client.create_registered_model(name, tags={"workbench.project": project})
            except MlflowException as error:
                if error.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            source = f"{run.info.artifact_uri}/{MODEL_ARTIFACT_DIR}"
            version = mlflow_client.create_model_version(
                name, source, run_id=outcome.mlflow_run_id, tags={TAG_RUN: str(model_run_id)}
            )
        except Exception as error:  # one line for the CLI, whatever the registry said
            raise WorkbenchError(
                f"could not register the model in MLflow at {outcome.uri}: {one_line(error)}"
            ) from None
    return RegisteredModel(
        name=name, version=str(version.version), source=source, mlflow_run_id=outcome.mlflow_run_id, uri=outcome.uri
    )
