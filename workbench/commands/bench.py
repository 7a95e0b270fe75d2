"""`workbench bench`: benchmarks that print figures measured in one run (and write them as JSON).

Each sub-command is one entry of BENCH_COMMANDS; add yours there (help, add_arguments, run).
`add_arguments` and `run` may be ``"module:function"`` strings: the module is imported only when
that benchmark runs, so `workbench --help` does not load NumPy or the strategies.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from workbench.commands._common import LazyParser, resolve


@dataclass(frozen=True)
class BenchCommand:
    """One `workbench bench <name>` sub-command."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None] | str
    run: Callable[[argparse.Namespace], int] | str


BENCH_COMMANDS: dict[str, BenchCommand] = {
    "query": BenchCommand(
        help="time score-and-select against modAL and a plain matmul (figures + JSON)",
        add_arguments="workbench.bench.query:add_arguments",
        run="workbench.bench.query:run",
    ),
    "featurize": BenchCommand(
        help="texts per second of each text representation (sentence embeddings, TF-IDF)",
        add_arguments="workbench.bench.featurize:add_arguments",
        run="workbench.bench.featurize:run",
    ),
    "import": BenchCommand(
        help="time importing generated text rows into a fresh database (seconds, rows/s, memory)",
        add_arguments="workbench.bench.imports:add_arguments",
        run="workbench.bench.imports:run",
    ),
    "claims": BenchCommand(
        help="claim/submit latency with concurrent annotator processes, idle and while rounds run",
        add_arguments="workbench.bench.round:add_claims_arguments",
        run="workbench.bench.round:run_claims",
    ),
    "round": BenchCommand(
        help="wall time of a whole retrain round (version, train, evaluate, rescore, ranking live)",
        add_arguments="workbench.bench.round:add_round_arguments",
        run="workbench.bench.round:run_round",
    ),
    "browse": BenchCommand(
        help="item browser: a filtered page of 50 and a text search on a large pool (p50/p95)",
        add_arguments="workbench.bench.browse:add_arguments",
        run="workbench.bench.browse:run",
    ),
    "health": BenchCommand(
        help="what the data health check adds to an import of generated text rows (time, memory)",
        add_arguments="workbench.bench.health:add_arguments",
        run="workbench.bench.health:run",
    ),
    "startup": BenchCommand(
        help="start-up time of `workbench --help` and `workbench project list` against `python -c pass`",
        add_arguments="workbench.bench.startup:add_arguments",
        run="workbench.bench.startup:run",
    ),
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run a benchmark",
        description="Benchmarks: print figures measured in one run (and write them as JSON).",
    )
    commands = parser.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True, parser_class=LazyParser)
    for name, command in BENCH_COMMANDS.items():
        commands.add_parser(name, help=command.help, description=command.help, populate=command.add_arguments)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return resolve(BENCH_COMMANDS[args.bench_command].run)(args)
