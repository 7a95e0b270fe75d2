"""`workbench user`: add users, list them, change roles and passwords."""

from __future__ import annotations

from workbench.commands._common import open_workbench, read_password
from workbench.domain import Role


def register(subparsers) -> None:  # noqa: ANN001
    parser = subparsers.add_parser("user", help="manage user accounts",
                                   description="Manage user accounts. Passwords are read from a prompt or stdin.")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    add = verbs.add_parser("add", help="add a user")
    add.add_argument("name")
    add.add_argument("--role", choices=[r.value for r in Role], default=Role.ANNOTATOR.value)
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(func=run_add)
    verbs.add_parser("list", help="list users").set_defaults(func=run_list)
    role = verbs.add_parser("set-role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=[r.value for r in Role])
    role.set_defaults(func=run_set_role)
    reset = verbs.add_parser("reset-password", help="set a new password")
    reset.add_argument("name")
    reset.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    reset.set_defaults(func=run_reset)


def run_add(args) -> int:  # noqa: ANN001
    password = read_password(args.password_stdin)
    user = open_workbench(args).users.add(args.name, args.role, password)
    print(f"added {user.name} ({user.role})")
    return 0


def run_list(args) -> int:  # noqa: ANN001
    for user in open_workbench(args).users.list():
        print(f"{user.name}\t{user.role}\t{'active' if user.active else 'inactive'}")
    return 0


def run_set_role(args) -> int:  # noqa: ANN001
    user = open_workbench(args).users.set_role(args.name, args.role)
    print(f"{user.name} is now {user.role}")
    return 0


def run_reset(args) -> int:  # noqa: ANN001
    open_workbench(args).users.set_password(args.name, read_password(args.password_stdin))
    print(f"password of {args.name} changed")
    return 0
