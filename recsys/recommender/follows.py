"""Followed authors and categories: exact matches that the embeddings cannot see.

A subscriber who follows "Adrian Del Maestro" or ``cond-mat.stat-mech`` means it literally:
an embedder reads titles and abstracts, where neither appears, so both interests would add
nothing to a content profile. They are matched here instead, on normalised names and
category codes, and lift the matched papers' scores:

- a paper by a followed author ranks above every other paper of the day (and clears the
  relevance bar whatever its text), since the reader asked for exactly that;
- a paper in a followed category is lifted by half the day's score range: a real prior that
  still lets a strong content match outrank it.

Everything here is pure: names and arrays in, arrays out.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

FOLLOW_KINDS = ("author", "category")  # interest kinds matched here, never embedded
CATEGORY_LIFT = 0.5  # share of the day's score range a followed category adds
_NOT_WORD = re.compile(r"[^\w\s-]")
_SPACE = re.compile(r"[\s-]+")
# Letters that Unicode does not decompose into a base letter and an accent.
_LETTERS = str.maketrans(
    {"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "ł": "l", "Ł": "L", "đ": "d"}
)


def normalise_author(name: str) -> str:
    """``"Del Maestro, Adrián"`` and ``"adrian del maestro"`` -> ``"adrian del maestro"``.

    Accents, case, punctuation and "Last, First" order do not distinguish two people;
    initials do (``"A. Del Maestro"`` stays a different key: it may be someone else).
    """
    if "," in name:
        last, _, first = name.partition(",")
        name = f"{first} {last}"
    plain = unicodedata.normalize("NFKD", name.translate(_LETTERS))
    plain = plain.encode("ascii", "ignore").decode()
    return _SPACE.sub(" ", _NOT_WORD.sub(" ", plain.replace(".", ". "))).strip().lower()


def normalise_category(code: str) -> str:
    """``" CS.LG "`` -> ``"cs.lg"``: arXiv category codes compare case-insensitively."""
    return code.strip().lower()


def follow_hits(follows: Sequence[frozenset[str]], keys: Sequence[Sequence[str]]) -> sp.csr_matrix:
    """Boolean (n_users, n_papers) matrix: user ``u`` follows one of paper ``p``'s keys.

    ``follows[u]`` and ``keys[p]`` must already be normalised the same way.
    """
    papers_of: dict[str, list[int]] = defaultdict(list)
    for paper, paper_keys in enumerate(keys):
        for key in set(paper_keys):
            papers_of[key].append(paper)
    rows, cols = [], []
    for user, followed in enumerate(follows):
        hit = {p for key in followed for p in papers_of.get(key, ())}
        rows += [user] * len(hit)
        cols += sorted(hit)
    data = np.ones(len(rows), dtype=bool)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(follows), len(keys)), dtype=bool)


def lift(
    scores: NDArray[np.float32],
    authors: NDArray[np.bool_],
    categories: NDArray[np.bool_],
) -> NDArray[np.float32]:
    """Scores with followed authors' papers above all others and followed categories lifted.

    Parameters
    ----------
    scores : (n_users, n_papers) float32
        The model's scores (any scale; non-finite entries are left as they are).
    authors, categories : (n_users, n_papers) bool
        Where the user follows one of the paper's authors / categories.
    """
    finite = scores[np.isfinite(scores)]
    span = float(np.ptp(finite)) if finite.size else 0.0
    unit = np.float32(span + 1.0)  # > any gap between two scores, whatever their scale
    return (scores + unit * 2 * authors + unit * CATEGORY_LIFT * categories).astype(np.float32)


def followed_author(followed: frozenset[str], authors: Sequence[str]) -> str | None:
    """The first of a paper's ``authors`` (as written on it) whom the reader follows."""
    return next((a for a in authors if normalise_author(a) in followed), None)


def followed_category(followed: frozenset[str], categories: Sequence[str]) -> str | None:
    """The first of a paper's ``categories`` (primary first) that the reader follows."""
    return next((c for c in categories if normalise_category(c) in followed), None)
