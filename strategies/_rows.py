"""Row-wise linear algebra that works the same on dense arrays and CSR matrices.

Distances use ``|a - b|^2 = |a|^2 + |b|^2 - 2 a.b`` so nothing larger than (rows of A) x
(rows of B) is ever formed, and CSR inputs are never densified.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

# A dense float array or a scipy.sparse CSR matrix (scipy ships no type stubs).
Rows = Any


def take_rows(features: Rows, positions: np.ndarray | slice) -> Rows:
    """Copy the given rows as float32: a dense array, or CSR when ``features`` is CSR."""
    rows = features[positions]
    if sp.issparse(rows):
        return sp.csr_matrix(rows, dtype=np.float32)
    return np.ascontiguousarray(rows, dtype=np.float32)


def squared_norms(rows: Rows) -> np.ndarray:
    """Squared Euclidean norm of each row, shape (rows,), float32."""
    if sp.issparse(rows):
        return np.asarray(rows.multiply(rows).sum(axis=1), dtype=np.float32).ravel()
    return np.einsum("ij,ij->i", rows, rows)


def inner_products(a: Rows, b: Rows) -> np.ndarray:
    """Dense ``a @ b.T``, shape (rows of a, rows of b), for any mix of dense and CSR."""
    product = a @ b.T
    if sp.issparse(product):
        product = product.toarray()
    return np.asarray(product, dtype=np.float32)


def squared_distances(
    a: Rows,
    a_squared_norms: np.ndarray,
    b: Rows,
    b_squared_norms: np.ndarray,
) -> np.ndarray:
    """Squared Euclidean distances, shape (rows of a, rows of b), clipped at 0 against rounding."""
    distances = inner_products(a, b)
    distances *= -2
    distances += a_squared_norms[:, None]
    distances += b_squared_norms[None, :]
    return np.maximum(distances, 0, out=distances)


def squared_distances_to_row(rows, rows_squared_norms: np.ndarray, position: int) -> np.ndarray:
    """Squared Euclidean distance of every row to row ``position``, shape (rows,)."""
    one = slice(position, position + 1)
    return squared_distances(rows, rows_squared_norms, rows[one], rows_squared_norms[one])[:, 0]


def has_non_finite(rows: Rows) -> bool:
    """True when any stored value is NaN or infinite."""
    values = rows.data if sp.issparse(rows) else rows
    return not bool(np.isfinite(values).all())
