"""A simulator with known answers for the off-policy estimators in ``experiments.offpolicy``.

The world is ``recsys.synth``'s: users with latent topic preferences, papers with topic
mixtures, and the known attraction ``click_probability``. On top of it:

- **Contexts.** Each digest goes to a random user and ranks a pool of ``pool_size`` random
  papers (the day's candidates), showing ``slate_length`` of them.
- **Position effect.** A paper shown at position ``l`` (0 = top) is examined with the known
  probability :func:`examination` ``= 1 / log2(l + 2)`` and clicked if examined and
  attractive, so ``P(click) = examination(l) * click_probability(user, paper)``: a
  position-based click model, which satisfies the item-position assumption.
- **Logging policy.** A ranker by true affinity plus Gaussian noise, with exploration: with
  probability ``epsilon`` a position (``"per_position"``) or the whole digest (``"holdout"``)
  is drawn uniformly from the pool instead. Both schemes give every (position, paper) the
  exact marginal ``(1 - epsilon) [paper is the ranker's l-th] + epsilon / pool_size``; only
  ``"per_position"`` draws positions independently (a paper may then repeat in a digest),
  which the pseudo-inverse estimator's closed form needs.
- **Target policies.** Rankers with their own noise (0 = the best possible ranking) and the
  uniformly random ranking, given as position marginals ``pi(l, a)`` per digest.
- **Truth.** ``sum_l sum_a pi(l, a) examination(l) click_probability(u, a)`` per digest,
  averaged over the logged contexts: exact, no sampling.
- **Reward model** (for DR): a deliberately miscalibrated click model (slope, bias and
  examination all off), so the test shows DR's unbiasedness does not rest on the model.

Deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from experiments.offpolicy import LoggedSlates
from recsys.synth import World, click_probability

Exploration = Literal["per_position", "holdout"]

# The reward model's miscalibration (the truth is slope 12, bias -6, examination 1/log2(l+2)).
_MODEL_SLOPE = 9.0
_MODEL_BIAS = -4.5
_MODEL_EXAMINATION_POWER = 0.7


@dataclass(frozen=True)
class Scenario:
    """The logged contexts and the logging policy; indices into the pool are "local".

    ``pools[i]`` holds the paper indices of digest ``i``'s candidates, ``attraction[i, a]``
    the known click probability of local paper ``a`` for ``users[i]`` if examined, and
    ``logging_ranking[i]`` the logging ranker's top ``slate_length`` local papers.
    """

    users: NDArray[np.int64]
    pools: NDArray[np.int64]
    affinity: NDArray[np.float64]
    attraction: NDArray[np.float64]
    logging_ranking: NDArray[np.int64]
    epsilon: float
    exploration: Exploration

    @property
    def slate_length(self) -> int:
        """Positions per digest."""
        return int(self.logging_ranking.shape[1])

    @property
    def pool_size(self) -> int:
        """Candidates per digest."""
        return int(self.pools.shape[1])


def examination(slate_length: int) -> NDArray[np.float64]:
    """Known probability that a reader looks at each position: ``1 / log2(l + 2)``."""
    examined: NDArray[np.float64] = 1.0 / np.log2(np.arange(slate_length) + 2.0)
    return examined


def make_scenario(
    world: World,
    *,
    n_digests: int,
    pool_size: int = 15,
    slate_length: int = 5,
    epsilon: float = 0.5,
    logging_noise: float = 0.15,
    exploration: Exploration = "per_position",
    seed: int = 0,
) -> Scenario:
    """Draw the contexts (user, pool) and the logging ranker's ranking of each pool.

    ``logging_noise`` is the standard deviation of the Gaussian noise added to the true
    affinity ``<user_prefs, paper_mix>`` (which lies in [0, 1]) before ranking.
    """
    if not 0.0 < epsilon <= 1.0:
        raise ValueError(f"epsilon must be in (0, 1] so every paper can be shown, got {epsilon}")
    if slate_length > pool_size:
        raise ValueError(f"slate_length {slate_length} exceeds pool_size {pool_size}")
    rng = np.random.default_rng(seed)
    users = rng.integers(0, world.n_users, n_digests)
    # Distinct papers per pool: the first pool_size of a random order of the catalogue.
    pools = np.argsort(rng.random((n_digests, world.n_papers)), axis=1)[:, :pool_size]
    affinity = np.einsum(
        "nk,nmk->nm", world.user_prefs[users], world.paper_mix[pools], dtype=np.float64
    )
    attraction = click_probability(world, users[:, None], pools)
    ranking = rank_by(affinity + rng.normal(scale=logging_noise, size=affinity.shape), slate_length)
    return Scenario(users, pools, affinity, attraction, ranking, epsilon, exploration)


def rank_by(scores: NDArray[np.float64], slate_length: int) -> NDArray[np.int64]:
    """The ``slate_length`` best local columns of each row, best first."""
    ranked: NDArray[np.int64] = np.argsort(-scores, axis=1, kind="stable")[:, :slate_length]
    return ranked


def ranker_policy(scenario: Scenario, noise: float, seed: int) -> NDArray[np.float64]:
    """Position marginals (n, L, pool) of a deterministic ranker by affinity plus noise."""
    rng = np.random.default_rng(seed)
    noisy = scenario.affinity + rng.normal(scale=noise, size=scenario.affinity.shape)
    return _one_hot(rank_by(noisy, scenario.slate_length), scenario.pool_size)


def uniform_policy(scenario: Scenario) -> NDArray[np.float64]:
    """Position marginals (n, L, pool) of a uniformly random ranking: ``1 / pool_size``."""
    shape = (scenario.pools.shape[0], scenario.slate_length, scenario.pool_size)
    return np.full(shape, 1.0 / scenario.pool_size)


def logging_policy(scenario: Scenario) -> NDArray[np.float64]:
    """Exact position marginals (n, L, pool) of the logging policy (either scheme)."""
    exploit = _one_hot(scenario.logging_ranking, scenario.pool_size)
    return (1.0 - scenario.epsilon) * exploit + scenario.epsilon / scenario.pool_size


def true_value(scenario: Scenario, policy: NDArray[np.float64]) -> float:
    """Exact expected clicks per digest of a policy, averaged over the scenario's contexts."""
    click = examination(scenario.slate_length)[None, :, None] * scenario.attraction[:, None, :]
    return float((policy * click).sum(axis=(1, 2)).mean())


