"""Label page speed in Chromium: time from a key press to the next item rendered.

Runs the real app (a Streamlit server, as `workbench serve` starts it) against a SQLite file with a
`--pool` item project, signs in an annotator in Debian's Chromium (Playwright) and answers items by
key. Each step waits longer than the minimum dwell time, as a person would, then presses the
label's key; the time is taken in the page, from the keydown to the moment the next item's text is
in the document. The floor is a trivial one-button Streamlit app measured in the same run the same
way (a key press that reruns the script and changes one line of text).

    python -m workbench.bench.browser [--pool 100000] [--presses 60]

Prints p50 and p95 for both and the ratio of the p95s (issue 12's target: <= 1.5).
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

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
PASSWORD = "bench-password-1"
LOOK_MS = 400  # above the default minimum dwell time (250 ms)

FLOOR_APP = """
import streamlit as st
from workbench.domain import Actor
st.session_state.setdefault("n", 0)
def bump():
    st.session_state.n += 1
st.text(f"item {st.session_state.n}")
st.button("Next", shortcut="1", on_click=bump)
"""

# In the page: the first stText of the main area is the item; record when it changes after a key.
TIMER = """
(() => {
  window.__t = { down: null, done: null, before: null };
  const read = () => {
    const el = document.querySelector('[data-testid="stMain"] [data-testid="stText"]');
    return el ? el.innerText : null;
  };
  document.addEventListener("keydown", () => {
    window.__t = { down: performance.now(), done: null, before: read() };
  }, true);
  new MutationObserver(() => {
    const t = window.__t;
    if (t.down !== null && t.done === null) {
      const now = read();
      if (now !== null && now !== t.before) t.done = performance.now();
    }
  }).observe(document, { subtree: true, childList: true, characterData: true });
})();
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(url: str, pool: int) -> None:
    from sqlmodel import Session

    from workbench.db.bulk import insert_items
    from workbench.domain import Actor
    from workbench.services import Workbench

    wb = Workbench.open(url)
    wb.users.add("bench", "annotator", PASSWORD, actor=Actor.operator())
    project = wb.projects.create(
        "bench", "text", ["positive", "negative", "neutral"], settings={"eval_fraction": 0.2}, actor=Actor.operator()
    )
    wb.members.add("bench", "bench", actor=Actor.operator())
    rng = random.Random(0)
    words = ["good", "bad", "fine", "terrible", "great", "meh", "okay", "awful", "superb", "plain"]
    with Session(wb.engine) as session, session.begin():
        insert_items(
            session,
            project.id,
            (
                (
                    f"b-{i}",
                    {"text": f"{i}: " + " ".join(rng.choice(words) for _ in range(12))},
                    "eval" if rng.random() < 0.2 else "pool",
                    rng.random(),
                )
                for i in range(pool)
            ),
        )
    wb.engine.dispose()


def _measure(page, presses: int, warmup: int) -> tuple[list[float], int]:
    """Times of `presses` measured presses (after `warmup`), and how many presses had no effect."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    times: list[float] = []
    lost = 0
    page.wait_for_timeout(1500)  # the page's own listeners are in place
    i = 0
    while len(times) < presses:
        page.wait_for_timeout(LOOK_MS)
        page.keyboard.press("1")
        try:
            page.wait_for_function("() => window.__t.done !== null", timeout=10_000)
        except PlaywrightTimeout:
            lost += 1
            if lost > 5:
                raise
            continue
        if i >= warmup:
            times.append(page.evaluate("window.__t.done - window.__t.down"))
        i += 1
    return times, lost


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _serve(cmd: list[str], env: dict[str, str], port: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
    from workbench.ui.launch import wait_healthy

    process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_healthy("127.0.0.1", port, process)
    return process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=int, default=100_000)
    parser.add_argument("--presses", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print("Debian's chromium is not installed at /usr/bin/chromium")
        return 1
    from playwright.sync_api import sync_playwright

    from workbench.ui.launch import app_command

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        started = time.perf_counter()
        seed(url, args.pool)
        print(f"seeded {args.pool} items in {time.perf_counter() - started:.1f} s")
        floor_file = Path(tmp) / "floor.py"
        floor_file.write_text(FLOOR_APP)
        env = {**os.environ, "WORKBENCH_DATABASE_URL": url, "WORKBENCH_HOME": str(Path(tmp) / "home")}
        app_port, floor_port = free_port(), free_port()
        with open(Path(tmp) / "servers.log", "wb") as log:
            app = _serve(app_command("127.0.0.1", app_port), env, app_port, log)
            floor_cmd = app_command("127.0.0.1", floor_port)
            floor_cmd[floor_cmd.index("run") + 1] = str(floor_file)
            floor = _serve(floor_cmd, env, floor_port, log)
            try:
                with sync_playwright() as p:
                    browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                    context = browser.new_context(viewport={"width": 1200, "height": 800})
                    context.add_init_script(TIMER)
                    page = context.new_page()
                    page.goto(f"http://127.0.0.1:{floor_port}")
                    page.get_by_text("item 0").wait_for()
                    floor_ms, floor_lost = _measure(page, args.presses, args.warmup)
                    page.goto(f"http://127.0.0.1:{app_port}")
                    page.get_by_label("User name", exact=True).fill("bench")
                    page.get_by_label("Password", exact=True).fill(PASSWORD)
                    page.get_by_role("button", name="Sign in").click()
                    page.get_by_test_id("stMain").get_by_test_id("stText").first.wait_for(timeout=60_000)
                    app_ms, app_lost = _measure(page, args.presses, args.warmup)
                    browser.close()
            finally:
                for process in (app, floor):
                    process.terminate()
                    process.wait(timeout=10)
    print(f"key press -> next item rendered, {args.presses} presses each, {LOOK_MS} ms look before each press")
    for name, values in (("trivial one-button app (floor)", floor_ms), (f"label page, {args.pool} items", app_ms)):
        print(
            f"  {name:34s} p50 {_pct(values, 0.5):7.1f} ms   p95 {_pct(values, 0.95):7.1f} ms   "
            f"mean {statistics.fmean(values):7.1f} ms"
        )
    if floor_lost or app_lost:
        print(f"  presses with no effect (pressed again): floor {floor_lost}, label page {app_lost}")
    ratio = _pct(app_ms, 0.95) / _pct(floor_ms, 0.95)
    print(f"  p95 ratio label page / floor: {ratio:.2f} (target <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
