"""True reasons: why each paper is in a digest, in one line a reader (and a checker) can verify.

A reason cites a paper the reader read or an interest they gave only when that source is
actually close to the item: its cosine with the item must reach the *similarity floor*, the
similarity of a typical paper to its 3rd nearest neighbour in the same space
(:func:`neighbour_similarity`, measured on the corpus at training time). The pipeline judges
on TF-IDF vectors before the SVD: measured on the seed papers, a citation judged in the
64-d SVD space at its own 10th-neighbour floor was close by an independent TF-IDF check
only 66% of the time, since the SVD blurs distinct topics together. Below the floor a
citation would be the "Phase-shifted photoplethysmography explains a pretraining dataset"
kind of sentence, so the reason says honestly what did put the paper there instead: the
collaborative components, early popularity, exploration, or the reader's field as a whole.

Everything here is pure: arrays in, strings out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys.recommender.base import Component, PaperBlock, UserBlock, unit_rows
from recsys.recommender.hybrid import Hybrid

# "Close" = at least as similar as a typical paper's 3rd nearest neighbour. Measured on the
# 500 seed papers with an independent TF-IDF check (cosine >= 0.10 there, its own 10th
# neighbour): citations at our 10th-neighbour floor were close 84% (papers) and 73%
# (interests) of the time, at the 3rd-neighbour floor 99% and 93%.
NEIGHBOUR_RANK = 3
FLOOR_SAMPLE = 500  # papers whose neighbours are measured; the median settles long before
_FLOOR_CHUNK = 100  # sampled rows per product: 100 x 50,000 papers is 40 MB
# The floor for an artifact trained before floors were stored: the median 3rd-neighbour
# cosine measured on the 500 seed papers in the default embedder's TF-IDF space (0.062).
DEFAULT_FLOOR = 0.06

EXPLORING = "Exploring beyond your usual topics"
# ALS and LightFM place a new paper from its text among what readers with tastes like
# yours read, and the popularity prior predicts readership from text: neither means anyone
# has read this paper yet, so neither sentence says so.
COLLABORATIVE = "Like what readers with tastes like yours read"
POPULAR = "Like the most-read papers in your topics"
IN_YOUR_FIELD = "New in your field"
CLOSEST_TODAY = "Closest to your reading among today's new papers"
NEWEST = "Among the newest papers"
# What a collaborative or popularity contribution means when it, not a cited source, ranked
# the paper. Content and the per-user linear model score the paper's text against the
# reader's whole profile: see ``_text_reason``.
COMPONENT_REASONS = {"als": COLLABORATIVE, "lightfm": COLLABORATIVE, "popularity": POPULAR}
TEXT_COMPONENTS = ("content", "linear")


def neighbour_similarity(
    vectors: NDArray[np.floating] | sp.csr_matrix,
    *,
    rank: int = NEIGHBOUR_RANK,
    sample: int = FLOOR_SAMPLE,
    seed: int = 0,
) -> float:
    """Median cosine between a paper and its ``rank``-th nearest other paper.

    Parameters
    ----------
    vectors : array or csr_matrix, shape (n_papers, d)
        The corpus, in the space reasons are judged in (dense rows are normalised here;
        sparse rows must already have unit norm, as TF-IDF's do).
    rank : int
        Which neighbour: 3 calls "close" what is as similar as a paper's 3rd neighbour.
    sample : int
        Papers measured (drawn without replacement with ``seed``), each against all papers.
    seed : int
        Seed of the sample.

    Returns
    -------
    float
        The floor; ``DEFAULT_FLOOR`` when the corpus has no more than ``rank`` papers.
    """
    unit = vectors if sp.issparse(vectors) else unit_rows(vectors)
    n = unit.shape[0]
    if n <= rank:
        return DEFAULT_FLOOR
    rows = np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False)
    kth = []
    for start in range(0, len(rows), _FLOOR_CHUNK):  # bounded memory on a large corpus
        chunk = rows[start : start + _FLOOR_CHUNK]
        product = unit[chunk] @ unit.T
        cosines = np.asarray(product.toarray() if sp.issparse(product) else product, float)
        cosines[np.arange(len(chunk)), chunk] = -np.inf  # a paper is not its own neighbour
        kth.append(-np.partition(-cosines, rank - 1, axis=1)[:, rank - 1])
    return float(np.median(np.concatenate(kth)))


def contributions(
    component: Component,
    users: UserBlock,
    papers: PaperBlock,
    user_rows: NDArray[np.intp],
    paper_rows: NDArray[np.intp],
) -> tuple[NDArray[np.float32], list[str]]:
    """Each component's weighted score of each (user, paper) pair, and the components' names.

    For a hybrid, column ``k`` is ``w_k * score_k``, so a row sums to the blended score; any
    other component is its own single column. Scores only the users and papers the pairs
    name (a digest's slate), not the whole candidate block.
    """
    parts = component.components if isinstance(component, Hybrid) else [component]
    weights = component.weights if isinstance(component, Hybrid) else np.ones(1)
    users_u, user_at = np.unique(user_rows, return_inverse=True)
    papers_u, paper_at = np.unique(paper_rows, return_inverse=True)
    out = np.zeros((len(user_rows), len(parts)), dtype=np.float32)
    if len(user_rows):
        user_block, paper_block = users.take(users_u), papers.take(papers_u)
        for k, (part, weight) in enumerate(zip(parts, weights, strict=True)):
            if weight:
                out[:, k] = weight * part.score(user_block, paper_block)[user_at, paper_at]
    return out, [part.name for part in parts]


def top_component(contributions: NDArray[np.floating], names: Sequence[str]) -> list[str | None]:
    """Per pair, the component that added most to its blended score (None: none added any).

    ``contributions[j, k]`` is component ``k``'s weighted score of pair ``j``; only a positive
    contribution can have put a paper in a digest.
    """
    if contributions.shape[1] != len(names):
        raise ValueError(f"{contributions.shape[1]} contribution columns for {len(names)} names")
    best = contributions.argmax(axis=1)
    positive = contributions[np.arange(len(best)), best] > 0
    pairs = zip(best.tolist(), positive.tolist(), strict=True)
    return [names[k] if ok else None for k, ok in pairs]


def choose_reasons(
    author: Sequence[str | None],
    category: Sequence[str | None],
    history: Sequence[int],
    interest: Sequence[int],
    component: Sequence[str | None],
    explored: Sequence[bool],
    profile_close: Sequence[bool],
    history_titles: Sequence[str],
    interest_labels: Sequence[str],
) -> list[str]:
    """One reason per pair, the first true one of: exploration, a followed author, a close
    history paper, a close interest, a followed category, the component that ranked it,
    else recency.

    Parameters
    ----------
    author, category : sequence of str or None
        Per pair, the followed author (as written on the paper) / followed category code
        the paper matches, or None (see :mod:`recsys.recommender.follows`).
    history, interest : sequence of int
        Per pair, the cited history row / interest row that reached the similarity floor,
        or -1 (see ``ContentProfile.cited_sources``).
    component : sequence of str or None
        Per pair, :func:`top_component`'s answer.
    explored : sequence of bool
        Per pair, whether the slot was drawn at random (exploration) rather than ranked.
    profile_close : sequence of bool
        Per pair, whether the reader's whole content profile reaches the floor with the paper.
    history_titles, interest_labels : sequence of str
        Titles of the history rows and labels of the interest rows.
    """
    pairs = zip(
        author, category, history, interest, component, explored, profile_close, strict=True
    )
    out = []
    for a, cat, h, i, c, e, close in pairs:
        if e:
            out.append(EXPLORING)
        elif a is not None:
            out.append(f"New paper by “{a}”, whom you follow")
        elif h >= 0:
            out.append(f"Similar to “{history_titles[h]}” you read")
        elif i >= 0:
            out.append(f"Matches your interest “{interest_labels[i]}”")
        elif cat is not None:
            out.append(f"New in “{cat}”, which you follow")
        elif c in TEXT_COMPONENTS:
            out.append(IN_YOUR_FIELD if close else CLOSEST_TODAY)
        else:
            out.append(COMPONENT_REASONS.get(c or "", NEWEST))
    return out
