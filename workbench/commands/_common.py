"""Shared bits of the command modules: opening the workbench, reading a password safely, and a
sub-parser whose arguments are added only when it is used.

Command modules are imported to build the parser (so ``workbench --help`` imports every one of
them): keep their top level light. Import services, SQLAlchemy, NumPy, pandas, scikit-learn,
torch or Streamlit inside the ``run`` functions; tests/test_cli.py checks that building the
parser pulls in none of the heavy packages.
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.domain import Actor
    from workbench.services import Workbench


def open_workbench(args: argparse.Namespace) -> Workbench:
    from workbench.services import Workbench

    return Workbench.open(getattr(args, "database_url", None))


def operator() -> Actor:
    """The actor every CLI command acts as: the local operator (admin rights, no user row)."""
    from workbench.domain import Actor

    return Actor.operator()


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


def resolve(target: Callable[..., Any] | str) -> Callable[..., Any]:
    """A callable, or ``"package.module:function"`` imported now."""
    if callable(target):
        return target
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


class LazyParser(argparse.ArgumentParser):
    """A sub-parser that calls ``populate(parser)`` (a callable or ``"module:function"``) only when
    it parses or prints its help, so a heavy module is imported only when its command runs."""

    def __init__(
        self, *args: Any, populate: Callable[[argparse.ArgumentParser], None] | str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._populate = populate

    def _ensure(self) -> None:
        if self._populate is not None:
            populate, self._populate = self._populate, None
            resolve(populate)(self)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._ensure()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._ensure()
        return super().format_help()

    def format_usage(self) -> str:
        self._ensure()
        return super().format_usage()
