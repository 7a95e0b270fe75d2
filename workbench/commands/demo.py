"""`workbench demo`: the digits demo project and demo users, then the app."""

from __future__ import annotations

import argparse

from workbench.commands._common import open_workbench, operator
from workbench.commands.serve import add_serve_options, exit_now, serve


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="set up the digits demo and start the app",
        description="Create the digits demo project (from scikit-learn's bundled digits, no network) and demo "
        "users with fresh passwords, print them, and start the app with a worker.",
    )
    add_serve_options(parser)
    parser.add_argument("--no-serve", action="store_true", help="set up only; do not start the app")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from workbench.demo import PROJECT, ensure_demo  # lazy: scikit-learn's digits, Pillow

    wb = open_workbench(args)
    passwords = ensure_demo(wb)
    print(f"Demo project {PROJECT!r} is ready. Demo users (new passwords on every run):")
    for name, password in passwords.items():
        print(f"  {name:<9} {wb.users.get(name, actor=operator()).role.value:<10} {password}")
    if args.no_serve:
        return 0
    exit_now(serve(args.database_url, host=args.host, port=args.port, worker=not args.no_worker, grace_s=args.grace))
