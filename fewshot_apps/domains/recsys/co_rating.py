"""Co-rating similarity: two items are alike when the same users rated them.

``sim(i, j) = |U_i & U_j| / (sqrt(|U_i| |U_j|) + shrinkage)``: the cosine of the items'
columns in the binary user x item matrix, shrunk towards 0 for items few users rated. The
``item-knn`` baseline ranks by it, and the item encoder hands it to the learners'
implicit head (:meth:`~fewshot_apps.domains.recsys.encoder.ItemGraphEncoder.support_affinity`),
so both compute it here, once.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def rated_matrix(user_rows: np.ndarray, items: np.ndarray, n_users: int,
                 n_items: int) -> sp.csr_matrix:
    """Binary float32 ``[n_users, n_items]``: 1 where the user rated the item (an item rated
    twice by a user counts once)."""
    rated = sp.csr_matrix((np.ones(len(items), dtype=np.float32),
                           (np.asarray(user_rows), np.asarray(items))),
                          shape=(n_users, n_items))
    rated.data[:] = 1.0
    return rated


def shrunk_cosine(co: np.ndarray, raters_a: np.ndarray, raters_b: np.ndarray,
                  shrinkage: float) -> np.ndarray:
    """Elementwise similarity of item pairs: ``co`` users who rated both, ``raters_a`` /
    ``raters_b`` users who rated each (broadcastable shapes)."""
    return co / (np.sqrt(raters_a * raters_b) + shrinkage)


def item_similarity(rated: sp.csr_matrix, shrinkage: float) -> sp.csr_matrix:
    """float32 ``[n_items, n_items]`` similarity of every co-rated pair, 0 on the diagonal."""
    co = (rated.T @ rated).tocoo()
    keep = co.row != co.col
    row, col, both = co.row[keep], co.col[keep], co.data[keep]
    raters = np.asarray(rated.sum(axis=0)).ravel()
    sim = shrunk_cosine(both, raters[row], raters[col], shrinkage)
    n = rated.shape[1]
    return sp.csr_matrix((sim.astype(np.float32), (row, col)), shape=(n, n))


def support_affinity(rated: sp.csc_matrix, raters: np.ndarray, support: np.ndarray,
                     candidates: np.ndarray, shrinkage: float,
                     weights: np.ndarray | None = None) -> np.ndarray:
    """float64 ``[c]``: each candidate's mean similarity to the ``[s]`` support items (a
    candidate's similarity to itself left out), weighted by ``weights`` ``[s]`` (summing to
    1; None: equal), computed from ``rated`` (csc, so the support's columns are cheap to
    take) without forming the item x item matrix. NaN for a candidate nobody rated: no
    evidence either way (a new item), not evidence against it."""
    if len(support) == 0 or len(candidates) == 0:
        return np.zeros(len(candidates))
    co = (rated[:, candidates].T @ rated[:, support]).toarray()  # [c, s]
    sim = shrunk_cosine(co, raters[candidates][:, None], raters[support][None, :], shrinkage)
    sim[np.asarray(candidates)[:, None] == np.asarray(support)[None, :]] = 0.0
    out = sim.mean(axis=1) if weights is None else sim @ np.asarray(weights, dtype=np.float64)
    out[raters[candidates] == 0] = np.nan
    return out


__all__ = ["item_similarity", "rated_matrix", "shrunk_cosine", "support_affinity"]
