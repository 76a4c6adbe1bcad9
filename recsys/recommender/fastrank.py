"""Scoring every user against the day's papers and keeping each user's best few, fast.

:func:`score_top_k` is the fused kernel: it never holds the full ``n_users x n_papers`` score
matrix. Users are cut into blocks of ``block_rows`` rows. For each block one BLAS call writes
the block's scores into a small buffer that stays in the core's cache, and one numba call
reads it straight back: per row, the ``pool`` best columns (by bisection on the score, see
``_best_of_row``), then optionally :func:`mmr` (maximal marginal relevance) down to ``k``.
Float32 throughout; no Python loop over users.

Why worker threads and not ``numba.prange`` (measured on the 2-core machine, see
``benchmarks/RESULTS.md``): OpenBLAS threads spin-wait after each product, so BLAS on 2
threads followed by a numba-parallel top-k made the two thread pools fight over the cores:
1M users took 4-6 s that way, against ~2 s here. So each core runs one worker thread doing
*both* steps for its blocks, with BLAS pinned to one thread: the workers never wait for each
other, and the scores a worker writes are read back while still in its L2 cache. The BLAS
call and the numba kernel both release the GIL.

Same contract as :func:`recsys.recommender.ranking.top_k`: pure (arrays in, ``(cols, scores)`` out),
rows padded with ``PAD_COLUMN`` / -inf, ties broken by ``tie_break`` then by the lower
column; on the same scores the two return identical results.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import scipy.sparse as sp
from numba import njit
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import threadpool_limits

from recsys.recommender.ranking import PAD_COLUMN, check_k, tie_ranks

BLOCK_ROWS: Final[int] = 128
"""Users per block: 128 rows x 1,000 papers of float32 is 0.5 MB, half a core's L2 cache here,
so the top-k pass reads the scores back from cache rather than from memory."""

DEFAULT_LAMBDA: Final[float] = 0.7
"""MMR trade-off: 1.0 ranks by relevance alone, 0.0 by novelty alone."""

_LOWEST: Final = np.finfo(np.float32).min  # the lowest finite float32: -inf lies below it


def score_top_k(
    user_vectors: ArrayLike,
    paper_vectors: ArrayLike,
    k: int,
    *,
    pool: int | None = None,
    lam: float = DEFAULT_LAMBDA,
    similarity: ArrayLike | None = None,
    exclude: NDArray[np.bool_] | sp.spmatrix | sp.sparray | None = None,
    min_score: float | None = None,
    tie_break: ArrayLike | None = None,
    block_rows: int = BLOCK_ROWS,
    n_threads: int | None = None,
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """The ``k`` best papers of every user by dot product, optionally diversified.

    Equivalent to ``top_k(user_vectors @ paper_vectors.T, k, ...)`` without ever holding the
    full score matrix. With ``pool``, each user's ``pool`` best papers are re-ranked by
    :func:`mmr` and the first ``k`` picks returned.

    Parameters
    ----------
    user_vectors : array_like, shape (n_users, width)
        One row per user; pass C-contiguous float32 to avoid a copy. Must be finite.
    paper_vectors : array_like, shape (n_papers, width)
        One row per candidate paper. Must be finite.
    k : int
        Papers to return per user, >= 1. May exceed ``n_papers``.
    pool : int, optional
        If given (>= ``k``), diversify: keep the ``pool`` most relevant papers, then pick ``k``
        of them by maximal marginal relevance. If omitted, plain top-``k`` by score.
    lam : float
        MMR trade-off in [0, 1], used only with ``pool`` (see :func:`mmr`).
    similarity : array_like, shape (n_papers, n_papers), optional
        Paper-paper similarity for MMR; default :func:`cosine_similarity` of
        ``paper_vectors``.
    exclude : NDArray[np.bool_] or scipy sparse matrix, shape (n_users, n_papers), optional
        True (dense) or a stored non-zero (sparse) marks a paper that must not be returned to
        that user, e.g. one already sent. Sparse (CSR) is cheaper at scale.
    min_score : float, optional
        Papers scoring below this are never returned (see ``ranking.MIN_RELEVANCE``).
    tie_break : array_like, shape (n_papers,), optional
        Among equal scores the larger value ranks first (pass ``-age_days``); remaining ties
        go to the lower column.
    block_rows : int
        Users per block; the default fits a block of 1,000 papers in a core's L2 cache.
    n_threads : int, optional
        Worker threads; default one per available core. BLAS is pinned to one thread
        per worker for the duration of the call (process-wide, via threadpoolctl).

    Returns
    -------
    cols : NDArray[np.int32], shape (n_users, k)
        Paper columns, best (or first picked) first, padded with ``PAD_COLUMN`` (-1).
    scores : NDArray[np.float32], shape (n_users, k)
        The dot-product score of each returned paper (not its MMR value); -inf at pads.

    Raises
    ------
    ValueError
        If an argument has the wrong shape, holds NaN or infinity, or is out of range; the
        message names the argument.
    """
    job = _Job.build(
        user_vectors, paper_vectors, check_k(k), pool, lam, similarity, exclude, min_score,
        tie_break, block_rows,
    )  # fmt: skip
    job.run(n_threads or len(os.sched_getaffinity(0)))
    return job.out_cols, job.out_scores


def mmr(
    cols: ArrayLike,
    scores: ArrayLike,
    similarity: ArrayLike,
    k: int,
    lam: float = DEFAULT_LAMBDA,
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """Re-rank each row's candidates by maximal marginal relevance (Carbonell & Goldstein).

    The first pick is the most relevant candidate; each next pick maximises
    ``lam * score - (1 - lam) * max(similarity to the papers already picked)``. Equal values
    go to the higher score, then to the candidate listed first. Scores and similarities
    should be on comparable scales (cosine-like) for ``lam`` to mean what it says.

    Parameters
    ----------
    cols : array_like of int, shape (n_users, pool)
        Candidate columns per row, best first, padded at the end with ``PAD_COLUMN`` (-1),
        as returned by :func:`score_top_k` or ``ranking.top_k``; a row ends at its first pad.
    scores : array_like, shape (n_users, pool)
        Their relevance scores (-inf at pads).
    similarity : array_like, shape (n_papers, n_papers)
        Paper-paper similarity, indexed by the columns in ``cols``.
    k : int
        Picks per row, >= 1; rows with fewer candidates are padded.
    lam : float
        Trade-off in [0, 1]: 1 keeps the relevance order, 0 ignores relevance after the
        first pick.

    Returns
    -------
    cols : NDArray[np.int32], shape (n_users, k)
        Picked columns in pick order, padded with ``PAD_COLUMN``.
    scores : NDArray[np.float32], shape (n_users, k)
        Their relevance scores (not MMR values); -inf at pads.

    Raises
    ------
    ValueError
        If shapes disagree, a column is out of range, or ``lam`` is outside [0, 1].
    """
    k = check_k(k)
    cols = np.ascontiguousarray(cols, dtype=np.int32)
    scores = _finite_2d("scores", scores, allow_neg_inf=True)
    if cols.ndim != 2 or cols.shape != scores.shape:
        raise ValueError(f"cols: expected the shape of scores {scores.shape}, got {cols.shape}")
    sim = _check_similarity(similarity, None)
    if cols.size and (cols.max() >= len(sim) or cols.min() < PAD_COLUMN):
        raise ValueError(f"cols: expected columns in [-1, {len(sim)}), got out-of-range ones")
    out_cols = np.full((len(cols), k), PAD_COLUMN, np.int32)
    out_scores = np.full((len(cols), k), -np.inf, np.float32)
    _mmr_block(cols, scores, sim, np.float32(_check_lam(lam)), out_cols, out_scores)
    return out_cols, out_scores


def cosine_similarity(paper_vectors: ArrayLike) -> NDArray[np.float32]:
    """Paper-paper cosine similarity, the default for MMR (a zero vector is similar to none).

    Parameters
    ----------
    paper_vectors : array_like, shape (n_papers, width)

    Returns
    -------
    NDArray[np.float32], shape (n_papers, n_papers)
    """
    papers = _finite_2d("paper_vectors", paper_vectors)
    norms = np.linalg.norm(papers, axis=1, keepdims=True)
    unit = papers / np.where(norms > 0, norms, np.float32(1.0))
    return np.ascontiguousarray(unit @ unit.T, dtype=np.float32)


# --- The blocked product: one job, shared by the workers -----------------------------------


@dataclass
class _Job:
    """Everything the workers share: checked inputs, and the outputs they fill block by block."""

    users: NDArray[np.float32]  # finiteness is checked block by block, in the workers
    papers_t: NDArray[np.float32]  # (width, n_papers): the right operand of every product
    ranks: NDArray[np.int32]  # tie rank of each paper column: the higher wins a tie
    cols_by_rank: NDArray[np.int32]  # the inverse permutation
    floor: np.float32  # lowest score that may be returned
    pool: int  # candidates kept per user before MMR (k without MMR), at most n_papers
    sim: NDArray[np.float32]  # (0, 0) when not diversifying
    lam: np.float32
    exclude: Any  # None, a dense bool mask or a CSR matrix without stored zeros
    block_rows: int
    out_cols: NDArray[np.int32]
    out_scores: NDArray[np.float32]

    @classmethod
    def build(
        cls, user_vectors: ArrayLike, paper_vectors: ArrayLike, k: int, pool: int | None,
        lam: float, similarity: ArrayLike | None, exclude: Any, min_score: float | None,
        tie_break: ArrayLike | None, block_rows: int,
    ) -> _Job:  # fmt: skip
        users = _as_2d_float32("user_vectors", user_vectors)
        papers = _finite_2d("paper_vectors", paper_vectors)
        if users.shape[1] != papers.shape[1]:
            raise ValueError(
                f"paper_vectors: width {papers.shape[1]} differs from the user_vectors' "
                f"{users.shape[1]}"
            )
        if block_rows < 1:
            raise ValueError(f"block_rows must be >= 1, got {block_rows}")
        shape = (len(users), len(papers))
        ranks = tie_ranks(_paper_tie_break(tie_break, shape), shape).astype(np.int32)
        return cls(
            users=users,
            papers_t=papers.T,
            ranks=ranks,
            cols_by_rank=np.argsort(ranks).astype(np.int32),
            floor=_floor(min_score),
            pool=min(_check_pool(pool, k), shape[1]),
            sim=_diversity_similarity(pool, similarity, papers),
            lam=np.float32(_check_lam(lam)),
            exclude=_check_exclude(exclude, shape),
            block_rows=block_rows,
            out_cols=np.full((shape[0], k), PAD_COLUMN, np.int32),
            out_scores=np.full((shape[0], k), -np.inf, np.float32),
        )

    def run(self, n_threads: int) -> None:
        """Fill the outputs, block by block, on ``n_threads`` workers."""
        n_users, n_papers = self.out_cols.shape[0], self.papers_t.shape[1]
        if n_users == 0 or n_papers == 0:
            return  # nothing to score: the outputs are already all padding
        starts = iter(range(0, n_users, self.block_rows))  # shared; next() holds the GIL

        def worker() -> None:
            buffer = np.empty((self.block_rows, n_papers), np.float32)  # reused, stays cached
            try:
                for start in starts:
                    self.run_block(start, buffer)
            except BaseException:
                for _ in starts:
                    pass  # use up the blocks, so the other workers stop too
                raise

        with threadpool_limits(limits=1, user_api="blas"):
            if n_threads == 1:
                worker()
                return
            with ThreadPoolExecutor(n_threads) as executor:
                for future in [executor.submit(worker) for _ in range(n_threads)]:
                    future.result()  # re-raises a worker's exception here

    def run_block(self, start: int, buffer: NDArray[np.float32]) -> None:
        """Score users ``start:start + block_rows`` and rank them into the outputs."""
        stop = min(start + self.block_rows, len(self.users))
        users = self.users[start:stop]
        # Checked here rather than up front: the block is read into cache for the product
        # next anyway, and the check runs on every worker instead of on one thread.
        _reject_non_finite("user_vectors", users, first_row=start)
        scores = buffer[: stop - start]
        np.matmul(users, self.papers_t, out=scores)
        self.drop_excluded(start, stop, scores)
        _rank_block(
            scores, self.ranks, self.cols_by_rank, self.floor, self.pool, self.sim, self.lam,
            self.out_cols[start:stop], self.out_scores[start:stop],
        )  # fmt: skip

    def drop_excluded(self, start: int, stop: int, scores: NDArray[np.float32]) -> None:
        """Set the block's excluded entries to -inf, which never ranks."""
        if self.exclude is None:
            return
        if isinstance(self.exclude, np.ndarray):
            scores[self.exclude[start:stop]] = -np.inf
            return
        indptr = self.exclude.indptr[start : stop + 1]
        _set_to_minus_inf(scores, indptr, self.exclude.indices)


