"""Browser tests: the real app as a subprocess (plus a job worker), driven by Debian's Chromium.

Playwright's own browser download does not work here, so the system Chromium at /usr/bin/chromium
is used; without it these tests skip with that reason (and conftest turns skips into failures
under CI=true).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class Server:
    """The app (and a worker) on a free port, against a SQLite file the test seeds."""

    def __init__(self, tmp: Path) -> None:
        self.home = tmp / "home"
        self.home.mkdir()
        self.url = f"sqlite:///{tmp / 'e2e.db'}"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(tmp / "app.log", "wb")
        self.processes: list[subprocess.Popen] = []

    def start(self) -> None:
        from workbench.ui.launch import run_app, wait_healthy

        env = {"WORKBENCH_HOME": str(self.home), "WORKBENCH_DATABASE_URL": self.url}
        worker = subprocess.Popen(
            [sys.executable, "-m", "workbench.cli", "worker"],
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(worker)
        app = run_app("127.0.0.1", self.port, self.url, home=self.home, stdout=self.log, stderr=subprocess.STDOUT)
        self.processes.append(app)
        wait_healthy("127.0.0.1", self.port, app)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, browser):
    srv = Server(tmp_path_factory.mktemp("e2e"))
    yield srv
    srv.stop()


# -- shared helpers for driving the app (new tests use these rather than a copy of their own) ----


def idle(page: Page) -> None:
    """Wait for the current rerun to finish (Streamlit's running indicator is gone)."""
    page.wait_for_timeout(100)
    page.wait_for_function(
        "() => { const app = document.querySelector('[data-testid=\"stApp\"]');"
        " const state = app && app.getAttribute('data-test-script-state');"
        " return state && state !== 'running' && state !== 'rerunRequested'"
        " && !document.querySelector('[data-stale=\"true\"]'); }"
    )


def sign_in(page: Page, base: str, name: str, password: str, path: str = "") -> None:
    """Sign in through the form, as a person does, and wait for the sidebar to name them."""
    page.goto(f"{base}/{path}")
    page.get_by_label("User name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_test_id("stSidebar").get_by_text(f"{name} (", exact=False).wait_for()
    idle(page)


def choose(page: Page, box: Locator, option: str) -> None:
    """Open a select box and choose an option, again if a rerun closed the list meanwhile."""
    for _ in range(3):
        idle(page)
        box.click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=5000)
            break
        except Exception:  # the list closed under the click; try again
            page.keyboard.press("Escape")
    else:
        raise AssertionError(f"could not choose {option!r}")
    idle(page)


def shot(page: Page, name: str, *, full_page: bool = False) -> None:
    """A small, commit-ready PNG of what the browser shows (palette-quantised), in docs/screenshots."""
    from PIL import Image

    idle(page)
    page.wait_for_timeout(400)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=96, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def new_page(browser: Browser, width: int = 1280, height: int = 760) -> tuple[BrowserContext, Page]:
    """A fresh browser context (no cookies) and its page, with a 20 s default timeout."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(20_000)
    return context, page
