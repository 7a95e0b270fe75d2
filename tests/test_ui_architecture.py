"""The UI layer talks to the service facade only: no database, model or strategy imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

UI = Path(__file__).resolve().parents[1] / "workbench" / "ui"
FORBIDDEN = (
    "sqlmodel",
    "sqlalchemy",
    "sklearn",
    "torch",
    "strategies",
    "workbench.db",
    "workbench.training",
    "workbench.strategies",
)


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", "")) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.append(str(node.args[0].value))
    return names


SOURCES = sorted(UI.rglob("*.py"))


def test_there_is_ui_code_to_check():
    assert len(SOURCES) >= 8


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(UI)))
def test_ui_module_imports_nothing_below_the_services(path):
    bad = [name for name in _imports(path) if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)]
    assert not bad, f"{path.relative_to(UI.parent.parent)} imports {bad}"


def test_the_only_cached_object_is_the_facade():
    cached = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("cache_resource", "cache_data", "cache"):
                cached.append((path.name, node.attr))
    assert cached == [("session.py", "cache_resource")]