# --- Checking arguments at the boundary --------------------------------------------------


def _as_2d_float32(name: str, values: ArrayLike) -> NDArray[np.float32]:
    array = np.asarray(values)
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array, got shape {array.shape}")
    if array.size and array.dtype.kind not in "fiu":
        raise ValueError(f"{name}: expected numbers, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float32)


def _reject_non_finite(
    name: str, array: NDArray[np.float32], *, first_row: int = 0, allow_neg_inf: bool = False
) -> None:
    bad_row = _first_bad_row(array, allow_neg_inf)
    if bad_row >= 0:
        what = "NaN or +inf" if allow_neg_inf else "NaN or infinity"
        raise ValueError(
            f"{name}: {what} in row {first_row + bad_row}; only finite values can be ranked"
        )


def _finite_2d(name: str, values: ArrayLike, *, allow_neg_inf: bool = False) -> NDArray[np.float32]:
    array = _as_2d_float32(name, values)
    _reject_non_finite(name, array, allow_neg_inf=allow_neg_inf)
    return array


def _check_pool(pool: int | None, k: int) -> int:
    if pool is None:
        return k
    if pool < k:
        raise ValueError(f"pool must be >= k ({k}) to re-rank down to k, got {pool}")
    return pool


def _check_lam(lam: float) -> float:
    if not 0.0 <= lam <= 1.0:  # also refuses NaN
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    return lam


def _floor(min_score: float | None) -> np.float32:
    """The lowest returnable score; never below the lowest finite float, so -inf never ranks."""
    if min_score is None:
        return _LOWEST
    if np.isnan(min_score):
        raise ValueError("min_score: NaN would drop every entry; pass None for no bar")
    # Compared as float32, as numpy compares a float32 block with a Python float.
    return max(np.float32(min_score), _LOWEST)


def _paper_tie_break(tie_break: ArrayLike | None, shape: tuple[int, int]) -> ArrayLike | None:
    if tie_break is not None and np.ndim(tie_break) != 1:
        # A per-user tie break would be an n_users x n_papers array: as big as the scores.
        raise ValueError(f"tie_break: expected shape ({shape[1]},), got {np.shape(tie_break)}")
    return tie_break


def _diversity_similarity(
    pool: int | None, similarity: ArrayLike | None, papers: NDArray[np.float32]
) -> NDArray[np.float32]:
    if pool is None:
        return np.zeros((0, 0), np.float32)  # the kernel's sign for "plain top-k"
    if similarity is None:
        return cosine_similarity(papers)
    return _check_similarity(similarity, len(papers))


def _check_similarity(similarity: ArrayLike, n_papers: int | None) -> NDArray[np.float32]:
    sim = _finite_2d("similarity", similarity)
    n = sim.shape[0] if n_papers is None else n_papers
    if sim.shape != (n, n):
        raise ValueError(f"similarity: expected shape ({n}, {n}), got {sim.shape}")
    return sim


def _check_exclude(exclude: Any, shape: tuple[int, int]) -> Any:
    if exclude is None:
        return None
    if exclude.shape != shape:
        raise ValueError(f"exclude: expected shape {shape}, got {exclude.shape}")
    if sp.issparse(exclude):
        csr = sp.csr_matrix(exclude, copy=True)
        csr.eliminate_zeros()  # a stored zero excludes nothing, as in ranking.top_k
        csr.indices = csr.indices.astype(np.int32, copy=False)
        return csr
    exclude = np.asarray(exclude)
    if exclude.dtype != np.bool_:
        # A 0/1 integer array is ambiguous with a list of column indices; make callers say.
        raise ValueError(f"exclude: expected a bool mask or a sparse matrix, got {exclude.dtype}")
    return exclude


# --- The numba kernels --------------------------------------------------------------------
# Each takes a whole block and loops over its rows itself: one call per block keeps the
# Python overhead per user at nothing. nogil lets the worker threads run them side by side;
# cache=True keeps the compiled code between runs (compiling takes seconds).


@njit(nogil=True, cache=True)
def _first_bad_row(values: NDArray[np.float32], allow_neg_inf: bool) -> int:
    """Index of the first row holding NaN or infinity (-inf allowed if asked), else -1."""
    for row in range(values.shape[0]):
        for col in range(values.shape[1]):
            value = values[row, col]
            if not np.isfinite(value) and not (allow_neg_inf and value == -np.inf):
                return row
    return -1


@njit(nogil=True, cache=True)
def _set_to_minus_inf(
    scores: NDArray[np.float32], indptr: NDArray[Any], indices: NDArray[np.int32]
) -> None:
    """``scores[row, indices[indptr[row]:indptr[row + 1]]] = -inf`` for every row."""
    for row in range(scores.shape[0]):
        for at in range(indptr[row], indptr[row + 1]):
            scores[row, indices[at]] = -np.inf


@njit(nogil=True, cache=True)
def _rank_block(
    scores: NDArray[np.float32],
    ranks: NDArray[np.int32],
    cols_by_rank: NDArray[np.int32],
    floor: np.float32,
    pool: int,
    sim: NDArray[np.float32],
    lam: np.float32,
    out_cols: NDArray[np.int32],
    out_scores: NDArray[np.float32],
) -> None:
    """Each row's ``pool`` best columns; then MMR down to k, or (``sim`` empty) the best k."""
    n_papers = scores.shape[1]
    # Scratch, allocated once per block and reused for every row.
    cand_cols = np.empty(n_papers, np.int32)
    cand_scores = np.empty(n_papers, np.float32)
    cand_ties = np.empty(n_papers, np.int32)
    keys = np.empty(n_papers, np.uint64)
    max_sim = np.empty(pool, np.float32)
    pair = np.empty(2, np.int32)
    bits = scores.view(np.uint32)  # the same memory, read as the floats' bit patterns
    for row in range(scores.shape[0]):
        n = _best_of_row(
            scores[row], bits[row], ranks, cols_by_rank, floor, pool,
            cand_cols, cand_scores, keys, pair,
        )  # fmt: skip
        if sim.shape[0] == 0:
            n = _sort_best(
                scores[row], bits[row], n, n, ranks, cols_by_rank, cand_cols, cand_scores, keys
            )
            _write(cand_cols, cand_scores, n, out_cols[row], out_scores[row])
        else:
            for i in range(n):
                cand_ties[i] = ranks[cand_cols[i]]
            _mmr_row(
                cand_cols, cand_scores, cand_ties, n, sim, lam, max_sim,
                out_cols[row], out_scores[row],
            )  # fmt: skip


@njit(nogil=True, cache=True)
def _mmr_block(
    cols: NDArray[np.int32],
    scores: NDArray[np.float32],
    sim: NDArray[np.float32],
    lam: np.float32,
    out_cols: NDArray[np.int32],
    out_scores: NDArray[np.float32],
) -> None:
    """:func:`_mmr_row` for every row of sorted, padded candidate lists."""
    width = cols.shape[1]
    cand_cols = np.empty(width, np.int32)  # _mmr_row reorders its candidates: work on copies
    cand_scores = np.empty(width, np.float32)
    ties = np.arange(width, 0, -1).astype(np.int32)  # listed first wins a tie
    cand_ties = np.empty(width, np.int32)
    max_sim = np.empty(width, np.float32)
    for row in range(cols.shape[0]):
        n = 0
        while n < width and cols[row, n] != PAD_COLUMN:
            n += 1
        cand_cols[:] = cols[row]
        cand_scores[:] = scores[row]
        cand_ties[:] = ties
        _mmr_row(
            cand_cols, cand_scores, cand_ties, n, sim, lam, max_sim, out_cols[row], out_scores[row]
        )


# --- Top-k of one row -----------------------------------------------------------------------
# In passes over the row's 1,000 floats, each from L1 cache:
#   1. find a bar with at least ``size`` entries at or above it, and not more than twice as
#      many, by bisection on the score: each step is one count, which LLVM vectorises;
#   2. gather the entries at or above the bar (~1.5 x size of them);
#   3. bisect again, on those few, until exactly ``size`` are left (unless scores tie).
# A heap or a buffer with a running threshold is simpler, but measured 7-9x slower: on
# shuffled columns ~200 of the 1,000 entries beat the running threshold, and each insertion
# is a chain of unpredictable branches. The kept entries come out unsorted: MMR does not
# need them sorted, and sorting 50 entries costs as much as the three passes.


@njit(inline="always")
def _best_of_row(
    row: NDArray[np.float32],
    bits: NDArray[np.uint32],
    ranks: NDArray[np.int32],
    cols_by_rank: NDArray[np.int32],
    floor: np.float32,
    size: int,
    cand_cols: NDArray[np.int32],
    cand_scores: NDArray[np.float32],
    keys: NDArray[np.uint64],
    pair: NDArray[np.int32],
) -> int:
    """Put the ``size`` best entries of ``row`` (>= ``floor``) in ``cand_*``, in no order.

    Returns how many there are: ``size``, or fewer if fewer entries reach ``floor``. Best
    means the highest score, then the highest tie rank.
    """
    low, high = _min_max(bits.view(np.int32), pair)
    bar = _bisect(row, len(row), max(low, floor), high, size, 2 * size)
    n = _gather(row, bar, cand_cols, cand_scores)
    if n > size:
        bar = _bisect(cand_scores, n, bar, high, size, size)
        n = _keep_at_least(cand_cols, cand_scores, n, bar)
    if n > size:  # entries tied at the bar straddle the cut: settle them by tie rank
        n = _sort_best(row, bits, n, size, ranks, cols_by_rank, cand_cols, cand_scores, keys)
    return n


@njit(inline="always")
def _bisect(
    values: NDArray[np.float32], n: int, low: np.float32, high: np.float32, size: int, most: int
) -> np.float32:
    """A bar >= ``low`` with ``size`` to ``most`` of ``values[:n]`` at or above it.

    Expects at least ``size`` values >= ``low`` (else returns ``low``: take them all). If ties
    leave no such bar, returns the highest bar that keeps ``size`` or more.
    """
    if _count_at_least(values, n, low) <= most:
        return low
    for _ in range(64):  # bounded: ties or a +inf can stop the bisection making progress
        middle = np.float32((np.float64(low) + np.float64(high)) / 2)
        if not low < middle < high:
            break  # no float32 left between them
        count = _count_at_least(values, n, middle)
        if count < size:
            high = middle
        else:
            low = middle
            if count <= most:
                break
    return low


@njit(inline="always")
def _count_at_least(values: NDArray[np.float32], n: int, bar: np.float32) -> int:
    count = 0
    for i in range(n):
        count += values[i] >= bar  # no branch, so LLVM vectorises it
    return count


@njit(inline="always")
def _min_max(ints: NDArray[np.int32], pair: NDArray[np.int32]) -> tuple[np.float32, np.float32]:
    """Smallest and largest entry of a float32 row, given as its bits (``ints``).

    Done on integers because LLVM vectorises an integer min/max but not a float one (NaN
    rules), which measured 3x slower. Flipping the 31 low bits of a negative float's bits
    gives int32s in the same order as the floats, and flipping them again gives the floats
    back; ``pair`` is scratch for that way back.
    """
    low, high = np.int32(2**31 - 1), np.int32(-(2**31))
    for col in range(len(ints)):
        value = ints[col]
        value ^= (value >> np.int32(31)) & np.int32(0x7FFFFFFF)
        low = value if value < low else low
        high = value if value > high else high
    pair[0] = low ^ ((low >> np.int32(31)) & np.int32(0x7FFFFFFF))
    pair[1] = high ^ ((high >> np.int32(31)) & np.int32(0x7FFFFFFF))
    floats = pair.view(np.float32)
    return floats[0], floats[1]


@njit(inline="always")
def _gather(
    row: NDArray[np.float32],
    bar: np.float32,
    cand_cols: NDArray[np.int32],
    cand_scores: NDArray[np.float32],
) -> int:
    """Columns and scores of the entries >= ``bar``, into ``cand_*``; returns how many."""
    n = 0
    for col in range(len(row)):
        cand_cols[n] = col  # written always, kept only if it passes: no branch to mispredict
        n += row[col] >= bar
    for i in range(n):
        cand_scores[i] = row[cand_cols[i]]
    return n


@njit(inline="always")
def _keep_at_least(
    cand_cols: NDArray[np.int32], cand_scores: NDArray[np.float32], n: int, bar: np.float32
) -> int:
    """Drop the candidates below ``bar``, in place; returns how many are left."""
    kept = 0
    for i in range(n):
        cand_cols[kept], cand_scores[kept] = cand_cols[i], cand_scores[i]
        kept += cand_scores[i] >= bar
    return kept


@njit(inline="always")
def _sort_best(
    row: NDArray[np.float32],
    bits: NDArray[np.uint32],
    n: int,
    size: int,
    ranks: NDArray[np.int32],
    cols_by_rank: NDArray[np.int32],
    cand_cols: NDArray[np.int32],
    cand_scores: NDArray[np.float32],
    keys: NDArray[np.uint64],
) -> int:
    """Sort the candidates best first and keep the best ``size``; returns how many are left.

    Sorts one uint64 key per candidate, ordering by (score, tie rank) as
    ``ranking._sort_keys`` does: the score's bits (``bits`` is ``row`` viewed as uint32)
    mapped to a uint32 of the same order, above the 32-bit rank, which gives back the column.
    """
    for i in range(n):
        order = bits[cand_cols[i]]
        if order == np.uint32(0x80000000):
            order = np.uint32(0)  # -0.0 ties with 0.0
        order ^= np.uint32(0xFFFFFFFF) if order >> np.uint32(31) else np.uint32(0x80000000)
        keys[i] = (np.uint64(order) << np.uint64(32)) | np.uint64(ranks[cand_cols[i]])
    best = keys[:n]
    best.sort()  # ascending: the best is last
    kept = min(n, size)
    for i in range(kept):
        col = cols_by_rank[best[n - 1 - i] & np.uint64(0xFFFFFFFF)]
        cand_cols[i], cand_scores[i] = col, row[col]
    return kept


@njit(inline="always")
def _write(
    cols: NDArray[np.int32],
    scores: NDArray[np.float32],
    n: int,
    out_cols: NDArray[np.int32],
    out_scores: NDArray[np.float32],
) -> None:
    """The first ``n`` entries, then padding, into one output row."""
    for i in range(len(out_cols)):
        if i < n:
            out_cols[i], out_scores[i] = cols[i], scores[i]
        else:
            out_cols[i], out_scores[i] = PAD_COLUMN, -np.inf


# --- Maximal marginal relevance of one row --------------------------------------------------


@njit(inline="always")
def _mmr_row(
    cols: NDArray[np.int32],
    scores: NDArray[np.float32],
    ties: NDArray[np.int32],
    n: int,
    sim: NDArray[np.float32],
    lam: np.float32,
    max_sim: NDArray[np.float32],
    out_cols: NDArray[np.int32],
    out_scores: NDArray[np.float32],
) -> None:
    """Greedy MMR over the first ``n`` candidates (in any order) into one output row.

    ``max_sim[i]`` is candidate i's highest similarity to the picks so far. After each pick
    one pass over the remaining candidates both updates it and finds the next pick. A picked
    candidate is swapped to the end and the count shrinks, so the loop has nothing to skip.
    Equal MMR values go to the higher score, then the higher ``ties``.
    """
    picks = min(n, len(out_cols))
    max_sim[:n] = -np.inf  # nothing picked yet: max() over an empty set
    best = _most_relevant(scores, ties, n)  # the MMR pick when nothing is picked yet
    for pick in range(picks):
        picked = cols[best]
        out_cols[pick], out_scores[pick] = picked, scores[best]
        n -= 1
        _swap_candidates(cols, scores, ties, max_sim, best, n)
        if pick + 1 < picks:  # after the last pick there is nothing left to choose
            best = _update_and_pick(cols, scores, ties, n, sim[picked], lam, max_sim)
    for pick in range(picks, len(out_cols)):
        out_cols[pick], out_scores[pick] = PAD_COLUMN, -np.inf


@njit(inline="always")
def _most_relevant(scores: NDArray[np.float32], ties: NDArray[np.int32], n: int) -> int:
    best = 0
    for i in range(1, n):
        if scores[i] > scores[best] or (scores[i] == scores[best] and ties[i] > ties[best]):
            best = i
    return best


@njit(inline="always")
def _update_and_pick(
    cols: NDArray[np.int32],
    scores: NDArray[np.float32],
    ties: NDArray[np.int32],
    n: int,
    sim_to_picked: NDArray[np.float32],
    lam: np.float32,
    max_sim: NDArray[np.float32],
) -> int:
    """Fold the latest pick into ``max_sim`` and return the candidate with the best MMR."""
    weight = np.float32(1.0) - lam
    best, best_value = 0, np.float32(0.0)
    for i in range(n):
        similarity = sim_to_picked[cols[i]]
        max_sim[i] = similarity if similarity > max_sim[i] else max_sim[i]
        value = lam * scores[i] - weight * max_sim[i]
        if i == 0 or value > best_value or (value == best_value and (
            scores[i] > scores[best] or (scores[i] == scores[best] and ties[i] > ties[best])
        )):  # fmt: skip
            best, best_value = i, value
    return best


@njit(inline="always")
def _swap_candidates(
    cols: NDArray[np.int32],
    scores: NDArray[np.float32],
    ties: NDArray[np.int32],
    max_sim: NDArray[np.float32],
    a: int,
    b: int,
) -> None:
    cols[a], cols[b] = cols[b], cols[a]
    scores[a], scores[b] = scores[b], scores[a]
    ties[a], ties[b] = ties[b], ties[a]
    max_sim[a], max_sim[b] = max_sim[b], max_sim[a]
