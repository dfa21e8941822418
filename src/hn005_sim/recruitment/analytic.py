"""The Poisson-gamma recruitment model in closed form (no simulation).

Model (Anisimov & Fedorov, Stat Med 2007;26:4958; Mountain & Sherlock, Biometrics 2022;78:636):
site i of a region enrols as a Poisson process with rate lambda_i (patients per month) from the day it
opens; the rates of a region's sites are independent Gamma(shape a, rate b) configured by their mean m
and variance v: a = m^2/v, b = m/v. A share `dropout` of enrolments does not count (Poisson thinning:
lambda -> (1-dropout) lambda, i.e. mean m(1-d), variance v(1-d)^2). Site i opens after a start-up time
U_i (any registry distribution, independent of lambda_i) or never; by time T it has been open for the
*exposure* E_i = (T - U_i)^+ months (less half a ramp-up, cut at a closing month, see `Activation`).

Given E, a site's count is Poisson(lambda E) mixed over lambda ~ Gamma(a, b): negative binomial with
probability generating function (PGF)

    g(z | E) = (b / (b + (1 - z) E))^a.                                    (Anisimov & Fedorov, eq. 2)

Averaged over the start-up, G(z) = E_U[g(z | E(U))], evaluated by Gauss-Legendre quadrature in the
start-up's probability scale (exact for point masses). Sites are independent, so the total enrolled S
has PGF P(z) = prod_regions G_r(z)^n_r. Its pmf is recovered exactly (to rounding) by the discrete
Fourier transform: with z_k = exp(2 pi i k / M),

    p_j = (1/M) sum_k P(z_k) exp(-2 pi i j k / M),    j = 0..M-1,

which aliases p_j + p_{j+M} + ...; M is chosen so that P(S >= M) < 1e-13 by a Chernoff bound
P(S >= M) <= P(x) x^-M (x > 1 inside the radius of convergence), never less than mean + 12 sd.

Sites open from the start in one region: S ~ NB(n a, b / (b + T)) exactly (`negative_binomial`).
Moments: E[S] = sum n m' E[E], Var[S] = sum n (m' E[E] + (v' + m'^2) E[E^2] - m'^2 E[E]^2).
Time to the target N: S(t) never decreases, so P(time to N <= t) = P(S(t) >= N).

Time is in months (30.4375 days). Rates are per site per month.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal

import numpy as np
from scipy import fft as sfft
from scipy import special

from hn005_sim.scenario import dists as D

if TYPE_CHECKING:  # scipy.stats is imported where it is used (see _continuous)
    from scipy import stats

TAIL_EPS = 1e-13
"""Probability mass allowed beyond the FFT length (aliasing error bound)."""
MAX_FFT = 1 << 24
_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)

Approximation = Literal["normal", "gamma", "negbin"]


def gamma_params(mean: float, variance: float) -> tuple[float, float]:
    """Gamma (shape a, rate b) with the given mean and variance: a = m^2/v, b = m/v."""
    if mean <= 0 or variance <= 0:
        raise ValueError(f"gamma needs mean > 0 and variance > 0, got mean={mean}, variance={variance}")
    return mean * mean / variance, mean / variance


def negative_binomial(sites: int, rate_mean: float, rate_variance: float, months: float):
    """Enrolled by `months` at `sites` sites all open from the start: NB(n a, b / (b + t)) (scipy).

    scipy's nbinom(n, p) counts failures before the n-th success, pmf C(k+n-1, k) p^n (1-p)^k, whose
    PGF (p / (1 - (1-p) z))^n equals (b / (b + (1-z) t))^(n a) when p = b / (b + t).
    """
    from scipy import stats  # here, not at import: scipy.stats costs every command ~0.5 s to import

    a, b = gamma_params(rate_mean, rate_variance)
    return stats.nbinom(sites * a, b / (b + months))


# --------------------------------------------------------------------------------------- start-up law


def _continuous(dist) -> stats.rv_continuous | None:
    """The scipy equivalent of a continuous registry distribution (for cdf/ppf), or None."""
    from scipy import stats  # only continuous start-up laws need it (a constant or discrete one does not)

    if isinstance(dist, D.Normal):
        return stats.norm(dist.mean_, dist.sd)
    if isinstance(dist, D.TruncNormal):
        a, b = dist._ab()
        return stats.truncnorm(a, b, loc=dist.mean_, scale=dist.sd)
    if isinstance(dist, D.LogNormal):
        mu, sigma = dist._mu_sigma()
        return stats.lognorm(sigma, scale=math.exp(mu))
    if isinstance(dist, D.Gamma):
        k, theta = dist.shape_scale()
        return stats.gamma(k, scale=theta)
    if isinstance(dist, D.Beta):
        return stats.beta(dist.a, dist.b)
    if isinstance(dist, D.Uniform) and dist.high > dist.low:
        return stats.uniform(dist.low, dist.high - dist.low)
    if isinstance(dist, D.Exponential):
        return stats.expon(scale=dist.mean_)
    if isinstance(dist, D.Weibull):
        return stats.weibull_min(dist.shape, scale=dist.scale)
    return None


_LAWS: dict[int, tuple[object, stats.rv_continuous | None]] = {}


def _law(dist):
    """`_continuous(dist)`, frozen once per distribution object (freezing costs ~4 ms)."""
    hit = _LAWS.get(id(dist))
    if hit is None or hit[0] is not dist:
        hit = (dist, _continuous(dist))
        _LAWS[id(dist)] = hit
    return hit[1]


def _atoms(dist) -> tuple[np.ndarray, np.ndarray] | None:
    """Values and probabilities of a discrete registry distribution, or None."""
    if isinstance(dist, D.Constant):
        return np.array([dist.value]), np.array([1.0])
    if isinstance(dist, D.Uniform) and dist.high == dist.low:
        return np.array([dist.low]), np.array([1.0])
    if isinstance(dist, D.Bernoulli):
        return np.array([0.0, 1.0]), np.array([1 - dist.p, dist.p])
    if isinstance(dist, D.Categorical):
        if isinstance(dist.values[0], str):
            raise ValueError("a start-up time must be numeric, got a categorical distribution of labels")
        p = np.asarray(dist.probs, dtype=float)
        return np.asarray(dist.values, dtype=float), p / p.sum()
    if isinstance(dist, D.Empirical):
        v = np.asarray(dist.values, dtype=float)
        p = np.full(v.size, 1 / v.size) if dist.weights is None else np.asarray(dist.weights, dtype=float)
        return v, p / p.sum()
    return None


def _gauss_in_probability(law, lo: float, hi: float, panels: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for E[f(X); lo < X < hi] as integral of f(ppf(u)) du over (F(lo), F(hi)).

    Integrating in the probability scale keeps the integrand bounded whatever the density does at
    its ends (a gamma with shape < 1 has an infinite density at 0); composite 16-point Gauss-Legendre.
    """
    f_lo, f_hi = float(law.cdf(lo)), float(law.cdf(hi))
    if not f_hi > f_lo:  # no mass inside
        return np.empty(0), np.empty(0)
    edges = np.linspace(f_lo, f_hi, panels + 1)
    mid = (edges[1:] + edges[:-1]) / 2
    half = (edges[1:] - edges[:-1]) / 2
    u = (mid[:, None] + half[:, None] * _GL_X[None, :]).ravel()
    w = (half[:, None] * _GL_W[None, :]).ravel()
    return np.clip(law.ppf(u), lo, hi), w


