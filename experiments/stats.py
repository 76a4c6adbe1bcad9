"""Paired comparisons of per-user metrics against a control: intervals, tests, corrections.

Every variant of an offline A/B experiment is scored on the same users, so the comparisons
are paired: for a metric and a variant we look at the per-user difference
``variant[u] - control[u]``. Users where either value is NaN (the metric is undefined for
them, e.g. recall with nothing relevant) are dropped from that pair only.

- :func:`bootstrap_ci`: percentile bootstrap interval of a mean.
- :func:`paired_t_test` and :func:`permutation_test`: two-sided p-values for "no difference".
- :func:`holm`: Holm-Bonferroni adjustment, since an experiment tests many variants x metrics
  and the smallest of many p-values is small by chance.
- :func:`compare` (one metric) and :func:`compare_all` (all metrics, Holm across all of
  them): one :class:`Comparison` per (metric, variant).

Everything is deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import stats

Test = Literal["permutation", "t"]

# Resampling draws (replicates x users) indices; chunks keep that under ~80 MB at any size.
_MAX_DRAWS_PER_CHUNK = 10_000_000


@dataclass(frozen=True)
class Comparison:
    """One variant against the control on one metric.

    ``mean`` and ``control_mean`` are over the users where both are defined, so
    ``diff == mean - control_mean``; ``ci_low``/``ci_high`` bound ``diff`` (percentile
    bootstrap); ``p`` is the two-sided p-value for "no difference" and ``p_holm`` the same
    after Holm's correction over every comparison made together.
    """

    metric: str
    variant: str
    n_users: int
    mean: float
    control_mean: float
    diff: float
    ci_low: float
    ci_high: float
    p: float
    p_holm: float


def bootstrap_ci(
    values: NDArray[np.float64], *, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean.

    Parameters
    ----------
    values : NDArray[np.float64], shape (n,)
        Per-user values (or paired differences); NaNs are dropped.
    n_boot : int, default 2000
        Number of bootstrap resamples.
    level : float, default 0.95
        Coverage of the interval, in (0, 1).
    seed : int, default 0
        Seed of the resampling.

    Returns
    -------
    tuple[float, float]
        ``(low, high)``; ``(nan, nan)`` when no value is left.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    x = _finite(values)
    if x.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.concatenate(
        [
            x[rng.integers(0, x.size, (size, x.size))].mean(axis=1)
            for size in _chunks(n_boot, x.size)
        ]
    )
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def paired_t_test(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """Two-sided p-value of the paired t-test that ``mean(a - b) == 0``.

    Pairs with a NaN on either side are dropped. With no spread in the differences (up to
    round-off) the t statistic is undefined; the answer is then 1 if every difference is 0
    and 0 otherwise.
    NaN with fewer than two pairs.
    """
    x, y = _paired(a, b)
    d = x - y
    if d.size < 2:
        return float("nan")
    # Equal differences up to round-off (0.3 - 0.1 vs 0.4 - 0.2) would give scipy a spread of
    # a few ulps and a meaningless t; treat them as exactly equal.
    if np.ptp(d) <= 1e-12 * np.abs(d).max():
        return 1.0 if np.abs(d).max() <= 1e-12 else 0.0
    return float(stats.ttest_rel(x, y).pvalue)


def permutation_test(
    a: NDArray[np.float64], b: NDArray[np.float64], *, n_perm: int = 5000, seed: int = 0
) -> float:
    """Two-sided p-value of a paired sign-flip permutation test of ``mean(a - b) == 0``.

    Under the null each user's difference is as likely to be ``+d`` as ``-d``, so the observed
    mean is compared with the means of ``n_perm`` random sign flips. The p-value counts the
    observed statistic as one of the draws, ``(1 + #{|flipped| >= |observed|}) / (1 + n_perm)``,
    so it is never 0. Pairs with a NaN on either side are dropped; NaN if none is left.
    """
    if n_perm < 1:
        raise ValueError(f"n_perm must be at least 1, got {n_perm}")
    d = _paired_differences(a, b)
    if d.size == 0:
        return float("nan")
    observed = abs(d.mean())
    # Float sums of the same numbers in another order differ in the last bits; without the
    # slack, identical arrays or symmetric data could count as "more extreme" or not by luck.
    slack = 1e-12 * max(np.abs(d).max(), 1e-300)
    rng = np.random.default_rng(seed)
    extreme = 0
    for size in _chunks(n_perm, d.size):
        signs = rng.integers(0, 2, (size, d.size)) * 2 - 1
        extreme += int((np.abs((signs * d).mean(axis=1)) >= observed - slack).sum())
    return (1 + extreme) / (1 + n_perm)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    The i-th smallest of m p-values is multiplied by ``m - i`` (i from 0), then made monotone
    (never below an adjusted value of a smaller p) and capped at 1. Rejecting where the
    adjusted p is below alpha controls the family-wise error rate at alpha. NaN p-values (an
    untestable comparison) stay NaN and do not count towards m.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = order.size
    scaled = p[order] * (m - np.arange(m))
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return [float(v) for v in out]


def compare(
    per_user: Mapping[str, NDArray[np.float64]],
    control: str,
    *,
    test: Test = "permutation",
    n_boot: int = 2000,
    seed: int = 0,
    metric: str = "",
) -> list[Comparison]:
    """Compare every variant with the control on one per-user metric.

    Parameters
    ----------
    per_user : Mapping[str, NDArray[np.float64]]
        Variant name -> per-user values, every array over the same users in the same order.
    control : str
        The variant everything is compared with (what is shipped).
    test : {"permutation", "t"}, default "permutation"
        Paired sign-flip permutation test or paired t-test.
    n_boot : int, default 2000
        Bootstrap resamples for the interval of the difference.
    seed : int, default 0
        Seed of the bootstrap and the permutation test.
    metric : str, default ""
        Name of the metric, copied into each :class:`Comparison`.

    Returns
    -------
    list[Comparison]
        One per variant other than the control, in ``per_user``'s order, with ``p_holm``
        adjusted over these comparisons.

    Raises
    ------
    ValueError
        If the control is missing, ``test`` is unknown or the arrays differ in length.
    """
    _check_inputs(per_user, control, test)
    rows = [
        _compare_one(metric, name, values, per_user[control], test, n_boot, seed)
        for name, values in per_user.items()
        if name != control
    ]
    return _with_holm(rows)


def compare_all(
    results: Mapping[str, Mapping[str, NDArray[np.float64]]],
    control: str,
    *,
    test: Test = "permutation",
    n_boot: int = 2000,
    seed: int = 0,
) -> list[Comparison]:
    """:func:`compare` for every metric, with Holm's correction across all metrics x variants.

    ``results`` maps metric name -> variant name -> per-user values. Returns the comparisons
    metric by metric, in the mappings' order.
    """
    rows = [
        row
        for metric, per_user in results.items()
        for row in compare(per_user, control, test=test, n_boot=n_boot, seed=seed, metric=metric)
    ]
    return _with_holm(rows)


def _compare_one(
    metric: str,
    variant: str,
    values: NDArray[np.float64],
    control_values: NDArray[np.float64],
    test: Test,
    n_boot: int,
    seed: int,
) -> Comparison:
    a, b = _paired(values, control_values)
    p = paired_t_test(a, b) if test == "t" else permutation_test(a, b, seed=seed)
    low, high = bootstrap_ci(a - b, n_boot=n_boot, seed=seed)
    mean, control_mean = _mean(a), _mean(b)
    return Comparison(
        metric=metric,
        variant=variant,
        n_users=int(a.size),
        mean=mean,
        control_mean=control_mean,
        diff=mean - control_mean,
        ci_low=low,
        ci_high=high,
        p=p,
        p_holm=p,
    )


def _with_holm(rows: list[Comparison]) -> list[Comparison]:
    adjusted = holm([row.p for row in rows])
    return [replace(row, p_holm=p) for row, p in zip(rows, adjusted, strict=True)]


def _check_inputs(per_user: Mapping[str, NDArray[np.float64]], control: str, test: str) -> None:
    if control not in per_user:
        raise ValueError(f"control {control!r} is not among the variants {sorted(per_user)}")
    if test not in ("permutation", "t"):
        raise ValueError(f"test must be 'permutation' or 't', got {test!r}")
    lengths = {name: np.asarray(v).shape for name, v in per_user.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"per-user arrays must cover the same users; got shapes {lengths}")


def _paired(
    a: NDArray[np.float64], b: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The pairs where both values are defined."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired arrays must have the same shape, got {a.shape} and {b.shape}")
    both = ~(np.isnan(a) | np.isnan(b))
    return a[both], b[both]


def _paired_differences(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    x, y = _paired(a, b)
    return x - y


def _finite(values: NDArray[np.float64]) -> NDArray[np.float64]:
    x = np.asarray(values, dtype=np.float64).ravel()
    return x[~np.isnan(x)]


def _mean(x: NDArray[np.float64]) -> float:
    return float(x.mean()) if x.size else float("nan")


def _chunks(n_draws: int, n_values: int) -> list[int]:
    """Split ``n_draws`` resamples of ``n_values`` each into memory-bounded batches."""
    per_chunk = max(1, _MAX_DRAWS_PER_CHUNK // max(n_values, 1))
    return [min(per_chunk, n_draws - lo) for lo in range(0, n_draws, per_chunk)]
