"""Always-valid confidence sequences for click-through, safe to read after every digest.

A fixed-horizon 95% interval covers the truth 95% of the time *at one pre-planned look*.
Looked at every day and stopped at the first look that excludes zero, it declares a
difference in an A/A test far more often than 5% (about 30% after 50 looks). A confidence
sequence covers the truth at *every* look at once, with probability ``1 - alpha``, so an
experiment may be stopped whenever it excludes zero.

The boundary is Robbins' normal mixture (the mSPRT of Johari et al. 2017/2022, "Always valid
inference: continuous monitoring of A/B tests", with a normal mixing distribution), as a
confidence sequence in Howard, Ramdas, McAuliffe & Sekhon (2021), "Time-uniform,
nonparametric, nonasymptotic confidence sequences", Ann. Statist. 49(2), the two-sided
normal-mixture boundary::

    | estimate - truth | <= sqrt( (I + rho) * log( (I + rho) / (rho * alpha**2) ) ) / I

where ``I = 1 / Var(estimate)`` is the information gathered so far (``n / sigma**2`` for a
mean of ``n`` units) and ``rho > 0`` tunes the time at which the sequence is tightest. It
follows from Ville's inequality applied to the mixture martingale
``sqrt(rho / (I + rho)) * exp(S**2 / (2 (I + rho)))``. With the variance replaced by its
running estimate it is the *asymptotic* confidence sequence of Waudby-Smith, Arbour,
Sinha, Kennedy & Ramdas (2024), "Time-uniform central limit theory and asymptotic
confidence sequences", Ann. Statist., Thm 2.2: valid once each arm has a few hundred
digests, which the coverage test in ``tests/recsys/online/test_sequential.py`` checks by
simulation.

Click-through is a ratio (clicks / impressions summed over digests), so the unit is the
digest and the ratio's variance is the delta-method one: the variance of
``(c_i - ctr * s_i) / mean(s)`` over digests (one reader's clicks in a digest are not
independent, so items are not the unit).

Everything here is pure numpy: arrays of sums in, arrays out, so one call evaluates
thousands of simulated experiments at every peek.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import norm

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class RatioMoments:
    """Per-arm sums over digests of clicks ``c`` and impressions ``s`` (arrays broadcast).

    Attributes
    ----------
    n, c, s, cc, cs, ss : array
        Number of digests, and the sums of c, s, c**2, c*s and s**2 over them.
    """

    n: Floats
    c: Floats
    s: Floats
    cc: Floats
    cs: Floats
    ss: Floats

    @classmethod
    def of(cls, clicks: ArrayLike, shown: ArrayLike) -> RatioMoments:
        """The sums of one sample of digests (1-d arrays of clicks and impressions)."""
        c = np.asarray(clicks, dtype=np.float64)
        s = np.asarray(shown, dtype=np.float64)
        sums = (len(c), c.sum(), s.sum(), c @ c, c @ s, s @ s)
        return cls(*(np.asarray(v, dtype=np.float64) for v in sums))


def ratio_and_variance(m: RatioMoments) -> tuple[Floats, Floats]:
    """The click-through ``sum(c) / sum(s)`` and the delta-method variance of that estimate.

    Returns
    -------
    ctr, variance : arrays
        NaN where an arm has fewer than 2 digests or no impressions.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.asarray(m.n, dtype=np.float64)
        ctr = m.c / m.s
        # sum over digests of (c - ctr s)^2, divided by (n - 1) and by mean(s)^2
        resid = m.cc - 2 * ctr * m.cs + ctr**2 * m.ss
        unit_var = np.maximum(resid, 0.0) / (n - 1) / (m.s / n) ** 2
        variance = np.where(n >= 2, unit_var / n, np.nan)
    return np.where(m.s > 0, ctr, np.nan), variance


def tuned_rho(information: ArrayLike, alpha: float) -> Floats:
    """The mixing ``rho`` that makes the sequence (about) tightest at ``information``.

    ``rho = I* / (-2 log alpha + log(1 - 2 log alpha))``, the tuning Howard et al. (2021)
    give for the normal mixture; the test checks the radius at ``I*`` is within 1% of the
    best any ``rho`` gives there.
    """
    la = -2.0 * np.log(alpha)
    return np.asarray(information, dtype=np.float64) / (la + np.log(1.0 + la))


def mixture_radius(information: ArrayLike, rho: ArrayLike, alpha: float) -> Floats:
    """Half-width of the two-sided normal-mixture confidence sequence (module docstring).

    Parameters
    ----------
    information : array
        ``1 / Var(estimate)`` now; 0 gives an infinite radius.
    rho : array
        Mixing precision, in the same units (see :func:`tuned_rho`); fixed in advance.
    alpha : float
        The sequence covers at every look at once with probability ``1 - alpha``.
    """
    i = np.asarray(information, dtype=np.float64)
    r = np.asarray(rho, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        radius = np.sqrt((i + r) * np.log((i + r) / (r * alpha**2))) / i
    return np.where(i > 0, radius, np.inf)


def fixed_radius(variance: ArrayLike, alpha: float) -> Floats:
    """Half-width of the ordinary normal interval, valid at one pre-planned look only."""
    return float(norm.ppf(1 - alpha / 2)) * np.sqrt(np.asarray(variance, dtype=np.float64))


def arm_sequence(m: RatioMoments, alpha: float, planned: float) -> tuple[Floats, Floats, Floats]:
    """Always-valid interval of one arm's click-through: ``(ctr, low, high)``.

    ``planned`` is the number of digests at which the sequence should be tightest (the
    horizon); ``rho`` scales with the running variance, i.e. the boundary is the one of
    the standardised sum (Waudby-Smith et al., Thm 2.2).
    """
    ctr, var = ratio_and_variance(m)
    with np.errstate(divide="ignore", invalid="ignore"):
        info = 1.0 / var
        rho = tuned_rho(info * planned / m.n, alpha)
    radius = mixture_radius(info, rho, alpha)
    return ctr, ctr - radius, ctr + radius


def difference_sequence(
    treatment: RatioMoments, control: RatioMoments, alpha: float, planned: float
) -> tuple[Floats, Floats, Floats]:
    """Always-valid interval of ``ctr(treatment) - ctr(control)``: ``(diff, low, high)``.

    The arms are independent, so the difference's variance is the sum of theirs;
    ``rho`` is tuned to the information both arms would have at ``planned`` digests each.
    """
    ctr_t, var_t = ratio_and_variance(treatment)
    ctr_c, var_c = ratio_and_variance(control)
    with np.errstate(divide="ignore", invalid="ignore"):
        info = 1.0 / (var_t + var_c)
        info_planned = 1.0 / (var_t * treatment.n / planned + var_c * control.n / planned)
    radius = mixture_radius(info, tuned_rho(info_planned, alpha), alpha)
    diff = ctr_t - ctr_c
    return diff, diff - radius, diff + radius


def difference_fixed(
    treatment: RatioMoments, control: RatioMoments, alpha: float
) -> tuple[Floats, Floats, Floats]:
    """The fixed-horizon normal interval of the same difference (read once, at the horizon)."""
    ctr_t, var_t = ratio_and_variance(treatment)
    ctr_c, var_c = ratio_and_variance(control)
    radius = fixed_radius(var_t + var_c, alpha)
    diff = ctr_t - ctr_c
    return diff, diff - radius, diff + radius
