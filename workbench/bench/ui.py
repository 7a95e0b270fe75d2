"""Label page speed: server time from a label press to the next item rendered, on a large pool.

Drives the real Streamlit app (workbench/ui/app.py) with streamlit.testing's AppTest against a
SQLite file seeded with `pool` text items. Each measured step is one AppTest rerun that runs the
submit callback (store the label, claim the next item) and renders the whole label page.

    python -m workbench.bench.ui [--pool 100000] [--submits 200]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from workbench.domain import Actor

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"
PASSWORD = "bench-password"


def seed(url: str, pool: int, *, seed: int = 0) -> None:
    """A text project 'bench' with `pool` open items (20 % eval) and two annotators."""
    from sqlmodel import Session

    from workbench.db.bulk import insert_items
    from workbench.services import Workbench

    wb = Workbench.open(url)
    wb.users.add("bench-a", "annotator", PASSWORD, actor=Actor.operator())
    wb.users.add("bench-b", "annotator", PASSWORD, actor=Actor.operator())
    project = wb.projects.create(
        "bench",
        "text",
        ["positive", "negative", "neutral"],
        settings={"eval_fraction": 0.2, "featurizer": {"method": "tfidf"}},
        actor=Actor.operator(),
    )
    for name in ("bench-a", "bench-b"):
        wb.members.add("bench", name, actor=Actor.operator())
    rng = random.Random(seed)
    words = ["good", "bad", "fine", "terrible", "great", "meh", "okay", "awful", "superb", "plain"]
    with Session(wb.engine) as session, session.begin():
        insert_items(
            session,
            project.id,
            (
                (
                    f"doc-{i}",
                    {
                        "text": " ".join(rng.choice(words) for _ in range(30)),
                        "context": {"source": f"feed-{i % 7}", "author": f"user{i % 101}"},
                    },
                    "eval" if i % 5 == 0 else "pool",
                    rng.random(),
                )
                for i in range(pool)
            ),
        )
    wb.engine.dispose()


def _signed_in(url: str, name: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.text_input(key="signin_name").input(name)
    at.text_input(key="signin_password").input(PASSWORD)
    at.button[0].click().run()
    if at.exception or not at.button:
        raise RuntimeError(f"sign-in failed: {[e.value for e in at.exception]}")
    return at


def _summary(prefix: str, times: list[float]) -> dict:
    ordered = sorted(times)
    return {
        f"{prefix}_p50_ms": round(statistics.median(ordered), 1),
        f"{prefix}_p95_ms": round(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)], 1),
        f"{prefix}_max_ms": round(ordered[-1], 1),
    }


@contextmanager
def _record_item_rendered():
    """Note the moment the label page has rendered the item (its content, right before the label
    buttons); the page then goes on to the progress counts below it. Streamlit streams elements to
    the browser as the script produces them, so this is when the annotator sees the next item."""
    from workbench.ui import render

    marks: list[float] = []
    original = render.render_content

    def timed(*args, **kwargs):
        try:
            return original(*args, **kwargs)
        finally:
            marks.append(time.perf_counter())

    render.render_content = timed
    try:
        yield marks
    finally:
        render.render_content = original


def bench_label_page(pool: int = 100_000, submits: int = 200, *, workdir: str | Path | None = None) -> dict:
    """Milliseconds from a label press to the next item rendered (`item_*`: the submit callback
    stored the label, claimed the next item and the page has drawn it) and to the end of the whole
    rerun (`rerun_*`: also the annotator's and the project's progress counts below the item).

    Two annotators alternate, so half the claims are ordinary fresh picks and half complete a pair
    (the 'partial' path), as in real double labeling."""
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="wb-bench-ui-")
        root = Path(tmp.name)
    else:
        root = Path(workdir)
    url = f"sqlite:///{root / 'bench.db'}"
    old_url = os.environ.get("WORKBENCH_DATABASE_URL")
    os.environ["WORKBENCH_DATABASE_URL"] = url
    try:
        t0 = time.perf_counter()
        seed(url, pool)
        seed_s = time.perf_counter() - t0
        sessions = [_signed_in(url, "bench-a"), _signed_in(url, "bench-b")]
        for at in sessions:  # warm-up: first renders, claims held
            at.run()
        rng = random.Random(1)
        shown: list[float] = []
        full: list[float] = []
        texts_seen = 0
        with _record_item_rendered() as marks:
            for i in range(submits):
                at = sessions[i % 2]
                before = [t.value for t in at.text]
                button = at.button(key=f"label_btn_{rng.randrange(3)}")
                marks.clear()
                start = time.perf_counter()
                button.click().run()
                end = time.perf_counter()
                if at.exception:
                    raise RuntimeError(f"the label page failed: {at.exception[0].value}")
                full.append((end - start) * 1000)
                shown.append(((marks[-1] if marks else end) - start) * 1000)
                texts_seen += [t.value for t in at.text] != before
        return {
            "pool": pool,
            "submits": submits,
            "seed_s": round(seed_s, 2),
            **_summary("item", shown),
            **_summary("rerun", full),
            "new_item_rendered": texts_seen,
        }
    finally:
        if old_url is None:
            os.environ.pop("WORKBENCH_DATABASE_URL", None)
        else:
            os.environ["WORKBENCH_DATABASE_URL"] = old_url
        if tmp is not None:
            tmp.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=100_000)
    parser.add_argument("--submits", type=int, default=200)
    args = parser.parse_args(argv)
    result = bench_label_page(args.pool, args.submits)
    print(f"label page, {result['pool']:,} items, {result['submits']} submits (seeded in {result['seed_s']} s):")
    print(
        f"  press -> next item rendered: p50 {result['item_p50_ms']} ms, p95 {result['item_p95_ms']} ms, "
        f"max {result['item_max_ms']} ms"
    )
    print(
        f"  press -> whole page rerun:   p50 {result['rerun_p50_ms']} ms, p95 {result['rerun_p95_ms']} ms, "
        f"max {result['rerun_max_ms']} ms"
    )
    print(f"  a new item was on screen after {result['new_item_rendered']}/{result['submits']} presses")


if __name__ == "__main__":
    main()
