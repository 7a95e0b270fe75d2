"""Shared pieces of the Streamlit AppTest suites (fixtures and helpers; no tests of its own).

Each test gets a fresh migrated SQLite file (a copy of the session template) named by
WORKBENCH_DATABASE_URL, a service facade on it for seeding and checking, and AppTest instances of
the real app (workbench/ui/app.py) that read the same file.
"""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from workbench.db.bulk import insert_items
from workbench.domain import Actor
from workbench.services import Workbench

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "workbench" / "ui" / "app.py"
PASSWORD = "password-123"
HOSTILE = [
    "<script>alert('xss')</script>",
    "<img src=x onerror=alert(1)>",
    "[click me](javascript:alert(1))",
    "**bold** _it_ <b>html</b> :red[red] $x^2$ &lt;tag&gt; # heading",
]


def cheap_hashing(monkeypatch) -> None:
    """Cheap argon2 parameters for these tests (the app runs in-process under AppTest): the
    default cost is right for real accounts and only slows a suite that signs in hundreds of times."""
    from argon2 import PasswordHasher

    from workbench.services import users

    monkeypatch.setattr(users, "_HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def fast_hashing(monkeypatch):
    cheap_hashing(monkeypatch)


@pytest.fixture
def ui_url(tmp_path, monkeypatch, _sqlite_template) -> str:
    cheap_hashing(monkeypatch)
    path = tmp_path / "ui.db"
    shutil.copyfile(_sqlite_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("WORKBENCH_DATABASE_URL", url)
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    yield url
    from workbench.ui import session

    session._open.clear()


@pytest.fixture
def uwb(ui_url):
    wb = Workbench.open(ui_url)
    yield wb
    wb.engine.dispose()


def add_text_items(
    wb,
    project_id: int,
    texts: list[str],
    *,
    contexts: list[dict] | None = None,
    ids: list[str] | None = None,
    split: str = "pool",
) -> None:
    rng = random.Random(0)
    with Session(wb.engine) as session, session.begin():
        insert_items(
            session,
            project_id,
            (
                (
                    ids[i] if ids else f"item-{i}",
                    {"text": text, **({"context": contexts[i]} if contexts else {})},
                    split,
                    rng.random(),
                )
                for i, text in enumerate(texts)
            ),
        )


def seed_basic(wb, *, n_items: int = 3, labels=("pos", "neg", "neutral")):
    """admin, rev, ann1, ann2 and a text project 'demo' with n_items pool items (no eval, no control)."""
    for name, role in (("admin", "admin"), ("rev", "reviewer"), ("ann1", "annotator"), ("ann2", "annotator")):
        wb.users.add(name, role, PASSWORD, actor=Actor.operator())
    project = wb.projects.create(
        "demo", "text", list(labels), settings={"eval_fraction": 0.0, "random_share": 0.0}, actor=Actor.operator()
    )
    add_text_items(wb, project.id, [f"text number {i}" for i in range(n_items)])
    return project


def actor(wb, name: str):
    return wb.users.authenticate(name, PASSWORD)


def app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=30)


def sign_in(name: str, password: str = PASSWORD, at: AppTest | None = None) -> AppTest:
    at = at or app()
    at.run()
    at.text_input(key="signin_name").input(name)
    at.text_input(key="signin_password").input(password)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def go(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_tab(at: AppTest, key: str, name: str) -> AppTest:
    """Open a tab of lazily run tabs (`st.tabs(..., key=key, on_change="rerun")`): only it runs."""
    at.session_state[key] = name
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def plain(markdown: str) -> str:
    """What an escaped markdown string (render.md) shows: backslash escapes removed."""
    return re.sub(r"\\(.)", r"\1", markdown.replace("  \n", "\n"))


def errors(at: AppTest) -> list[str]:
    return [plain(e.value) for e in at.error]


def infos(at: AppTest) -> list[str]:
    return [plain(e.value) for e in at.info]


def all_markdown(at: AppTest) -> list:
    """Every markdown-rendering element: markdown, captions, headers, alerts."""
    found = []
    for kind in ("markdown", "caption", "title", "header", "subheader", "error", "warning", "info", "success"):
        found.extend(getattr(at, kind))
    return found
