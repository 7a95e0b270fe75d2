"""Exact and near duplicates: text by MinHash LSH on word shingles, tabular rows by value, images by
perceptual hash.

MinHash (Broder 1997): for a set S of shingle hashes and a random hash function h, P[min h(S) =
min h(T)] equals the Jaccard similarity |S ∩ T| / |S ∪ T|. With k functions the share of equal
minima estimates it. LSH banding splits the k minima into b bands of r rows; two sets whose bands
agree in at least one band become a candidate pair, with probability 1 - (1 - J^r)^b, an S-curve
around J ≈ (1/b)^(1/r). Candidates are then checked on their estimated Jaccard.

Signatures here are one-permutation MinHash computed with numpy over the bytes of many texts at
once (see :func:`minhash_signatures`). datasketch's ``MinHash``/``MinHashLSH`` compute the same
estimate one text and one shingle at a time in Python: 5.5 µs a shingle, about 3 minutes for a
million texts, where the import itself takes 20 s. The tests check these estimates against
datasketch's on the same shingle sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

MAX_HASH = np.uint64((1 << 32) - 1)
NUM_PERM = 64
BANDS = 16  # 16 bands of 4 rows: candidate probability 0.64 at J = 0.5, 0.999 at J = 0.9
DEFAULT_THRESHOLD = 0.9


_SEPARATOR = 0  # NUL never occurs in an imported text (the readers refuse it)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads the bits of a uint64 hash (Steele et al. 2014)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def word_hashes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(owner row, uint64 hash) of every word of each text, in order, vectorised over the bytes
    of all texts (no Python loop over words). Words are runs of ASCII letters, digits,
    underscore or non-ASCII bytes, ASCII case-folded."""
    joined = "\0".join(texts).encode("utf-8", "surrogatepass")
    b = np.frombuffer(joined, dtype=np.uint8)
    if len(b) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    upper = (b >= 65) & (b <= 90)
    b = np.where(upper, b + 32, b).astype(np.uint8)
    word = ((b >= 48) & (b <= 57)) | ((b >= 97) & (b <= 122)) | (b >= 128) | (b == 95)
    owner_of_byte = np.cumsum(b == _SEPARATOR)
    starts = word & ~np.concatenate([[False], word[:-1]])
    start_pos = np.flatnonzero(starts)
    if len(start_pos) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    token_of_byte = np.cumsum(starts) - 1
    positions = np.flatnonzero(word)
    tokens = token_of_byte[positions]
    offset = positions - start_pos[tokens]
    powers = np.cumprod(np.full(int(offset.max()) + 1, 1099511628211, dtype=np.uint64), dtype=np.uint64)
    with np.errstate(over="ignore"):
        terms = b[positions].astype(np.uint64) * powers[offset]
    # Segmented sums: `positions` is sorted and every token's bytes are contiguous in it.
    token_heads = np.concatenate([[0], np.flatnonzero(tokens[1:] != tokens[:-1]) + 1])
    return owner_of_byte[start_pos].astype(np.int64), _mix(np.add.reduceat(terms, token_heads))


