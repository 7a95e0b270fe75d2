"""The health check of a text project as one streaming pass: fed the project's existing texts and
then the batch, a chunk at a time (as the import writes them), it keeps a few numbers per row and
never the texts, and gives the same report as :func:`workbench.health.report.build_report`.

Per chunk, each text is tokenised once (:func:`workbench.health.duplicates.tokenise`) and that one
tokenisation feeds the MinHash signature, the outlier features and the personal-data pre-filter.
What is kept per row: the text's 64-bit string hash (exact copies), the MinHash signature cut to
16 bits a value (128 bytes; two different minima then agree with probability 2⁻¹⁶, so an
estimated Jaccard is at most about 0.1 % higher) from which the LSH band hashes are made at the
end, and, for the batch, its length, non-letter share and word count; plus the words seen once so
far in the batch (the candidates for "occurs in no other item") and a count of every word seen,
capped at 2. About 150 bytes a row; a million rows take ~150 MB whatever the texts' length.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter, deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.health import duplicates as dup, outliers as out
from workbench.health.pii import count_by_type, find_pii
from workbench.health.profile import ColumnAccumulator, Profile, text_length_quantiles
from workbench.health.report import (
    MAX_LISTED,
    HealthReport,
    ItemRecord,
    duplicate_findings,
    outlier_flag,
    pii_flag,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from concurrent.futures import Future, ThreadPoolExecutor

CHUNK_ROWS = 20_000
CHUNK_CHARS = 1_000_000  # a chunk's texts are tokenised together: this bounds their byte arrays
_SPLIT_CODE = {"pool": 0, "eval": 1}
IN_FLIGHT = 2  # chunks handed to the pass's thread and not yet processed: bounds what is held


def _exact_keys(texts: Sequence[str]) -> np.ndarray:
    """Python's own string hash (SipHash, keyed per process): a pass lives in one process, so
    equal texts get equal keys and different ones collide with probability 2⁻⁶⁴ a pair."""
    return np.fromiter(map(hash, texts), dtype=np.int64, count=len(texts))


class TextHealthPass:
    """Feed existing items first (`new=False`), then the batch (`new=True`); then :meth:`finish`.

    Chunks are processed on one thread of the pass's own, in the order they were fed, while the
    caller goes on reading and writing rows: the import's parsing and SQL and this pass's numpy
    work (which releases the GIL) then share the machine's cores instead of taking turns. At most
    ``IN_FLIGHT`` chunks wait for it, so memory stays bounded by the chunk size."""

    def __init__(
        self,
        *,
        threshold: float = dup.DEFAULT_THRESHOLD,
        pii: bool = False,
        pii_region: str = "US",
        num_perm: int = dup.NUM_PERM,
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        self.threshold, self.pii, self.pii_region = threshold, pii, pii_region
        self.num_perm, self.chunk_rows = num_perm, chunk_rows
        # Rows fed but not yet processed, a list per field: item ids, external ids, splits, texts,
        # prelabels, contexts.
        self._pending: tuple[list, ...] = ([], [], [], [], [], [])
        self._pending_new = False
        self._pending_chars = 0
        self._n = 0  # rows processed
        self._n_old = 0
        # Per row, as a list of chunks.
        self._item_ids: list[np.ndarray] = []
        self._splits: list[np.ndarray] = []
        self._keys: list[np.ndarray] = []
        self._sigs: list[np.ndarray] = []
        self._has_words: list[np.ndarray] = []
        self._ext: list[tuple[int, str, np.ndarray]] = []  # (first row, ids joined by NUL, offsets)
        self._ext_starts: list[int] | None = None
        # Batch rows only.
        self._lengths: list[np.ndarray] = []
        self._non_letter: list[np.ndarray] = []
        self._words: list[np.ndarray] = []
        self._once_rows: list[np.ndarray] = []  # (batch row, word) of words unique in their chunk
        self._once_words: list[np.ndarray] = []
        self._vocab = np.zeros(0, np.uint64)  # sorted words of the batch, and their count capped at 2
        self._vocab_count = np.zeros(0, np.uint8)
        self._pii_rows: list[tuple[int, dict[str, int]]] = []
        self.pii_counts: Counter[str] = Counter()
        self._columns: dict[str, ColumnAccumulator] = {}
        self._prelabels: Counter[str] = Counter()
        self.timings = {"duplicates": 0.0, "outliers": 0.0, "pii": 0.0, "profile": 0.0}
        self.seconds = 0.0
        self._thread: ThreadPoolExecutor | None = None
        self._in_flight: deque[Future[None]] = deque()

    # -- feeding -------------------------------------------------------------------------------
    def add(
        self,
        item_ids: Sequence[int],
        external_ids: Sequence[str],
        splits: Sequence[str],
        texts: Sequence[str],
        *,
        new: bool,
        prelabels: Sequence[str | None] | None = None,
        contexts: Sequence[dict[str, Any] | None] | None = None,
    ) -> None:
        if not new and self._pending_new:
            raise ValueError("existing items must be fed before the batch")
        if new and not self._pending_new:
            self._hand_over()
            self._pending_new = True  # from here on every chunk is of the batch
        n = len(texts)
        fields = (item_ids, external_ids, splits, texts, prelabels or [None] * n, contexts or [None] * n)
        for pending, values in zip(self._pending, fields):
            pending.extend(values)
        self._pending_chars += sum(map(len, texts))
        if len(self._pending[0]) >= self.chunk_rows or self._pending_chars >= CHUNK_CHARS:
            self._hand_over()

    def add_contents(
        self,
        item_ids: Sequence[int],
        external_ids: Sequence[str],
        splits: Sequence[str],
        contents: Sequence[dict[str, Any]],
        *,
        new: bool,
        prelabels: Sequence[str | None] | None = None,
    ) -> None:
        """:meth:`add` for items as stored (``{"text": ..., "context": {...}}``)."""
        texts = [str(c.get("text", "")) for c in contents]
        contexts = [c.get("context") for c in contents] if new else None
        self.add(item_ids, external_ids, splits, texts, new=new, prelabels=prelabels, contexts=contexts)

    def _hand_over(self) -> None:
        """The pending rows become a chunk for the pass's thread (waiting while too many wait)."""
        if not self._pending[0]:
            return
        from concurrent.futures import ThreadPoolExecutor

        pending, new = self._pending, self._pending_new
        self._pending, self._pending_chars = ([], [], [], [], [], []), 0
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="health-pass")
        while len(self._in_flight) >= IN_FLIGHT:
            self._in_flight.popleft().result()
        self._in_flight.append(self._thread.submit(self._process, pending, new))

    def _drain(self) -> None:
        """Wait for every chunk handed over (re-raising what failed), then stop the thread."""
        try:
            while self._in_flight:
                self._in_flight.popleft().result()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the pass's thread without a report (an import that failed); safe to repeat."""
        for future in self._in_flight:
            future.cancel()
        self._in_flight.clear()
        if self._thread is not None:
            self._thread.shutdown(wait=True, cancel_futures=True)
            self._thread = None

    def _process(self, pending: tuple[list, ...], new: bool) -> None:
        started = time.perf_counter()
        item_ids, external_ids, splits, texts, prelabels, contexts = pending
        n, first = len(texts), self._n
        clock = time.perf_counter()
        tokens = dup.tokenise(texts)
        signature = dup.signature_block(tokens.owner, tokens.hashes, n, num_perm=self.num_perm)
        words = np.bincount(tokens.owner, minlength=n)
        self._sigs.append((signature & np.uint32(0xFFFF)).astype(np.uint16))
        self._has_words.append(words > 0)
        self._keys.append(_exact_keys(texts))
        self._item_ids.append(np.asarray(item_ids, dtype=np.int64))
        self._splits.append(np.fromiter(map(_SPLIT_CODE.__getitem__, splits), dtype=np.uint8, count=n))
        self._ext.append((first, "\0".join(external_ids), np.cumsum([0] + [len(e) + 1 for e in external_ids])))
        self.timings["duplicates"] += time.perf_counter() - clock
        self._n += n
        if not new:
            self._n_old += n
            self.seconds += time.perf_counter() - started
            return
        clock = time.perf_counter()
        batch_first = first - self._n_old
        self._lengths.append(np.fromiter(map(len, texts), dtype=np.int64, count=n))
        self._non_letter.append(
            np.divide(tokens.non_letters, tokens.sizes, out=np.zeros(n), where=tokens.sizes > 0).astype(np.float32)
        )
        self._words.append(words.astype(np.int32))
        if len(tokens.hashes):
            order = np.argsort(tokens.hashes)  # not stable, nor needs to be: a word seen once has one row
            ordered = tokens.hashes[order]
            heads = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
            counts = np.diff(np.append(heads, len(ordered)))
            once = counts == 1
            self._once_rows.append(tokens.owner[order[heads[once]]] + batch_first)
            self._once_words.append(ordered[heads[once]])
            self._count_words(ordered[heads], counts)
        self.timings["outliers"] += time.perf_counter() - clock
        clock = time.perf_counter()
        if self.pii:
            for i in np.flatnonzero(tokens.pii_hint | np.fromiter(("www." in t for t in texts), bool, count=n)):
                findings = find_pii(texts[i], region=self.pii_region)
                if findings:
                    counts_by_type = count_by_type(findings)
                    self.pii_counts.update(counts_by_type)
                    self._pii_rows.append((batch_first + int(i), counts_by_type))
        self.timings["pii"] += time.perf_counter() - clock
        clock = time.perf_counter()
        for context in contexts:
            for name, value in (context or {}).items():
                column = self._columns.get(name)
                if column is None:
                    column = self._columns[name] = ColumnAccumulator(name, missing_before=batch_first)
                column.add(value)
        self._prelabels.update(p for p in prelabels if p)
        self.timings["profile"] += time.perf_counter() - clock
        self.seconds += time.perf_counter() - started

    def _count_words(self, unique: np.ndarray, counts: np.ndarray) -> None:
        at = np.searchsorted(self._vocab, unique)
        known = at < len(self._vocab)
        known[known] = self._vocab[at[known]] == unique[known]
        np.add.at(self._vocab_count, at[known], 1)  # a word seen before has now been seen ≥ 2 times
        np.minimum(self._vocab_count, 2, out=self._vocab_count)
        fresh = ~known
        merged = np.concatenate([self._vocab, unique[fresh]])
        merged_count = np.concatenate([self._vocab_count, np.minimum(counts[fresh], 2).astype(np.uint8)])
        order = np.argsort(merged)
        self._vocab, self._vocab_count = merged[order], merged_count[order]

    # -- the report ----------------------------------------------------------------------------
    def _external_id(self, row: int) -> str:
        if self._ext_starts is None or len(self._ext_starts) != len(self._ext):
            self._ext_starts = [first for first, _, _ in self._ext]
        chunk = bisect.bisect_right(self._ext_starts, row) - 1
        first, joined, offsets = self._ext[chunk]
        at = row - first
        return joined[offsets[at] : offsets[at + 1] - 1]

    def finish(self) -> HealthReport:
        self._hand_over()
        self._drain()
        started = time.perf_counter()
        n, n_old = self._n, self._n_old

        def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
            whole = np.concatenate(parts) if parts else np.zeros(0, dtype)
            parts.clear()  # one copy at a time
            return whole

        item_ids, splits = cat(self._item_ids, np.int64), cat(self._splits, np.uint8)
        keys, has_words = cat(self._keys, np.int64), cat(self._has_words, bool)
        chunks = self._sigs  # signatures stay in their chunks: no second copy of them is made
        chunk_starts = np.cumsum([0] + [len(c) for c in chunks])

        def signatures_of(rows: np.ndarray) -> np.ndarray:
            chunk = np.searchsorted(chunk_starts, rows, side="right") - 1
            out = np.empty((len(rows), self.num_perm), np.uint16)
            for c in np.unique(chunk):
                at = chunk == c
                out[at] = chunks[c][rows[at] - chunk_starts[c]]
            return out

        def band_keys(rows: np.ndarray) -> Iterator[np.ndarray]:  # one uint64 per row, per band
            width = self.num_perm // dup.BANDS
            for band in range(dup.BANDS):
                part = [np.ascontiguousarray(c[:, band * width : (band + 1) * width]) for c in chunks]
                yield dup.band_key(np.concatenate(part)[rows] if part else np.zeros((0, width), np.uint16))

        # Exact copies: each later copy paired with the first (np.unique's index is the first).
        pairs: list[dup.DuplicatePair] = []
        if n:
            _, first_index, inverse = np.unique(keys, return_index=True, return_inverse=True)
            first_of = first_index[inverse.ravel()]
            copies = np.flatnonzero((first_of != np.arange(n)) & (np.arange(n) >= n_old))
            pairs += [dup.DuplicatePair(int(first_of[r]), int(r), 1.0, True) for r in copies]
            representative = np.flatnonzero((first_of == np.arange(n)) & has_words)
            if self.threshold <= 1.0 and len(representative) > 1:
                candidates = dup.band_candidates(
                    band_keys(representative),
                    representative,
                    n,
                    min_matches=min(2, dup.min_band_matches(self.threshold)),
                )
                candidates = candidates[candidates[:, 1] >= n_old]  # old-old pairs were reported before
                if len(candidates):
                    similarity = dup.estimated_jaccard(signatures_of(candidates[:, 0]), signatures_of(candidates[:, 1]))
                    keep = similarity >= self.threshold
                    pairs += [
                        dup.DuplicatePair(int(a), int(b), float(s), False)
                        for (a, b), s in zip(candidates[keep], similarity[keep])
                    ]
        self._sigs = []
        self.timings["duplicates"] += time.perf_counter() - started
        infos, flags = duplicate_findings(
            pairs,
            external_id=self._external_id,
            item_id=lambda row: int(item_ids[row]),
            split=lambda row: ("pool", "eval")[int(splits[row])],
            new=lambda row: row >= n_old,
        )
        clock = time.perf_counter()
        lengths, words = cat(self._lengths, np.int64), cat(self._words, np.int32)
        n_batch = len(lengths)
        unknown_rate = np.zeros(n_batch)
        if self._once_words and n_batch >= 20:
            once_rows, once_words = np.concatenate(self._once_rows), np.concatenate(self._once_words)
            at = np.minimum(np.searchsorted(self._vocab, once_words), max(len(self._vocab) - 1, 0))
            alone = self._vocab_count[at] == 1
            unknown = np.bincount(once_rows[alone], minlength=n_batch).astype(float)
            unknown_rate = np.divide(unknown, words, out=np.zeros(n_batch), where=words >= 3)
        found = out.text_outlier_rows(lengths, cat(self._non_letter, np.float32).astype(float), unknown_rate)
        for o in found:
            row = n_old + o.row
            flags.append(outlier_flag(int(item_ids[row]), self._external_id(row), o))
        self.timings["outliers"] += time.perf_counter() - clock
        for row, counts in self._pii_rows:
            flags.append(pii_flag(int(item_ids[n_old + row]), self._external_id(n_old + row), counts))
        clock = time.perf_counter()
        given = sum(self._prelabels.values())
        prof = Profile(
            n_batch,
            tuple(c.result(total=n_batch) for c in self._columns.values()),
            text_length_quantiles(lengths),
            {label: count / given for label, count in sorted(self._prelabels.items())} if given else {},
        )
        self.timings["profile"] += time.perf_counter() - clock
        self.seconds += time.perf_counter() - started
        exact = sum(1 for p in pairs if p.exact)
        return HealthReport(
            n_batch=n_batch,
            n_existing=n_old,
            exact_duplicates=exact,
            near_duplicates=len(pairs) - exact,
            leakage_pairs=sum(1 for i in infos if i.leakage),
            duplicates=tuple(infos[:MAX_LISTED]),
            outliers=len(found),
            flags=tuple(flags),
            pii_counts=dict(self.pii_counts),
            profile=prof,
            timings={k: round(v, 4) for k, v in self.timings.items()},
        )


