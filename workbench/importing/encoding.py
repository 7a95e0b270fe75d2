"""Decoding text files line by line: UTF-8 (with or without BOM) and UTF-16 (with BOM) are read;
anything else is refused by name, never silently mangled.

UTF-8 is decoded one physical line at a time, so an undecodable byte is pinned to its line (and
the reader pins the line to its data row). UTF-16 is rarely broken; a decoding error there refuses
the whole file with its byte offset.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.importing.limits import size
from workbench.importing.report import FileProblem, LimitExceeded, Problem

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

UTF8 = "utf-8"
UTF8_BOM = "utf-8-sig"
UTF16 = "utf-16"

_SAMPLE_LIMIT = 64 * 1024
# cp1252 characters that Western text uses (letters with accents, typographic punctuation).
_WESTERN = re.compile(
    r"[\u00a0-\u00ff\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    r"\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)


def sniff_encoding(path: Path) -> tuple[str, int]:
    """The encoding of the file and the length of its byte-order mark, or FileProblem naming what
    the file looks like instead."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise FileProblem("file is UTF-32, which is not supported: save it as UTF-8")
    if head.startswith(b"\xef\xbb\xbf"):
        return UTF8_BOM, 3
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return UTF16, 2
    if len(head) >= 8:
        even, odd = head[0::2], head[1::2]
        if odd.count(0) > 0.3 * len(odd) and even.count(0) < 0.05 * len(even):
            raise FileProblem(
                "file looks like UTF-16-LE without a byte-order mark: save it as UTF-8 or as UTF-16 with a BOM"
            )
        if even.count(0) > 0.3 * len(even) and odd.count(0) < 0.05 * len(odd):
            raise FileProblem(
                "file looks like UTF-16-BE without a byte-order mark: save it as UTF-8 or as UTF-16 with a BOM"
            )
    return UTF8, 0


def guess_encoding(sample: bytes) -> str:
    """A name for the 8-bit encoding that `sample` (bytes that are not UTF-8) is most likely in."""
    high = [i for i, b in enumerate(sample) if b >= 0x80]
    if not high:
        return "not UTF-8"
    try:
        as_cp1252 = sample.decode("cp1252")
    except UnicodeDecodeError:
        as_cp1252 = None
    if as_cp1252 is not None:
        # Western text: accented letters sit alone or in pairs among ASCII letters, and every one
        # is a Latin letter or typographic mark in cp1252.
        runs, run = [], 0
        for b in sample:
            if b >= 0x80:
                run += 1
            elif run:
                runs.append(run)
                run = 0
        if run:
            runs.append(run)
        short = sum(r for r in runs if r <= 2) / len(high)
        western = all(_WESTERN.match(ch) for ch in as_cp1252 if ord(ch) >= 0x80)
        if short >= 0.8 and western:
            return "cp1252/latin-1"
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - the dependency comes with requests
        return "an 8-bit encoding"
    best = from_bytes(sample).best()
    return best.encoding if best is not None else "an 8-bit encoding"


class _Counting(io.RawIOBase):
    """A raw binary stream that counts the bytes read through it (for progress)."""

    def __init__(self, raw: io.RawIOBase) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int | None:
        n = self.raw.readinto(buffer)
        self.count += n or 0
        return n


