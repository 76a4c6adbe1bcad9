"""How many users interleaving and an A/B split each need to find the better of two rankers.

The world is ``recsys.synth``'s with the position-based click model of
``experiments.offpolicy_sim`` (``P(click at l) = examination(l) * click_probability``). Each
user receives one digest: ``slate_length`` papers from a pool of ``pool_size`` random
candidates. Two rankers rank the pool by the true affinity plus Gaussian noise; the one with
less noise (A) is better by a known, exact margin of expected clicks per digest.

- **A/B split.** Half the users see A's digest, half B's; Welch's t-test on clicks per digest.
- **Interleaving.** Every user sees the team-draft of both (``recsys.online.interleaving``);
  a digest with clicks is a win for the team with more of them; exact two-sided sign test on
  wins against losses (ties dropped).

A design detects the difference in a simulated experiment when its test rejects at 5%
(two-sided) in A's favour. Power at ``n`` users is the share of ``replicates`` experiments
that detect it; each experiment draws its users' digests (with replacement) from a bank of
``bank`` independently simulated digests per design, so one bank serves every ``n``. The
users needed is the smallest ``n`` of a geometric grid with power >= 0.8.

Deterministic for a seed. ``python -m experiments.interleave_power`` prints the JSON result.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from experiments.offpolicy_sim import examination, make_scenario, rank_by
from recsys.online.interleaving import credit, team_draft
from recsys.synth import generate_world

ALPHA = 0.05
POWER = 0.8


@dataclass(frozen=True)
class PowerSetup:
    """The simulated comparison; the defaults are the ones recorded in docs/experiments.md."""

    n_world_users: int = 400
    n_papers: int = 2000
    pool_size: int = 30
    slate_length: int = 10
    noise_a: float = 0.05  # on an affinity in [0, 1]
    noise_b: float = 0.15
    bank: int = 20_000
    replicates: int = 400
    max_users: int = 20_000
    seed: int = 0


@dataclass(frozen=True)
class PowerResult:
    """Users each design needs for 80% power, with the exact effect being detected."""

    clicks_a: float  # exact expected clicks per digest under A, over the bank's contexts
    clicks_b: float
    a_win_share: float  # share of the interleaved bank's decided digests that A wins
    users_ab: int | None  # None: not reached by max_users
    users_interleaving: int | None
    power_ab: dict[int, float]
    power_interleaving: dict[int, float]


def simulate(setup: PowerSetup) -> PowerResult:
    """Run both designs on one bank of contexts and return the users each needs."""
    world = generate_world(
        setup.n_world_users, setup.n_papers, seed=setup.seed, now=datetime(2026, 1, 1, tzinfo=UTC)
    )
    scenario = make_scenario(
        world, n_digests=setup.bank, pool_size=setup.pool_size,
        slate_length=setup.slate_length, seed=setup.seed,
    )  # fmt: skip
    rng = np.random.default_rng([setup.seed, 1])
    affinity, attraction = scenario.affinity, scenario.attraction
    rank_a = rank_by(
        affinity + rng.normal(scale=setup.noise_a, size=affinity.shape), setup.slate_length
    )
    rank_b = rank_by(
        affinity + rng.normal(scale=setup.noise_b, size=affinity.shape), setup.slate_length
    )
    length = setup.slate_length
    exam = examination(length)
    expected_a = (exam * np.take_along_axis(attraction, rank_a, axis=1)).sum(axis=1)
    expected_b = (exam * np.take_along_axis(attraction, rank_b, axis=1)).sum(axis=1)
    # Independent digests per design: an A/B user sees one ranker's list, not both.
    clicks_a = _clicks(rng, attraction, rank_a, exam).sum(axis=1)
    clicks_b = _clicks(rng, attraction, rank_b, exam).sum(axis=1)
    votes = _interleaved_votes(rng, attraction, rank_a, rank_b, exam)
    grid = _grid(setup.max_users)
    power_ab = {n: _power_ab(rng, clicks_a, clicks_b, n, setup.replicates) for n in grid}
    power_il = {n: _power_interleaving(rng, votes, n, setup.replicates) for n in grid}
    decided = votes[votes != 0]
    return PowerResult(
        clicks_a=float(expected_a.mean()),
        clicks_b=float(expected_b.mean()),
        a_win_share=float(np.mean(decided > 0)) if len(decided) else 0.5,
        users_ab=_first_powered(power_ab),
        users_interleaving=_first_powered(power_il),
        power_ab=power_ab,
        power_interleaving=power_il,
    )


def _clicks(
    rng: np.random.Generator,
    attraction: NDArray[np.float64],
    shown: NDArray[np.int64],
    exam: NDArray[np.float64],
) -> NDArray[np.bool_]:
    """Sampled clicks (n, L) of the position-based model on the shown local papers."""
    p_click = exam * np.take_along_axis(attraction, shown, axis=1)
    clicked: NDArray[np.bool_] = rng.random(shown.shape) < p_click
    return clicked


def _interleaved_votes(
    rng: np.random.Generator,
    attraction: NDArray[np.float64],
    rank_a: NDArray[np.int64],
    rank_b: NDArray[np.int64],
    exam: NDArray[np.float64],
) -> NDArray[np.int8]:
    """Per digest: +1 A wins, -1 B wins, 0 tie (no clicks included)."""
    length = rank_a.shape[1]
    shown = np.empty_like(rank_a)
    teams = np.empty(rank_a.shape, dtype="<U1")
    for i in range(len(rank_a)):
        shown[i], teams[i] = team_draft(rank_a[i], rank_b[i], length, rng)
    clicked = _clicks(rng, attraction, shown, exam)
    sign = {"a": 1, "b": -1, "tie": 0}
    return np.array([sign[credit(t, c)] for t, c in zip(teams, clicked, strict=True)], np.int8)


def _power_ab(
    rng: np.random.Generator,
    clicks_a: NDArray[np.bool_] | NDArray[np.int64],
    clicks_b: NDArray[np.bool_] | NDArray[np.int64],
    n_users: int,
    replicates: int,
) -> float:
    """Share of simulated splits (n/2 users per arm) where Welch's t-test finds A better."""
    half = max(n_users // 2, 2)
    a = np.asarray(clicks_a, np.float64)[rng.integers(0, len(clicks_a), (replicates, half))]
    b = np.asarray(clicks_b, np.float64)[rng.integers(0, len(clicks_b), (replicates, half))]
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        # A tiny replicate can be all zeros: its p-value is NaN, which counts as no detection.
        warnings.simplefilter("ignore", RuntimeWarning)
        t, p = stats.ttest_ind(a, b, axis=1, equal_var=False)
    return float(np.mean((p < ALPHA) & (t > 0)))


def _power_interleaving(
    rng: np.random.Generator, votes: NDArray[np.int8], n_users: int, replicates: int
) -> float:
    """Share of simulated interleaving experiments where the sign test finds A better."""
    drawn = votes[rng.integers(0, len(votes), (replicates, n_users))]
    wins, losses = (drawn > 0).sum(axis=1), (drawn < 0).sum(axis=1)
    decided = wins + losses
    # Exact two-sided sign test: twice the smaller tail, capped at 1.
    tail = np.minimum(stats.binom.cdf(wins, decided, 0.5), stats.binom.sf(wins - 1, decided, 0.5))
    p = np.minimum(1.0, 2 * tail)
    return float(np.mean((p < ALPHA) & (wins > losses)))


def _grid(max_users: int) -> list[int]:
    """Users tried: 10, then 25% more each step (rounded to even), up to ``max_users``."""
    grid, n = [], 10.0
    while n <= max_users:
        grid.append(int(round(n / 2) * 2))
        n *= 1.25
    return sorted(set(grid))


def _first_powered(power: dict[int, float]) -> int | None:
    return next((n for n in sorted(power) if power[n] >= POWER), None)


if __name__ == "__main__":
    result = simulate(PowerSetup())
    print(json.dumps({"setup": asdict(PowerSetup()), "result": asdict(result)}))
