"""`workbench worker`: run background jobs (retrain, rescore, version) until stopped.

SIGTERM, SIGINT or SIGHUP stop it cleanly: a running job is interrupted and queued again.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run background jobs",
        description="Run queued jobs (retrain rounds, rescoring, versions) until stopped.",
    )
    parser.add_argument("--once", action="store_true", help="stop when the queue is empty")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from workbench.commands.serve import exit_now
    from workbench.worker import run_worker  # lazy: the services

    done = run_worker(args.database_url, once=args.once, nice=True, handle_signals=True)
    print(f"worker stopped after {done} job(s)")
    exit_now(0)
