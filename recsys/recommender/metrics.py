"""Top-k ranking metrics: small vectorised functions over a block of ranked lists.

Every metric starts from the same two arrays, so each is a line or two of numpy:

- ``hits``: bool, shape (n_users, k); ``hits[u, r]`` says whether the paper ranked at position
  ``r`` (0 = best) for user ``u`` is one of that user's relevant (test) papers. Build it from
  ``recsys.recommender.ranking.top_k``'s columns with :func:`hit_matrix`.
- ``n_relevant``: int, shape (n_users,); how many relevant papers each user has in the
  candidate set.

Users with no relevant paper have no defined recall, so the callers average over users with
``n_relevant > 0`` (the published citeulike-a protocol); :func:`mean_over_users` does that.

Beyond accuracy on the top k, offline A/B reports need the whole ranking and the lists' shape:
:func:`auc` reads the full score block; :func:`catalogue_coverage`,
:func:`intra_list_diversity` and :func:`novelty` read only the ranked columns. Per-user
metrics return NaN where a user's value is undefined, never a silent 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys.recommender.ranking import PAD_COLUMN


def hit_matrix(cols: NDArray[np.integer[Any]], relevant: sp.csr_matrix) -> NDArray[np.bool_]:
    """Which ranked columns are relevant.

    Parameters
    ----------
    cols : NDArray[np.int32], shape (n_users, k)
        Ranked candidate columns per user, best first, padded with ``PAD_COLUMN`` (-1), as
        returned by ``recsys.recommender.ranking.top_k``.
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


