"""Health benchmark: what the data health check adds to an import of generated text rows.

Generates one CSV (a vocabulary of 5,000 words, 1% exact copies, 1% near copies with one word
changed, 0.5% rows with an e-mail address), then imports it twice into fresh SQLite databases,
each in its own process: once with ``health_at_import`` off and once on (duplicates, leakage,
outliers, profile and personal-data counts of the whole batch, flags stored in the import's
transaction). Prints both import times, the health check's own time, the ratio, and each
process's peak resident memory.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def write_rows(path: Path, n_rows: int, *, seed: int = 0) -> dict[str, int]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocabulary = ["".join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(5000)]
    texts: list[str] = []
    planted = {"exact": 0, "near": 0, "email": 0}
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text"])
        for i in range(n_rows):
            roll = rng.random()
            if texts and roll < 0.01:
                text = rng.choice(texts)
                planted["exact"] += 1
            elif texts and roll < 0.02:
                words = rng.choice(texts).split()
                words[rng.randrange(len(words))] = rng.choice(vocabulary)
                text = " ".join(words)
                planted["near"] += 1
            else:
                text = " ".join(rng.choices(vocabulary, k=rng.randint(8, 30)))
                if roll < 0.025:
                    text += f" write to user{i}@example.com"
                    planted["email"] += 1
            if len(texts) < 50_000:
                texts.append(text)
            writer.writerow([f"doc-{i}", text])
    return planted


def _child(csv_path: str, db_path: str, health: bool) -> None:
    """Run in a fresh process: create the project, import, print the timings as JSON."""
    from workbench.db.engine import make_engine
    from workbench.domain import Actor
    from workbench.services import Workbench

    wb = Workbench(make_engine(f"sqlite:///{db_path}"))
    actor = Actor.operator()
    wb.projects.create("bench-health", "text", ["a", "b"], actor=actor, settings={"health_at_import": health})
    started = time.perf_counter()
    report = wb.imports.run("bench-health", csv_path, actor=actor, seed=0)
    total = time.perf_counter() - started
    if not report.ok:
        raise SystemExit("benchmark import refused: " + "; ".join(report.lines()[:3]))
    health_report = report.health
    print(
        json.dumps(
            {
                "imported": report.imported,
                "import_s": round(report.seconds, 2),
                "health_s": round(report.health_seconds, 2),
                "total_s": round(total, 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "health": None
                if health_report is None
                else {
                    "exact_duplicates": health_report.exact_duplicates,
                    "near_duplicates": health_report.near_duplicates,
                    "outliers": health_report.outliers,
                    "pii_counts": health_report.pii_counts,
                    "timings": health_report.timings,
                },
            }
        )
    )


def bench_health(n_rows: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wb-bench-health-") as tmp:
        folder = Path(tmp)
        csv_path = folder / "rows.csv"
        planted = write_rows(csv_path, n_rows)
        runs = {}
        for name, health in (("without", False), ("with", True)):
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "workbench.bench.health",
                    "--child",
                    str(csv_path),
                    str(folder / f"{name}.db"),
                    "1" if health else "0",
                ],
                capture_output=True,
                text=True,
                env={**os.environ, "WORKBENCH_HOME": str(folder / name)},
            )
            if done.returncode != 0:
                raise RuntimeError(f"the {name}-health import failed:\n{done.stderr[-2000:]}")
            runs[name] = json.loads(done.stdout.strip().splitlines()[-1])
    base, checked = runs["without"]["total_s"], runs["with"]
    return {
        "rows": n_rows,
        "planted": planted,
        "import_without_health_s": base,
        "import_with_health_s": checked["total_s"],
        "health_s": checked["health_s"],
        # What the check adds: the difference of the two imports' wall times (the pass runs inside
        # the import's row stream, so its own clock, health_s, is the other reading of it).
        "added_share": round((checked["total_s"] - base) / base, 3) if base else None,
        "health_share": round(checked["health_s"] / base, 3) if base else None,
        "peak_rss_mb_without": runs["without"]["peak_rss_mb"],
        "peak_rss_mb_with": checked["peak_rss_mb"],
        "found": checked["health"],
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to generate (default 1000000)")
    parser.add_argument("--json", type=Path, help="also write the figures here")


def run(args: argparse.Namespace) -> int:
    result = bench_health(args.rows)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        _child(argv[1], argv[2], argv[3] == "1")
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m workbench.bench.health",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
