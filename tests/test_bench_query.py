"""A tiny run of the query benchmark: JSON shape, and the workbench selects what modAL selects."""

from __future__ import annotations

import argparse
import json

import pytest

from workbench.bench.query import format_table, run_query_bench
from workbench.commands import bench
from workbench.errors import WorkbenchError

ROW_KEYS = {
    "strategy",
    "pool",
    "dim",
    "classes",
    "seconds_workbench",
    "seconds_modal",
    "seconds_floor",
    "peak_bytes_workbench",
    "peak_bytes_modal",
}


@pytest.mark.parametrize("classes", [2, 4])
def test_rows_and_agreement_with_modal(classes):
    rows = run_query_bench(pool=2000, dim=16, classes=classes, n=20, batch=10, repeat=1)
    assert [row["strategy"] for row in rows] == ["margin", "entropy", "qbc_vote", "diverse_batch", "margin_diversity"]
    for row in rows:
        assert ROW_KEYS <= set(row)
        assert (row["pool"], row["dim"], row["classes"]) == (2000, 16, classes)
        assert row["seconds_workbench"] > 0 and row["seconds_floor"] > 0
        assert row["peak_bytes_workbench"] > 0
    for row in rows[:2]:
        assert row["overlap_with_modal"] == 1.0, row["strategy"]
    for row in rows[:3]:
        assert row["seconds_modal"] > 0 and row["peak_bytes_modal"] > 0
        assert row["scores_match_modal"], row["strategy"]  # vote entropy ties: same scores, maybe other items
    assert rows[3]["seconds_modal"] is None and rows[3]["n"] == 10
    assert rows[4]["seconds_modal"] is None and rows[4]["n"] == 2000  # a round's ranking length
    assert "diverse_batch" in format_table(rows) and "margin_diversity" in format_table(rows)
    json.dumps(rows)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="workbench")
    bench.register(root.add_subparsers(dest="command", required=True))
    return root


def test_cli_writes_the_json(tmp_path, capsys):
    target = tmp_path / "bench.json"
    args = parser().parse_args(
        [
            "bench",
            "query",
            "--pool",
            "500",
            "--dim",
            "8",
            "--classes",
            "3",
            "--n",
            "5",
            "--batch",
            "5",
            "--repeat",
            "1",
            "--json",
            str(target),
        ]
    )
    assert args.func(args) == 0
    rows = json.loads(target.read_text())
    assert [row["strategy"] for row in rows] == ["margin", "entropy", "qbc_vote", "diverse_batch", "margin_diversity"]
    assert "modAL/wb" in capsys.readouterr().out


def test_cli_refuses_bad_sizes():
    args = parser().parse_args(["bench", "query", "--pool", "10", "--classes", "1"])
    with pytest.raises(WorkbenchError, match="classes"):
        args.func(args)
    args = parser().parse_args(["bench", "query", "--pool", "10", "--n", "11"])
    with pytest.raises(WorkbenchError, match="pool size"):
        args.func(args)


def test_bench_subcommands_are_a_table_others_can_extend():
    assert "query" in bench.BENCH_COMMANDS
    with pytest.raises(SystemExit):
        parser().parse_args(["bench"])
