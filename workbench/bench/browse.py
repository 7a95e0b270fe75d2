"""Item browser benchmark: a filtered page of 50 and a text search on a large pool.

Fills a fresh database (SQLite file, or ``--db URL`` for PostgreSQL) with generated text items
(a 5,000-word vocabulary, 8-30 words each), makes 10% of them final with a label and 1% of them
disagreements in review, gives every item a latest prediction (label and confidence, as a round
stores them), then times ``BrowseService.page`` in one process: filtered pages (state, split, final
label, disagreement, sorted by id or by external id), pages filtered on the predicted label and a
confidence range, and searches for one or two random words. Prints p50 and p95 of each, and what
the first search on SQLite spends indexing.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy import Engine

    from workbench.db.bulk import GeneratedItem
    from workbench.services.browse import BrowseFilter


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def _fill(engine: Engine, project_id: int, n: int, vocabulary: list[str], rng: random.Random) -> None:
    from sqlalchemy import func, select, update
    from sqlmodel import Session, col

    from workbench.db.bulk import insert_items
    from workbench.db.models import Item

    def items() -> Iterator[GeneratedItem]:
        for i in range(n):
            text = " ".join(rng.choices(vocabulary, k=rng.randint(8, 30)))
            yield (
                f"doc-{i:07d}",
                {"text": text, "context": {}},
                "eval" if rng.random() < 0.1 else "pool",
                rng.random(),
            )

    with Session(engine) as session, session.begin():
        insert_items(session, project_id, items())
    with Session(engine) as session, session.begin():
        first = session.execute(select(func.min(col(Item.id))).where(col(Item.project_id) == project_id)).scalar_one()
        session.execute(
            update(Item)
            .where(col(Item.project_id) == project_id, (col(Item.id) - first) % 10 == 3)
            .values(state="final", final_label="pos", n_annotations=2, slots_taken=2)
        )
        session.execute(
            update(Item)
            .where(col(Item.project_id) == project_id, (col(Item.id) - first) % 100 == 7)
            .values(state="review", n_annotations=2, slots_taken=2)
        )
    _predict(engine, project_id, rng)
    # What autovacuum (PostgreSQL) would do within a minute of a bulk load, and what an import does.
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE item")
        conn.exec_driver_sql("ANALYZE item_prediction")
        conn.commit()


def _predict(engine: Engine, project_id: int, rng: random.Random) -> None:
    """A model run and its latest prediction of every item, written as a round writes them (a
    predicted label, 60% "pos", and a confidence uniform in [0.5, 1))."""
    from sqlalchemy import insert, select
    from sqlmodel import Session, col

    from workbench.db.bulk import insert_rows
    from workbench.db.models import DatasetVersion, Item, ItemPrediction, ModelRun
    from workbench.services.round_pipeline import ITEM_PREDICTION_COLUMNS

    with Session(engine) as session, session.begin():
        version_id = session.execute(
            insert(DatasetVersion)
            .values(project_id=project_id, number=1, content_hash="0" * 64, n_items=0, manifest={})
            .returning(col(DatasetVersion.id))
        ).scalar_one()
        run_id = session.execute(
            insert(ModelRun)
            .values(
                project_id=project_id,
                version_id=version_id,
                artifact_path="bench",
                artifact_sha256="0" * 64,
                config={},
                metrics={},
                stability={},
                prediction_drift={},
            )
            .returning(col(ModelRun.id))
        ).scalar_one()
        ids = session.execute(select(col(Item.id)).where(col(Item.project_id) == project_id)).scalars().all()
        insert_rows(
            session,
            ItemPrediction,
            ITEM_PREDICTION_COLUMNS,
            ((i, project_id, run_id, "pos" if rng.random() < 0.6 else "neg", 0.5 + rng.random() / 2) for i in ids),
        )


def bench_browse(
    pool: int, database_url: str | None = None, *, pages: int = 100, searches: int = 100, seed: int = 0
) -> dict[str, Any]:
    from workbench.db.engine import make_engine
    from workbench.domain import Actor, Split
    from workbench.services import Workbench
    from workbench.services.browse import BrowseFilter, BrowseState, SortKey

    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocabulary = ["".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(5000)]
    actor = Actor.operator()
    with tempfile.TemporaryDirectory(prefix="wb-bench-browse-") as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'browse.db'}"
        engine = make_engine(url)
        try:
            wb = Workbench(engine)
            name = f"bench-browse-{uuid.uuid4().hex[:8]}"
            info = wb.projects.create(name, "text", ["pos", "neg"], actor=actor)
            started = time.perf_counter()
            _fill(engine, info.id, pool, vocabulary, rng)
            fill_s = time.perf_counter() - started
            filters = [
                BrowseFilter(),
                BrowseFilter(state=BrowseState.FINAL),
                BrowseFilter(state=BrowseState.REVIEW),
                BrowseFilter(split=Split.EVAL),
                BrowseFilter(final_label="pos", split=Split.POOL),
                BrowseFilter(state=BrowseState.OPEN, sort=SortKey.EXTERNAL_ID, descending=True),
                BrowseFilter(disagreement=False, state=BrowseState.REVIEW, sort=SortKey.EXTERNAL_ID),
            ]
            page_ms = []
            for i in range(pages):
                f = filters[i % len(filters)]
                offset = rng.choice((0, 0, 50, 100))
                t = time.perf_counter()
                page = wb.browse.page(name, actor=actor, filters=f, offset=offset)
                page_ms.append((time.perf_counter() - t) * 1000)
                assert page.rows, (f, offset)
            t = time.perf_counter()
            first = wb.browse.page(name, actor=actor, filters=BrowseFilter(search=vocabulary[0]))
            first_search_s = time.perf_counter() - t
            predicted = [
                BrowseFilter(predicted_label="pos", confidence_min=0.9),
                BrowseFilter(predicted_label="neg", confidence_min=0.5, confidence_max=0.6),
                BrowseFilter(predicted_label="pos", confidence_max=0.55, split=Split.POOL),
                BrowseFilter(predicted_label="neg", confidence_min=0.7, confidence_max=0.701),  # 0.1%: rare
                BrowseFilter(confidence_max=0.52),
                BrowseFilter(predicted_label="pos", confidence_min=0.8, sort=SortKey.EXTERNAL_ID),
            ]
            predicted_ms: list[list[float]] = [[] for _ in predicted]
            for i in range(pages):
                k = i % len(predicted)
                t = time.perf_counter()
                offset = rng.choice((0, 0, 50, 100))
                page = wb.browse.page(name, actor=actor, filters=predicted[k], offset=offset)
                predicted_ms[k].append((time.perf_counter() - t) * 1000)
                assert page.rows or offset >= page.total > 0, predicted[k]
            everything = [ms for case in predicted_ms for ms in case]
            search_ms, hits = [], []
            for i in range(searches):
                words = " ".join(rng.sample(vocabulary, 1 if i % 2 else 2))
                t = time.perf_counter()
                page = wb.browse.page(name, actor=actor, filters=BrowseFilter(search=words))
                search_ms.append((time.perf_counter() - t) * 1000)
                hits.append(page.total)
        finally:
            engine.dispose()
    return {
        "database": engine.dialect.name,
        "pool": pool,
        "fill_s": round(fill_s, 1),
        "page_ms_p50": round(_percentile(page_ms, 50), 1),
        "page_ms_p95": round(_percentile(page_ms, 95), 1),
        "predicted_page_ms_p50": round(_percentile(everything, 50), 1),
        "predicted_page_ms_p95": round(_percentile(everything, 95), 1),
        "predicted_page_ms_p95_by_case": {
            _describe(f): round(_percentile(ms, 95), 1) for f, ms in zip(predicted, predicted_ms)
        },
        "search_ms_p50": round(_percentile(search_ms, 50), 1),
        "search_ms_p95": round(_percentile(search_ms, 95), 1),
        "search_hits_median": sorted(hits)[len(hits) // 2],
        "first_search_s": round(first_search_s, 2),
        "first_search_hits": first.total,
        "pages": pages,
        "searches": searches,
    }


def _describe(f: BrowseFilter) -> str:
    parts = [f"predicted={f.predicted_label}" if f.predicted_label else "predicted=any"]
    parts.append(f"confidence=[{f.confidence_min or 0:g},{f.confidence_max or 1:g}]")
    if f.split is not None:
        parts.append(f"split={f.split.value}")
    if f.sort != "id":
        parts.append(f"sort={f.sort.value}")
    return " ".join(parts)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pool", type=int, default=1_000_000, help="items to generate (default 1000000)")
    parser.add_argument("--pages", type=int, default=100, help="filtered pages to time (default 100)")
    parser.add_argument("--searches", type=int, default=100, help="searches to time (default 100)")
    parser.add_argument(
        "--bench-database-url",
        "--db",
        dest="bench_database_url",
        default=None,
        help="database to fill (default: a fresh temporary SQLite file); use a scratch database",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")


def run(args: argparse.Namespace) -> int:
    result = bench_browse(args.pool, args.bench_database_url, pages=args.pages, searches=args.searches)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workbench.bench.browse",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
