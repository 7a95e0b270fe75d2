"""Cold start: a diverse, typical seed set chosen from features alone, before any model exists.

k-means++ seeding followed by a few Lloyd iterations on (a sample of) the pool, then the member
nearest each centroid is chosen: every dense region gets a representative, outliers do not
(unlike farthest-first). Largest clusters come first in the ranking.

References
----------
D. Arthur, S. Vassilvitskii, "k-means++: The Advantages of Careful Seeding", SODA 2007
(greedy variant with 2 + log k candidates per step, as in scikit-learn's ``kmeans_plusplus``).
G. Hacohen, A. Dekel, D. Weinshall, "Active Learning on a Budget: Opposite Strategies Suit High
and Low Budgets" (TypiClust), ICML 2022 — typical cluster representatives for small budgets.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from strategies._rows import Rows, has_non_finite, squared_distances, squared_distances_to_row, squared_norms, take_rows
from strategies._validate import check_features, check_n, check_rng
from strategies.registry import Input, Strategy, register
from strategies.select import QueryResult

#: Sample rows compared with all centroids at once (bounds the (rows x n) distance block).
_ASSIGN_BLOCK_ROWS = 4096


def cold_start(
    features: Rows,
    n: int,
    *,
    rng: np.random.Generator,
    sample_size: int = 10_000,
    iterations: int = 10,
    restarts: int = 3,
) -> QueryResult:
    """Choose ``n`` diverse, typical items: the members nearest the centroids of a k-means with ``n`` clusters.

    Parameters
    ----------
    features : np.ndarray (incl. np.memmap) or scipy.sparse CSR, shape (N, D)
    n : int
        Seed-set size, ``1 <= n <= N``; also the number of clusters.
    rng : np.random.Generator
        Draws the sample, the k-means++ seeds and breaks ties.
    sample_size : int
        Clustering runs on a uniform sample of ``min(N, max(sample_size, 4 n))`` items.
    iterations : int
        Maximum Lloyd iterations after k-means++ seeding.
    restarts : int
        Independent k-means runs; the one with the lowest within-cluster sum of squares is kept
        (a single run can split a big cluster and merge two small ones, missing a class).

    Returns
    -------
    QueryResult
        One item per cluster, largest cluster first; the score is the fraction of the sample in
        the item's cluster. If clusters come out empty (duplicate rows), the remaining picks are
        farthest-first from those already chosen, with score 0. Cost:
        O(restarts * sample * n * D * (iterations + 1)) whatever the pool size.
    """
    check_rng(rng)
    if restarts < 1:
        raise ValueError(f"restarts must be at least 1, got {restarts}")
    features = check_features(features)
    pool_size = features.shape[0]
    n = check_n(n, pool_size)
    sample_count = min(pool_size, max(sample_size, 4 * n))
    if sample_count == pool_size:
        sample = np.arange(pool_size)
    else:
        sample = np.sort(rng.choice(pool_size, size=sample_count, replace=False))
    rows = take_rows(features, sample)
    if has_non_finite(rows):
        raise ValueError("features contain NaN or infinite values")
    rows_squared_norms = squared_norms(rows)

    assignment, distance_to_center = min(
        (_kmeans(rows, rows_squared_norms, n, rng, iterations) for _ in range(restarts)),
        key=lambda run: float(run[1].sum(dtype=np.float64)),
    )
    cluster_sizes = np.bincount(assignment, minlength=n)
    by_cluster_then_distance = np.lexsort((distance_to_center, assignment))
    clusters, first = np.unique(assignment[by_cluster_then_distance], return_index=True)
    representatives = by_cluster_then_distance[first]
    scores = cluster_sizes[clusters] / sample_count
    order = np.lexsort((rng.random(clusters.size), -scores))
    representatives, scores = representatives[order], scores[order]
    if representatives.size < n:
        fill = _farthest_first(rows, rows_squared_norms, representatives, n - representatives.size)
        representatives = np.concatenate([representatives, fill])
        scores = np.concatenate([scores, np.zeros(fill.size)])
    return QueryResult(sample[representatives], scores)


def _kmeans(
    rows, rows_squared_norms: np.ndarray, n: int, rng: np.random.Generator, iterations: int
) -> tuple[np.ndarray, np.ndarray]:
    """One k-means run (k-means++ seeding, then Lloyd): each row's cluster and squared distance to its center."""
    centers = _dense(rows[_kmeans_plus_plus(rows, rows_squared_norms, n, rng)])
    assignment, distance_to_center = _assign(rows, rows_squared_norms, centers)
    for _ in range(iterations):
        centers = _cluster_means(rows, assignment, centers)
        new_assignment, distance_to_center = _assign(rows, rows_squared_norms, centers)
        if np.array_equal(new_assignment, assignment):
            break
        assignment = new_assignment
    return assignment, distance_to_center


