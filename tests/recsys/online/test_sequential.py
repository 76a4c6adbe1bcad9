"""Always-valid intervals: coverage under repeated peeking, by simulation with a fixed seed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.online.sequential import (
    RatioMoments,
    arm_sequence,
    difference_fixed,
    difference_sequence,
    mixture_radius,
    ratio_and_variance,
    tuned_rho,
)

ALPHA = 0.05
EXPERIMENTS, PEEKS, PER_PEEK = 2000, 50, 100
# Three standard errors of a rate of 5% over 2,000 simulated experiments.
SLACK = 3 * math.sqrt(ALPHA * (1 - ALPHA) / EXPERIMENTS)


def _cumulative_moments(rng: np.random.Generator, ctr: float) -> RatioMoments:
    """Per-peek running sums for EXPERIMENTS experiments of one arm: digests of 5-15 items,
    readers whose click rates vary (a beta around ``ctr``), so the digest, not the item,
    is the independent unit."""
    shape = (EXPERIMENTS, PEEKS * PER_PEEK)
    shown = rng.integers(5, 16, size=shape)
    reader = rng.beta(2.0, 2.0 * (1 - ctr) / ctr, size=shape)
    clicks = rng.binomial(shown, reader).astype(np.float64)
    s = shown.astype(np.float64)

    def running(values: np.ndarray) -> np.ndarray:
        return values.reshape(EXPERIMENTS, PEEKS, PER_PEEK).sum(axis=2).cumsum(axis=1)

    n = np.broadcast_to(PER_PEEK * np.arange(1, PEEKS + 1, dtype=np.float64), (EXPERIMENTS, PEEKS))
    return RatioMoments(n, running(clicks), running(s), running(clicks**2),
                        running(clicks * s), running(s**2))  # fmt: skip


@pytest.fixture(scope="module")
def aa_runs() -> tuple[RatioMoments, RatioMoments]:
    rng = np.random.default_rng(20261206)
    return _cumulative_moments(rng, 0.08), _cumulative_moments(rng, 0.08)


def test_peeking_50_times_at_an_aa_test_the_sequence_keeps_its_level_and_the_naive_one_does_not(
    aa_runs: tuple[RatioMoments, RatioMoments],
) -> None:
    a, b = aa_runs
    _, seq_low, seq_high = difference_sequence(b, a, ALPHA, planned=PEEKS * PER_PEEK)
    _, fix_low, fix_high = difference_fixed(b, a, ALPHA)
    # An experimenter stops at the first peek whose interval excludes 0 (the truth here).
    sequential_fp = np.mean(((seq_low > 0) | (seq_high < 0)).any(axis=1))
    naive_fp = np.mean(((fix_low > 0) | (fix_high < 0)).any(axis=1))
    naive_at_horizon = np.mean((fix_low[:, -1] > 0) | (fix_high[:, -1] < 0))

    assert sequential_fp <= ALPHA + SLACK
    assert naive_fp > 3 * ALPHA  # peeking inflates the fixed interval's error several-fold
    # ... though read once at the planned horizon the fixed interval is right.
    assert abs(naive_at_horizon - ALPHA) <= SLACK


def test_each_arms_sequence_covers_its_true_ctr_at_every_peek(
    aa_runs: tuple[RatioMoments, RatioMoments],
) -> None:
    a, _ = aa_runs
    _, low, high = arm_sequence(a, ALPHA, planned=PEEKS * PER_PEEK)
    missed = np.mean(((low > 0.08) | (high < 0.08)).any(axis=1))
    assert missed <= ALPHA + SLACK


def test_a_real_difference_is_found_and_the_sequence_narrows() -> None:
    rng = np.random.default_rng(7)
    a, b = _cumulative_moments(rng, 0.08), _cumulative_moments(rng, 0.10)
    _, low, high = difference_sequence(b, a, ALPHA, planned=PEEKS * PER_PEEK)
    assert np.mean(low[:, -1] > 0) > 0.9  # +2 points of CTR over 5,000 digests an arm
    assert np.all(np.diff(high - low, axis=1)[:, 5:] < 0)


def test_the_ratio_variance_is_the_delta_method_one_by_hand() -> None:
    # c = (1, 0, 2), s = (2, 2, 4): ctr = 3/8; residuals c - ctr s = (.25, -.75, .5),
    # squares sum .875, / (n-1) = .4375, / mean(s)^2 = (8/3)^2 -> .061523, / n -> .020508
    ctr, var = ratio_and_variance(RatioMoments.of([1, 0, 2], [2, 2, 4]))
    assert ctr == pytest.approx(3 / 8)
    assert var == pytest.approx(0.4375 / (8 / 3) ** 2 / 3)


def test_the_tuned_rho_is_near_the_tightest_at_its_information() -> None:
    rhos = np.geomspace(1e-3, 1e3, 20001) * 500.0
    best = mixture_radius(500.0, rhos, ALPHA).min()
    assert mixture_radius(500.0, tuned_rho(500.0, ALPHA), ALPHA) <= 1.01 * best


def test_no_information_means_an_unbounded_interval() -> None:
    assert np.isinf(mixture_radius(0.0, 1.0, ALPHA))
    ctr, var = ratio_and_variance(RatioMoments.of([1], [3]))
    assert ctr == pytest.approx(1 / 3) and np.isnan(var)
