"""Paired comparisons: known answers for the tests, the intervals and Holm's correction."""

from __future__ import annotations

import numpy as np
import pytest

from experiments import stats


def test_holm_matches_a_hand_computation() -> None:
    # Sorted 0.01, 0.03, 0.04 scale by 3, 2, 1 -> 0.03, 0.06, 0.04; monotone -> 0.06 last.
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_holm_caps_at_one_and_skips_nan() -> None:
    got = stats.holm([0.5, float("nan"), 0.9])
    assert got[0] == pytest.approx(1.0) and got[2] == pytest.approx(1.0)
    assert np.isnan(got[1])
    assert stats.holm([]) == []


def test_identical_arrays_give_p_one() -> None:
    a = np.random.default_rng(1).normal(size=50)
    assert stats.permutation_test(a, a.copy()) == 1.0
    assert stats.paired_t_test(a, a.copy()) == 1.0


def test_a_clear_shift_gives_a_tiny_p() -> None:
    rng = np.random.default_rng(2)
    b = rng.normal(size=200)
    a = b + 1.0 + rng.normal(scale=0.5, size=200)
    assert stats.paired_t_test(a, b) < 1e-30
    # 5000 sign flips: the smallest p the test can give is 1 / 5001.
    assert stats.permutation_test(a, b) == pytest.approx(1 / 5001)


def test_the_t_test_agrees_with_a_hand_computation() -> None:
    # Differences 1, 2, 3: mean 2, sd 1, t = 2 / (1 / sqrt 3) = 2 sqrt 3 with 2 dof.
    a, b = np.array([1.0, 2.0, 3.0]), np.zeros(3)
    t = 2 * np.sqrt(3)
    expected = 2 * (1 - 0.5 * (1 + t / np.sqrt(t * t + 2)))  # Student t CDF with 2 dof
    assert stats.paired_t_test(a, b) == pytest.approx(expected)


def test_the_permutation_test_is_exact_on_a_tiny_case() -> None:
    # Differences 1, 2, 3: of the 8 sign patterns only all-plus and all-minus reach |mean| 2,
    # so the exact p is 2/8; 20,000 random flips get close.
    p = stats.permutation_test(np.array([1.0, 2.0, 3.0]), np.zeros(3), n_perm=20_000)
    assert p == pytest.approx(0.25, abs=0.01)


def test_nan_pairs_are_dropped() -> None:
    a = np.array([1.0, np.nan, 3.0, 4.0])
    b = np.array([1.0, 2.0, np.nan, 4.0])
    assert stats.paired_t_test(a, b) == 1.0
    assert stats.permutation_test(a, b) == 1.0
    assert np.isnan(stats.permutation_test(a[1:2], b[1:2]))


def test_bootstrap_interval_covers_the_true_mean_about_as_often_as_promised() -> None:
    rng = np.random.default_rng(3)
    covered = 0
    for trial in range(100):
        sample = rng.exponential(scale=2.0, size=200)
        low, high = stats.bootstrap_ci(sample, n_boot=500, seed=trial)
        covered += low <= 2.0 <= high
    # Nominal 95%: 100 trials land in 86..100 with probability > 0.999 if the interval is right.
    assert covered >= 86


def test_bootstrap_of_a_constant_is_that_constant_and_nan_when_empty() -> None:
    assert stats.bootstrap_ci(np.full(10, 3.0)) == (3.0, 3.0)
    low, high = stats.bootstrap_ci(np.array([np.nan]))
    assert np.isnan(low) and np.isnan(high)


def test_compare_reports_paired_means_and_differences() -> None:
    control = np.array([0.1, 0.2, np.nan, 0.4])
    better = np.array([0.3, 0.4, 0.5, 0.6])
    rows = stats.compare({"A": control, "B": better}, "A", test="t", metric="recall@10")
    assert len(rows) == 1
    row = rows[0]
    # User 2 is undefined under the control, so both means skip them.
    assert (row.metric, row.variant, row.n_users) == ("recall@10", "B", 3)
    assert row.mean == pytest.approx(1.3 / 3)
    assert row.control_mean == pytest.approx(0.7 / 3)
    assert row.diff == pytest.approx(0.2)
    assert row.ci_low == pytest.approx(0.2) and row.ci_high == pytest.approx(0.2)
    assert row.p == 0.0 and row.p_holm == 0.0


def test_compare_all_applies_holm_across_metrics_and_variants() -> None:
    rng = np.random.default_rng(4)
    base = rng.normal(size=100)
    results = {
        metric: {
            "ctl": base,
            "same": base + rng.normal(scale=0.01, size=100),
            "up": base + 0.5 + rng.normal(scale=0.3, size=100),
        }
        for metric in ("ndcg", "recall")
    }
    rows = stats.compare_all(results, "ctl", n_boot=200)
    assert [(r.metric, r.variant) for r in rows] == [
        ("ndcg", "same"),
        ("ndcg", "up"),
        ("recall", "same"),
        ("recall", "up"),
    ]
    assert [r.p_holm for r in rows] == pytest.approx(stats.holm([r.p for r in rows]))
    up = [r for r in rows if r.variant == "up"]
    assert all(r.p_holm < 0.01 and r.ci_low > 0.3 for r in up)


def test_compare_rejects_a_missing_control_and_ragged_arrays() -> None:
    with pytest.raises(ValueError, match="control 'X'"):
        stats.compare({"A": np.zeros(3)}, "X")
    with pytest.raises(ValueError, match="same users"):
        stats.compare({"A": np.zeros(3), "B": np.zeros(4)}, "A")
