"""Off-policy estimators: tiny hand-computed cases, then the simulator's known truth."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from numpy.typing import NDArray

from experiments import offpolicy as op
from experiments import offpolicy_sim as sim
from recsys.synth import World, generate_world

ESTIMATORS = (op.ips, op.snips, op.doubly_robust, op.pseudo_inverse)

# Two digests of two positions; the logging policy shows each item with probability 1/2.
CLICKS = np.array([[1.0, 0.0], [0.0, 1.0]])
HALF = np.full((2, 2), 0.5)


def logged(target: NDArray[np.float64], **extra: NDArray[np.float64]) -> op.LoggedSlates:
    items = np.array([[0, 1], [1, 0]])
    return op.LoggedSlates(items, CLICKS, HALF, target, **extra)


def test_ips_of_the_logging_policy_is_the_on_policy_mean_with_full_sample_size() -> None:
    estimate = op.ips(logged(HALF))
    assert estimate.value == pytest.approx(1.0)  # one click per digest
    assert estimate.effective_sample_size == pytest.approx(2.0)
    assert (estimate.mean_weight, estimate.max_weight, estimate.zero_weight_share) == (1, 1, 0)
    assert estimate.std_error == pytest.approx(0.0)


def test_ips_and_snips_against_a_hand_computation() -> None:
    # Target: digest 0 certainly shows both logged items there, digest 1 neither.
    target = np.array([[1.0, 1.0], [0.0, 0.0]])
    # IPS: weights 2, 2 | 0, 0 -> contributions 2 * 1 and 0 -> mean 1.
    assert op.ips(logged(target)).value == pytest.approx(1.0)
    # SNIPS per position: (2 * 1) / 2 = 1 at position 0, (2 * 0) / 2 = 0 at position 1.
    estimate = op.snips(logged(target))
    assert estimate.value == pytest.approx(1.0)
    assert estimate.zero_weight_share == pytest.approx(0.5)
    # Kish ESS per position: (2 + 0)^2 / (4 + 0) = 1.
    assert estimate.effective_sample_size == pytest.approx(1.0)


def test_snips_is_undefined_when_a_position_has_no_weight() -> None:
    target = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert np.isnan(op.snips(logged(target)).value)


def test_doubly_robust_against_a_hand_computation() -> None:
    target = np.array([[1.0, 0.0], [0.0, 1.0]])
    model = np.full((2, 2), 0.25)
    direct = np.array([0.5, 0.5])
    estimate = op.doubly_robust(logged(target, reward_model=model, target_expected_reward=direct))
    # Digest 0: 0.5 + 2 (1 - 0.25) = 2; digest 1: 0.5 + 2 (1 - 0.25) = 2.
    assert estimate.value == pytest.approx(2.0)


def test_doubly_robust_with_a_perfect_model_is_the_direct_method() -> None:
    # A model that predicts every click exactly leaves no residual, so DR = DM exactly,
    # whatever the weights (here 2 everywhere).
    direct = np.array([0.3, 0.7])
    estimate = op.doubly_robust(
        logged(np.ones((2, 2)), reward_model=CLICKS, target_expected_reward=direct)
    )
    assert estimate.value == pytest.approx(0.5)
    assert estimate.std_error == pytest.approx(np.std(direct, ddof=1) / np.sqrt(2))


def test_doubly_robust_needs_a_reward_model() -> None:
    with pytest.raises(ValueError, match="reward_model"):
        op.doubly_robust(logged(HALF))


def test_pseudo_inverse_against_a_hand_computation() -> None:
    target = np.array([[1.0, 1.0], [0.0, 0.0]])
    # Digest 0: 1 click x (2 + 2 - 1) = 3; digest 1: 1 click x (0 + 0 - 1) = -1 -> mean 1.
    assert op.pseudo_inverse(logged(target)).value == pytest.approx(1.0)
    # Target == logging: every factor is 1 + 1 - 1 = 1, so PI is the on-policy mean.
    assert op.pseudo_inverse(logged(HALF)).value == pytest.approx(1.0)


def test_logged_slates_reject_impossible_propensities_and_ragged_fields() -> None:
    with pytest.raises(ValueError, match="logging_propensity must be in"):
        op.LoggedSlates(np.zeros((2, 2), dtype=np.int64), CLICKS, np.zeros((2, 2)), HALF)
    with pytest.raises(ValueError, match="target_propensity has shape"):
        op.LoggedSlates(np.zeros((2, 2), dtype=np.int64), CLICKS, HALF, np.ones((2, 3)))
    with pytest.raises(ValueError, match="target_expected_reward has shape"):
        logged(HALF, reward_model=HALF, target_expected_reward=np.zeros(3))


# --- The simulator: three target policies with known expected clicks per digest --------------
@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(500, 600, clicks_per_user=1, seed=0, now=datetime(2024, 1, 1, tzinfo=UTC))


def run(
    world: World, exploration: sim.Exploration, n_digests: int = 20_000, seed: int = 0
) -> dict[str, tuple[float, op.LoggedSlates]]:
    """Truth and logs for the three target policies: best ranker, noisy ranker, random."""
    scenario = sim.make_scenario(world, n_digests=n_digests, exploration=exploration, seed=seed)
    shown, clicks = sim.log_digests(scenario, seed=seed + 1)
    targets = {
        "best": sim.ranker_policy(scenario, noise=0.0, seed=seed + 2),
        "worse": sim.ranker_policy(scenario, noise=0.5, seed=seed + 3),
        "random": sim.uniform_policy(scenario),
    }
    return {
        name: (
            sim.true_value(scenario, policy),
            sim.logged_slates(scenario, shown, clicks, policy),
        )
        for name, policy in targets.items()
    }


def test_every_estimator_covers_the_truth_and_orders_the_policies(world: World) -> None:
    results = run(world, "per_position")
    truths = [truth for truth, _ in results.values()]
    assert truths[0] > truths[1] > truths[2]  # best > worse > random, by construction
    for estimator in ESTIMATORS:
        estimates = [estimator(logs) for _, logs in results.values()]
        for truth, estimate in zip(truths, estimates, strict=True):
            assert estimate.ci_low <= truth <= estimate.ci_high, (estimate, truth)
        values = [e.value for e in estimates]
        assert values[0] > values[1] > values[2], (estimator.__name__, values)


def test_item_position_estimators_survive_dependent_positions_but_pseudo_inverse_does_not(
    world: World,
) -> None:
    # "holdout": a share of whole digests is uniformly random, so positions are dependent.
    results = run(world, "holdout", n_digests=10_000)
    truth, logs = results["best"]
    for estimator in (op.ips, op.snips, op.doubly_robust):
        estimate = estimator(logs)
        assert estimate.ci_low <= truth <= estimate.ci_high
    biased = op.pseudo_inverse(logs)
    assert not biased.ci_low <= truth <= biased.ci_high


def test_doubly_robust_beats_ips_on_variance_with_a_rough_model(world: World) -> None:
    _, logs = run(world, "per_position", n_digests=5_000)["best"]
    assert op.doubly_robust(logs).std_error < op.ips(logs).std_error


def test_the_95_percent_intervals_cover_the_truth_about_95_percent_of_the_time(
    world: World,
) -> None:
    # Same contexts, fresh logs and clicks each time: the truth stays fixed.
    scenario = sim.make_scenario(world, n_digests=2_000, seed=7)
    target = sim.ranker_policy(scenario, noise=0.0, seed=8)
    truth = sim.true_value(scenario, target)
    covered = {estimator.__name__: 0 for estimator in ESTIMATORS}
    for seed in range(60):
        logs = sim.logged_slates(scenario, *sim.log_digests(scenario, seed=seed), target)
        for estimator in ESTIMATORS:
            estimate = estimator(logs)
            covered[estimator.__name__] += estimate.ci_low <= truth <= estimate.ci_high
    # At a true 95%, 60 trials give fewer than 50 hits with probability < 0.2%.
    assert min(covered.values()) >= 50, covered


def test_the_user_bootstrap_agrees_with_the_normal_interval_when_digests_are_independent(
    world: World,
) -> None:
    truth, logs = run(world, "per_position", n_digests=3_000)["best"]
    estimate = op.ips(logs)
    users = np.arange(logs.n_digests)  # one digest per user: the bootstrap is i.i.d. too
    low, high = op.bootstrap_interval(logs, op.ips, users, np.random.default_rng(0))
    assert low <= truth <= high
    assert (high - low) == pytest.approx(estimate.ci_high - estimate.ci_low, rel=0.2)


def test_the_bootstrap_resamples_whole_users() -> None:
    # Each user has one digest with a click and one without: every resample of whole users
    # has exactly 0.5 clicks per digest, while resampling digests would move it.
    clicks = np.array([[1.0], [0.0], [1.0], [0.0]])
    ones = np.ones((4, 1))
    logs = op.LoggedSlates(np.zeros((4, 1), dtype=np.int64), clicks, ones, ones)
    rng = np.random.default_rng(0)
    low, high = op.bootstrap_interval(logs, op.ips, np.array([1, 1, 2, 2]), rng)
    assert low == high == pytest.approx(0.5)
    low, high = op.bootstrap_interval(logs, op.ips, np.array([1, 2, 3, 4]), rng)
    assert low < 0.5 < high
    low, high = op.bootstrap_interval(logs, op.ips, np.array([7, 7, 7, 7]), rng)
    assert np.isnan(low) and np.isnan(high)  # one user: no interval to draw
    assert op.take(logs, np.array([0, 0])).clicks.tolist() == [[1.0], [1.0]]
