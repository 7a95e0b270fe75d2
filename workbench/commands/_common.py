"""Shared bits of the command modules: opening the workbench, reading a password safely."""

from __future__ import annotations

import getpass
import sys

from workbench.errors import WorkbenchError
from workbench.services import Workbench


def open_workbench(args) -> Workbench:  # noqa: ANN001 - argparse namespace
    return Workbench.open(getattr(args, "database_url", None))


def read_password(from_stdin: bool, prompt: str = "Password: ") -> str:
    """A password from a hidden prompt (twice) or the first line of stdin; never from argv."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise WorkbenchError("no terminal to prompt for a password; use --password-stdin")
        password = getpass.getpass(prompt)
        if getpass.getpass("Repeat: ") != password:
            raise WorkbenchError("the passwords do not match")
    if not password:
        raise WorkbenchError("empty password")
    return password