def mrr(hits: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Reciprocal rank of the first relevant paper anywhere in the ranked list, 0 if none.

    Same as :func:`mrr_at_k` with ``k = hits.shape[1]``; pass the hits of a full ranking
    (``top_k`` with ``k = n_candidates``) to get the untruncated MRR.
    """
    return mrr_at_k(hits, hits.shape[1])


def auc(
    scores: NDArray[np.floating[Any]],
    relevant: sp.csr_matrix,
    exclude: sp.csr_matrix | NDArray[np.bool_] | None = None,
) -> NDArray[np.float64]:
    """Per-user area under the ROC curve of the full ranking.

    The share of (relevant, non-relevant) candidate pairs the scores order correctly, a tie
    counting one half (the Mann-Whitney U statistic over ``n_pos * n_neg``). Unlike the
    top-k metrics it reads every candidate, so it sees how far down the misses are.

    Parameters
    ----------
    scores : NDArray[np.float32], shape (n_users, n_candidates)
        Scores, higher is better. ``-inf`` is an ordinary (lowest) score here.
    relevant : scipy.sparse.csr_matrix, shape (n_users, n_candidates)
        Any stored non-zero marks a relevant (user, candidate) pair.
    exclude : scipy.sparse.csr_matrix or NDArray[np.bool_], shape (n_users, n_candidates), optional
        Entries that are not candidates for that user (e.g. their training papers): they are
        neither positives nor negatives.

    Returns
    -------
    NDArray[np.float64], shape (n_users,)
        AUC in [0, 1]; NaN for a user with no relevant or no non-relevant candidate.

    Raises
    ------
    ValueError
        If the shapes disagree or a score is NaN.
    """
    block = np.asarray(scores, dtype=np.float64)
    _check_block(block, relevant, exclude)
    if np.isposinf(block).any():
        raise ValueError("auc: scores must be < +inf (+inf marks excluded entries internally)")
    keep = ~_dense_mask(exclude, block.shape)
    positive = _dense_mask(relevant, block.shape) & keep
    n_pos = positive.sum(axis=1)
    n_neg = keep.sum(axis=1) - n_pos
    # Excluded entries sort last (+inf), so no kept score is ranked against them.
    ordered = np.sort(np.where(keep, block, np.inf), axis=1)
    rank_sum = np.zeros(len(block))
    for user in np.flatnonzero(n_pos):
        rank_sum[user] = _midranks(ordered[user], block[user, positive[user]]).sum()
    u_statistic = rank_sum - n_pos * (n_pos + 1) / 2.0
    return _safe_divide(u_statistic, n_pos * n_neg)


def _midranks(ordered: NDArray[np.float64], values: NDArray[np.float64]) -> NDArray[np.float64]:
    """1-based average rank of each of ``values`` within the sorted row ``ordered``.

    A user has few relevant papers, so two binary searches each beat ranking the whole row
    (``scipy.stats.rankdata`` with NaN masking was most of an experiment's run time).
    """
    below = np.searchsorted(ordered, values, side="left")
    upto = np.searchsorted(ordered, values, side="right")
    return below + (upto - below + 1) / 2.0


def catalogue_coverage(cols: NDArray[np.integer[Any]], n_candidates: int) -> float:
    """Share of the candidates that appear in at least one user's list.

    Parameters
    ----------
    cols : NDArray[np.int32], shape (n_users, k)
        Ranked candidate columns per user, padded with ``PAD_COLUMN`` (-1).
    n_candidates : int
        Size of the candidate set the columns index into (> 0).

    Returns
    -------
    float
        Distinct recommended candidates / ``n_candidates``, in [0, 1].
    """
    if n_candidates <= 0:
        raise ValueError(f"n_candidates must be positive, got {n_candidates}")
    cols = np.asarray(cols)
    shown = np.unique(cols[cols != PAD_COLUMN])
    if shown.size and (shown[0] < 0 or shown[-1] >= n_candidates):
        raise ValueError(f"cols index outside 0..{n_candidates - 1}; pass the right n_candidates")
    return shown.size / n_candidates


def intra_list_diversity(
    cols: NDArray[np.integer[Any]], paper_vectors: NDArray[np.floating[Any]]
) -> NDArray[np.float64]:
    """Mean pairwise cosine distance (1 - cosine similarity) within each user's list.

    Parameters
    ----------
    cols : NDArray[np.int32], shape (n_users, k)
        Ranked candidate columns per user, padded with ``PAD_COLUMN`` (-1); padding is skipped.
    paper_vectors : NDArray[np.float32], shape (n_candidates, dim)
        One vector per candidate column (e.g. the paper embeddings). A zero vector has no
        direction; it counts as orthogonal to everything (distance 1).

    Returns
    -------
    NDArray[np.float64], shape (n_users,)
        In [0, 2]; NaN for a list with fewer than two papers.
    """
    cols = np.asarray(cols)
    vectors = np.asarray(paper_vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    valid = cols != PAD_COLUMN
    safe = np.where(valid, cols, 0)
    # Sum over ordered pairs i != j of <v_i, v_j> = |sum v|^2 - sum |v|^2, accumulated one
    # rank at a time so memory stays (n_users, dim), never (n_users, k, dim).
    summed = np.zeros((cols.shape[0], vectors.shape[1]))
    for rank in range(cols.shape[1]):
        summed += unit[safe[:, rank]] * valid[:, rank, None]
    self_similarity = ((norms[:, 0] > 0)[safe] & valid).sum(axis=1)
    similarity = (summed * summed).sum(axis=1) - self_similarity
    n = valid.sum(axis=1)
    n_pairs = n * (n - 1)
    return _safe_divide(n_pairs - similarity, n_pairs)


def novelty(
    cols: NDArray[np.integer[Any]],
    popularity: NDArray[np.floating[Any]],
    k: int,
    *,
    n_users: int | None = None,
) -> NDArray[np.float64]:
    """Mean self-information ``-log2(p)`` of the top k papers, per user.

    ``p`` is a paper's popularity: the share of users who interacted with it (in training).
    A paper nobody has touched would have infinite self-information, so ``p`` is floored at
    ``1 / n_users`` (an unseen paper is as novel as one read by a single user); without
    ``n_users`` the floor is the smallest positive popularity, which is the same thing
    whenever some paper was read by exactly one user.

    Parameters
    ----------
    cols : NDArray[np.int32], shape (n_users_ranked, k')
        Ranked candidate columns per user, padded with ``PAD_COLUMN`` (-1); padding is skipped.
    popularity : NDArray[np.float64], shape (n_candidates,)
        Share of users who interacted with each candidate, in [0, 1].
    k : int
        Only the first ``k`` ranks count.
    n_users : int, optional
        Number of users the popularity shares were counted over (sets the floor).

    Returns
    -------
    NDArray[np.float64], shape (n_users_ranked,)
        In bits; NaN for an empty list.

    Raises
    ------
    ValueError
        If no floor can be set: no ``n_users`` and no paper with positive popularity.
    """
    popularity = np.asarray(popularity, dtype=np.float64)
    positive = popularity[popularity > 0]
    if n_users is not None:
        floor = 1.0 / n_users
    elif positive.size:
        floor = float(positive.min())
    else:
        raise ValueError("every popularity is 0; pass n_users to set the floor 1 / n_users")
    top = np.asarray(cols)[:, :k]
    valid = top != PAD_COLUMN
    information = -np.log2(np.maximum(popularity[np.where(valid, top, 0)], floor))
    return _safe_divide(np.where(valid, information, 0.0).sum(axis=1), valid.sum(axis=1))


def mean_over_users(values: NDArray[np.float64], n_relevant: NDArray[Any]) -> float:
    """Mean of a per-user metric over users with at least one relevant paper.

    Returns NaN when no user has a relevant paper (there is nothing to average).
    """
    keep = np.asarray(n_relevant) > 0
    return float(values[keep].mean()) if keep.any() else float("nan")


def _dense_mask(
    mask: sp.spmatrix | sp.sparray | NDArray[Any] | None, shape: tuple[int, ...]
) -> NDArray[np.bool_]:
    """A dense bool block: True at a True entry or any stored non-zero; all False for None."""
    if mask is None:
        return np.zeros(shape, dtype=bool)
    if isinstance(mask, sp.spmatrix | sp.sparray):
        return np.asarray(mask.toarray() != 0)
    return np.asarray(mask, dtype=bool)


def _check_block(
    scores: NDArray[np.float64],
    relevant: sp.csr_matrix,
    exclude: sp.csr_matrix | NDArray[np.bool_] | None,
) -> None:
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (n_users, n_candidates), got shape {scores.shape}")
    for name, other in (("relevant", relevant), ("exclude", exclude)):
        if other is not None and tuple(other.shape) != scores.shape:
            raise ValueError(f"{name} has shape {other.shape} but scores has {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN; score every candidate or mark it in exclude")


def _safe_divide(numerator: NDArray[Any], denominator: NDArray[Any]) -> NDArray[np.float64]:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.full(numerator.shape, np.nan)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)
