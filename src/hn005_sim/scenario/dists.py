"""The distribution registry.

A distribution in a config is a strict table, `{dist = "normal", mean = 46, sd = 10, source = "..."}`.
`dist` names an entry of the registry; every entry knows how to sample (vectorised, from a numpy
Generator) and its mean. Unknown keys are refused, so a misspelled parameter is an error, not a default.
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import special

from hn005_sim.scenario.uncertainty import Uncertainty, check_contains


def truncnorm_standard_mean(a: float, b: float) -> float:
    """Mean of the standard normal restricted to [a, b]: (phi(a) - phi(b)) / (Phi(b) - Phi(a)).

    In closed form (scipy.special only, so the registry does not import scipy.stats for a mean). The
    side of the mode holding the interval is folded onto the upper tail and both densities and tail
    probabilities are scaled by phi(a) through erfcx, so the ratio stays exact far in a tail.
    """
    if a >= b:
        raise ValueError(f"truncnorm needs a < b, got a={a}, b={b}")
    if b <= 0:  # mirror: the interval lies below the mode
        return -truncnorm_standard_mean(-b, -a)
    if a < 0:  # the interval holds the mode: no cancellation in Phi(b) - Phi(a)
        phi_a = 0.0 if math.isinf(a) else math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
        phi_b = 0.0 if math.isinf(b) else math.exp(-b * b / 2) / math.sqrt(2 * math.pi)
        return (phi_a - phi_b) / float(special.ndtr(b) - special.ndtr(a))
    # 0 <= a < b: with r = phi(b)/phi(a) and Q(x)/phi(x) = sqrt(pi/2) erfcx(x/sqrt2)
    x = -math.inf if math.isinf(b) else (a - b) * (a + b) / 2
    r = math.exp(x)
    qa = math.sqrt(math.pi / 2) * float(special.erfcx(a / math.sqrt(2)))
    qb = 0.0 if math.isinf(b) else math.sqrt(math.pi / 2) * float(special.erfcx(b / math.sqrt(2))) * r
    return -math.expm1(x) / (qa - qb)



class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)
    source: str | None = Field(default=None, description="citation, or 'assumption: why'")
    uncertainty: dict[str, Uncertainty] | None = Field(
        default=None,
        description="parameter name -> the uncertainty of that parameter (scenario/uncertainty.py)")

    @model_validator(mode="after")
    def _uncertain_parameters(self):
        for key, spec in (self.uncertainty or {}).items():
            name = next((n for n, f in type(self).model_fields.items() if (f.alias or n) == key), None)
            value = getattr(self, name) if name is not None else None
            numeric = [(f.alias or n) for n, f in type(self).model_fields.items()
                       if isinstance(getattr(self, n), float) and n not in ("source", "uncertainty")]
            if name in ("source", "uncertainty", "dist") or not isinstance(value, float):
                raise ValueError(f"uncertainty.{key}: not a numeric parameter of this {self.dist} "
                                 f"distribution; expected one of: {', '.join(numeric) or 'none'}")
            check_contains(spec, value, what=key)
        return self

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        raise NotImplementedError

    def mean(self) -> float:
        raise NotImplementedError


class Normal(_Dist):
    dist: Literal["normal"]
    mean_: float = Field(alias="mean")
    sd: float = Field(gt=0)

    def sample(self, rng, size):
        return rng.normal(self.mean_, self.sd, size)

    def mean(self):
        return self.mean_


class TruncNormal(_Dist):
    """Normal(mean, sd) restricted to [low, high]; sampled by inverse CDF so it is exact and vectorised."""

    dist: Literal["truncnormal"]
    mean_: float = Field(alias="mean")
    sd: float = Field(gt=0)
    low: float = -math.inf
    high: float = math.inf

    @model_validator(mode="after")
    def _order(self):
        if not self.low < self.high:
            raise ValueError(f"low must be < high, got low={self.low}, high={self.high}")
        return self

    def _ab(self):
        return (self.low - self.mean_) / self.sd, (self.high - self.mean_) / self.sd

    def sample(self, rng, size):
        a, b = self._ab()
        # scipy.special directly: the same functions stats.norm.cdf/ppf call, without their wrapper's cost
        lo, hi = special.ndtr(a), special.ndtr(b)
        u = rng.uniform(lo, hi, size)
        return self.mean_ + self.sd * special.ndtri(u)

    def mean(self):
        a, b = self._ab()
        return self.mean_ + self.sd * truncnorm_standard_mean(a, b)


class LogNormal(_Dist):
    """exp(Normal(mu, sigma)); give either mu/sigma (log scale) or median/gsd (geometric SD)."""

    dist: Literal["lognormal"]
    mu: float | None = None
    sigma: float | None = Field(default=None, gt=0)
    median: float | None = Field(default=None, gt=0)
    gsd: float | None = Field(default=None, gt=1)

    @model_validator(mode="after")
    def _params(self):
        log_scale = self.mu is not None and self.sigma is not None
        geometric = self.median is not None and self.gsd is not None
        if log_scale == geometric:
            raise ValueError("give either mu and sigma, or median and gsd")
        return self

    def _mu_sigma(self) -> tuple[float, float]:
        if self.mu is not None and self.sigma is not None:
            return self.mu, self.sigma
        return math.log(self.median), math.log(self.gsd)  # type: ignore[arg-type]

    def sample(self, rng, size):
        mu, sigma = self._mu_sigma()
        return rng.lognormal(mu, sigma, size)

    def mean(self):
        mu, sigma = self._mu_sigma()
        return math.exp(mu + sigma**2 / 2)


class Gamma(_Dist):
    """Gamma with shape/scale, or with mean/sd (shape = (mean/sd)^2, scale = sd^2/mean)."""

    dist: Literal["gamma"]
    shape: float | None = Field(default=None, gt=0)
    scale: float | None = Field(default=None, gt=0)
    mean_: float | None = Field(default=None, alias="mean", gt=0)
    sd: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _params(self):
        a = self.shape is not None and self.scale is not None
        b = self.mean_ is not None and self.sd is not None
        if a == b:
            raise ValueError("give either shape and scale, or mean and sd")
        return self

    def shape_scale(self) -> tuple[float, float]:
        if self.shape is not None and self.scale is not None:
            return self.shape, self.scale
        m, s = self.mean_, self.sd
        return (m / s) ** 2, s**2 / m  # type: ignore[operator]

    def sample(self, rng, size):
        k, theta = self.shape_scale()
        return rng.gamma(k, theta, size)

    def mean(self):
        k, theta = self.shape_scale()
        return k * theta


class Beta(_Dist):
    dist: Literal["beta"]
    a: float = Field(gt=0)
    b: float = Field(gt=0)

    def sample(self, rng, size):
        return rng.beta(self.a, self.b, size)

    def mean(self):
        return self.a / (self.a + self.b)


class Uniform(_Dist):
    dist: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _order(self):
        if not self.low <= self.high:
            raise ValueError(f"low must be <= high, got low={self.low}, high={self.high}")
        return self

    def sample(self, rng, size):
        return rng.uniform(self.low, self.high, size)

    def mean(self):
        return (self.low + self.high) / 2


class Exponential(_Dist):
    dist: Literal["exponential"]
    mean_: float = Field(alias="mean", gt=0)

    def sample(self, rng, size):
        return rng.exponential(self.mean_, size)

    def mean(self):
        return self.mean_


class Weibull(_Dist):
    """Weibull with shape k and scale lambda: S(t) = exp(-(t/lambda)^k)."""

    dist: Literal["weibull"]
    shape: float = Field(gt=0)
    scale: float = Field(gt=0)

    def sample(self, rng, size):
        return self.scale * rng.weibull(self.shape, size)

    def mean(self):
        return self.scale * math.gamma(1 + 1 / self.shape)


class Bernoulli(_Dist):
    """1.0 with probability p, else 0.0 (use `.astype(bool)` for flags)."""

    dist: Literal["bernoulli"]
    p: float = Field(ge=0, le=1)

    def sample(self, rng, size):
        return (rng.random(size) < self.p).astype(np.float64)

    def mean(self):
        return self.p


def _check_probs(probs: list[float], n: int, what: str) -> None:
    if len(probs) != n:
        raise ValueError(f"probs must have one entry per {what} ({n}), got {len(probs)}")
    if any(p < 0 for p in probs):
        raise ValueError("probs must be >= 0")
    if not math.isclose(sum(probs), 1.0, abs_tol=1e-6):
        raise ValueError(f"probs must sum to 1, got {sum(probs):.6g}")


class Categorical(_Dist):
    """One of `values` with probabilities `probs`; the mean exists only for numeric values."""

    dist: Literal["categorical"]
    values: list[float] | list[str] = Field(min_length=1)
    probs: list[float]

    @model_validator(mode="after")
    def _probs(self):
        _check_probs(self.probs, len(self.values), "value")
        return self

    def sample(self, rng, size):
        idx = np.searchsorted(np.cumsum(self.probs), rng.random(size) * sum(self.probs), side="right")
        idx = np.minimum(idx, len(self.values) - 1)
        return np.asarray(self.values)[idx]

    def mean(self):
        if isinstance(self.values[0], str):
            raise TypeError("a categorical distribution of labels has no mean")
        return float(np.dot(self.values, self.probs))


class Piecewise(_Dist):
    """A histogram: bin i is [breaks[i], breaks[i+1]) with probability probs[i], uniform inside the bin."""

    dist: Literal["piecewise"]
    breaks: list[float] = Field(min_length=2)
    probs: list[float]

    @model_validator(mode="after")
    def _shape(self):
        if any(b >= c for b, c in zip(self.breaks, self.breaks[1:], strict=False)):
            raise ValueError("breaks must be strictly increasing")
        _check_probs(self.probs, len(self.breaks) - 1, "bin")
        return self

    def sample(self, rng, size):
        cum = np.cumsum(self.probs)
        idx = np.minimum(np.searchsorted(cum, rng.random(size) * cum[-1], side="right"), len(self.probs) - 1)
        lo = np.asarray(self.breaks[:-1])[idx]
        hi = np.asarray(self.breaks[1:])[idx]
        return lo + (hi - lo) * rng.random(size)

    def mean(self):
        mids = (np.asarray(self.breaks[:-1]) + np.asarray(self.breaks[1:])) / 2
        return float(np.dot(mids, self.probs))


class Empirical(_Dist):
    """Resampling of observed `values` (with optional `weights`), e.g. a published cohort's figures."""

    dist: Literal["empirical"]
    values: list[float] = Field(min_length=1)
    weights: list[float] | None = None

    @model_validator(mode="after")
    def _weights(self):
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError("weights must have one entry per value")
            if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise ValueError("weights must be >= 0 with a positive sum")
        return self

    def _p(self):
        if self.weights is None:
            return None
        w = np.asarray(self.weights, dtype=float)
        return w / w.sum()

    def sample(self, rng, size):
        return rng.choice(np.asarray(self.values, dtype=float), size=size, p=self._p())

    def mean(self):
        p = self._p()
        v = np.asarray(self.values, dtype=float)
        return float(v.mean() if p is None else v @ p)


