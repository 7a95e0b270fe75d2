"""docs/api.md's runnable example (docs/examples/api_example.py) runs end to end in a fresh process
against a temporary SQLite home, and prints what the document says it does."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "api_example.py"


def test_api_example_runs_against_a_fresh_sqlite_home(tmp_path):
    home, out = tmp_path / "home", tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "WORKBENCH_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("WORKBENCH_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "", str(out)], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "imported 40 items (34 pool, 6 eval)"
    assert lines[1] == "submitted 80 labels; final items: 40"
    assert re.fullmatch(r"round done: version 1, model run 1", lines[2])
    assert re.fullmatch(r"eval accuracy 1\.000 \(95% CI [01]\.\d{3}-1\.000\) on 6 items, macro F1 1\.000", lines[3])
    assert lines[4] == "agreement: 1.00 on 40 items"
    assert lines[5].startswith("exported 40 version rows to ") and lines[5].endswith(
        " and 40 tasks to " + str(out / "tasks.json")
    )
    assert (home / "workbench.db").exists() or any(home.glob("*.db"))  # the default SQLite database
    tasks = json.loads((out / "tasks.json").read_text(encoding="utf-8"))
    assert sum(len(t["annotations"]) for t in tasks) == 80
    assert (out / "hf" / "README.md").exists() and list((out / "hf" / "data").glob("*.parquet"))
    # Run again on the same home: the project exists, and the refusal is one line.
    again = subprocess.run(
        [sys.executable, str(EXAMPLE), "", str(out)], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert again.returncode == 1 and len(again.stderr.strip().splitlines()) == 1 and "api-example" in again.stderr
