"""Top-k ranking metrics: small vectorised functions over a block of ranked lists.

Every metric starts from the same two arrays, so each is a line or two of numpy:

- ``hits``: bool, shape (n_users, k); ``hits[u, r]`` says whether the paper ranked at position
  ``r`` (0 = best) for user ``u`` is one of that user's relevant (test) papers. Build it from
  ``recsys.ranking.top_k``'s columns with :func:`hit_matrix`.
- ``n_relevant``: int, shape (n_users,); how many relevant papers each user has in the
  candidate set.

Users with no relevant paper have no defined recall, so the callers average over users with
``n_relevant > 0`` (the published citeulike-a protocol); :func:`mean_over_users` does that.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys.ranking import PAD_COLUMN


def hit_matrix(cols: NDArray[np.integer[Any]], relevant: sp.csr_matrix) -> NDArray[np.bool_]:
    """Which ranked columns are relevant.

    Parameters
    ----------
    cols : NDArray[np.int32], shape (n_users, k)
        Ranked candidate columns per user, best first, padded with ``PAD_COLUMN`` (-1), as
        returned by ``recsys.ranking.top_k``.
    relevant : scipy.sparse.csr_matrix, shape (n_users, n_candidates)
        Any stored non-zero marks a relevant (user, candidate) pair.

    Returns
    -------
    NDArray[np.bool_], shape (n_users, k)
        False at padded positions.

    Raises
    ------
    ValueError
        If ``cols`` and ``relevant`` disagree on the number of users.
    """
    cols = np.asarray(cols)
    if cols.ndim != 2 or cols.shape[0] != relevant.shape[0]:
        raise ValueError(
            f"cols has shape {cols.shape} but relevant has {relevant.shape[0]} rows; "
            "pass one row of ranked columns per user"
        )
    # A dense bool block is cheap at the block sizes we rank (~1,000 users) and makes the
    # lookup one take_along_axis instead of a per-user set intersection.
    dense = relevant.toarray() != 0
    padded = cols == PAD_COLUMN
    hits = np.take_along_axis(dense, np.where(padded, 0, cols), axis=1)
    return hits & ~padded


def count_relevant(relevant: sp.csr_matrix) -> NDArray[np.int64]:
    """Number of relevant candidates per user (stored non-zeros per row)."""
    relevant = sp.csr_matrix(relevant)
    relevant.eliminate_zeros()
    return np.diff(relevant.indptr).astype(np.int64)


def recall_at_k(hits: NDArray[np.bool_], n_relevant: NDArray[Any], k: int) -> NDArray[np.float64]:
    """|top-k ∩ relevant| / |relevant| per user; NaN for a user with nothing relevant.

    This is the citeulike-a definition (CTR, CDL, DropoutNet): the denominator is the number
    of relevant papers, not ``min(k, n_relevant)``.
    """
    found = hits[:, :k].sum(axis=1)
    return _safe_divide(found, n_relevant)


def precision_at_k(hits: NDArray[np.bool_], k: int) -> NDArray[np.float64]:
    """|top-k ∩ relevant| / k per user."""
    return np.asarray(hits[:, :k].sum(axis=1) / k, dtype=np.float64)


def hit_rate_at_k(hits: NDArray[np.bool_], k: int) -> NDArray[np.float64]:
    """1.0 where at least one of the top k is relevant, else 0.0."""
    return np.asarray(hits[:, :k].any(axis=1), dtype=np.float64)


def ndcg_at_k(hits: NDArray[np.bool_], n_relevant: NDArray[Any], k: int) -> NDArray[np.float64]:
    """Normalised discounted cumulative gain at k with binary relevance, per user.

    DCG = sum over ranks r (1-based) of hit_r / log2(r + 1); the ideal DCG puts
    ``min(k, n_relevant)`` hits first. NaN for a user with nothing relevant.
    """
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits[:, :k] @ discount[: hits[:, :k].shape[1]]
    ideal_hits = np.minimum(np.asarray(n_relevant), k)
    ideal = np.concatenate([[0.0], np.cumsum(discount)])[ideal_hits]
    return _safe_divide(dcg, ideal)


def mrr_at_k(hits: NDArray[np.bool_], k: int) -> NDArray[np.float64]:
    """Reciprocal rank (1-based) of the first relevant paper in the top k, 0 if none."""
    top = hits[:, :k]
    first = top.argmax(axis=1)
    return np.where(top.any(axis=1), 1.0 / (first + 1), 0.0)


def mean_over_users(values: NDArray[np.float64], n_relevant: NDArray[Any]) -> float:
    """Mean of a per-user metric over users with at least one relevant paper.

    Returns NaN when no user has a relevant paper (there is nothing to average).
    """
    keep = np.asarray(n_relevant) > 0
    return float(values[keep].mean()) if keep.any() else float("nan")


def _safe_divide(numerator: NDArray[Any], denominator: NDArray[Any]) -> NDArray[np.float64]:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.full(numerator.shape, np.nan)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)
