"""The streaming health pass the import runs (workbench.health.stream): the same findings as the
whole-batch functions, however the rows are chunked; the near-duplicate policy of the import, with
its flags written in the import's transaction (SQLite and PostgreSQL); and tiny images compared
on their pixels rather than on pHash."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from tests.conftest import shared_dataset
from tests.helpers import read_sms
from workbench.domain import Actor
from workbench.errors import WorkbenchError
from workbench.health import duplicates as dup
from workbench.health.report import FlagKind
from workbench.health.stream import TextHealthPass

OPERATOR = Actor.operator()


def _sms_texts() -> list[str]:
    return [text for _, text in read_sms(shared_dataset("sms_spam_collection") / "SMSSpamCollection")]


def _run(texts, *, old=0, batch=1000, chunk_rows=20_000, splits=None):
    health = TextHealthPass(pii=True, chunk_rows=chunk_rows)
    n = len(texts)
    splits = splits or ["eval" if i % 5 == 0 else "pool" for i in range(n)]
    for start in range(0, n, batch):
        end = min(n, start + batch)
        for lo, hi, new in ((start, min(end, old), False), (max(start, old), end, True)):
            if hi > lo:
                health.add(list(range(lo, hi)), [f"x{i}" for i in range(lo, hi)], splits[lo:hi], texts[lo:hi], new=new)
    return health.finish()


def test_pass_finds_the_sms_duplicates_like_the_whole_batch_functions():
    texts = _sms_texts()
    report = _run(texts)
    assert report.exact_duplicates == 403 and report.leakage_pairs > 0
    exact = {(f.item_id, f.reason) for f in report.flags if f.kind is FlagKind.DUPLICATE}
    assert len({reason for _, reason in exact}) == 281  # one first copy named per group
    whole = dup.text_duplicates(texts)
    assert {(p.first, p.second) for p in whole if p.exact} == {
        (int(f.reason.rsplit("x", 1)[1]), f.item_id) for f in report.flags if f.kind is FlagKind.DUPLICATE
    }
    near_whole = {(p.first, p.second) for p in whole if not p.exact}
    near_pass = {
        (int(f.reason.rsplit("x", 1)[1]), f.item_id) for f in report.flags if f.kind is FlagKind.NEAR_DUPLICATE
    }
    # 16-bit minima may lift an estimate by 1/64 now and then; the two must all but agree.
    assert len(near_whole) >= 50 and len(near_whole ^ near_pass) <= 0.05 * len(near_whole)
    from workbench.health.outliers import text_outliers

    assert report.outliers == len(text_outliers(texts))


def test_pass_does_not_depend_on_how_the_rows_are_chunked():
    texts = _sms_texts()[:3000]
    one = _run(texts, batch=3000, chunk_rows=10_000)
    many = _run(texts, batch=77, chunk_rows=500)
    assert one.flags == many.flags and one.pii_counts == many.pii_counts
    assert one.profile == many.profile


def _health_threads() -> list[str]:
    import threading

    return [t.name for t in threading.enumerate() if t.name.startswith("health-pass")]


def test_the_pass_thread_reraises_a_chunk_failure_at_finish_and_stops(monkeypatch):
    health = TextHealthPass(chunk_rows=10)
    calls = []

    def fail(pending, new):
        calls.append(len(pending[0]))
        raise RuntimeError("chunk failed")

    monkeypatch.setattr(health, "_process", fail)
    health.add(list(range(10)), [f"x{i}" for i in range(10)], ["pool"] * 10, ["some words"] * 10, new=True)
    assert _health_threads()  # the chunk went to the pass's thread, not run inline
    with pytest.raises(RuntimeError, match="chunk failed"):
        health.finish()
    assert calls == [10] and not _health_threads()


def test_closing_a_pass_without_a_report_stops_its_thread():
    health = TextHealthPass(chunk_rows=5)
    health.add(
        list(range(20)), [f"x{i}" for i in range(20)], ["pool"] * 20, [f"text {i} here" for i in range(20)], new=True
    )
    health.close()
    health.close()  # twice is harmless
    assert not _health_threads()


def test_existing_items_are_compared_with_but_not_reported_again():
    texts = ["alpha beta gamma delta", "alpha beta gamma delta", "one two three four", "one two three four"]
    texts += [f"filler text number {w} here" for w in ("apple", "pear", "plum", "kiwi")]
    report = _run(texts, old=2)
    assert report.n_existing == 2 and report.n_batch == 6
    assert report.exact_duplicates == 1  # rows 2-3, not the old pair 0-1
    texts.append("alpha beta gamma delta")
    again = _run(texts, old=8)
    assert again.exact_duplicates == 1 and again.flags[0].reason.endswith("x0")


def test_sixteen_bit_signatures_estimate_like_the_full_ones():
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(300)]
    base = [" ".join(rng.choice(words, 40)) for _ in range(200)]
    edited = [" ".join(t.split()[:-3] + list(rng.choice(words, 3))) for t in base]
    full = dup.minhash_signatures(base + edited)
    short = (full & 0xFFFF).astype(np.uint16)
    a = dup.estimated_jaccard(full[:200], full[200:])
    b = dup.estimated_jaccard(short[:200], short[200:])
    assert np.all(b >= a) and np.mean(b - a) < 0.005


# -- the import's near-duplicate policy ----------------------------------------------------------
def _csv(tmp_path):
    path = tmp_path / "rows.csv"
    rows = [
        ("a1", "the quick brown fox jumps over the lazy dog near the river bank today"),
        ("a2", "the quick brown fox jumps over the lazy dog near the river bank today!"),  # near
        ("a3", "the quick brown fox jumps over the lazy dog near the river bank today"),  # exact
        ("b1", "completely different words about a spreadsheet and its many formulas"),
        ("c1", "a third sentence that nobody repeats in this little file at all"),
    ]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text"])
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("policy", ["flag", "keep", "skip"])
def test_import_near_duplicate_policy(wb, tmp_path, policy):
    wb.projects.create("dups", "text", ["a", "b"], actor=OPERATOR)
    report = wb.imports.run("dups", _csv(tmp_path), actor=OPERATOR, seed=0, on_near_duplicate=policy)
    assert report.ok and report.health.exact_duplicates == 1 and report.health.near_duplicates == 1
    flagged = {f.external_id: f.kind for f in wb.health.flags("dups", actor=OPERATOR) if f.kind != FlagKind.LEAKAGE}
    if policy == "keep":
        flagged = {f.external_id: f.kind for f in wb.health.flags("dups", actor=OPERATOR)}
    if policy == "flag":
        assert report.imported == 5 and flagged == {"a2": FlagKind.NEAR_DUPLICATE, "a3": FlagKind.DUPLICATE}
    elif policy == "keep":
        assert report.imported == 5 and set(flagged.values()) <= {FlagKind.LEAKAGE}  # leakage is still told
    else:
        assert report.imported == 3 and report.skipped_duplicates == 2 and not flagged
        assert report.n_pool + report.n_eval == 3
        assert "2 duplicate row(s) skipped" in report.summary()
    # The flags were written with the import: its audit row and the check's are one transaction's.
    from sqlalchemy import select

    from workbench.db.models import AuditLog, Item

    with wb.engine.connect() as conn:
        stored = set(conn.execute(select(Item.external_id)).scalars())
        actions = list(conn.execute(select(AuditLog.action).order_by(AuditLog.id)).scalars())
    assert stored == ({"a1", "b1", "c1"} if policy == "skip" else {"a1", "a2", "a3", "b1", "c1"})
    assert actions[-2:] == ["health.check", "import"]


def test_import_refuses_an_unknown_policy_and_writes_nothing(wb, tmp_path):
    wb.projects.create("dups", "text", ["a", "b"], actor=OPERATOR)
    with pytest.raises(WorkbenchError, match="on_near_duplicate must be one of keep, skip, flag"):
        wb.imports.run("dups", _csv(tmp_path), actor=OPERATOR, on_near_duplicate="drop")
    from sqlalchemy import func, select

    from workbench.db.models import Item

    with wb.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Item)).scalar() == 0


# -- images ------------------------------------------------------------------------------------
def test_tiny_images_are_compared_on_pixels_not_on_phash(tmp_path):
    """8×8 digits: pHash blows them up to 32×32 and distinct digits come out a few bits apart;
    they are compared on their pixels, so only the planted copies are found."""
    import imagehash
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = (load_digits().images[:300] * 16).clip(0, 255).astype(np.uint8)
    distinct = {d.tobytes(): i for i, d in reversed(list(enumerate(digits)))}
    paths = []
    for i, pixels in enumerate(list(digits) + [digits[5], digits[17]]):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(pixels).save(paths[-1])
    old = [int(str(imagehash.phash(Image.open(p))), 16) for p in paths]
    false = [p for p in dup.image_duplicates(old) if not (digits[p.first] == digits[min(p.second, 299)]).all()]
    assert false, "pHash no longer confuses tiny digits: this test shows nothing"
    pairs = dup.image_key_duplicates([dup.image_key(str(p)) for p in paths])
    expected = {(distinct[digits[i].tobytes()], j) for j, i in ((300, 5), (301, 17))}
    expected |= {(distinct[d.tobytes()], j) for j, d in enumerate(digits) if distinct[d.tobytes()] != j}
    assert {(p.first, p.second) for p in pairs} == expected and all(p.exact for p in pairs)
    # Images of 32 pixels a side or more keep their near-copy rule.
    big = (np.kron(digits[3], np.ones((8, 8), np.uint8))).astype(np.uint8)
    Image.fromarray(big).save(tmp_path / "big.png")
    Image.fromarray(big).resize((80, 80), Image.BILINEAR).save(tmp_path / "big2.png")
    near = dup.image_key_duplicates([dup.image_key(str(tmp_path / n)) for n in ("big.png", "big2.png")])
    assert [(p.first, p.second, p.exact) for p in near] == [(0, 1, False)]
