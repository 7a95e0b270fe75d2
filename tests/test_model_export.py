"""`workbench model export`: a run written out for serving, loaded in a fresh Python process, gives
the run's stored eval predictions exactly (issue 16). On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import select
from sqlmodel import Session

from tests.conftest import ROOT
from tests.helpers import add_text_items, set_final_labels
from workbench.cli import main
from workbench.db.models import EvalPrediction, Item
from workbench.domain import Actor
from workbench.errors import WorkbenchError
from workbench.training import ArtifactIntegrityError

OPERATOR = Actor.operator()
WORDS = ["cheap offer win prize", "see you at lunch", "meeting moved to noon", "free entry claim now"]
TEXTS = [f"{WORDS[i % 4]} {WORDS[(i * 7) % 4].split()[0]} number {i % 11}" for i in range(120)]
FINAL = {f"t{i}": ("spam" if i % 4 in (0, 3) else "ham") for i in range(0, 120, 2)}  # half the pool stays open


def _eval_predictions(engine, run_id: int) -> dict[str, tuple[dict, str]]:
    with Session(engine) as session:
        rows = session.execute(
            select(Item.external_id, Item.content, EvalPrediction.predicted)
            .join(Item, Item.id == EvalPrediction.item_id)
            .where(EvalPrediction.model_run_id == run_id)
            .order_by(Item.id)
        ).all()
    return {external_id: (content, predicted) for external_id, content, predicted in rows}


@pytest.mark.parametrize(
    "model",
    [{"type": "logreg", "C": 0.3}, pytest.param({"type": "mlp", "hidden": 16, "epochs": 60}, marks=pytest.mark.slow)],
    ids=["logreg-skops", "mlp-safetensors"],
)
def test_an_export_reproduces_the_runs_eval_predictions_in_a_fresh_process(wb, home, db_url, tmp_path, model, capsys):
    project = wb.projects.create(
        "exp", "text", ["ham", "spam"], settings={"featurizer": {"method": "tfidf"}, "model": model}, actor=OPERATOR
    )
    add_text_items(wb.engine, project.id, TEXTS, eval_fraction=0.4)
    set_final_labels(wb.engine, project.id, FINAL)
    run_id = wb.rounds.run_retrain("exp", actor=OPERATOR).run_id
    stored = _eval_predictions(wb.engine, run_id)
    assert len(stored) > 20 and len({label for _, label in stored.values()}) == 2  # both labels predicted
    out = tmp_path / "export"
    assert main(["--database-url", db_url, "model", "export", "exp", "--run", str(run_id), "--out", str(out)]) == 0
    assert f"reproduces the run's {len(stored)} eval predictions" in capsys.readouterr().out
    manifest = json.loads((out / "model.json").read_text())
    assert manifest["labels"] == ["ham", "spam"] and manifest["model_run_id"] == run_id
    assert manifest["model"]["file"].endswith(".safetensors" if model["type"] == "mlp" else ".skops")
    assert manifest["featurizer"]["settings"] == {"method": "tfidf"} and manifest["metrics"]["n"] > 0
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(content) + "\n" for content, _ in stored.values()))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    answer = subprocess.run(
        [sys.executable, str(out / "predict.py"), str(items)], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert answer.returncode == 0, answer.stderr
    lines = [json.loads(line) for line in answer.stdout.splitlines()]
    assert [line["label"] for line in lines] == [label for _, label in stored.values()]
    assert all(abs(sum(line["proba"].values()) - 1) < 1e-5 for line in lines)
    # An altered featurizer file is refused before it is parsed, in the fresh process too.
    state = out / "featurizer.skops"
    payload = state.read_bytes()
    state.write_bytes(payload[:-1] + bytes([payload[-1] ^ 1]))
    refused = subprocess.run(
        [sys.executable, str(out / "predict.py"), str(items)], capture_output=True, text=True, env=env
    )
    assert refused.returncode != 0 and "refusing to load it" in refused.stderr


def test_export_refusals_write_nothing(wb, home, tmp_path):
    project = wb.projects.create(
        "exp", "text", ["ham", "spam"], settings={"featurizer": {"method": "tfidf"}}, actor=OPERATOR
    )
    add_text_items(wb.engine, project.id, TEXTS, eval_fraction=0.4)
    set_final_labels(wb.engine, project.id, FINAL)
    run_id = wb.rounds.run_retrain("exp", actor=OPERATOR).run_id
    with pytest.raises(WorkbenchError, match="no model run 999 in 'exp'"):
        wb.models.export("exp", 999, tmp_path / "a", actor=OPERATOR)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    with pytest.raises(WorkbenchError, match="is not an empty directory"):
        wb.models.export("exp", run_id, busy, actor=OPERATOR)
    artifact = next((home / "artifacts").iterdir())
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    with pytest.raises(ArtifactIntegrityError, match="does not match its sha256"):
        wb.models.export("exp", run_id, tmp_path / "b", actor=OPERATOR)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left
