"""`workbench user`: add users, list them, change roles, reset passwords, disable and enable."""

from __future__ import annotations

import argparse

from workbench.commands._common import open_workbench, operator, read_password

ROLES = ("annotator", "reviewer", "admin")  # workbench.domain.Role, spelled here so --help stays light


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "user",
        help="manage user accounts",
        description="Manage user accounts. Passwords are read from a prompt or stdin "
        "(12 characters or more, not a common password).",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    add = verbs.add_parser("add", help="add a user")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="annotator")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(func=run_add)
    verbs.add_parser("list", help="list users, their state and live sessions").set_defaults(func=run_list)
    role = verbs.add_parser("set-role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    role.set_defaults(func=run_set_role)
    reset = verbs.add_parser("reset-password", help="set a new password (ends the user's sessions)")
    reset.add_argument("name")
    reset.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    reset.set_defaults(func=run_reset)
    disable = verbs.add_parser("disable", help="disable a user: signed out everywhere, items back in the queue")
    disable.add_argument("name")
    disable.set_defaults(func=run_disable)
    enable = verbs.add_parser("enable", help="let a disabled user sign in again")
    enable.add_argument("name")
    enable.set_defaults(func=run_enable)


def run_add(args: argparse.Namespace) -> int:
    password = read_password(args.password_stdin)
    user = open_workbench(args).users.add(args.name, args.role, password, actor=operator())
    print(f"added {user.name} ({user.role})")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from collections import Counter

    wb = open_workbench(args)
    live = Counter(s.user for s in wb.sessions.list(actor=operator()))
    print("name\trole\tstate\tsessions")
    for user in wb.users.list(actor=operator()):
        print(f"{user.name}\t{user.role}\t{'active' if user.active else 'disabled'}\t{live.get(user.name, 0)}")
    return 0


def run_set_role(args: argparse.Namespace) -> int:
    user = open_workbench(args).users.set_role(args.name, args.role, actor=operator())
    print(f"{user.name} is now {user.role}")
    return 0


def run_reset(args: argparse.Namespace) -> int:
    open_workbench(args).users.reset_password(args.name, read_password(args.password_stdin), actor=operator())
    print(f"password of {args.name} changed; their sessions have ended")
    return 0


def run_disable(args: argparse.Namespace) -> int:
    open_workbench(args).users.disable(args.name, actor=operator())
    print(f"{args.name} is disabled: signed out everywhere, their claimed items are back in the queue")
    return 0


def run_enable(args: argparse.Namespace) -> int:
    open_workbench(args).users.enable(args.name, actor=operator())
    print(f"{args.name} may sign in again")
    return 0
