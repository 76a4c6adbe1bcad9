"""Off-policy estimates of a new ranking policy's clicks per digest, from logged digests.

A logged digest is a slate: ``L`` positions, position ``l`` showing item ``a_il``. The logging
policy (what we ship, with its exploration) put item ``a`` at position ``l`` of digest ``i``
with a known marginal probability ``mu_i(l, a)``; the policy under test would put it there
with probability ``pi_i(l, a)`` (the caller computes both). The quantity estimated is the
target policy's **expected clicks per digest**, ``V(pi) = E_x sum_l sum_a pi(l, a | x)
q(x, l, a)``, where ``q(x, l, a)`` is the click probability of item ``a`` shown at position
``l``. Divide by ``L`` for the click-through rate per shown paper.

The assumption every estimator here shares (the *item-position* model): the click at position
``l`` depends only on the context, the position and the item shown there, not on the other
items of the digest. Position-based click models (examination probability per position x
attractiveness of the item) satisfy it; cascades, where a click above stops the reader, do
not. Under it, only the position-wise marginals matter, which is why the logs need
``mu_i(l, a_il)`` and not the probability of the whole digest (which a deterministic target
policy would almost never reproduce: whole-slate IPS is useless for rankings).

Estimators, with ``w_il = pi_i(l, a_il) / mu_i(l, a_il)`` and clicks ``c_il``:

- :func:`ips`: ``mean_i sum_l w_il c_il`` (item-position IPS; Li et al., 2018). Unbiased when
  ``mu > 0`` wherever ``pi > 0``.
- :func:`snips`: the same, self-normalised position by position
  (``sum_l sum_i w_il c_il / sum_i w_il``); ``E[w_il] = 1`` for every position, so this trades
  a small bias for much less variance when weights are large.
- :func:`doubly_robust`: a reward model's value of the target plus IPS on its residuals;
  unbiased if the propensities are exact, whatever the reward model, and low-variance when
  the model is good.
- :func:`pseudo_inverse`: Swaminathan et al. (2017), reading only the digest's total clicks
  ``R_i = sum_l c_il``: ``mean_i R_i (sum_l w_il - L + 1)``. That closed form is the
  pseudo-inverse estimator when the logging policy draws the positions independently of one
  another (its slate distribution is a product of per-position distributions); it is then
  unbiased for any reward additive over positions. For digests without repeats (e.g. a
  ranking with a share of uniformly random digests) positions are dependent and this form is
  biased: prefer the item-position estimators whenever per-position clicks are logged.

Each returns an :class:`Estimate` with a normal-approximation interval (the per-digest
contributions are i.i.d.; for SNIPS the delta method) and weight diagnostics that say when
not to trust it: a small effective sample size or a mean weight far from 1 (it is 1 in
expectation, so a drift points at wrong propensities).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats


@dataclass(frozen=True)
class LoggedSlates:
    """``n`` logged digests of ``L`` positions each, with what the target policy would do.

    Attributes
    ----------
    items : NDArray[np.int64], shape (n, L)
        Item shown at each position (an index into the digest's candidate pool or a global
        paper index; the estimators only pass it through).
    clicks : NDArray[np.float64], shape (n, L)
        1.0 where the shown item was clicked (any non-negative reward works).
    logging_propensity : NDArray[np.float64], shape (n, L)
        ``mu_i(l, a_il)``: probability that the logging policy shows this item at this
        position in this digest. Exact, from the exploration scheme; in (0, 1].
    target_propensity : NDArray[np.float64], shape (n, L)
        ``pi_i(l, a_il)``: the same probability under the target policy; in [0, 1].
    reward_model : NDArray[np.float64], shape (n, L), optional
        A model's predicted click probability of each logged (position, item); for DR.
    target_expected_reward : NDArray[np.float64], shape (n,), optional
        The model's expected clicks of the target's digest for each context,
        ``sum_l sum_a pi_i(l, a) q_hat_i(l, a)`` (the direct method); for DR.
    """

    items: NDArray[np.int64]
    clicks: NDArray[np.float64]
    logging_propensity: NDArray[np.float64]
    target_propensity: NDArray[np.float64]
    reward_model: NDArray[np.float64] | None = None
    target_expected_reward: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        shape = np.shape(self.items)
        if len(shape) != 2 or shape[0] == 0 or shape[1] == 0:
            raise ValueError(f"items must have shape (n_digests, slate_length), got {shape}")
        for name in ("clicks", "logging_propensity", "target_propensity", "reward_model"):
            _check_field(name, getattr(self, name), shape)
        _check_field("target_expected_reward", self.target_expected_reward, shape[:1])
        mu, pi = np.asarray(self.logging_propensity), np.asarray(self.target_propensity)
        if not ((mu > 0) & (mu <= 1)).all():
            raise ValueError(
                "logging_propensity must be in (0, 1]: a shown item had a positive "
                "probability of being shown; check the logged exploration scheme"
            )
        if not ((pi >= 0) & (pi <= 1)).all():
            raise ValueError("target_propensity must be in [0, 1]")

    @property
    def n_digests(self) -> int:
        """Number of logged digests."""
        return int(np.shape(self.items)[0])

    @property
    def slate_length(self) -> int:
        """Positions per digest."""
        return int(np.shape(self.items)[1])

    @property
    def weights(self) -> NDArray[np.float64]:
        """Importance weights ``pi / mu`` per digest and position, shape (n, L)."""
        target = np.asarray(self.target_propensity, dtype=np.float64)
        w: NDArray[np.float64] = target / np.asarray(self.logging_propensity, dtype=np.float64)
        return w


@dataclass(frozen=True)
class Estimate:
    """An off-policy estimate of expected clicks per digest, its interval and diagnostics.

    ``effective_sample_size`` is Kish's ``(sum w)^2 / sum w^2`` of the item-position weights,
    averaged over positions: ``n`` when target and logging agree, far below when a few
    digests carry the estimate. ``mean_weight`` should be near 1; ``zero_weight_share`` is
    the share of logged (digest, position) pairs the target would never show.
    """

    estimator: str
    value: float
    ci_low: float
    ci_high: float
    std_error: float
    n: int
    effective_sample_size: float
    max_weight: float
    mean_weight: float
    zero_weight_share: float


def ips(logged: LoggedSlates, *, level: float = 0.95) -> Estimate:
    """Item-position inverse propensity scoring: ``mean_i sum_l w_il c_il``.

    See the module docstring for the assumptions. ``level`` is the interval's coverage.
    """
    contributions = (logged.weights * _clicks(logged)).sum(axis=1)
    return _from_contributions("ips", contributions, contributions.mean(), logged, level)


def snips(logged: LoggedSlates, *, level: float = 0.95) -> Estimate:
    """Self-normalised item-position IPS, normalised separately at each position.

    ``V = sum_l (sum_i w_il c_il) / (sum_i w_il)``. Its interval uses the delta method
    (influence ``sum_l w_il (c_il - V_l) / mean_i w_il``). NaN when some position has no
    logged item the target would show there (nothing to normalise by).
    """
    w, c = logged.weights, _clicks(logged)
    total = w.sum(axis=0)
    if (total <= 0).any():
        return _undefined("snips", logged)
    per_position = (w * c).sum(axis=0) / total
    influence = (w * (c - per_position) / (total / logged.n_digests)).sum(axis=1)
    value = float(per_position.sum())
    return _from_contributions("snips", influence + value, value, logged, level)


def doubly_robust(logged: LoggedSlates, *, level: float = 0.95) -> Estimate:
    """Doubly robust: ``mean_i [DM_i + sum_l w_il (c_il - q_hat_il)]``.

    ``DM_i`` is ``target_expected_reward`` and ``q_hat`` is ``reward_model``; both are required.

    Raises
    ------
    ValueError
        If ``logged`` carries no reward model.
    """
    if logged.reward_model is None or logged.target_expected_reward is None:
        raise ValueError(
            "doubly_robust needs reward_model and target_expected_reward in LoggedSlates"
        )
    residual = _clicks(logged) - np.asarray(logged.reward_model, dtype=np.float64)
    direct = np.asarray(logged.target_expected_reward, dtype=np.float64)
    contributions = direct + (logged.weights * residual).sum(axis=1)
    return _from_contributions("dr", contributions, contributions.mean(), logged, level)


def pseudo_inverse(logged: LoggedSlates, *, level: float = 0.95) -> Estimate:
    """Swaminathan et al.'s pseudo-inverse estimator on the digest's total clicks.

    ``mean_i R_i (sum_l w_il - L + 1)`` with ``R_i = sum_l c_il``. Exact (unbiased) for
    rewards additive over positions when the logging policy draws positions independently;
    biased otherwise (see the module docstring).
    """
    total_clicks = _clicks(logged).sum(axis=1)
    factor = logged.weights.sum(axis=1) - (logged.slate_length - 1)
    contributions = total_clicks * factor
    return _from_contributions("pi", contributions, contributions.mean(), logged, level)


def take(logged: LoggedSlates, rows: NDArray[np.intp]) -> LoggedSlates:
    """The digests at ``rows`` (repeats allowed): a bootstrap resample."""

    def pick(value: NDArray[np.float64] | None) -> NDArray[np.float64] | None:
        return None if value is None else np.asarray(value)[rows]

    return LoggedSlates(
        items=np.asarray(logged.items)[rows],
        clicks=np.asarray(logged.clicks)[rows],
        logging_propensity=np.asarray(logged.logging_propensity)[rows],
        target_propensity=np.asarray(logged.target_propensity)[rows],
        reward_model=pick(logged.reward_model),
        target_expected_reward=pick(logged.target_expected_reward),
    )


def bootstrap_interval(
    logged: LoggedSlates,
    estimator: Callable[[LoggedSlates], Estimate],
    groups: NDArray[np.integer],
    rng: np.random.Generator,
    *,
    samples: int = 200,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap of an estimator, resampling ``groups`` (users) with replacement.

    A reader's digests are correlated (the same tastes), so whole users are resampled, not
    digests; ``groups[i]`` is digest ``i``'s user. NaN bounds when fewer than two groups.
    """
    labels, inverse = np.unique(np.asarray(groups), return_inverse=True)
    if len(labels) < 2:
        return float("nan"), float("nan")
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(len(labels) + 1))
    values = []
    for _ in range(samples):
        picked = rng.integers(0, len(labels), len(labels))
        rows = np.concatenate([order[starts[g] : starts[g + 1]] for g in picked])
        values.append(estimator(take(logged, rows)).value)
    finite = np.asarray(values)[np.isfinite(values)]
    if not len(finite):
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def _from_contributions(
    name: str,
    contributions: NDArray[np.float64],
    value: float,
    logged: LoggedSlates,
    level: float,
) -> Estimate:
    """An estimate from i.i.d. per-digest contributions whose mean is (about) ``value``."""
    n = contributions.size
    std_error = float(contributions.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    half = float(stats.norm.ppf(0.5 + level / 2.0)) * std_error
    return Estimate(
        estimator=name,
        value=float(value),
        ci_low=float(value) - half,
        ci_high=float(value) + half,
        std_error=std_error,
        n=n,
        **_diagnostics(logged.weights),
    )


def _undefined(name: str, logged: LoggedSlates) -> Estimate:
    nan = float("nan")
    return Estimate(name, nan, nan, nan, nan, logged.n_digests, **_diagnostics(logged.weights))


def _diagnostics(w: NDArray[np.float64]) -> dict[str, float]:
    squares = (w * w).sum(axis=0)
    kish = np.divide(w.sum(axis=0) ** 2, squares, out=np.zeros(w.shape[1]), where=squares > 0)
    return {
        "effective_sample_size": float(kish.mean()),
        "max_weight": float(w.max()),
        "mean_weight": float(w.mean()),
        "zero_weight_share": float((w == 0).mean()),
    }


def _clicks(logged: LoggedSlates) -> NDArray[np.float64]:
    return np.asarray(logged.clicks, dtype=np.float64)


def _check_field(name: str, value: object, shape: tuple[int, ...]) -> None:
    if value is None:
        return
    array = np.asarray(value)
    if array.shape != shape:
        raise ValueError(f"{name} has shape {array.shape}; expected {shape} like items")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf")
