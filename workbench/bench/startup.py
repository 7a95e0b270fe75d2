"""Start-up benchmark: how long the CLI takes before it does anything, against a bare interpreter.

    python -m workbench.bench.startup [--repeat 7] [--json FILE]

In one run, with several repeats each (interleaved, so a burst of load hits all three alike):

- ``python -c pass``: the interpreter alone, the floor;
- ``workbench --help``: building the parser (target <= 0.3 s);
- ``workbench project list`` on a small SQLite database made for the run (target <= 0.8 s):
  opening the database, the schema check, two queries per project.

Each figure is wall time of a fresh process. The best run says what the code costs; the median
says what a person waits on this machine now. Figures, not assertions: the machine may be busy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

TARGETS = {"workbench --help": 0.3, "workbench project list": 0.8}


def workbench_command() -> list[str]:
    """The installed `workbench` script beside this interpreter, else `python -m workbench.cli`."""
    script = Path(sys.executable).parent / "workbench"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "workbench.cli"]


def make_database(home: Path, *, projects: int = 3, items: int = 200) -> str:
    """A small SQLite database under `home`: a few projects with some items each; its URL."""
    from workbench.db.bulk import insert_items
    from workbench.domain import Actor
    from workbench.services import Workbench
    from workbench.services._tx import write

    url = f"sqlite:///{home / 'workbench.db'}"
    wb = Workbench.open(url)
    try:
        for p in range(projects):
            project = wb.projects.create(f"startup-{p}", "text", ["pos", "neg"], actor=Actor.operator())
            rows = [
                (f"x{i}", {"text": f"item {i} of project {p}"}, "eval" if i % 5 == 0 else "pool", (i * 0.618) % 1.0)
                for i in range(items)
            ]
            write(wb.engine, partial(insert_items, project_id=project.id, items=rows))
    finally:
        wb.engine.dispose()
    return url


def time_command(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return seconds


def bench_startup(repeat: int = 7) -> dict[str, Any]:
    """Seconds per command (best, median, worst over `repeat` runs, after one warm-up each)."""
    with tempfile.TemporaryDirectory(prefix="wb-bench-startup-") as tmp:
        home = Path(tmp)
        url = make_database(home)
        env = {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_DATABASE_URL": url}
        workbench = workbench_command()
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "workbench --help": [*workbench, "--help"],
            "workbench project list": [*workbench, "project", "list"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for argv in commands.values():  # warm the file cache; not counted
            time_command(argv, env)
        for _ in range(repeat):
            for name, argv in commands.items():
                times[name].append(time_command(argv, env))
    rows = {
        name: {
            "best_s": min(values),
            "median_s": statistics.median(values),
            "worst_s": max(values),
            "target_s": TARGETS.get(name),
        }
        for name, values in times.items()
    }
    return {
        "repeat": repeat,
        "python": sys.version.split()[0],
        "workbench": " ".join(workbench),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "commands": rows,
    }


def format_table(result: dict[str, Any]) -> str:
    lines = [f"{'command':<26}{'best s':>8}{'median s':>10}{'worst s':>9}{'target s':>10}  met (median)"]
    for name, row in result["commands"].items():
        target = row["target_s"]
        met = "" if target is None else ("yes" if row["median_s"] <= target else "NO")
        lines.append(
            f"{name:<26}{row['best_s']:>8.3f}{row['median_s']:>10.3f}{row['worst_s']:>9.3f}"
            f"{'' if target is None else format(target, '.1f'):>10}  {met}"
        )
    load = result["load_average"]
    lines.append(
        f"{result['repeat']} repeats, Python {result['python']}" + (f", load average {load[0]:.2f}" if load else "")
    )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per command (default 7)")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")


def run(args: argparse.Namespace) -> int:
    result = bench_startup(args.repeat)
    print(format_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workbench.bench.startup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
