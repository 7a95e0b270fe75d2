"""The health report of a batch of items against the project they join: duplicates (and pool/eval
leakage), outliers, a profile, and personal-data findings. Pure: items come in as records."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from workbench.health import duplicates as dup, outliers as out
from workbench.health.profile import Profile, profile

MAX_LISTED = 200  # pairs and flags listed in a report; all are counted


class FlagKind(StrEnum):
    DUPLICATE = "duplicate"  # the same content as an earlier item
    NEAR_DUPLICATE = "near_duplicate"
    LEAKAGE = "leakage"  # a duplicate or near duplicate across the pool and eval splits
    OUTLIER = "outlier"
    PII = "pii"


@dataclass(frozen=True)
class ItemRecord:
    item_id: int
    external_id: str
    split: str
    content: dict[str, Any]
    new: bool  # part of the batch being checked (else an existing item it is compared with)


@dataclass(frozen=True)
class DuplicateInfo:
    first: str  # external ids
    second: str
    similarity: float
    exact: bool
    leakage: bool  # one is in the pool split and the other in eval


@dataclass(frozen=True)
class Flag:
    item_id: int
    external_id: str
    kind: FlagKind
    reason: str


@dataclass(frozen=True)
class HealthReport:
    n_batch: int
    n_existing: int
    exact_duplicates: int  # rows of the batch repeating an earlier item exactly
    near_duplicates: int
    leakage_pairs: int
    duplicates: tuple[DuplicateInfo, ...]  # the first MAX_LISTED
    outliers: int
    flags: tuple[Flag, ...]  # every flag, for storing; listings show the first MAX_LISTED
    pii_counts: dict[str, int]
    profile: Profile
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        parts = [f"{self.exact_duplicates} exact and {self.near_duplicates} near duplicate(s)"]
        if self.leakage_pairs:
            parts.append(f"{self.leakage_pairs} pool/eval leakage pair(s)")
        parts.append(f"{self.outliers} outlier(s)")
        if self.pii_counts:
            parts.append("personal data: " + ", ".join(f"{n} {k.lower()}" for k, n in sorted(self.pii_counts.items())))
        return "; ".join(parts)


def duplicate_findings(
    pairs: Sequence[dup.DuplicatePair],
    *,
    external_id: Callable[[int], str],
    item_id: Callable[[int], int],
    split: Callable[[int], str],
    new: Callable[[int], bool],
) -> tuple[list[DuplicateInfo], list[Flag]]:
    """The listing and the flags of duplicate pairs given by row: the flag goes to the batch's
    row of the pair (the later one when both are new), and a pair across splits is leakage."""
    infos, flags = [], []
    for p in pairs:
        a, b = p.first, p.second
        leakage = split(a) != split(b)
        infos.append(DuplicateInfo(external_id(a), external_id(b), round(p.similarity, 4), p.exact, leakage))
        target, other = (b, a) if new(b) else (a, b)
        what = "the same content as" if p.exact else f"a near copy ({p.similarity:.2f} similar) of"
        kind = FlagKind.DUPLICATE if p.exact else FlagKind.NEAR_DUPLICATE
        flags.append(Flag(item_id(target), external_id(target), kind, f"{what} {external_id(other)}"))
        if leakage:
            duplicate = "duplicate" if p.exact else "near duplicate"
            reason = f"{duplicate} of {external_id(other)} in the {split(other)} split"
            flags.append(Flag(item_id(target), external_id(target), FlagKind.LEAKAGE, reason))
    return infos, flags


def outlier_flag(item_id: int, external_id: str, outlier: out.Outlier) -> Flag:
    return Flag(item_id, external_id, FlagKind.OUTLIER, "; ".join(outlier.reasons))


def pii_flag(item_id: int, external_id: str, counts: dict[str, int]) -> Flag:
    summary = ", ".join(f"{n} {k.lower()}" for k, n in sorted(counts.items()))
    return Flag(item_id, external_id, FlagKind.PII, f"personal data: {summary}")


def _text(content: dict[str, Any]) -> str:
    return str(content.get("text", ""))


def _features(content: dict[str, Any]) -> dict[str, Any]:
    return dict(content.get("features") or {})


def build_report(
    kind: str,
    records: Sequence[ItemRecord],
    *,
    threshold: float = dup.DEFAULT_THRESHOLD,
    image_root: Path | None = None,
    pii: bool = False,
    pii_region: str = "US",
    prelabels: Sequence[str | None] | None = None,
) -> HealthReport:
    """Duplicates within the batch and against existing items, outliers within the batch, a profile
    of the batch, and (text, `pii`) personal-data counts. Existing items come first in `records`
    order does not matter: pairs are reported with the earlier (existing) item first."""
    import time

    timings: dict[str, float] = {}
    clock = time.perf_counter()
    # Existing items first, so a new item repeating an old one is the "later copy".
    ordered = sorted(records, key=lambda r: (r.new, r.item_id))
    batch = [r for r in ordered if r.new]
    offset = len(ordered) - len(batch)
    if kind == "text":
        return _text_report(
            ordered[:offset], batch, threshold=threshold, pii=pii, pii_region=pii_region, prelabels=prelabels
        )
    if kind == "tabular":
        names = sorted({k for r in ordered for k in _features(r.content)})
        pairs = dup.row_duplicates([[_features(r.content).get(n) for n in names] for r in ordered])
    else:
        root = image_root or Path(".")
        pairs = dup.image_key_duplicates([dup.image_key(str(root / str(r.content.get("image", "")))) for r in ordered])
    # Only pairs that involve the batch: old-old pairs were reported when they came in.
    pairs = [p for p in pairs if p.second >= offset or p.first >= offset]
    timings["duplicates"] = time.perf_counter() - clock
    infos, flags = duplicate_findings(
        pairs,
        external_id=lambda i: ordered[i].external_id,
        item_id=lambda i: ordered[i].item_id,
        split=lambda i: ordered[i].split,
        new=lambda i: ordered[i].new,
    )
    clock = time.perf_counter()
    if kind == "tabular":
        names = sorted({k for r in batch for k in _features(r.content)})
        found = out.tabular_outliers({n: [_features(r.content).get(n) for r in batch] for n in names})
    else:
        sizes, blank = _image_stats(batch, image_root or Path("."))
        found = out.image_outliers(sizes, blank)
    for o in found:
        flags.append(outlier_flag(batch[o.row].item_id, batch[o.row].external_id, o))
    timings["outliers"] = time.perf_counter() - clock
    clock = time.perf_counter()
    pii_counts: dict[str, int] = {}
    clock = time.perf_counter()
    if kind == "tabular":
        names = sorted({k for r in batch for k in _features(r.content)})
        prof = profile({n: [_features(r.content).get(n) for r in batch] for n in names}, prelabels=prelabels)
    else:
        prof = profile({"image": [r.content.get("image") for r in batch]}, prelabels=prelabels)
    timings["profile"] = time.perf_counter() - clock
    exact = sum(1 for p in pairs if p.exact)
    return HealthReport(
        n_batch=len(batch),
        n_existing=offset,
        exact_duplicates=exact,
        near_duplicates=len(pairs) - exact,
        leakage_pairs=sum(1 for i in infos if i.leakage),
        duplicates=tuple(infos[:MAX_LISTED]),
        outliers=len(found),
        flags=tuple(flags),
        pii_counts=pii_counts,
        profile=prof,
        timings={k: round(v, 4) for k, v in timings.items()},
    )


def _text_report(
    existing: Sequence[ItemRecord],
    batch: Sequence[ItemRecord],
    *,
    threshold: float,
    pii: bool,
    pii_region: str,
    prelabels: Sequence[str | None] | None,
) -> HealthReport:
    """The text report, by the same streaming pass the import runs (workbench.health.stream)."""
    from workbench.health.stream import TextHealthPass

    health = TextHealthPass(threshold=threshold, pii=pii, pii_region=pii_region)
    for records, new in ((existing, False), (batch, True)):
        health.add(
            [r.item_id for r in records],
            [r.external_id for r in records],
            [r.split for r in records],
            [_text(r.content) for r in records],
            new=new,
            prelabels=prelabels if new else None,
            contexts=[r.content.get("context") for r in records] if new else None,
        )
    return health.finish()


def _image_stats(batch: Sequence[ItemRecord], root: Path) -> tuple[list[tuple[int, int] | None], list[float | None]]:
    from PIL import Image

    sizes: list[tuple[int, int] | None] = []
    blank: list[float | None] = []
    for r in batch:
        try:
            with Image.open(root / str(r.content.get("image", ""))) as image:
                sizes.append(image.size)
                thumb = image.convert("L").resize((64, 64))
                blank.append(float(np.asarray(thumb, dtype=float).std()))
        except Exception:  # unreadable images are refused at import; here they are skipped
            sizes.append(None)
            blank.append(None)
    return sizes, blank