def log_digests(scenario: Scenario, seed: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Sample the logging policy's digests and the clicks on them.

    Returns
    -------
    tuple[NDArray[np.int64], NDArray[np.float64]]
        Local papers shown, shape (n, L), and clicks (0/1), shape (n, L).
    """
    rng = np.random.default_rng(seed)
    n, length, m = scenario.pools.shape[0], scenario.slate_length, scenario.pool_size
    if scenario.exploration == "per_position":
        explore = rng.random((n, length)) < scenario.epsilon
        random_items = rng.integers(0, m, (n, length))
    else:
        explore = np.repeat(rng.random((n, 1)) < scenario.epsilon, length, axis=1)
        random_items = np.argsort(rng.random((n, m)), axis=1)[:, :length]
    shown = np.where(explore, random_items, scenario.logging_ranking)
    p_click = examination(length) * np.take_along_axis(scenario.attraction, shown, axis=1)
    clicks = (rng.random((n, length)) < p_click).astype(np.float64)
    return shown, clicks


def reward_model(scenario: Scenario) -> NDArray[np.float64]:
    """The miscalibrated model's click probability per digest, position and local paper."""
    attraction = 1.0 / (1.0 + np.exp(-(_MODEL_SLOPE * scenario.affinity + _MODEL_BIAS)))
    examined = examination(scenario.slate_length) ** _MODEL_EXAMINATION_POWER
    model: NDArray[np.float64] = examined[None, :, None] * attraction[:, None, :]
    return model


def logged_slates(
    scenario: Scenario,
    shown: NDArray[np.int64],
    clicks: NDArray[np.float64],
    target: NDArray[np.float64],
) -> LoggedSlates:
    """What the estimators read: the logs with both policies' propensities and the model."""
    logging = logging_policy(scenario)
    model = reward_model(scenario)
    return LoggedSlates(
        items=np.take_along_axis(scenario.pools, shown, axis=1),
        clicks=clicks,
        logging_propensity=_at_shown(logging, shown),
        target_propensity=_at_shown(target, shown),
        reward_model=_at_shown(model, shown),
        target_expected_reward=(target * model).sum(axis=(1, 2)),
    )


def _at_shown(per_item: NDArray[np.float64], shown: NDArray[np.int64]) -> NDArray[np.float64]:
    """``per_item[i, l, shown[i, l]]``: a (n, L, pool) array read at the shown papers."""
    values: NDArray[np.float64] = np.take_along_axis(per_item, shown[:, :, None], axis=2)[:, :, 0]
    return values


def _one_hot(ranking: NDArray[np.int64], pool_size: int) -> NDArray[np.float64]:
    n, length = ranking.shape
    out = np.zeros((n, length, pool_size))
    np.put_along_axis(out, ranking[:, :, None], 1.0, axis=2)
    return out