def startup_quadrature(dist, upper: float, panels: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Nodes x_j and weights w_j with E[f(min(max(X, 0), upper))] ~= sum_j w_j f(x_j), X ~ `dist`.

    Start-up below 0 means open at the start; at or beyond `upper` (the horizon) the site contributes
    nothing, so that mass sits in one node at `upper`. Exact for discrete laws.
    """
    atoms = _atoms(dist)
    if atoms is not None:
        v, p = atoms
        return np.clip(v, 0.0, upper), p
    if isinstance(dist, D.Piecewise):
        xs, ws = [], []
        for lo, hi, p in zip(dist.breaks[:-1], dist.breaks[1:], dist.probs, strict=True):
            x, w = startup_quadrature(D.Uniform(dist="uniform", low=lo, high=hi), upper, panels)
            xs.append(x)
            ws.append(w * p / sum(dist.probs))
        return np.concatenate(xs), np.concatenate(ws)
    law = _law(dist)
    if law is None:
        raise TypeError(f"no quadrature for start-up distribution {type(dist).__name__}")
    x, w = _gauss_in_probability(law, 0.0, upper, panels) if upper > 0 else (np.empty(0), np.empty(0))
    below, above = float(law.cdf(0.0)), float(law.sf(upper))
    return np.concatenate([[0.0], x, [upper]]), np.concatenate([[below], w, [above]])


@dataclass(frozen=True)
class Activation:
    """When a site opens and how long it has recruited by a given time.

    Start-up U = `scale` x X with X ~ `dist` (None: open at the start); `scale` converts the
    distribution's unit to months (1/30.4375 for a distribution in days). The site never opens with
    probability `never_open`. Optional linear ramp-up over `ramp_up_months` (rate rises from 0 to full;
    costs ramp/2 months of exposure) and a closing month. Exposure by horizon T, with d the months open:
    E = d - R/2 if d >= R, else d^2 / (2R).
    """

    dist: D.Dist | None = None
    scale: float = 1.0
    never_open: float = 0.0
    ramp_up_months: float = 0.0
    close_month: float | None = None
    # quadrature per horizon, computed once (scipy ppf calls dominate otherwise)
    _nodes: dict[float, tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self):
        if not 0 <= self.never_open <= 1:
            raise ValueError(f"never_open must be in [0, 1], got {self.never_open}")
        if self.scale <= 0 or self.ramp_up_months < 0:
            raise ValueError("scale must be > 0 and ramp_up_months >= 0")

    def exposure(self, startup_months: np.ndarray, horizon: float) -> np.ndarray:
        """Full-rate months recruited by `horizon` for a site that opened at `startup_months`."""
        end = horizon if self.close_month is None else min(horizon, self.close_month)
        d = np.maximum(end - np.maximum(startup_months, 0.0), 0.0)
        r = self.ramp_up_months
        if r <= 0:
            return d
        return np.where(d >= r, d - r / 2, d * d / (2 * r))

    def nodes(self, horizon: float) -> tuple[np.ndarray, np.ndarray]:
        """Exposure nodes (months) and weights summing to 1, never-opening sites included as E = 0."""
        key = float(horizon)
        if key not in self._nodes:
            self._nodes[key] = self._compute_nodes(key)
        return self._nodes[key]

    def _compute_nodes(self, horizon: float) -> tuple[np.ndarray, np.ndarray]:
        end = horizon if self.close_month is None else min(horizon, self.close_month)
        if self.dist is None:
            u, w = np.array([0.0]), np.array([1.0])
        else:
            x, w = startup_quadrature(self.dist, max(end, 0.0) / self.scale)
            u = x * self.scale
        e = self.exposure(u, horizon)
        w = w * (1 - self.never_open)
        return np.concatenate([e, [0.0]]), np.concatenate([w, [self.never_open]])

    def mean_months_open(self, horizon: float) -> float:
        """E[months open by horizon] (not exposure: ramp-up months count in full), never-open included."""
        flat = Activation(self.dist, self.scale, self.never_open, 0.0, self.close_month)
        e, w = flat.nodes(horizon)
        return float(e @ w)


@dataclass(frozen=True)
class SiteGroup:
    """`sites` sites of one region: rate ~ Gamma(mean, variance) per month (variance 0: Poisson)."""

    sites: int
    rate_mean: float
    rate_variance: float
    dropout: float = 0.0
    activation: Activation = field(default_factory=Activation)
    name: str = ""

    def __post_init__(self):
        if self.sites < 0 or self.rate_mean <= 0 or self.rate_variance < 0 or not 0 <= self.dropout < 1:
            raise ValueError(f"invalid site group {self}")

    def with_sites(self, n: int) -> SiteGroup:
        return SiteGroup(n, self.rate_mean, self.rate_variance, self.dropout, self.activation, self.name)

    @property
    def effective_mean(self) -> float:
        """Mean rate of enrolments that count (after dropout), per site per month."""
        return self.rate_mean * (1 - self.dropout)

    @property
    def effective_variance(self) -> float:
        return self.rate_variance * (1 - self.dropout) ** 2

    def site_log_pgf(self, z: np.ndarray, horizon: float) -> np.ndarray:
        """log G(z) of ONE site's count by `horizon`: log sum_j w_j (b / (b + (1-z) E_j))^a."""
        e, w = self.activation.nodes(horizon)
        keep = w > 0
        e, w = e[keep], w[keep]
        z = np.asarray(z, dtype=complex)
        # real arithmetic (complex log/exp are several times slower): 1 - z = c - i s, s = Im z
        c, s = (1 - z.real)[None, :], z.imag[None, :]
        m, v = self.effective_mean, self.effective_variance
        if v == 0:  # exp(-(1 - z) m E) = exp(-c m E) exp(i s m E)
            mod = np.exp(-c * m * e[:, None])
            arg = s * m * e[:, None]
        else:  # (b / (x + i y))^a with x = b + c E, y = -s E
            a, b = gamma_params(m, v)
            x, y = b + c * e[:, None], -s * e[:, None]
            mod = np.exp(a * (math.log(b) - 0.5 * np.log(x * x + y * y)))
            arg = -a * np.arctan2(y, x)
        g = (w @ (mod * np.cos(arg))) + 1j * (w @ (mod * np.sin(arg)))
        # |G| can underflow to 0 far from z = 1; a floor keeps n * log G finite (and exp of it 0).
        return np.log(np.maximum(np.abs(g), 1e-300)) + 1j * np.angle(g)

    def site_moments(self, horizon: float) -> tuple[float, float]:
        """Mean and variance of ONE site's count by `horizon` (law of total variance over rate, start)."""
        e, w = self.activation.nodes(horizon)
        m, v = self.effective_mean, self.effective_variance
        e1, e2 = float(w @ e), float(w @ (e * e))
        return m * e1, m * e1 + (v + m * m) * e2 - m * m * e1 * e1

    def max_exposure(self, horizon: float) -> float:
        e, w = self.activation.nodes(horizon)
        return float(e[w > 0].max(initial=0.0))

    def log_pgf_real(self, x: np.ndarray, horizon: float) -> np.ndarray:
        """log G(x) for real x > 1 (inf at or beyond the radius of convergence 1 + b / E_max)."""
        e, w = self.activation.nodes(horizon)
        keep = w > 0
        e, w = e[keep], w[keep]
        x = np.asarray(x, dtype=float)[:, None]
        m, v = self.effective_mean, self.effective_variance
        if v == 0:
            return special.logsumexp((x - 1) * m * e[None, :], b=w[None, :], axis=1)
        a, b = gamma_params(m, v)
        den = b - (x - 1) * e[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(den > 0, a * (math.log(b) - np.log(np.where(den > 0, den, 1.0))), np.inf)
        out = special.logsumexp(terms, b=w[None, :], axis=1)
        return np.where(np.all(den > 0, axis=1), out, np.inf)


# ------------------------------------------------------------------------- the total over site groups


def moments(groups: Sequence[SiteGroup], horizon: float) -> tuple[float, float]:
    """E[S] and Var[S] of the total enrolled by `horizon` (sites independent)."""
    mean = var = 0.0
    for g in groups:
        m1, v1 = g.site_moments(horizon)
        mean += g.sites * m1
        var += g.sites * v1
    return mean, var


def fft_length(groups: Sequence[SiteGroup], horizon: float, at_least: int = 0) -> int:
    """FFT length M with P(S >= M) < TAIL_EPS (Chernoff bound), and M >= mean + 12 sd, M > at_least."""
    active = [g for g in groups if g.sites > 0]
    mean, var = moments(active, horizon)
    need = max(at_least + 2, int(mean + 12 * math.sqrt(var)) + 64)
    e_max = max((g.max_exposure(horizon) for g in active), default=0.0)
    if e_max > 0:
        radius = min(
            (
                gamma_params(g.effective_mean, g.effective_variance)[1] / e_max
                for g in active
                if g.effective_variance > 0
            ),
            default=2.0,
        )
        x = 1 + np.linspace(0.02, 0.98, 49) * radius
        log_p = sum(g.sites * g.log_pgf_real(x, horizon) for g in active)
        best = float(np.min((log_p - math.log(TAIL_EPS)) / np.log(x)))
        need = max(need, math.ceil(best) if math.isfinite(best) else MAX_FFT + 1)
    if need > MAX_FFT:
        raise ValueError(f"enrolment distribution too wide for an exact FFT (needs > {MAX_FFT} points)")
    return sfft.next_fast_len(need, real=True)


def _frequencies(m: int) -> np.ndarray:
    """z_k = exp(2 pi i k / M) for k = 0..M/2 (the rest are conjugates: the pmf is real)."""
    return np.exp(2j * np.pi * np.arange(m // 2 + 1) / m)


def _cutoff(groups: Sequence[SiteGroup], horizon: float, m: int, log_eps: float = -32.0) -> int:
    """Number of frequencies k = 0.. that matter: beyond it |P(z_k)| < e^-32 (1.3e-14).

    Dropping them moves any probability by at most 1.3e-14 x (1/M) sum_k |W_k| = O(1e-14 log M).

    Bound: |G(e^{i theta})| <= sum_j w_j |g(e^{i theta} | E_j)|, and |g| = (b / |b + (1 - e^{i theta}) E|)^a
    falls as theta grows on [0, pi] (|1 - e^{i theta}| = 2 sin(theta/2) grows), so the bound is monotone
    and a bisection over k finds the cutoff.
    """
    kmax = m // 2 + 1

    def log_bound(k: int) -> float:
        theta = 2 * np.pi * k / m
        total = 0.0
        for g in groups:
            if not g.sites:
                continue
            e, w = g.activation.nodes(horizon)
            mm, v = g.effective_mean, g.effective_variance
            if v == 0:
                mag = np.exp(-(1 - math.cos(theta)) * mm * e)
            else:
                a, b = gamma_params(mm, v)
                mag = (b / np.hypot(b + (1 - math.cos(theta)) * e, math.sin(theta) * e)) ** a
            total += g.sites * math.log(max(float(w @ mag), 1e-300))
        return total

    lo, hi = 0, kmax  # invariant: bound(lo) >= eps (k=0 has |P| = 1); answer in (lo, hi]
    if log_bound(kmax - 1) >= log_eps:
        return kmax
    hi = kmax - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if log_bound(mid) >= log_eps:
            lo = mid
        else:
            hi = mid
    return hi


def enrolled_pmf(groups: Sequence[SiteGroup], horizon: float, length: int | None = None) -> np.ndarray:
    """pmf of the total enrolled by `horizon`, P(S = j) for j = 0..M-1, by FFT of the product of PGFs."""
    m = length or fft_length(groups, horizon)
    z = _frequencies(m)
    k = _cutoff(groups, horizon, m)
    log_p = np.full(z.size, -np.inf, dtype=complex)
    log_p[:k] = 0.0
    for g in groups:
        if g.sites:
            log_p[:k] += g.sites * g.site_log_pgf(z[:k], horizon)
    # P_k = sum_j p_j z_k^j is the conjugate of numpy's forward transform of p.
    pmf = sfft.irfft(np.conj(np.exp(log_p)), n=m)
    return np.clip(pmf, 0.0, None)


def success_probability(groups: Sequence[SiteGroup], target: int, horizon: float) -> float:
    """P(S(horizon) >= target), exact up to rounding and the 1e-13 truncation."""
    if target <= 0:
        return 1.0
    pmf = enrolled_pmf(groups, horizon, fft_length(groups, horizon, at_least=target))
    return float(min(1.0, max(0.0, 1.0 - pmf[:target].sum())))


def enrolled_quantiles(groups: Sequence[SiteGroup], horizon: float, probs: Sequence[float]) -> list[int]:
    """Smallest j with P(S <= j) >= q for each q."""
    cdf = np.cumsum(enrolled_pmf(groups, horizon))
    return [int(np.searchsorted(cdf, q - 1e-12)) for q in probs]


def approx_success_probability(
    groups: Sequence[SiteGroup], target: int, horizon: float, kind: Approximation = "gamma"
) -> float:
    """P(S >= target) from a two-moment approximation of S, with continuity correction where continuous.

    normal: 1 - Phi((N - 1/2 - mu) / sigma). gamma: S ~ Gamma(mu^2/s^2, rate mu/s^2), P = sf(N - 1/2)
    (Mountain & Sherlock 2022 show the moment-matched gamma beats the normal for sums of gammas).
    negbin: NB with the same mean and variance (exact for one region open from the start).
    """
    mu, var = moments(groups, horizon)
    return approx_from_moments(mu, var, target, kind)


def approx_from_moments(mu: float, var: float, target: int, kind: Approximation) -> float:
    """Two-moment approximation of P(S >= target) for S with mean mu and variance var."""
    return float(_approx(np.array([mu]), np.array([var]), target, kind)[0])


def _approx(mean: np.ndarray, var: np.ndarray, n: int, kind: Approximation) -> np.ndarray:
    """Vectorised approximations through scipy.special (the frozen-distribution calls cost ~0.1 ms each).

    normal sf(x) = ndtr((mu - x)/sd); gamma sf(x) = Q(shape, x rate) (regularised upper incomplete gamma);
    NB(r, p) sf(k) = I_{1-p}(k+1, r) (regularised incomplete beta); Poisson sf(k) = P(k+1, mu).
    """
    if n <= 0:
        return np.ones(mean.size)
    pos = mean > 0
    m = np.where(pos, mean, 1.0)
    v = np.where(pos, np.maximum(var, 1e-300), 1.0)
    x = n - 0.5
    if kind == "normal":
        out = special.ndtr((m - x) / np.sqrt(v))
    elif kind == "gamma":
        out = special.gammaincc(m * m / v, x * m / v)
    elif kind == "negbin":
        over = v > m * (1 + 1e-12)
        vv = np.where(over, v, 2 * m)
        out = np.where(over, special.betainc(n, m * m / (vv - m), 1 - m / vv), special.gammainc(n, m))
    else:
        raise ValueError(f"unknown approximation {kind!r}")
    return np.where(pos, out, 0.0)


# ------------------------------------------------------------------------------------ time to target


def time_to_target_cdf(groups: Sequence[SiteGroup], target: int, months: Sequence[float]) -> np.ndarray:
    """P(time to reach `target` <= t) = P(S(t) >= target) for each t (months)."""
    return np.array(
        [success_probability(groups, target, float(t)) if t > 0 else float(target <= 0) for t in months]
    )


def time_to_target_quantiles(
    groups: Sequence[SiteGroup], target: int, probs: Sequence[float], max_months: float = 600.0
) -> list[float | None]:
    """Months by which the target is reached with probability q (None if not by `max_months`).

    Root of P(S(t) >= N) = q by Brent's method, bracketed by doubling t from a rough guess.
    """
    out: list[float | None] = []
    if target <= 0:
        return [0.0 for _ in probs]
    from scipy import optimize  # here, not at import: scipy.optimize costs every command ~0.3 s

    rate = sum(g.sites * g.effective_mean for g in groups)
    for q in probs:
        hi = min(max_months, max(1.0, 2 * target / rate if rate > 0 else max_months))
        while success_probability(groups, target, hi) < q and hi < max_months:
            hi = min(max_months, 2 * hi)
        if success_probability(groups, target, hi) < q:
            out.append(None)
            continue
        out.append(
            float(
                optimize.brentq(
                    lambda t, q=q: success_probability(groups, target, t) - q, 1e-9, hi, xtol=1e-3
                )
            )
        )
    return out


# --------------------------------------------------------------------------- fast repeated evaluation


@dataclass(frozen=True)
class Evaluator:
    """P(S >= target by horizon) for many allocations (sites per region) of the same regions.

    Each region's per-site log PGF is computed once on the FFT grid; an allocation n then costs one
    matrix product: P(z_k) = exp(sum_r n_r log G_r(z_k)), and
    P(S < N) = (1/M) sum_k P(z_k) W_k with W_k = sum_{j<N} exp(-2 pi i j k / M)
             = (1 - w^N) / (1 - w), w = exp(-2 pi i k / M)  (W_0 = N),
    using conjugate symmetry to sum over k = 0..M/2 only. The length M is set for the largest
    allocation, which bounds the tail for every smaller one (more sites: stochastically larger S).
    """

    regions: tuple[SiteGroup, ...]
    target: int
    horizon: float
    max_sites: tuple[int, ...]

    @cached_property
    def length(self) -> int:
        big = [g.with_sites(n) for g, n in zip(self.regions, self.max_sites, strict=True)]
        return fft_length(big, self.horizon, at_least=self.target)

    @cached_property
    def _log_g(self) -> np.ndarray:
        z = _frequencies(self.length)
        return np.stack([g.site_log_pgf(z, self.horizon) for g in self.regions])  # (R, K)

    @cached_property
    def _weights(self) -> np.ndarray:
        m, n = self.length, self.target
        k = np.arange(m // 2 + 1)
        w = np.exp(-2j * np.pi * k / m)
        with np.errstate(divide="ignore", invalid="ignore"):
            wk = (1 - w**n) / (1 - w)
        wk[0] = n
        # conjugate pairs k and M-k: count the interior frequencies twice (real part taken at the end)
        mult = np.full(k.size, 2.0)
        mult[0] = 1.0
        if m % 2 == 0:
            mult[-1] = 1.0
        return wk * mult / m

    @cached_property
    def site_moments(self) -> np.ndarray:
        return np.array([g.site_moments(self.horizon) for g in self.regions])  # (R, 2): mean, var

    def probability(self, allocations: np.ndarray) -> np.ndarray:
        """P(S >= target) for each row of `allocations` (A x R sites).

        Real arithmetic: P(z_k) = exp(n . Re log G) (cos + i sin)(n . Im log G), and frequencies where
        |P(z_k)| < e^-46 (1e-20) for every row are skipped: their terms are below rounding. A wide
        distribution has a narrow characteristic function, so this keeps few of the M/2 frequencies.
        """
        alloc = np.atleast_2d(np.asarray(allocations, dtype=float))
        if self.target <= 0:
            return np.ones(alloc.shape[0])
        out = np.empty(alloc.shape[0])
        lr, li = self._log_g.real, self._log_g.imag
        wr, wi = self._weights.real, self._weights.imag
        chunk = max(1, 2_000_000 // lr.shape[1])
        for s in range(0, alloc.shape[0], chunk):
            a = alloc[s : s + chunk]
            re = a @ lr
            cols = np.flatnonzero((re > -46.0).any(axis=0))
            re = re[:, cols]
            im = a @ li[:, cols]
            below = (np.exp(re) * (np.cos(im) * wr[cols] - np.sin(im) * wi[cols])).sum(axis=1)
            out[s : s + chunk] = 1.0 - below
        return np.clip(out, 0.0, 1.0)

    def moments(self, allocations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        alloc = np.atleast_2d(np.asarray(allocations, dtype=float))
        mv = alloc @ self.site_moments
        return mv[:, 0], mv[:, 1]

    def approx_probability(self, allocations: np.ndarray, kind: Approximation) -> np.ndarray:
        """Two-moment approximations of P(S >= target), vectorised (see approx_from_moments)."""
        mean, var = self.moments(allocations)
        return _approx(mean, var, self.target, kind)
