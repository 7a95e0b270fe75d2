"""Import benchmark: generate a CSV of random text rows, import it, report time and memory.

    python -m workbench.bench.imports --rows 1000000 [--database-url URL]

Without --database-url a fresh SQLite file in a temporary folder is used. With a URL, a project
named ``bench-import-<random>`` is created in that database (use a scratch database).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from workbench.domain import Actor

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
    "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()
LABELS = ["pos", "neg", "neutral"]


def _rss_kib() -> int:
    """Current resident set size (KiB), from /proc where there is one."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def write_csv(path: Path, n_rows: int, *, seed: int = 0, prelabel_share: float = 0.1) -> int:
    """A CSV of `n_rows` random text rows (id, text, source, label), streamed to disk; its size."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text", "source", "label"])
        for i in range(1, n_rows + 1):
            text = " ".join(rng.choices(WORDS, k=rng.randint(5, 25)))
            label = rng.choice(LABELS) if rng.random() < prelabel_share else ""
            writer.writerow([f"doc-{i}", text, rng.choice(("web", "mail", "chat")), label])
    return path.stat().st_size


def bench_import(
    n_rows: int, database_url: str | None = None, *, batch_size: int = 1000, seed: int = 0, progress: bool = False
) -> dict[str, Any]:
    """Import `n_rows` generated text rows; seconds, rows/s and the peak memory growth."""
    from workbench.db.engine import make_engine
    from workbench.services import Workbench

    with tempfile.TemporaryDirectory(prefix="wb-bench-import-") as tmp:
        folder = Path(tmp)
        csv_path = folder / "rows.csv"
        started = time.perf_counter()
        size = write_csv(csv_path, n_rows, seed=seed)
        generate_s = time.perf_counter() - started
        url = database_url or f"sqlite:///{folder / 'bench.db'}"
        engine = make_engine(url)
        try:
            wb = Workbench(engine)
            project = f"bench-import-{uuid.uuid4().hex[:8]}"
            wb.projects.create(project, "text", LABELS, actor=Actor.operator())
            bar = None
            peak = {"rss": _rss_kib()}

            def on_progress(done: int, total: int) -> None:
                peak["rss"] = max(peak["rss"], _rss_kib())
                if bar is not None:
                    bar.total = total
                    bar.update(done - bar.n)

            if progress:
                from tqdm import tqdm

                bar = tqdm(total=size, unit="B", unit_scale=True, file=sys.stderr, desc="import")
            rss_before = _rss_kib()
            maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started = time.perf_counter()
            report = wb.imports.run(
                project,
                csv_path,
                prelabel_col="label",
                seed=seed,
                batch_size=batch_size,
                progress=on_progress,
                actor=Actor.operator(),
            )
            seconds = time.perf_counter() - started
            if bar is not None:
                bar.close()
            maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            if not report.ok:
                raise RuntimeError("benchmark import refused: " + "; ".join(report.lines()[:5]))
        finally:
            engine.dispose()
        return {
            "rows": n_rows,
            "imported": report.imported,
            "prelabels": report.prelabels,
            "database": engine.dialect.name,
            "file_mb": round(size / 1e6, 1),
            "generate_s": round(generate_s, 2),
            "seconds": round(seconds, 2),
            "rows_per_s": round(n_rows / seconds) if seconds else None,
            "batch_size": batch_size,
            # Growth of the sampled resident set during the import, and of the kernel's peak.
            "peak_rss_delta_mb": round((peak["rss"] - rss_before) / 1024, 1),
            "maxrss_delta_mb": round((maxrss_after - maxrss_before) / 1024, 1),
            "rss_before_mb": round(rss_before / 1024, 1),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workbench.bench.imports",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to generate (default 1000000)")
    parser.add_argument("--batch-size", type=int, default=1000, help="rows per INSERT (default 1000)")
    parser.add_argument(
        "--bench-database-url",
        "--db",
        dest="bench_database_url",
        default=None,
        help="database to import into (default: a fresh temporary SQLite file)",
    )
    parser.add_argument("--progress", action="store_true", help="show a progress bar on stderr")


def run(args: argparse.Namespace) -> int:
    # Only an explicit --db: never fill the workbench's own database with a benchmark project.
    result = bench_import(args.rows, args.bench_database_url, batch_size=args.batch_size, progress=args.progress)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
