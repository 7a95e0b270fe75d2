"""Limits on what an import will read, each a project setting (``settings["limits"]``).

Exceeding one refuses the file (or the row) with its row number, after reading at most about the
limit: memory is bounded by the limits, not by the input.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 4 * 1024 * MIB  # the whole file
    max_rows: int = 5_000_000  # data rows of a file, images of a folder
    max_line_bytes: int = 8 * MIB  # one physical line, and one CSV record (quoted newlines included)
    max_columns: int = 1_000  # columns of the header (keys of the first JSONL object)
    max_depth: int = 32  # nesting of JSON arrays/objects in a JSONL line
    max_item_chars: int = 100_000  # an item's text, and its stored content as a whole
    max_image_pixels: int = 40_000_000  # width x height of an image (40 megapixels)
    max_image_bytes: int = 64 * MIB  # one image file

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        """Defaults, overridden by a project's ``limits`` setting (a dict of positive integers)."""
        if not settings:
            return cls()
        if not isinstance(settings, dict):
            raise ValueError(f"the limits setting must be an object, got {settings!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown limit(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        for name, value in settings.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"limit {name} must be a positive integer, got {value!r}")
        return replace(cls(), **settings)


def size(n: int) -> str:
    """Bytes for people: 8 MiB, 4 GiB, 1.5 KiB, 512 bytes."""
    for unit, factor in (("GiB", 1024 * MIB), ("MiB", MIB), ("KiB", 1024)):
        if n >= factor:
            return f"{n / factor:.4g} {unit}"
    return f"{n} bytes"
