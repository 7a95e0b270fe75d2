"""`workbench init`: create (or upgrade) the database and show where it lives."""

from __future__ import annotations

import argparse

from workbench.commands._common import open_workbench


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "init",
        help="create or upgrade the database",
        description="Create the database (or upgrade it to this release's schema).",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from workbench.db.migrate import current_revision  # lazy: Alembic

    wb = open_workbench(args)
    print(
        f"database ready: {wb.engine.url.render_as_string(hide_password=True)} (schema {current_revision(wb.engine)})"
    )
    return 0