class PiecewiseExponential(_Dist):
    """A survival curve through given points with a constant hazard between them (piecewise exponential).

    S(times[i]) = survival[i] (times[0] = 0, survival[0] = 1), log-linear in between, and the hazard
    `tail_hazard` (per unit of time) after the last point. A falling hazard (PD-1 + chemotherapy
    progression-free survival) is a hazard that is lower in later intervals.
    """

    dist: Literal["piecewise_exponential"]
    times: list[float] = Field(min_length=2)
    survival: list[float]
    tail_hazard: float = Field(gt=0)

    @model_validator(mode="after")
    def _shape(self):
        if self.times[0] != 0 or any(b <= a for a, b in zip(self.times, self.times[1:], strict=False)):
            raise ValueError("times must start at 0 and increase strictly")
        if len(self.survival) != len(self.times):
            raise ValueError(f"survival must have one entry per time ({len(self.times)}), "
                             f"got {len(self.survival)}")
        sv = self.survival
        if sv[0] != 1 or any(b >= a for a, b in itertools.pairwise(sv)) or sv[-1] <= 0:
            raise ValueError("survival must start at 1 and decrease strictly, staying > 0")
        return self

    def hazards(self) -> np.ndarray:
        """Hazard of each interval between the points, then the tail's."""
        t, s = np.asarray(self.times), np.log(np.asarray(self.survival))
        return np.append(-(np.diff(s) / np.diff(t)), self.tail_hazard)

    def survival_at(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        t, logs = np.asarray(self.times), np.log(np.asarray(self.survival))
        h = self.hazards()
        i = np.clip(np.searchsorted(t, x, side="right") - 1, 0, len(t) - 1)
        return np.exp(logs[i] - h[i] * (x - t[i]))

    def sample(self, rng, size):
        # invert the cumulative hazard H(t) at a unit exponential draw
        e = rng.exponential(1.0, size)
        t, cum = np.asarray(self.times), -np.log(np.asarray(self.survival))
        h = self.hazards()
        i = np.clip(np.searchsorted(cum, e, side="right") - 1, 0, len(t) - 1)
        return t[i] + (e - cum[i]) / h[i]

    def mean(self):
        t, s = np.asarray(self.times), np.asarray(self.survival)
        h = self.hazards()
        # the integral of S over each interval, then over the tail
        return float(np.sum(s[:-1] * (1 - np.exp(-h[:-1] * np.diff(t))) / h[:-1]) + s[-1] / h[-1])


class Constant(_Dist):
    dist: Literal["constant"]
    value: float

    def sample(self, rng, size):
        return np.full(size, self.value, dtype=float)

    def mean(self):
        return self.value


Dist = Annotated[
    Normal | TruncNormal | LogNormal | Gamma | Beta | Uniform | Exponential | Weibull | Bernoulli
    | Categorical | Piecewise | PiecewiseExponential | Empirical | Constant,
    Field(discriminator="dist"),
]
"""Any registry distribution; pydantic picks the model from the `dist` key."""

REGISTRY: dict[str, type[_Dist]] = {
    "normal": Normal,
    "truncnormal": TruncNormal,
    "lognormal": LogNormal,
    "gamma": Gamma,
    "beta": Beta,
    "uniform": Uniform,
    "exponential": Exponential,
    "weibull": Weibull,
    "bernoulli": Bernoulli,
    "categorical": Categorical,
    "piecewise": Piecewise,
    "piecewise_exponential": PiecewiseExponential,
    "empirical": Empirical,
    "constant": Constant,
}
