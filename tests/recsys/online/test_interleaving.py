"""Team-draft interleaving on hand-checked cases: the draft, its propensities, the credit."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from recsys.online.interleaving import (
    credit,
    draft_rng,
    draft_seed,
    draft_with_coins,
    outcomes,
    position_marginals,
    team_draft,
)

A = np.array([1, 2, 3, 4, 5, 6])
B = np.array([10, 11, 12, 13, 14, 15])


def test_disjoint_lists_alternate_with_the_coin_choosing_who_leads_each_round() -> None:
    # Rounds: A first, then B first, then A first.
    ids, teams = draft_with_coins(A, B, 6, np.array([True, False, True]))
    assert ids.tolist() == [1, 10, 11, 2, 3, 12]
    assert teams.tolist() == ["a", "b", "b", "a", "a", "b"]


def test_an_id_both_rankers_want_goes_to_the_first_picker_and_the_other_takes_its_next() -> None:
    a, b = np.array([7, 8, 9]), np.array([7, 9, 8])
    ids, teams = draft_with_coins(a, b, 3, np.array([True, True]))
    # A takes 7; B's best left is 9; round 2 A first: A's best left is 8.
    assert ids.tolist() == [7, 9, 8]
    assert teams.tolist() == ["a", "b", "a"]
    ids, teams = draft_with_coins(a, b, 3, np.array([False, False]))
    # B takes 7; A's best left is 8; round 2 B first: B's best left is 9.
    assert ids.tolist() == [7, 8, 9]
    assert teams.tolist() == ["b", "a", "b"]


def test_identical_lists_give_that_list_whatever_the_coins() -> None:
    for coins in itertools.product((True, False), repeat=3):
        ids, _ = draft_with_coins(A, A, 6, np.array(coins))
        assert ids.tolist() == A.tolist()


@pytest.mark.parametrize("k", [1, 2, 5, 6, 9])
def test_each_team_gets_half_the_list_within_one_and_no_id_repeats(k: int) -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        a = rng.permutation(12)[:9]
        b = rng.permutation(12)[:9]
        ids, teams = team_draft(a, b, k, rng)
        assert len(ids) == k and len(set(ids.tolist())) == k
        assert abs(int(np.sum(teams == "a")) - int(np.sum(teams == "b"))) <= 1
        # Every pick is its team's best id not already taken before it.
        for position, (item, team) in enumerate(zip(ids, teams, strict=True)):
            own = a if team == "a" else b
            taken = set(ids[:position].tolist())
            assert item == next(x for x in own if x not in taken)


def test_a_team_that_runs_out_yields_to_the_other() -> None:
    ids, teams = draft_with_coins(np.array([1]), B, 4, np.array([True, True]))
    assert ids.tolist() == [1, 10, 11, 12]
    assert teams.tolist() == ["a", "b", "b", "b"]


def test_the_list_is_short_only_when_both_rankings_together_are() -> None:
    ids, _ = team_draft([1, 2], [2, 3], 10, np.random.default_rng(0))
    assert sorted(ids.tolist()) == [1, 2, 3]


def test_the_same_salt_and_digest_draft_the_same_list_and_others_differ() -> None:
    first = team_draft(A, B, 6, draft_rng("salt", 41))
    again = team_draft(A, B, 6, draft_rng("salt", 41))
    assert first[0].tolist() == again[0].tolist()
    assert first[1].tolist() == again[1].tolist()
    assert draft_seed("salt", 41) != draft_seed("salt", 42)
    assert draft_seed("salt", 41) != draft_seed("other", 41)
    drafts = {tuple(team_draft(A, B, 6, draft_rng("salt", d))[1]) for d in range(40)}
    assert len(drafts) == 8  # all 2**3 coin sequences occur over 40 digests


def test_team_a_leads_half_the_digests() -> None:
    leads = [team_draft(A, B, 2, draft_rng("s", d))[1][0] == "a" for d in range(2000)]
    assert abs(np.mean(leads) - 0.5) < 0.04  # 4.5 standard errors


def test_position_marginals_of_disjoint_lists_are_one_half() -> None:
    ids, _ = team_draft(A, B, 6, np.random.default_rng(1))
    assert position_marginals(A, B, ids).tolist() == [0.5] * 6


def test_position_marginals_count_the_coin_sequences_that_agree() -> None:
    a, b = np.array([7, 8, 9]), np.array([7, 9, 8])
    # 7 leads whatever the coin; position 2 holds 8 when A led, 9 when B led (round 1's coin),
    # and position 3 the remaining one: each 1/2.
    assert position_marginals(a, b, np.array([7, 9, 8])).tolist() == [1.0, 0.5, 0.5]
    assert position_marginals(a, a, a).tolist() == [1.0, 1.0, 1.0]


def test_position_marginals_match_the_frequency_of_seeded_drafts() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.permutation(8)[:6], rng.permutation(8)[:6]
    ids, _ = team_draft(a, b, 6, rng)
    draws = np.array([team_draft(a, b, 6, rng)[0] for _ in range(4000)])
    observed = (draws == ids).mean(axis=0)
    assert np.allclose(position_marginals(a, b, ids), observed, atol=0.03)


def test_clicks_credit_the_team_that_placed_the_clicked_items() -> None:
    teams = np.array(["a", "b", "a", "b"])
    assert credit(teams, np.array([True, False, False, False])) == "a"
    assert credit(teams, np.array([True, True, False, True])) == "b"
    assert credit(teams, np.array([True, True, False, False])) == "tie"
    assert credit(teams, np.zeros(4, dtype=bool)) == "tie"
    assert outcomes([teams, teams], [np.array([0, 1, 0, 0]), np.array([1, 0, 1, 0])]).tolist() == [
        -1,
        1,
    ]


def test_bad_input_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="a: a ranking must not repeat"):
        team_draft([1, 1], [2], 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="k must be >= 1"):
        team_draft([1], [2], 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="differ in shape"):
        credit(np.array(["a"]), np.array([True, False]))


def _by_enumeration(a: np.ndarray, b: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The marginals the slow way: every coin sequence, each equally likely."""
    rounds = (len(ids) + 1) // 2
    hits = np.zeros(len(ids))
    for coins in itertools.product((True, False), repeat=rounds):
        drafted, _ = draft_with_coins(a, b, len(ids), np.array(coins))
        n = min(len(drafted), len(ids))
        hits[:n] += drafted[:n] == ids[:n]
    return hits / 2**rounds


def test_position_marginals_equal_the_enumeration_of_every_coin_sequence() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        universe = int(rng.integers(2, 14))  # small universes: many shared ids, many collisions
        a = rng.permutation(universe)[: rng.integers(0, universe + 1)]
        b = rng.permutation(universe)[: rng.integers(1, universe + 1)]
        ids, _ = team_draft(a, b, int(rng.integers(1, 13)), rng)
        assert position_marginals(a, b, ids) == pytest.approx(_by_enumeration(a, b, ids))
