"""The exploration sampler: exact propensities, checked against enumeration and draws."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from recsys.digests.exploration import (
    explore_slate,
    pack_mask,
    ranked_slate,
    uniform_slate,
    unpack_mask,
)

DRAWS = 24_000


def _within(observed: int, p: float, n: int = DRAWS) -> bool:
    """An observed count within 5 standard deviations of a binomial(n, p) mean."""
    return abs(observed - n * p) <= 5 * np.sqrt(n * p * (1 - p))


def test_it_keeps_the_plain_top_k_when_no_slot_explores() -> None:
    slate = explore_slate(np.array([4, 2, 0]), np.arange(6), 2, 0, np.random.default_rng(0))
    assert slate.cols.tolist() == [4, 2]
    assert slate.propensity.tolist() == [1.0, 1.0]
    assert not slate.explored.any()
    plain = ranked_slate(np.array([4, 2]))  # the shortcut the scorer takes without slots
    assert plain.cols.tolist() == slate.cols.tolist()
    assert plain.propensity.tolist() == slate.propensity.tolist()
    assert plain.explored.tolist() == slate.explored.tolist()


def test_every_ordered_outcome_of_a_tiny_case_has_its_computed_probability() -> None:
    # Digest of 3, 2 exploration slots: column 3 is ranked first; R = {0, 1, 2, 4}.
    ranked, pool = np.array([3, 1]), np.arange(5)
    rng = np.random.default_rng(7)
    draws = [explore_slate(ranked, pool, 3, 2, rng) for _ in range(DRAWS)]
    outcomes = Counter(tuple(s.cols.tolist()) for s in draws)

    expected = {(3, *pair): 1 / (4 * 3) for pair in itertools.permutations([0, 1, 2, 4], 2)}
    assert set(outcomes) == set(expected)  # no other outcome is possible
    assert all(_within(outcomes[o], p) for o, p in expected.items())
    assert all(s.propensity.tolist() == [1.0, 0.25, 0.25] for s in draws)
    assert all(s.explored.tolist() == [False, True, True] for s in draws)


def test_position_marginals_match_the_propensities_and_sum_to_one() -> None:
    ranked, pool = np.array([5, 6, 1]), np.array([0, 1, 2, 5, 6, 8])
    rng = np.random.default_rng(11)
    draws = [explore_slate(ranked, pool, 4, 2, rng) for _ in range(DRAWS)]
    rest = [0, 1, 2, 8]  # the head is [5, 6]; 1 is below it in rank, so it may be drawn
    for position in (2, 3):
        seen = Counter(int(s.cols[position]) for s in draws)
        propensity = draws[0].propensity[position]
        assert propensity == pytest.approx(1 / 4)
        assert set(seen) == set(rest)
        assert all(_within(seen[c], propensity) for c in rest)
        assert propensity * len(rest) == pytest.approx(1.0)


def test_below_bar_papers_can_be_explored_but_an_empty_bar_sends_nothing() -> None:
    rng = np.random.default_rng(0)
    slate = explore_slate(np.array([2]), np.arange(4), 3, 2, rng)
    assert slate.cols[0] == 2 and set(slate.cols[1:].tolist()) <= {0, 1, 3}
    assert len(explore_slate(np.array([], dtype=np.int32), np.arange(4), 3, 2, rng)) == 0


def test_a_small_pool_fills_fewer_slots() -> None:
    slate = explore_slate(np.array([0]), np.array([0, 1]), 5, 3, np.random.default_rng(0))
    assert slate.cols.tolist() == [0, 1]
    assert slate.propensity.tolist() == [1.0, 1.0]  # R = {1}: it is certain


def test_the_uniform_holdout_draws_every_item_equally_at_every_position() -> None:
    rng = np.random.default_rng(3)
    draws = [uniform_slate(np.array([7, 3, 9]), 2, rng) for _ in range(DRAWS)]
    for position in (0, 1):
        seen = Counter(int(s.cols[position]) for s in draws)
        assert all(_within(seen[c], 1 / 3) for c in (3, 7, 9))
    assert all(s.propensity.tolist() == pytest.approx([1 / 3, 1 / 3]) for s in draws)
    assert all(s.explored.all() for s in draws)


def test_the_same_seed_draws_the_same_slate() -> None:
    def draw() -> list[int]:
        rng = np.random.default_rng(42)
        return explore_slate(np.array([0]), np.arange(50), 5, 4, rng).cols.tolist()

    assert draw() == draw()


def test_bad_input_is_refused() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="pool"):
        explore_slate(np.array([9]), np.arange(3), 2, 1, rng)
    with pytest.raises(ValueError, match="size"):
        uniform_slate(np.arange(3), 0, rng)
    with pytest.raises(ValueError, match="slots"):
        explore_slate(np.array([0]), np.arange(3), 2, -1, rng)


def test_a_pool_mask_round_trips_through_its_bits() -> None:
    mask = np.array([True, False, True, True, False, False, False, True, True, False])
    packed = pack_mask(mask)
    assert len(packed) == 2
    assert unpack_mask(packed, 10).tolist() == mask.tolist()
    with pytest.raises(ValueError, match="bytes"):
        unpack_mask(packed, 17)