def _chunk_shingles(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(owner row within the chunk, uint64 hash) of every word bigram of each text, or of its
    only word."""
    owner, h = word_hashes(texts)
    if len(h) == 0:
        return owner, h
    same = owner[1:] == owner[:-1]
    with np.errstate(over="ignore"):
        bigrams = _mix((h[:-1] * _GOLDEN) ^ h[1:])[same]
    bigram_owner = owner[1:][same]
    # A one-word text is represented by its word.
    counts = np.bincount(owner, minlength=len(texts))
    single = counts[owner] == 1
    return (np.concatenate([bigram_owner, owner[single]]), np.concatenate([bigrams, h[single]]))


def minhash_signatures(texts: Sequence[str], *, num_perm: int = NUM_PERM, chunk_rows: int = 20_000) -> np.ndarray:
    """One-permutation MinHash signatures of the texts' word bigrams, shape (n, num_perm), uint32.

    One permutation hashing (Li, Owen & Zhang 2012) hashes every shingle once, sends it to one of
    k bins by its top bits and keeps each bin's minimum, so a signature costs one hash per shingle
    instead of k. Empty bins borrow the next non-empty bin to the right (circularly), shifted by
    the distance (rotation densification, Shrivastava & Li 2014), which keeps P[bin equal] equal
    to the Jaccard similarity. A text with no word gets all-max, which matches nothing.
    """
    if num_perm & (num_perm - 1):
        raise ValueError("num_perm must be a power of two")
    bits = np.uint64(64 - int(num_perm).bit_length() + 1)
    n = len(texts)
    out = np.full((n, num_perm), MAX_HASH, dtype=np.uint64)
    for start in range(0, n, chunk_rows):
        part = texts[start : start + chunk_rows]
        owner, h = _chunk_shingles(part)
        if len(h) == 0:
            continue
        block = np.full((len(part), num_perm), MAX_HASH, dtype=np.uint64)
        key = owner * num_perm + (h >> bits).astype(np.int64)
        np.minimum.at(block.reshape(-1), key, h & MAX_HASH)
        out[start : start + len(part)] = _densify(block)
    return out.astype(np.uint32)


def _densify(block: np.ndarray) -> np.ndarray:
    k = block.shape[1]
    empty = block == MAX_HASH
    if not empty.any():
        return block
    doubled = np.concatenate([block, block], axis=1)
    index = np.where(np.concatenate([~empty, ~empty], axis=1), np.arange(2 * k), 2 * k)
    nearest = np.minimum.accumulate(index[:, ::-1], axis=1)[:, ::-1][:, :k]
    whole_row_empty = empty.all(axis=1)
    nearest[whole_row_empty] = np.arange(k)
    distance = (nearest - np.arange(k)).astype(np.uint64)
    rows = np.arange(block.shape[0])[:, None]
    filled = (doubled[rows, nearest] + distance * np.uint64(0x9E3779B1)) & MAX_HASH
    filled[whole_row_empty] = MAX_HASH
    return np.where(empty, filled, block)


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Share of equal minima, row by row (the MinHash estimate of Jaccard similarity)."""
    return (np.asarray(sig_a) == np.asarray(sig_b)).mean(axis=-1)


@dataclass(frozen=True)
class DuplicatePair:
    """Two rows (positions in the input) that are duplicates; `similarity` is 1.0 for exact ones."""

    first: int
    second: int
    similarity: float
    exact: bool


def min_band_matches(
    threshold: float, *, bands: int = BANDS, rows: int = NUM_PERM // BANDS, recall: float = 0.999
) -> int:
    """The most bands a pair at exactly `threshold` still shares with probability ≥ `recall`.

    A pair of Jaccard J agrees in a band with probability p = J^r, so the number of agreeing
    bands is Binomial(b, p); asking for m ≥ 2 of them instead of 1 removes most pairs far below
    the threshold before their signatures are compared."""
    from scipy.stats import binom

    p = threshold**rows
    m = 1
    while m < bands and binom.sf(m, bands, p) >= recall:  # sf(m) = P[X > m] = P[X ≥ m + 1]
        m += 1
    return m


def lsh_candidates(signatures: np.ndarray, *, bands: int = BANDS, min_matches: int = 1) -> np.ndarray:
    """Candidate pairs, shape (P, 2) with i < j: rows whose signatures agree in at least
    `min_matches` bands.

    Within a bucket every member is paired with the bucket's first (lowest) row, which is linear
    in the bucket and finds every group of near copies without listing all of its pairs."""
    n, k = signatures.shape
    width = k // bands
    rows = np.flatnonzero(~(signatures == np.uint32(MAX_HASH)).all(axis=1))
    codes = []
    for band in range(bands):
        part = signatures[rows, band * width : (band + 1) * width].astype(np.uint64)
        key = np.zeros(len(rows), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for col in range(width):
                key = _mix(key ^ part[:, col])
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        new_group = np.concatenate([[True], sorted_key[1:] != sorted_key[:-1]])
        head = np.maximum.accumulate(np.where(new_group, np.arange(len(order)), 0))
        member = ~new_group
        codes.append(rows[order[head[member]]] * n + rows[order[member]])
    if not codes:
        return np.zeros((0, 2), dtype=np.int64)
    unique, counts = np.unique(np.concatenate(codes), return_counts=True)
    unique = unique[counts >= min_matches]
    return np.stack([unique // n, unique % n], axis=1)


def text_duplicates(
    texts: Sequence[str], *, threshold: float = DEFAULT_THRESHOLD, num_perm: int = NUM_PERM
) -> list[DuplicatePair]:
    """Exact duplicates (the same text, byte for byte) and near duplicates
    (estimated Jaccard of word shingles ≥ threshold, after case and white-space folding).

    Every later copy of an exact duplicate is paired with the first copy; near pairs are listed
    between the first copies of their exact groups."""
    pairs: list[DuplicatePair] = []
    first_of: dict[str, int] = {}
    representative = []  # rows that are the first of their exact group
    for i, text in enumerate(texts):
        j = first_of.setdefault(text, i)
        if j != i:
            pairs.append(DuplicatePair(j, i, 1.0, True))
        else:
            representative.append(i)
    if threshold <= 1.0 and len(representative) > 1:
        reps = np.asarray(representative)
        signatures = minhash_signatures([texts[i] for i in reps], num_perm=num_perm)
        # Two bands, not more: a pair split between two bucket heads counts once per head.
        candidates = lsh_candidates(signatures, min_matches=min(2, min_band_matches(threshold)))
        if len(candidates):
            similarity = estimated_jaccard(signatures[candidates[:, 0]], signatures[candidates[:, 1]])
            keep = similarity >= threshold
            pairs += [
                DuplicatePair(int(reps[x]), int(reps[y]), float(sim), False)
                for (x, y), sim in zip(candidates[keep], similarity[keep])
            ]
    return pairs


def row_duplicates(rows: Iterable[Sequence[object]]) -> list[DuplicatePair]:
    """Identical feature rows (tabular): each later copy paired with the first."""
    first_of: dict[tuple, int] = {}
    pairs = []
    for i, row in enumerate(rows):
        key = tuple("" if v is None else str(v).strip() for v in row)
        j = first_of.setdefault(key, i)
        if j != i:
            pairs.append(DuplicatePair(j, i, 1.0, True))
    return pairs


def image_duplicates(hashes: Sequence[int | None], *, max_distance: int = 4) -> list[DuplicatePair]:
    """Images whose 64-bit perceptual hashes differ in at most `max_distance` bits.

    `hashes` are ints from :func:`perceptual_hash` (None for an image that could not be read)."""
    valid = [(i, h) for i, h in enumerate(hashes) if h is not None]
    if len(valid) < 2:
        return []
    idx = np.asarray([i for i, _ in valid])
    values = np.asarray([h for _, h in valid], dtype=np.uint64)
    pairs = []
    # Pigeonhole: two hashes within 4 bits agree on at least one of 5 disjoint 13-bit blocks.
    blocks = max_distance + 1
    width = 64 // blocks + 1
    seen: set[tuple[int, int]] = set()
    for block in range(blocks):
        keys = (values >> np.uint64(block * width)) & np.uint64((1 << width) - 1)
        order = np.argsort(keys, kind="stable")
        boundaries = np.flatnonzero(keys[order][1:] != keys[order][:-1]) + 1
        for bucket in np.split(order, boundaries):
            for x in range(len(bucket)):
                for y in range(x + 1, len(bucket)):
                    a, b = sorted((int(bucket[x]), int(bucket[y])))
                    if (a, b) in seen:
                        continue
                    seen.add((a, b))
                    distance = int(bin(int(values[a]) ^ int(values[b])).count("1"))
                    if distance <= max_distance:
                        pairs.append(DuplicatePair(int(idx[a]), int(idx[b]), 1 - distance / 64, distance == 0))
    return sorted(pairs, key=lambda p: (p.first, p.second))


def perceptual_hash(path: str) -> int | None:
    """The 64-bit pHash of an image file (imagehash), or None when it cannot be read."""
    import imagehash
    from PIL import Image

    try:
        with Image.open(path) as image:
            return int(str(imagehash.phash(image)), 16)
    except Exception:  # noqa: BLE001 - unreadable images are reported elsewhere, never hashed
        return None
