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
_MAX32 = np.uint32((1 << 32) - 1)
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


@dataclass(frozen=True)
class Tokens:
    """One tokenisation of a chunk of texts, shared by MinHash, the text outlier features and the
    personal-data pre-filter: every word as (owner row, uint64 hash) in order, and per text its
    byte count, its ASCII digits-and-punctuation count and whether it holds a byte some detector
    of personal data needs (an upper-case letter, a digit, '@' or ':')."""

    owner: np.ndarray  # int64, the row of each word
    hashes: np.ndarray  # uint64, one per word
    sizes: np.ndarray  # int64 bytes per text
    non_letters: np.ndarray  # float64 ASCII digits and punctuation per text
    pii_hint: np.ndarray  # bool per text


# Byte classes, as lookup tables over the 256 byte values.
_FOLD = np.arange(256, dtype=np.uint8)
_FOLD[65:91] += 32  # ASCII case folding
_WORD = np.zeros(256, bool)  # word bytes: ASCII letters, digits, underscore, any non-ASCII byte
_WORD[48:58] = _WORD[65:91] = _WORD[97:123] = _WORD[128:] = True
_WORD[95] = True
_OTHER = np.zeros(256, bool)  # ASCII digits and punctuation
_OTHER[33:65] = _OTHER[91:97] = _OTHER[123:127] = True
_HINT = np.zeros(256, bool)  # bytes some personal-data detector needs: A-Z, 0-9, '@', ':'
_HINT[65:91] = _HINT[48:58] = True
_HINT[64] = _HINT[58] = True
_P = np.uint64(1099511628211)  # FNV's 64-bit prime; odd, so invertible modulo 2^64
_P_INVERSE = np.uint64(pow(1099511628211, -1, 1 << 64))
_powers: list[np.ndarray] = [np.ones(1, np.uint64), np.ones(1, np.uint64)]


