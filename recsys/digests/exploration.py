"""Exploration with known propensities: which papers a digest shows, and with what probability.

Pure: arrays and a seeded ``numpy.random.Generator`` in, arrays out. Off-policy estimators
(IPS, SNIPS, DR) need, for every logged item, the probability that the logging policy put it
where it was shown; the two policies here make that probability exact rather than estimated.

Definitions used throughout (and stored in ``digest_items.propensity``):

- The *pool* of a digest is the set of candidate columns the user could be shown (new since
  their window start, never sent or touched), whatever their score. The uniform holdout
  draws from all of it; exploration slots only from the part that clears the arm's relevance
  bar (the scorer passes that part as ``pool`` to :func:`explore_slate`).
- ``propensity[l]`` is the **position-wise marginal** probability that the item shown at
  position ``l`` is shown at position ``l``, given the pool and the scores: 1 for a
  deterministic (exploitation) slot, ``1 / |R|`` for an exploration slot sampled uniformly
  without replacement from ``R``. The probability of the whole ordered slate is the product
  ``prod_j 1 / (|R| - j)`` over its exploration slots; the probability that an explored item
  appears anywhere in the slate is ``n_explored / |R|``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Slate:
    """One digest's chosen columns, best first, with their propensities.

    Attributes
    ----------
    cols : NDArray[np.int32], shape (n,)
        Chosen candidate columns in display order.
    propensity : NDArray[np.float64], shape (n,)
        Position-wise marginal probability of each column at its position (see module doc).
    explored : NDArray[np.bool_], shape (n,)
        True where the position was filled by random sampling rather than by rank.
    """

    cols: NDArray[np.int32]
    propensity: NDArray[np.float64]
    explored: NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.cols)


def explore_slate(
    ranked: NDArray[np.integer],
    pool: NDArray[np.integer],
    size: int,
    slots: int,
    rng: np.random.Generator,
) -> Slate:
    """Top ``size - slots`` by rank, then ``slots`` positions sampled uniformly from the rest.

    Parameters
    ----------
    ranked : NDArray[np.integer], shape (m,)
        The user's columns that cleared the relevance bar, best first (``top_k`` output with
        the padding removed); at least ``size - slots`` of them when there are that many.
    pool : NDArray[np.integer], shape (C,)
        Every column an exploration slot may show: the scorer passes the user's pool above
        the arm's relevance bar. A superset of ``ranked``.
    size : int
        Digest size ``L`` (>= 1).
    slots : int
        Exploration positions ``s`` (>= 0); ``min(s, L)`` of the last positions are sampled.
    rng : numpy.random.Generator
        The only source of randomness; seed it per digest to make a ranking reproducible.

    Returns
    -------
    Slate
        The first ``min(L - s, m)`` positions are ``ranked``'s head (propensity 1). The next
        ``min(s, |R|)`` are a uniformly random ordered sample without replacement from
        ``R = pool \\ head`` (propensity ``1 / |R|`` each). When fewer than ``L`` papers
        clear the bar the slate is that much shorter, exactly as the plain top-k: a paper
        below the bar is never shown (issue 14), and the logs then leave empty the positions
        a top-k ranker leaves empty. Drawing below-bar papers too gave every explored slot a
        weight of ~|pool| in the off-policy estimates where ~|above the bar| suffices; the
        uniform holdout still supports rankers with a lower bar. When nothing clears the bar
        (``m == 0``) the slate is empty: a thin day sends nothing.

    Raises
    ------
    ValueError
        If ``size`` < 1, ``slots`` < 0, or ``ranked`` holds a column absent from ``pool``.
    """
    _check_sizes(size, slots)
    by_rank = np.asarray(ranked, dtype=np.int32)
    eligible = np.asarray(pool, dtype=np.int32)
    if not np.isin(by_rank, eligible).all():
        raise ValueError("ranked: every ranked column must be in the pool")
    if len(by_rank) == 0:
        return _slate(by_rank, np.ones(0), 0)
    head = by_rank[: size - min(slots, size)]
    rest = np.setdiff1d(eligible, head)  # sorted: the sample depends only on rng and the pool
    n_explore = min(slots, size, len(rest))
    sample = rng.permutation(rest)[:n_explore]
    cols = np.concatenate([head, sample])
    propensity = np.concatenate([np.ones(len(head)), np.full(n_explore, 1.0 / max(len(rest), 1))])
    return _slate(cols, propensity, len(head))


def ranked_slate(ranked: NDArray[np.integer]) -> Slate:
    """The plain top-k: every position by rank, propensity 1 (what ``explore_slate`` gives
    with no exploration slots, without reading the pool).

    Parameters
    ----------
    ranked : NDArray[np.integer], shape (n,)
        The columns to show, best first.
    """
    cols = np.asarray(ranked, dtype=np.int32)
    return _slate(cols, np.ones(len(cols)), len(cols))


def uniform_slate(pool: NDArray[np.integer], size: int, rng: np.random.Generator) -> Slate:
    """A digest drawn uniformly at random from the pool: the holdout's logging policy.

    Parameters
    ----------
    pool : NDArray[np.integer], shape (C,)
        Every column the user may be shown; scores and the relevance bar are ignored.
    size : int
        Digest size ``L`` (>= 1); ``min(L, C)`` positions are filled.
    rng : numpy.random.Generator
        Seed it per digest.

    Returns
    -------
    Slate
        A uniformly random ordered sample without replacement; every position has
        propensity ``1 / C`` (each pool item is equally likely at each position).
    """
    _check_sizes(size, 0)
    eligible = np.sort(np.asarray(pool, dtype=np.int32))  # the draw depends on the set only
    n = min(size, len(eligible))
    cols = rng.permutation(eligible)[:n]
    return _slate(cols, np.full(n, 1.0 / max(len(eligible), 1)), 0)


def pack_mask(mask: NDArray[np.bool_]) -> bytes:
    """A boolean row as bits (8 pool entries a byte), for storing a digest's pool compactly."""
    return np.packbits(np.asarray(mask, dtype=bool)).tobytes()


def unpack_mask(packed: bytes, length: int) -> NDArray[np.bool_]:
    """Inverse of :func:`pack_mask` for a row of ``length`` entries."""
    if len(packed) != (length + 7) // 8:
        raise ValueError(f"packed mask has {len(packed)} bytes, expected {(length + 7) // 8}")
    return np.unpackbits(np.frombuffer(packed, dtype=np.uint8), count=length).astype(bool)


def _check_sizes(size: int, slots: int) -> None:
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if slots < 0:
        raise ValueError(f"slots must be >= 0, got {slots}")


def _slate(cols: NDArray[np.int32], propensity: NDArray[np.float64], n_ranked: int) -> Slate:
    explored = np.arange(len(cols)) >= n_ranked
    return Slate(cols.astype(np.int32), propensity.astype(np.float64), explored)
