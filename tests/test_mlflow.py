"""MLflow tracking of rounds and the model registry, against real MLflow stores (issue 16).

A local file store (file:// URI), a real `mlflow server` on 127.0.0.1 with a SQLite backend store
(started once for the module, stopped after), and a closed port as a dead server. Rounds run on
SQLite and PostgreSQL (the `wb` fixture)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import add_text_items, set_final_labels
from workbench.cli import main
from workbench.domain import Actor, TrackingStatus
from workbench.errors import WorkbenchError

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
from mlflow.tracking import MlflowClient  # noqa: E402

OPERATOR = Actor.operator()
LABELS = ("ham", "spam")
TEXTS = [f"{'cheap offer win prize now' if i % 3 == 0 else 'see you at lunch today'} number {i}" for i in range(90)]
FINAL = {f"t{i}": ("spam" if i % 3 == 0 else "ham") for i in range(90)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_project(wb, name: str = "mlf", **settings) -> object:
    info = wb.projects.create(
        name, "text", list(LABELS), settings={"featurizer": {"method": "tfidf"}, **settings}, actor=OPERATOR
    )
    add_text_items(wb.engine, info.id, TEXTS, eval_fraction=0.3)
    set_final_labels(wb.engine, info.id, FINAL)
    return info


@pytest.fixture
def file_store(tmp_path, monkeypatch) -> str:
    """A local MLflow file store (MLflow 3 asks for MLFLOW_ALLOW_FILE_STORE to use one)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return (tmp_path / "mlruns").as_uri()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`mlflow server` on a free 127.0.0.1 port: SQLite backend store (so the registry works) and
    served artifacts; stopped (its whole process group) after the module."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = open(root / "server.log", "wb")  # closed below
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # No job executor: it starts seven huey consumer processes the registry does not need.
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # 10-40 s here, minutes when the 2 cores are saturated
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.25)
        yield url
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
        log.close()


