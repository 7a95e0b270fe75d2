"""`workbench bench`: benchmarks that print figures measured in one run (and write them as JSON).

Each sub-command is one entry of BENCH_COMMANDS; add yours there (help, add_arguments, run).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from workbench.bench import query
from workbench.bench import imports as import_bench
from workbench.bench import round as loop_bench


@dataclass(frozen=True)
class BenchCommand:
    """One `workbench bench <name>` sub-command."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


BENCH_COMMANDS: dict[str, BenchCommand] = {
    "query": BenchCommand(
        help="time score-and-select against modAL and a plain matmul (figures + JSON)",
        add_arguments=query.add_arguments,
        run=query.run,
    ),
    "import": BenchCommand(
        help="time importing generated text rows into a fresh database (seconds, rows/s, memory)",
        add_arguments=import_bench.add_arguments,
        run=import_bench.run,
    ),
    "claims": BenchCommand(
        help="claim/submit latency with concurrent annotator processes, idle and while rounds run",
        add_arguments=loop_bench.add_claims_arguments,
        run=loop_bench.run_claims,
    ),
    "round": BenchCommand(
        help="wall time of a whole retrain round (version, train, evaluate, rescore, ranking live)",
        add_arguments=loop_bench.add_round_arguments,
        run=loop_bench.run_round,
    ),
}


def register(subparsers) -> None:  # noqa: ANN001
    parser = subparsers.add_parser(
        "bench", help="run a benchmark",
        description="Benchmarks: print figures measured in one run (and write them as JSON).")
    commands = parser.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)
    for name, command in BENCH_COMMANDS.items():
        command_parser = commands.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(command_parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return BENCH_COMMANDS[args.bench_command].run(args)
