"""Followed authors and categories: normalised exact matches and the lift they give."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.recommender.follows import (
    CATEGORY_LIFT,
    follow_hits,
    followed_author,
    followed_category,
    lift,
    normalise_author,
    normalise_category,
)


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("Adrian Del Maestro", "adrian del maestro"),
        ("Del Maestro, Adrián", "adrian del maestro"),
        ("  ADRIAN   del-Maestro ", "adrian del maestro"),
        ("A. Del Maestro", "a del maestro"),  # initials stay distinct: maybe someone else
        ("Henrik M. Rønnow", "henrik m ronnow"),
    ],
)
def test_author_names_normalise_to_one_key(written: str, key: str) -> None:
    assert normalise_author(written) == key


def test_category_codes_compare_case_insensitively() -> None:
    assert normalise_category(" CS.LG ") == normalise_category("cs.LG") == "cs.lg"


def test_hits_mark_exactly_the_followed_papers() -> None:
    follows = [frozenset({"ada garcia"}), frozenset(), frozenset({"ada garcia", "bo li"})]
    keys = [["bo li"], ["ada garcia", "cy"], [], ["bo li", "ada garcia"]]
    hits = follow_hits(follows, keys).toarray()
    assert hits.tolist() == [
        [False, True, False, True],
        [False, False, False, False],
        [True, True, False, True],
    ]


def test_a_followed_author_outranks_everything_and_a_category_is_lifted_by_half_the_range() -> None:
    scores = np.array([[5.0, 1.0, 0.0, 3.0]], dtype=np.float32)
    authors = np.array([[False, False, True, False]])
    categories = np.array([[False, True, False, False]])
    lifted = lift(scores, authors, categories)
    assert lifted.argmax() == 2  # the lowest-scored paper, by a followed author, comes first
    unit = 5.0 + 1.0  # the day's range plus one
    assert lifted[0, 1] == pytest.approx(1.0 + CATEGORY_LIFT * unit)
    assert lifted[0, 3] == scores[0, 3]  # nothing followed: unchanged


def test_the_name_quoted_is_the_one_written_on_the_paper() -> None:
    assert followed_author(frozenset({"adrian del maestro"}), ["X Y", "Adrián Del Maestro"]) == (
        "Adrián Del Maestro"
    )
    assert followed_author(frozenset({"bo li"}), ["X Y"]) is None
    assert followed_category(frozenset({"cs.lg"}), ["stat.ML", "cs.LG"]) == "cs.LG"
