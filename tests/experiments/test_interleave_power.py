"""The power simulation: interleaving finds the known better ranker with fewer users."""

from __future__ import annotations

from dataclasses import replace

from experiments.interleave_power import PowerSetup, simulate

SMALL = PowerSetup(n_world_users=200, n_papers=800, bank=4000, replicates=200, max_users=4000)


def test_interleaving_detects_the_better_ranker_with_fewer_users_than_a_split() -> None:
    result = simulate(replace(SMALL, noise_b=0.3))
    assert result.clicks_a > result.clicks_b  # A (less noise) is the better ranker, exactly
    assert result.a_win_share > 0.5
    assert result.users_interleaving is not None and result.users_ab is not None
    assert result.users_interleaving < result.users_ab


def test_equally_good_rankers_are_not_found_different_by_either_design() -> None:
    result = simulate(replace(SMALL, noise_b=SMALL.noise_a))
    # At most the test's own 5% false alarms (2.5% in A's favour), plus sampling noise.
    assert max(result.power_interleaving.values()) < 0.1
    assert max(result.power_ab.values()) < 0.1
    assert result.users_interleaving is None and result.users_ab is None
