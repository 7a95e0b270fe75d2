"""The data-centric loop: dataset versions, jobs, retrain rounds and rescoring, on both databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from tests.conftest import shared_dataset
from tests.helpers import add_text_items, annotators, read_sms, set_final_labels
from workbench.db.models import DatasetVersionItem, ModelRun, RankEntry
from workbench.domain import Actor
from workbench.errors import WorkbenchError
from workbench.training import ArtifactIntegrityError
from workbench.worker import run_worker

OPERATOR = Actor.operator()
TEXTS = [f"{'cheap offer win prize now' if i % 4 == 0 else 'see you at lunch today'} number {i}" for i in range(200)]
LABELS = {f"t{i}": ("spam" if i % 4 == 0 else "ham") for i in range(200)}


@pytest.fixture
def project(wb, home):
    info = wb.projects.create("loop", "text", ["ham", "spam"], actor=Actor.operator())
    add_text_items(wb.engine, info.id, TEXTS, eval_fraction=0.25)
    return info


def test_versions_are_immutable_hashed_and_diffable(wb, project):
    set_final_labels(wb.engine, project.id, {k: v for k, v in list(LABELS.items())[:100]})
    first = wb.versions.create("loop", actor=Actor.operator())
    assert first.number == 1 and first.n_items == 100 and len(first.content_hash) == 64
    assert wb.versions.create("loop", actor=Actor.operator()).id == first.id  # same labels: same version, same hash
    set_final_labels(wb.engine, project.id, {"t1": "spam", **{k: v for k, v in list(LABELS.items())[100:120]}})
    second = wb.versions.create("loop", actor=Actor.operator())
    assert second.number == 2 and second.content_hash != first.content_hash
    diff = wb.versions.diff("loop", 1, 2, actor=Actor.operator())
    assert len(diff.added) == 20 and diff.removed == () and diff.relabeled == (("t1", "ham", "spam"),)
    with pytest.raises(DBAPIError, match="append-only"), Session(wb.engine) as s, s.begin():
        s.execute(update(DatasetVersionItem).values(label="spam"))
    with pytest.raises(DBAPIError, match="append-only"), Session(wb.engine) as s, s.begin():
        s.execute(text("DELETE FROM dataset_version"))
    assert wb.versions.get("loop", 1, actor=Actor.operator()).content_hash == first.content_hash


def test_version_lineage_and_export(wb, project, tmp_path):
    a, b = annotators(wb, 2)
    for person in (a, b):
        lease = wb.queue.claim("loop", actor=person)
        wb.queue.submit(lease.lease_id, '=HYPERLINK("x")' if False else "spam", actor=person)
    version = wb.versions.create("loop", actor=Actor.operator())
    rows = wb.versions.rows("loop", version.number, actor=Actor.operator())
    assert len(rows) == 1 and len(rows.iloc[0]["annotation_ids"]) == 2 and rows.iloc[0]["source"] == "agreed"
    assert version.manifest["annotators"] == {"ann0": 1, "ann1": 1}
    out = tmp_path / "v.csv"
    result = wb.exports.version("loop", version.number, "csv", out, actor=Actor.operator())
    manifest = json.loads(Path(result.manifest_path).read_text())
    assert manifest["content_hash"] == version.content_hash and manifest["counts"]["pool"] | manifest["counts"]["eval"]
    for fmt in ("jsonl", "parquet"):
        payload, _ = wb.exports.payload("version", "loop", fmt, number=version.number, actor=Actor.operator())
        assert payload
    with pytest.raises(WorkbenchError, match="unknown export format"):
        wb.exports.payload("version", "loop", "xlsx", number=version.number, actor=Actor.operator())


def test_round_trains_evaluates_registers_and_reranks(wb, project):
    cold = wb.rounds.run_retrain("loop", actor=OPERATOR)
    assert cold.strategy == "cold_start" and cold.run_id is None and cold.ranked == 20
    assert cold.project_strategy == "margin" and cold.ranked_by.describe().startswith("cold start (")
    set_final_labels(wb.engine, project.id, LABELS)
    # Leave half of the pool unlabeled so there is something to rank.
    with Session(wb.engine) as s, s.begin():
        s.execute(
            text(
                "UPDATE item SET state='open', final_label=NULL, n_annotations=0, slots_taken=0 "
                "WHERE split='pool' AND id % 2 = 0"
            )
        )
    result = wb.rounds.run_retrain("loop", actor=OPERATOR)
    assert result.strategy == "margin" and result.run_id is not None
    assert result.metrics.accuracy == 1.0 and result.metrics.n == result.n_eval > 0
    with Session(wb.engine) as s:
        entries = s.exec(select(RankEntry).order_by(RankEntry.position)).scalars().all()
        run = s.get(ModelRun, result.run_id)
    assert entries and all(e.model_run_id == run.id and e.strategy == "margin" for e in entries)
    assert [e.score for e in entries] == sorted((e.score for e in entries), reverse=True)
    (annotator,) = annotators(wb, 1)
    claimed = wb.queue.claim("loop", actor=annotator)
    assert claimed.model_run_id == run.id or claimed.reason in ("eval", "control")
    curve = wb.rounds.learning_curve("loop", actor=OPERATOR)
    assert curve[-1].run_id == run.id and curve[-1].ci_low <= curve[-1].accuracy <= curve[-1].ci_high
    comparison = wb.rounds.compare("loop", run.id, run.id, actor=OPERATOR)
    assert comparison.n_eval == result.n_eval and comparison.difference == 0


def test_tampered_artifact_is_refused_before_loading(wb, project, home):
    set_final_labels(wb.engine, project.id, LABELS)
    result = wb.rounds.run_retrain("loop", actor=OPERATOR)
    with Session(wb.engine) as s:
        path = home / s.get(ModelRun, result.run_id).artifact_path
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(ArtifactIntegrityError):
        wb.rounds.run_rescore("loop", actor=OPERATOR)


def test_worker_runs_jobs_and_records_failures(wb, project, db_url, home):
    set_final_labels(wb.engine, project.id, LABELS)
    job = wb.rounds.start("loop", actor=OPERATOR)
    assert wb.rounds.start("loop", actor=OPERATOR).id == job.id  # one pending round at a time
    assert run_worker(db_url, once=True) == 1
    done = wb.jobs.get(job.id, actor=Actor.operator())
    assert done.state == "done" and done.progress == 100 and done.result.run_id
    with pytest.raises(WorkbenchError, match="unknown strategy"):
        wb.projects.update_settings("loop", strategy="no_such_strategy", actor=Actor.operator())
    with Session(wb.engine) as s:
        artifact = home / s.get(ModelRun, done.result.run_id).artifact_path
    artifact.write_bytes(b"not the model that was registered")
    failed = wb.rounds.rescore("loop", actor=OPERATOR)
    run_worker(db_url, once=True)
    failed = wb.jobs.get(failed.id, actor=Actor.operator())
    assert failed.state == "failed" and "sha256" in failed.error.lower()
    with Session(wb.engine) as s:
        assert s.exec(select(func.count()).select_from(ModelRun)).scalar_one() == 1


def test_auto_versions_every_n_final_labels(wb, project, db_url):
    wb.projects.update_settings("loop", version_every=50, actor=Actor.operator())
    set_final_labels(wb.engine, project.id, {k: v for k, v in list(LABELS.items())[:60]})
    run_worker(db_url, once=True)
    (version,) = wb.versions.list("loop", actor=Actor.operator())
    assert version.trigger == "auto" and version.n_items == 60


def test_round_with_sentence_embeddings(wb, home):
    """A project set to the optional MiniLM embeddings trains on them and learns SMS spam."""
    from tests.test_training_featurizers import _embeddings_installed

    _embeddings_installed()
    rows = read_sms(shared_dataset("sms_spam_collection") / "SMSSpamCollection")[:800]
    info = wb.projects.create(
        "sms-emb", "text", ["ham", "spam"], settings={"featurizer": {"method": "embeddings"}}, actor=Actor.operator()
    )
    add_text_items(wb.engine, info.id, [t for _, t in rows])
    set_final_labels(wb.engine, info.id, {f"t{i}": rows[i][0] for i in range(len(rows))})
    result = wb.rounds.run_retrain("sms-emb", actor=OPERATOR)
    with Session(wb.engine) as s:
        run = s.get(ModelRun, result.run_id)
    assert run.featurizer.startswith("text-minilm-l6-v2/")
    assert result.metrics.accuracy > 0.9, result.metrics


def test_sms_round_is_accurate(wb, home):
    rows = read_sms(shared_dataset("sms_spam_collection") / "SMSSpamCollection")
    info = wb.projects.create("sms", "text", ["ham", "spam"], actor=Actor.operator())
    add_text_items(wb.engine, info.id, [t for _, t in rows])
    set_final_labels(wb.engine, info.id, {f"t{i}": rows[i][0] for i in range(0, len(rows), 2)})
    result = wb.rounds.run_retrain("sms", actor=OPERATOR)
    assert result.metrics.accuracy > 0.95, result.metrics