def _power_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    """P^j and P^-j (mod 2^64) for j < n, cached (a chunk is at most CHUNK_CHARS and a text long)."""
    if len(_powers[0]) < n:
        m = -(-n // (1 << 20)) << 20  # whole mebi-entries: a chunk's bytes, not twice them
        for i, base in enumerate((_P, _P_INVERSE)):
            _powers[i] = np.cumprod(np.concatenate([[np.uint64(1)], np.full(m - 1, base)]), dtype=np.uint64)
    return _powers[0][:n], _powers[1][:n]


def tokenise(texts: Sequence[str]) -> Tokens:
    """Words of each text, vectorised over the bytes of all texts (no Python loop over words).
    Words are runs of ASCII letters, digits, underscore or non-ASCII bytes, ASCII case-folded.

    A word's hash is its polynomial sum(byte_j · P^(j - start)) mod 2^64, read off one prefix sum
    over all bytes (prefix[end] - prefix[start - 1], times P^-start), then mixed."""
    n = len(texts)
    b = np.frombuffer("\0".join(texts).encode("utf-8", "surrogatepass"), dtype=np.uint8)
    separators = np.flatnonzero(b == _SEPARATOR)
    sizes = np.diff(np.concatenate([[-1], separators, [len(b)]])) - 1
    non_letters = np.bincount(np.searchsorted(separators, np.flatnonzero(_OTHER[b])), minlength=n).astype(float)
    pii_hint = np.bincount(np.searchsorted(separators, np.flatnonzero(_HINT[b])), minlength=n) > 0
    edges = np.flatnonzero(np.diff(np.concatenate([[False], _WORD[b], [False]]).view(np.int8)))
    starts, ends = edges[0::2], edges[1::2]
    if len(starts) == 0:
        return Tokens(np.zeros(0, np.int64), np.zeros(0, np.uint64), sizes, non_letters, pii_hint)
    powers, inverse = _power_tables(len(b))
    with np.errstate(over="ignore"):
        prefix = np.cumsum(_FOLD[b].astype(np.uint64) * powers, dtype=np.uint64)
        sums = prefix[ends - 1] - np.where(starts > 0, prefix[starts - 1], np.uint64(0))
        hashes = _mix(sums * inverse[starts])
    return Tokens(np.searchsorted(separators, starts).astype(np.int64), hashes, sizes, non_letters, pii_hint)


def word_hashes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(owner row, uint64 hash) of every word of each text, in order (see :func:`tokenise`)."""
    tokens = tokenise(texts)
    return tokens.owner, tokens.hashes


def _shingles(owner: np.ndarray, h: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(owner row within the chunk, uint64 hash) of every word bigram of each of n texts, or of
    its only word."""
    if len(h) == 0:
        return owner, h
    same = owner[1:] == owner[:-1]
    with np.errstate(over="ignore"):
        bigrams = _mix((h[:-1] * _GOLDEN) ^ h[1:])[same]
    bigram_owner = owner[1:][same]
    # A one-word text is represented by its word.
    counts = np.bincount(owner, minlength=n)
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
    n = len(texts)
    out = np.full((n, num_perm), _MAX32, dtype=np.uint32)
    for start in range(0, n, chunk_rows):
        part = texts[start : start + chunk_rows]
        tokens = tokenise(part)
        out[start : start + len(part)] = signature_block(tokens.owner, tokens.hashes, len(part), num_perm=num_perm)
    return out


def signature_block(owner: np.ndarray, h: np.ndarray, n: int, *, num_perm: int = NUM_PERM) -> np.ndarray:
    """The MinHash signatures (n, num_perm) of n texts given their words (see :func:`tokenise`),
    uint32."""
    if num_perm & (num_perm - 1):
        raise ValueError("num_perm must be a power of two")
    bits = np.uint64(64 - int(num_perm).bit_length() + 1)
    block = np.full((n, num_perm), _MAX32, dtype=np.uint32)
    owner, h = _shingles(owner, h, n)
    if len(h) == 0:
        return block
    key = owner * num_perm + (h >> bits).astype(np.int64)
    np.minimum.at(block.reshape(-1), key, (h & MAX_HASH).astype(np.uint32))
    return _densify(block)


def _densify(block: np.ndarray) -> np.ndarray:
    n, k = block.shape
    empty = block == _MAX32
    if not empty.any():
        return block
    full = ~empty
    # For each bin, the nearest non-empty bin at or to its right, circularly (2k = none).
    small = np.uint8 if 2 * k < 256 else np.uint16
    index = np.where(np.concatenate([full, full], axis=1), np.arange(2 * k, dtype=small), small(2 * k))
    nearest = np.minimum.accumulate(np.ascontiguousarray(index[:, ::-1]), axis=1)[:, ::-1][:, :k]
    whole_row_empty = nearest[:, 0] == 2 * k
    nearest = np.where(whole_row_empty[:, None], np.arange(k, dtype=small), nearest)
    distance = (nearest - np.arange(k, dtype=small)).astype(np.uint32)
    with np.errstate(over="ignore"):
        filled = block[np.arange(n)[:, None], nearest % small(k)] + distance * np.uint32(0x9E3779B1)
    filled[whole_row_empty] = _MAX32
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
    from math import comb

    p = threshold**rows

    def at_least(m: int) -> float:  # P[X ≥ m]
        return sum(comb(bands, i) * p**i * (1 - p) ** (bands - i) for i in range(m, bands + 1))

    m = 1
    while m < bands and at_least(m + 1) >= recall:
        m += 1
    return m


def lsh_candidates(
    signatures: np.ndarray, *, bands: int = BANDS, min_matches: int = 1, rows: np.ndarray | None = None
) -> np.ndarray:
    """Candidate pairs, shape (P, 2) with i < j: rows (of `rows`, default every row with a word)
    whose signatures agree in at least `min_matches` bands.

    The index holds one uint64 hash per band and row, never an object per item. Within a bucket
    every member is paired with the bucket's first (lowest) row, which is linear in the bucket and
    finds every group of near copies without listing all of its pairs."""
    n, k = signatures.shape
    width = k // bands
    if rows is None:
        rows = np.flatnonzero(~(signatures == np.uint32(MAX_HASH)).all(axis=1))
    keys = (band_key(signatures[rows, band * width : (band + 1) * width]) for band in range(bands))
    return band_candidates(keys, rows, n, min_matches=min_matches)


def band_key(part: np.ndarray) -> np.ndarray:
    """One uint64 per row for a band of a signature: four 16-bit minima are it as they are."""
    if part.dtype == np.uint16 and part.shape[1] == 4:
        return np.ascontiguousarray(part).view(np.uint64).ravel()
    part = part.astype(np.uint64)
    key = np.zeros(len(part), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in range(part.shape[1]):
            key = _mix(key ^ part[:, col])
    return key


def band_candidates(band_keys: Iterable[np.ndarray], rows: np.ndarray, n: int, *, min_matches: int = 1) -> np.ndarray:
    """Pairs (i < j) of `rows` whose keys are equal in at least `min_matches` of the bands."""
    codes = []
    for key in band_keys:
        order = np.argsort(key)
        sorted_key, sorted_rows = key[order], rows[order]
        new_group = np.concatenate([[True], sorted_key[1:] != sorted_key[:-1]])
        # The head of a bucket is its lowest row (the sort is not stable).
        head = np.minimum.reduceat(sorted_rows, np.flatnonzero(new_group))[np.cumsum(new_group) - 1]
        member = sorted_rows != head
        codes.append(head[member] * n + sorted_rows[member])
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
    key = image_key(path)
    return None if key is None else key.phash


# pHash shrinks an image to 32×32 before its DCT; a smaller image is blown up to that size
# instead, and distinct tiny images (8×8 digits, say) then get hashes a few bits apart. Those
# are compared on their pixels only.
MIN_PHASH_SIDE = 32


@dataclass(frozen=True)
class ImageKey:
    pixels: bytes  # BLAKE2b of the size, mode and pixel bytes: equal for pixel-identical images
    phash: int | None  # 64-bit pHash; None for images under MIN_PHASH_SIDE on a side


def image_key(path: str) -> ImageKey | None:
    """What image duplicates are found on, or None when the file cannot be read."""
    import hashlib

    import imagehash
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            digest = hashlib.blake2b(f"{image.size}{image.mode}".encode(), digest_size=16)
            digest.update(image.tobytes())
            small = min(image.size) < MIN_PHASH_SIDE
            return ImageKey(digest.digest(), None if small else int(str(imagehash.phash(image)), 16))
    except Exception:  # unreadable images are reported elsewhere, never hashed
        return None


def image_key_duplicates(keys: Sequence[ImageKey | None], *, max_distance: int = 4) -> list[DuplicatePair]:
    """Pixel-identical images (each later copy paired with the first; exact), and images of at
    least MIN_PHASH_SIDE pixels a side whose pHashes differ in at most `max_distance` bits."""
    first_of: dict[bytes, int] = {}
    pairs = []
    for i, key in enumerate(keys):
        if key is not None:
            j = first_of.setdefault(key.pixels, i)
            if j != i:
                pairs.append(DuplicatePair(j, i, 1.0, True))
    found = {(p.first, p.second) for p in pairs}
    near = image_duplicates([None if k is None or first_of[k.pixels] != i else k.phash for i, k in enumerate(keys)])
    # A pHash distance of 0 between images with different pixels is a near copy, not an exact one.
    pairs += [DuplicatePair(p.first, p.second, p.similarity, False) for p in near if (p.first, p.second) not in found]
    return sorted(pairs, key=lambda p: (p.first, p.second))
