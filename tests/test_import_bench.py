"""The import benchmark runs end to end on a small file (the 1M-row run is not a test)."""

from __future__ import annotations

from workbench.bench.imports import bench_import


def test_bench_import_small(tmp_path):
    result = bench_import(2000)
    assert result["imported"] == 2000 and result["database"] == "sqlite"
    assert result["seconds"] > 0 and result["rows_per_s"] > 0
    assert {"peak_rss_delta_mb", "maxrss_delta_mb", "file_mb"} <= set(result)


def test_bench_import_postgres(db_url):
    if not db_url.startswith("postgresql"):
        return
    result = bench_import(2000, db_url)
    assert result["imported"] == 2000 and result["database"] == "postgresql"
