"""`workbench serve`: the Streamlit app plus a background worker, under a supervisor.

See workbench/supervisor.py: SIGTERM, SIGINT and SIGHUP stop both children cleanly (exit 0 within
10 s, the port free), a dead worker is restarted with backoff, a dead app ends serve non-zero.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn

from workbench.config import database_url, workbench_home

GRACE_S = 6.0  # the supervisor's default (kept here so --help does not import it)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="start the web app and a worker",
        description="Start the Streamlit app and a background worker, and supervise "
        "them: SIGTERM, SIGINT or SIGHUP stop both cleanly; a worker that "
        "dies is restarted.",
    )
    add_serve_options(parser)
    parser.set_defaults(func=run)


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--no-worker", action="store_true", help="do not start a worker beside the app")
    parser.add_argument(
        "--grace",
        type=float,
        default=GRACE_S,
        metavar="SECONDS",
        help=f"how long children may take to stop before they are killed (default {GRACE_S:g})",
    )


def run(args: argparse.Namespace) -> int:
    code = serve(args.database_url, host=args.host, port=args.port, worker=not args.no_worker, grace_s=args.grace)
    exit_now(code)


def exit_now(code: int) -> NoReturn:
    """End the process at once: children are reaped and everything is in the database, so the
    interpreter's teardown (a second or more once torch and scikit-learn are loaded) is skipped."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve(url: str | None, *, host: str, port: int, worker: bool = True, grace_s: float = GRACE_S) -> int:
    """Run the app and (unless worker=False) a worker until a stop signal or the app's death."""
    from workbench.supervisor import serve as supervise

    return supervise(database_url(url), workbench_home(), host=host, port=port, worker=worker, grace_s=grace_s)
