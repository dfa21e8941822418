"""A site's enrolment rate calibrated to a registry record whose accrual closed early.

See docs/recruitment_des.md (registry calibration).

The registry's "k enrolled (actual)" with status "active, not recruiting" at a record dated t months
after the start says that accrual closed with k patients at some time at or before t: the k-th
enrolment came no later than t. Under a Poisson process of rate lambda that is a censored observation
with likelihood P(S_k <= t) = P(Poisson(lambda t) >= k). With a gamma prior on lambda (shape a, rate b)
the posterior moments have a closed form through the Poisson-gamma (negative binomial) mixture:

    E[lambda^m P(Poisson(lambda t) >= k)] = Gamma(a+m) / (Gamma(a) b^m) * P(NB(a+m, b/(b+t)) >= k),

so mean = (a/b) S(a+1) / S(a) and E[lambda^2] = a(a+1)/b^2 S(a+2) / S(a), S(x) = P(NB(x, b/(b+t)) >= k).
`posterior_moments` integrates the same posterior numerically on a grid; the tests hold the two
together.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def _check(k: int, t: float, shape: float, rate: float) -> None:
    if k < 1 or t <= 0 or shape <= 0 or rate <= 0:
        raise ValueError(f"need k >= 1, t > 0, shape > 0, rate > 0; got k={k}, t={t}, shape={shape}, "
                         f"rate={rate}")


def posterior_moments(k: int, t: float, shape: float, rate: float,
                      points: int = 20001) -> tuple[float, float]:
    """Posterior mean and variance of lambda (per month) by numerical integration: prior
    Gamma(shape, rate) density x P(Poisson(lambda t) >= k), on a grid to the prior's 1 - 1e-12 quantile
    or 3 k / t, whichever is larger."""
    _check(k, t, shape, rate)
    hi = max(stats.gamma.ppf(1 - 1e-12, shape, scale=1 / rate), 3.0 * k / t)
    lam = np.linspace(0.0, hi, points)
    w = stats.gamma.pdf(lam, shape, scale=1 / rate) * stats.poisson.sf(k - 1, lam * t)
    z = np.trapezoid(w, lam)
    mean = np.trapezoid(lam * w, lam) / z
    return float(mean), float(np.trapezoid((lam - mean) ** 2 * w, lam) / z)


def posterior_moments_closed(k: int, t: float, shape: float, rate: float) -> tuple[float, float]:
    """The same posterior mean and variance in closed form (negative binomial tails; module docstring)."""
    _check(k, t, shape, rate)
    p = rate / (rate + t)

    def s(a: float) -> float:
        return float(stats.nbinom.sf(k - 1, a, p))

    z = s(shape)
    mean = shape / rate * s(shape + 1) / z
    second = shape * (shape + 1) / rate**2 * s(shape + 2) / z
    return mean, second - mean**2


def prior_probability_of_record(k: int, t: float, shape: float, rate: float) -> float:
    """Prior predictive probability of the record (the k-th enrolment by t):
    P(NB(shape, rate / (rate + t)) >= k)."""
    _check(k, t, shape, rate)
    return float(stats.nbinom.sf(k - 1, shape, rate / (rate + t)))
