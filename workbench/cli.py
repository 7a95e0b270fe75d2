"""The `workbench` command: one parser, one subcommand module per verb.

Exit codes: 0 ok, 1 user error (one line, no traceback), 2 usage error (argparse).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from workbench.errors import WorkbenchError, storage_fault

# Each module defines register(subparsers) that adds its parser with set_defaults(func=run),
# where run(args) -> int.
COMMAND_MODULES = [
    "workbench.commands.init",
    "workbench.commands.users",
    "workbench.commands.projects",
    "workbench.commands.imports",
    "workbench.commands.export",
    "workbench.commands.serve",
    "workbench.commands.demo",
    "workbench.commands.bench",
    "workbench.commands.stress",
    "workbench.commands.worker",
    "workbench.commands.retrain",
    "workbench.commands.models",
    "workbench.commands.rounds",
    "workbench.commands.versions",
    "workbench.commands.simulate",
    "workbench.commands.quality",
    "workbench.commands.health",
    "workbench.commands.backup",
    "workbench.commands.quarantine",
    "workbench.commands.chaos",
    "workbench.commands.alerts",
    "workbench.commands.advise",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Active learning and blind double-labeling workbench.",
    )
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL (default: $WORKBENCH_DATABASE_URL, else SQLite under $WORKBENCH_HOME)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # A command may take a trailing positional after its options (`version export P N --format hf
    # DIR`); argparse gives out positionals before options, so the one left over is put in place.
    trailing = getattr(args, "_trailing", None)
    if extra and trailing and len(extra) == 1 and getattr(args, trailing) is None and not extra[0].startswith("-"):
        setattr(args, trailing, extra[0])
        extra = []
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args) or 0)
    except WorkbenchError as exc:
        print(f"workbench: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("workbench: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # A full disk, a read-only or unreachable database: one line naming the cause, exit 1.
        fault = storage_fault(exc)
        if fault is None:
            raise
        print(f"workbench: error: {fault}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