class LineSource:
    """Decoded physical lines of a text file, with the problems of each line kept for the reader.

    After each record the reader calls `take_problems()`: (kind, message) pairs for the lines read
    since the last call. Undecodable lines are decoded with replacement so parsing can go on and
    report every bad row; the import is refused anyway.
    """

    def __init__(self, path: Path, encoding: str, bom: int, max_line_bytes: int | None = None) -> None:
        self.path = path
        self.max_line_bytes = max_line_bytes
        self._record_bytes = 0  # read since the last take_problems(): one record's bytes
        self.encoding = encoding
        self.bom = bom
        self.line_no = 0  # physical lines yielded so far
        self.bytes_read = 0
        self.size = path.stat().st_size
        self._problems: list[tuple[Problem, str]] = []
        self.bad_sample = b""  # undecodable lines, for naming the encoding
        self.first_bad: tuple[int, int] | None = None  # (line, byte value)
        self.n_bad_lines = 0

    def take_problems(self) -> list[tuple[Problem, str]]:
        problems, self._problems = self._problems, []
        self._record_bytes = 0
        return problems

    def _too_long(self, what: str) -> LimitExceeded:
        assert self.max_line_bytes is not None  # only a set limit is exceeded
        return LimitExceeded(
            f"{what} is longer than {size(self.max_line_bytes)} (limits.max_line_bytes); nothing was read past it",
            self.line_no,
        )

    def _count(self, n: int) -> None:
        """A record spread over several lines (quoted newlines) is bounded like one line."""
        self._record_bytes += n
        if self.max_line_bytes is not None and self._record_bytes > self.max_line_bytes + 2:
            raise self._too_long("the record (a quoted field spanning lines?)")

    def __iter__(self) -> Iterator[str]:
        if self.encoding == UTF16:
            yield from self._utf16()
        else:
            yield from self._utf8()

    def _utf8(self) -> Iterator[str]:
        with open(self.path, "rb", buffering=1 << 20) as f:
            if self.bom:
                f.read(self.bom)
                self.bytes_read = self.bom
            limit = self.max_line_bytes
            readline = f.readline
            while True:
                raw = readline(limit + 2) if limit else readline()
                if not raw:
                    return
                self.bytes_read += len(raw)
                self.line_no += 1
                if limit and len(raw) > limit:
                    body = len(raw) - (2 if raw.endswith(b"\r\n") else 1 if raw.endswith(b"\n") else 0)
                    if body > limit:
                        raise self._too_long("the line")
                self._count(len(raw))
                if b"\x00" in raw:
                    column = raw.index(b"\x00") + 1
                    self._problems.append((Problem.NUL_BYTE, f"NUL byte at byte {column} of the line"))
                    raw = raw.replace(b"\x00", b"")
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield self._undecodable(raw, exc)

    def _undecodable(self, raw: bytes, exc: UnicodeDecodeError) -> str:
        byte = raw[exc.start]
        self.n_bad_lines += 1
        if self.first_bad is None:
            self.first_bad = (self.line_no, byte)
        if len(self.bad_sample) < _SAMPLE_LIMIT:
            self.bad_sample += raw[:_SAMPLE_LIMIT]
        self._problems.append(
            (Problem.UNDECODABLE, f"byte 0x{byte:02x} at byte {exc.start + 1} of the line is not UTF-8")
        )
        return raw.decode("utf-8", "replace")

    def _utf16(self) -> Iterator[str]:
        with open(self.path, "rb", buffering=0) as f:
            counting = _Counting(f)
            text = io.TextIOWrapper(io.BufferedReader(counting, 1 << 20), encoding=UTF16, newline="")
            limit = self.max_line_bytes // 2 + 2 if self.max_line_bytes else -1  # UTF-16: 2 bytes a character
            while True:
                try:
                    line = text.readline(limit)
                    if not line:
                        return
                    if limit > 0 and len(line) >= limit and not line.endswith("\n"):
                        self.line_no += 1
                        raise self._too_long("the line")
                except UnicodeDecodeError as exc:
                    raise FileProblem(
                        f"undecodable UTF-16 near line {self.line_no + 1} (about byte {counting.count}): {exc.reason}"
                    ) from None
                self.bytes_read = counting.count
                self.line_no += 1
                self._count(2 * len(line))
                if "\x00" in line:
                    self._problems.append((Problem.NUL_BYTE, f"NUL character at column {line.index(chr(0)) + 1}"))
                    line = line.replace("\x00", "")
                yield line

    def verdict(self, first_bad_row: int | None) -> str | None:
        """The whole-file message when some lines were not UTF-8, naming what the file looks like."""
        if self.first_bad is None:
            return None
        line, byte = self.first_bad
        where = f"row {first_bad_row}" if first_bad_row is not None else f"line {line}"
        return (
            f"file is not UTF-8/UTF-16: looks like {guess_encoding(self.bad_sample)} "
            f"({where} has byte 0x{byte:02x}; {self.n_bad_lines} line(s) affected): "
            f"save it as UTF-8 and import again"
        )
