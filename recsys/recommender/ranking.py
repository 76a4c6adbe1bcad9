"""Turning a block of scores into ranked lists: a fused, batch-first top-k.

Pure: arrays in, arrays out. Callers map the returned columns to paper ids themselves
(``papers.paper_ids[cols]`` wherever ``cols >= 0``).
"""

from __future__ import annotations

import operator
from typing import Any, Final

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

MIN_RELEVANCE: Final[float] = 0.0
"""Default per-user relevance bar, on the blended score scale, used by callers as ``min_score``.

A paper scoring below 0 points away from what the user reads and asked for (its cosine with
the profile is negative), so it is not sent: on a thin day the digest may be empty (the
caller records why) rather than padded with off-topic papers. A cold-start user scores
exactly 0 everywhere, which passes the bar, so new subscribers still get the newest papers
(ties broken by recency).
"""

PAD_COLUMN: Final[int] = -1
"""Column index used to pad rows with fewer than k valid entries (their score is -inf)."""


def top_k(
    scores: ArrayLike,
    k: int,
    *,
    exclude: NDArray[np.bool_] | sp.spmatrix | sp.sparray | None = None,
    min_score: float | None = None,
    tie_break: ArrayLike | None = None,
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """The ``k`` best columns of every row, best first.

    One ``argpartition`` over the whole block, then a sort of the ``k`` survivors: no Python
    loop over rows.

    Parameters
    ----------
    scores : array_like, shape (n_users, n_papers)
        Scores, cast to float32. NaN is rejected; -inf means "not a candidate".
    k : int
        Number of columns to return per row, >= 1. May exceed ``n_papers``.
    exclude : NDArray[np.bool_] or scipy sparse matrix, shape (n_users, n_papers), optional
        True (dense) or any stored non-zero (sparse) marks an entry that must not be returned,
        e.g. papers already sent to that user.
    min_score : float, optional
        Entries scoring below this are dropped (see ``MIN_RELEVANCE``).
    tie_break : array_like, shape (n_papers,) or (n_users, n_papers), optional
        Among equal scores the larger ``tie_break`` ranks first; pass ``-papers.age_days`` so
        the newer paper wins. Remaining ties (and all ties when omitted) go to the lower
        column, so the result is deterministic.

    Returns
    -------
    cols : NDArray[np.int32], shape (n_users, k)
        Column indices, best first. A row with fewer than ``k`` valid entries (after
        ``exclude``, ``min_score`` and -inf) is padded at the end with ``PAD_COLUMN`` (-1).
    top_scores : NDArray[np.float32], shape (n_users, k)
        The matching scores; -inf at padded positions.

    Raises
    ------
    ValueError
        If ``k`` < 1, ``scores`` is not 2-D or holds NaN, ``min_score`` is NaN, or ``exclude``
        or ``tie_break`` does not match the shape of ``scores``.
    TypeError
        If ``k`` is not an integer.
    """
    scores = _check_scores(scores)
    k = check_k(k)
    valid = _valid_entries(scores, exclude, min_score)
    keys = _sort_keys(scores, tie_ranks(tie_break, scores.shape))
    keys *= valid  # 0 is below every valid key (see _sort_keys): invalid entries come last
    cols = _largest(keys, min(k, scores.shape[1]))
    return _gather(scores, valid, cols, k)


def _check_scores(scores: ArrayLike) -> NDArray[np.float32]:
    array = np.asarray(scores)
    if array.ndim != 2:
        raise ValueError(f"scores: expected a 2-D (n_users, n_papers) array, got {array.shape}")
    if array.size and array.dtype.kind not in "fiu":
        raise ValueError(f"scores: expected numbers, got dtype {array.dtype}")
    array = array.astype(np.float32, copy=False)
    nan_rows = np.isnan(array).any(axis=1)
    if nan_rows.any():
        raise ValueError(f"scores: NaN in row {int(nan_rows.argmax())}; NaN cannot be ranked")
    return array


def check_k(k: int) -> int:
    """``k`` as an int, or a ``TypeError`` (not an integer) / ``ValueError`` (below 1)."""
    k = operator.index(k)  # TypeError for 2.5, as for any sequence index
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return k


def _valid_entries(
    scores: NDArray[np.float32], exclude: Any, min_score: float | None
) -> NDArray[np.bool_]:
    """Entries that may be returned: finite-or-+inf, not excluded, not below ``min_score``."""
    valid = scores > -np.inf  # -inf is the padding score, so it cannot be a real one
    if min_score is not None:
        if np.isnan(min_score):
            raise ValueError("min_score: NaN would drop every entry; pass None for no bar")
        valid &= scores >= min_score
    if exclude is not None:
        _apply_exclude(valid, exclude)
    return valid


def _apply_exclude(valid: NDArray[np.bool_], exclude: Any) -> None:
    """Clear ``valid`` where ``exclude`` marks an entry (dense bool or sparse)."""
    if exclude.shape != valid.shape:
        raise ValueError(f"exclude: expected shape {valid.shape}, got {exclude.shape}")
    if sp.issparse(exclude):
        # Work on the stored entries only: densifying a large block would cost O(n) memory.
        coo = sp.coo_matrix(exclude)
        hit = coo.data != 0
        valid[coo.row[hit], coo.col[hit]] = False
        return
    exclude = np.asarray(exclude)
    if exclude.dtype != np.bool_:
        # A 0/1 integer array is ambiguous with a list of column indices; make callers say.
        raise ValueError(f"exclude: expected a bool mask or a sparse matrix, got {exclude.dtype}")
    valid &= ~exclude


def tie_ranks(tie_break: ArrayLike | None, shape: tuple[int, ...]) -> NDArray[np.int64]:
    """Distinct per-row ranks in [0, n_papers): the higher rank wins a tie in score.

    Shared by :func:`top_k` and ``recsys.recommender.fastrank`` so both break ties the same way.

    Parameters
    ----------
    tie_break : array_like, shape (n_papers,) or ``shape``, optional
        As in :func:`top_k`: the larger value wins, then the lower column.
    shape : tuple of int
        ``(n_users, n_papers)`` of the scores.

    Returns
    -------
    NDArray[np.int64], shape (n_papers,) or ``shape``
        A permutation of ``range(n_papers)`` per row.

    Raises
    ------
    ValueError
        If ``tie_break`` has another shape or holds NaN.
    """
    n_cols = shape[1]
    cols = np.arange(n_cols)
    if tie_break is None:
        return n_cols - 1 - cols  # lower column wins
    order_key = np.asarray(tie_break, dtype=np.float64)
    if order_key.shape not in {(n_cols,), shape}:
        raise ValueError(f"tie_break: expected shape ({n_cols},) or {shape}, got {order_key.shape}")
    if np.isnan(order_key).any():
        raise ValueError("tie_break: NaN cannot be ordered")
    cols = np.broadcast_to(cols, order_key.shape)
    # Ascending tie_break, then descending column, so the lower column gets the higher rank.
    order = np.lexsort((-cols, order_key), axis=-1)
    ranks = np.empty(order_key.shape, np.int64)
    np.put_along_axis(ranks, order, cols, axis=-1)
    return ranks


def _sort_keys(scores: NDArray[np.float32], ranks: NDArray[np.int64]) -> NDArray[np.uint64]:
    """One uint64 per entry ordering by (score, tie rank): a lexicographic sort in one key.

    The float32 bits are mapped to a uint32 with the same order (flip every bit of a
    negative, only the sign bit of a positive) and placed above the 32-bit tie rank.
    In-place steps: the block may be large, and each temporary costs a pass over memory.
    """
    bits = (scores + np.float32(0.0)).view(np.uint32)  # + 0.0 turns -0.0 into 0.0: they tie
    bits ^= (bits >> np.uint32(31)) * np.uint32(0x7FFFFFFF) | np.uint32(0x80000000)
    # -inf maps to 0x007FFFFF, so every valid key is > 0 and 0 can mark invalid entries.
    keys = bits.astype(np.uint64)
    keys <<= np.uint64(32)
    keys |= ranks.astype(np.uint64)
    return keys


def _largest(keys: NDArray[np.uint64], kk: int) -> NDArray[np.intp]:
    """Columns of the ``kk`` largest keys per row, largest first (keys are distinct per row)."""
    n_rows, n_cols = keys.shape
    if kk == 0:
        return np.empty((n_rows, 0), np.intp)
    part = np.argpartition(keys, n_cols - kk, axis=1)[:, n_cols - kk :]
    order = np.argsort(np.take_along_axis(keys, part, axis=1), axis=1)[:, ::-1]
    return np.take_along_axis(part, order, axis=1)


def _gather(
    scores: NDArray[np.float32], valid: NDArray[np.bool_], cols: NDArray[np.intp], k: int
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """Scores at ``cols``, with invalid entries and the columns beyond ``n_papers`` padded."""
    kept = np.take_along_axis(valid, cols, axis=1)
    out_cols = np.full((len(scores), k), PAD_COLUMN, np.int32)
    out_scores = np.full((len(scores), k), -np.inf, np.float32)
    out_cols[:, : cols.shape[1]] = np.where(kept, cols, PAD_COLUMN)
    out_scores[:, : cols.shape[1]] = np.where(kept, np.take_along_axis(scores, cols, 1), -np.inf)
    return out_cols, out_scores
