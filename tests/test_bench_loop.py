"""The loop benchmarks run end to end at a tiny size (the figures themselves come from `make bench`)."""

from __future__ import annotations

from workbench.bench.round import bench_claims, bench_round


def test_bench_round_reports_cold_and_warm_rounds(home):
    result = bench_round(n_pool=2_000, n_labels=300)
    assert len(result["rounds"]) == 4 and result["rounds"][-1]["n_train"] == 600  # 300 + 3 rounds of 100 new labels
    assert result["rounds"][1]["timings"]["features"] < result["rounds"][0]["timings"]["features"]
    assert 0.0 < result["rounds"][-1]["accuracy"] <= 1.0


def test_bench_claims_compares_idle_with_rounds_running(home):
    result = bench_claims(
        pool=3_000,
        annotators=2,
        submits=10,
        think_ms=(1.0, 2.0),
        during_rounds=True,
        round_pool=2_000,
        round_labels=300,
    )
    for phase in ("idle", "during_rounds"):
        assert result[phase]["invariants_ok"] and result[phase]["claim_ms"]["p95"] > 0
    assert result["during_rounds"]["rounds_completed"] >= 2  # one before the phase, more during it
    assert set(result["p95_ratio"]) == {"claim", "submit"}