def test_a_round_logs_a_run_to_a_file_store(wb, home, file_store):
    project = make_project(wb, mlflow_tracking_uri=file_store)
    result = wb.rounds.run_retrain(project.name, actor=OPERATOR)
    assert result.tracking is not None and result.tracking.status == TrackingStatus.LOGGED, result.tracking
    run = MlflowClient(file_store).get_run(result.tracking.mlflow_run_id)
    experiment = MlflowClient(file_store).get_experiment(run.info.experiment_id)
    assert experiment.name == project.name
    assert run.data.tags["workbench.model_run_id"] == str(result.run_id)
    params, metrics = run.data.params, run.data.metrics
    version = wb.versions.get(project.name, result.version, actor=OPERATOR)
    assert params["dataset.content_hash"] == version.content_hash and params["dataset.version_id"] == str(version.id)
    assert params["featurizer"].startswith("text-tfidf/1:") and params["featurizer.method"] == "tfidf"
    assert params["model.type"] == "logreg" and params["strategy"] == project.strategy
    assert params["overlap_policy"] == "fixed"
    assert {params[f"label_count.{label}"] for label in LABELS} == {str(n) for n in result.label_counts.values()}
    m = result.metrics
    assert metrics["accuracy"] == pytest.approx(m.accuracy) and metrics["n_eval"] == m.n
    assert (metrics["accuracy_ci95_low"], metrics["accuracy_ci95_high"]) == pytest.approx(m.accuracy_ci95)
    assert metrics["macro_f1"] == pytest.approx(m.macro_f1) and metrics["ece"] == pytest.approx(m.ece)
    for row in m.per_class:
        assert metrics[f"class.{row.label}.recall"] == pytest.approx(row.recall)
        assert metrics[f"class.{row.label}.support"] == row.support
    assert metrics["confusion.spam.spam"] == m.confusion_matrix[1][1]
    # Artifacts: the PNG, the eval JSON, the model file with its sha256 (equal to the database's).
    local = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, tracking_uri=file_store))
    assert (local / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    document = json.loads((local / "eval.json").read_text())
    assert document["metrics"]["accuracy"] == m.accuracy and document["workbench_model_run_id"] == result.run_id
    (model_file,) = [p for p in (local / "model").iterdir() if p.suffix == ".skops"]
    run_info = {r.id: r for r in wb.rounds.runs(project.name, actor=OPERATOR)}[result.run_id]
    assert hashlib.sha256(model_file.read_bytes()).hexdigest() == run_info.artifact_sha256
    assert (local / "model" / f"{model_file.name}.sha256").read_text().split()[0] == run_info.artifact_sha256
    # The outcome is stored on the model run: what the Rounds page reads.
    assert run_info.tracking == result.tracking


def test_tracking_is_off_without_a_uri(wb, home, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    project = make_project(wb)
    result = wb.rounds.run_retrain(project.name, actor=OPERATOR)
    assert result.tracking is None and "mlflow" not in result.timings
    assert wb.rounds.runs(project.name, actor=OPERATOR)[-1].tracking is None


def test_a_dead_tracking_server_never_fails_the_round(wb, home, monkeypatch):
    dead = f"http://127.0.0.1:{free_port()}"  # bound, then closed: nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead)  # the environment variable, not the setting
    project = make_project(wb)
    result = wb.rounds.run_retrain(project.name, actor=OPERATOR)
    # MLflow's default retries on a refused connection add up to about 4 minutes (7 tries, backoff
    # factor 2); cut to none, the call takes the import of mlflow plus a refused connect.
    assert result.tracking.seconds < 60, result.tracking
    assert result.run_id is not None and result.metrics.evaluated  # the round finished and published
    assert result.tracking.status == TrackingStatus.FAILED and result.tracking.uri == dead
    run = wb.rounds.runs(project.name, actor=OPERATOR)[-1]
    assert run.tracking == result.tracking and "\n" not in run.tracking.error
    assert run.tracking.describe() == f"not logged to {dead}: connection refused"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # the short retries were put back
    # Registering a run that was never logged: refused in one line, nothing registered.
    with pytest.raises(WorkbenchError, match=r"^model run \d+ was not logged to MLflow"):
        wb.models.register(project.name, result.run_id, actor=OPERATOR)


@pytest.mark.slow  # starting `mlflow server` takes 10-40 s here
def test_rounds_log_to_a_server_and_register_the_model(wb, home, db_url, mlflow_server, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    name = f"srv-{wb.engine.dialect.name}-{os.getpid()}"
    project = make_project(wb, name)
    first = wb.rounds.run_retrain(project.name, actor=OPERATOR)
    set_final_labels(wb.engine, project.id, {"t1": "spam"})  # new labels: a second version and run
    second = wb.rounds.run_retrain(project.name, actor=OPERATOR)
    assert first.tracking.logged and second.tracking.logged, (first.tracking, second.tracking)
    client = MlflowClient(mlflow_server)
    runs = client.search_runs([first.tracking.experiment_id], order_by=["attributes.start_time ASC"])
    assert [r.data.tags["workbench.model_run_id"] for r in runs] == [str(first.run_id), str(second.run_id)]
    assert client.list_artifacts(second.tracking.mlflow_run_id, "model")
    registered = wb.models.register(project.name, second.run_id, actor=OPERATOR)
    assert (registered.name, registered.version) == (name, "1")
    capsys.readouterr()  # MLflow prints a "View run" line per logged run
    assert main(["--database-url", db_url, "model", "register", name, "--run", str(first.run_id)]) == 0
    said = f"registered {name!r} version 2 (MLflow run {first.tracking.mlflow_run_id}) at {mlflow_server}"
    assert said in capsys.readouterr().out.splitlines()
    version = client.get_model_version(name, "1")
    assert version.run_id == second.tracking.mlflow_run_id and version.tags["workbench.model_run_id"] == str(
        second.run_id
    )
    with pytest.raises(WorkbenchError, match="no model run 999"):
        wb.models.register(project.name, 999, actor=OPERATOR)