def _dense(rows: Rows) -> np.ndarray:
    return rows.toarray() if sp.issparse(rows) else np.array(rows, dtype=np.float32)


def _kmeans_plus_plus(rows, rows_squared_norms: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeding (as in scikit-learn): each step draws ``2 + log n`` candidates with
    probability proportional to D(x)^2 and keeps the one that lowers the total D^2 the most."""
    sample_count = rows.shape[0]
    n_candidates = 2 + int(np.log(n))
    seeds = np.empty(n, dtype=np.int64)
    seeds[0] = rng.integers(sample_count)
    closest = squared_distances_to_row(rows, rows_squared_norms, int(seeds[0])).astype(np.float64)
    closest[seeds[0]] = 0.0
    for step in range(1, n):
        total = closest.sum()
        if total > 0:
            draws = rng.random(n_candidates) * total
            candidates = np.minimum(np.searchsorted(np.cumsum(closest), draws, side="right"), sample_count - 1)
        else:  # every remaining row duplicates a seed: any unchosen row will do
            unchosen = np.setdiff1d(np.arange(sample_count), seeds[:step])
            candidates = rng.choice(unchosen, size=1)
        to_candidates = squared_distances(rows, rows_squared_norms, rows[candidates], rows_squared_norms[candidates])
        potentials = np.minimum(closest[:, None], to_candidates).sum(axis=0)
        best = int(np.argmin(potentials))
        seeds[step] = candidates[best]
        np.minimum(closest, to_candidates[:, best], out=closest)
        closest[seeds[step]] = 0.0
    return seeds


def _assign(rows, rows_squared_norms: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest center of each row and the squared distance to it."""
    centers_squared_norms = squared_norms(centers)
    assignment = np.empty(rows.shape[0], dtype=np.int64)
    distance = np.empty(rows.shape[0], dtype=np.float32)
    for start in range(0, rows.shape[0], _ASSIGN_BLOCK_ROWS):
        stop = min(start + _ASSIGN_BLOCK_ROWS, rows.shape[0])
        block = squared_distances(rows[start:stop], rows_squared_norms[start:stop], centers, centers_squared_norms)
        assignment[start:stop] = block.argmin(axis=1)
        distance[start:stop] = block[np.arange(stop - start), assignment[start:stop]]
    return assignment, distance


def _cluster_means(rows, assignment: np.ndarray, previous_centers: np.ndarray) -> np.ndarray:
    """Mean of each cluster's rows; an empty cluster keeps its previous center."""
    n_clusters = previous_centers.shape[0]
    membership = sp.csr_matrix(
        (np.ones(assignment.size, dtype=np.float32), (assignment, np.arange(assignment.size))),
        shape=(n_clusters, assignment.size),
    )
    sums = _dense(membership @ rows)
    counts = np.bincount(assignment, minlength=n_clusters)
    centers = previous_centers.copy()
    filled = counts > 0
    centers[filled] = sums[filled] / counts[filled, None]
    return centers


def _farthest_first(rows, rows_squared_norms: np.ndarray, chosen: np.ndarray, count: int) -> np.ndarray:
    """``count`` more rows, each the farthest from everything chosen so far."""
    nearest = squared_distances(rows, rows_squared_norms, rows[chosen], rows_squared_norms[chosen]).min(axis=1)
    nearest[chosen] = -1.0
    picks = np.empty(count, dtype=np.int64)
    for step in range(count):
        pick = int(np.argmax(nearest))
        picks[step] = pick
        np.minimum(nearest, squared_distances_to_row(rows, rows_squared_norms, pick), out=nearest)
        nearest[pick] = -1.0
    return picks


register(
    Strategy(
        name="cold_start",
        input=Input.FEATURES,
        needs_features=False,
        select=cold_start,
        description="before a model exists: one typical item per k-means cluster of the features",
    )
)