class RecordsPass:
    """Tabular and image projects, whose batches are smaller: the records are kept and checked at
    the end by :func:`workbench.health.report.build_report` (same interface as the text pass)."""

    def __init__(self, kind: str, *, threshold: float, image_root: Any = None) -> None:
        self.kind, self.threshold, self.image_root = kind, threshold, image_root
        self.records: list[ItemRecord] = []
        self.prelabels: list[str | None] = []
        self.seconds = 0.0

    def add_contents(
        self,
        item_ids: Sequence[int],
        external_ids: Sequence[str],
        splits: Sequence[str],
        contents: Sequence[dict[str, Any]],
        *,
        new: bool,
        prelabels: Sequence[str | None] | None = None,
    ) -> None:
        self.records += [ItemRecord(*row, new) for row in zip(item_ids, external_ids, splits, contents)]
        if new:
            self.prelabels += prelabels if prelabels is not None else [None] * len(item_ids)

    def close(self) -> None:
        """Nothing runs beside the caller here (the same interface as the text pass)."""

    def finish(self) -> HealthReport:
        from workbench.health.report import build_report

        started = time.perf_counter()
        report = build_report(
            self.kind,
            self.records,
            threshold=self.threshold,
            image_root=self.image_root,
            prelabels=self.prelabels,
        )
        self.seconds += time.perf_counter() - started
        return report


# The streaming health pass of a project, either kind (the same feed/finish interface).
HealthPass = TextHealthPass | RecordsPass


def health_pass(
    kind: str, *, threshold: float, pii: bool, pii_region: str = "US", image_root: Any = None
) -> TextHealthPass | RecordsPass:
    """The streaming health pass for a project of this kind."""
    if kind == "text":
        return TextHealthPass(threshold=threshold, pii=pii, pii_region=pii_region)
    return RecordsPass(kind, threshold=threshold, image_root=image_root)
