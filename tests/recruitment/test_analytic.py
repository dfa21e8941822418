"""The closed-form Poisson-gamma module against scipy's closed forms, direct convolution, brute-force
integration and Monte Carlo (fixed seeds; tolerances from the Monte Carlo standard error)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from scipy import stats

from hn005_sim.recruitment import analytic as A
from hn005_sim.scenario.dists import Dist

DIST = TypeAdapter(Dist)


def dist(**kw):
    return DIST.validate_python(kw)


def test_gamma_params_recover_mean_and_variance():
    a, b = A.gamma_params(0.8, 0.5)
    assert a / b == pytest.approx(0.8) and a / b**2 == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("sites", "m", "v", "t"),
    [(1, 0.8, 0.5, 18.0), (10, 0.8, 0.5, 18.0), (4, 2.0, 8.0, 6.0), (25, 0.3, 0.05, 30.0)],
)
def test_sites_open_from_start_are_negative_binomial(sites, m, v, t):
    """NB(n a, b/(b+t)): the FFT pmf equals scipy's pmf, and P(S >= N) its survival function."""
    groups = [A.SiteGroup(sites, m, v)]
    pmf = A.enrolled_pmf(groups, t)
    nb = A.negative_binomial(sites, m, v, t)
    assert np.abs(pmf - nb.pmf(np.arange(pmf.size))).max() < 1e-12
    for n in (1, int(nb.mean()), int(nb.mean() + 2 * nb.std())):
        assert A.success_probability(groups, n, t) == pytest.approx(nb.sf(n - 1), abs=1e-11)


def test_equal_rates_are_poisson():
    """Variance 0: every site has the same rate, S ~ Poisson(n m t)."""
    pmf = A.enrolled_pmf([A.SiteGroup(7, 0.9, 0.0)], 20.0)
    assert np.abs(pmf - stats.poisson(7 * 0.9 * 20).pmf(np.arange(pmf.size))).max() < 1e-12


def test_regions_sum_is_the_convolution_of_their_negative_binomials():
    groups = [A.SiteGroup(6, 0.8, 0.5), A.SiteGroup(3, 0.4, 0.4), A.SiteGroup(2, 1.5, 0.3)]
    k = np.arange(2000)
    direct = np.array([1.0])
    for g in groups:
        direct = np.convolve(direct, A.negative_binomial(g.sites, g.rate_mean, g.rate_variance, 15.0).pmf(k))
    pmf = A.enrolled_pmf(groups, 15.0)
    assert np.abs(pmf - direct[: pmf.size]).max() < 1e-12
    assert direct[pmf.size :].sum() < 1e-12  # the FFT length leaves no mass out


def test_dropout_thins_the_rate():
    """Poisson thinning: dropout d is the same as rate mean m(1-d), variance v(1-d)^2."""
    a = A.enrolled_pmf([A.SiteGroup(5, 1.0, 0.6, dropout=0.2)], 12.0, 512)
    b = A.enrolled_pmf([A.SiteGroup(5, 0.8, 0.6 * 0.64)], 12.0, 512)
    assert np.abs(a - b).max() < 1e-13


def test_constant_startup_is_a_shorter_trial():
    act = A.Activation(dist(dist="constant", value=4.0))
    pmf = A.enrolled_pmf([A.SiteGroup(5, 0.8, 0.5, activation=act)], 18.0)
    nb = A.negative_binomial(5, 0.8, 0.5, 14.0)
    assert np.abs(pmf - nb.pmf(np.arange(pmf.size))).max() < 1e-12


def test_uniform_startup_pgf_matches_the_closed_form_integral():
    """U ~ Uniform(L, H) inside [0, T]: G(z) = 1/(H-L) int_{T-H}^{T-L} (b/(b + c s))^a ds, c = 1 - z,
    = b^a [(b + c s)^(1-a)]_{T-H}^{T-L} / (c (1-a) (H-L))."""
    m, v, lo, hi, horizon = 0.8, 0.5, 1.0, 5.0, 18.0
    a, b = A.gamma_params(m, v)
    g = A.SiteGroup(1, m, v, activation=A.Activation(dist(dist="uniform", low=lo, high=hi)))
    z = np.exp(1j * np.linspace(0.05, np.pi, 9))
    c = 1 - z
    s1, s2 = horizon - hi, horizon - lo
    exact = b**a * ((b + c * s2) ** (1 - a) - (b + c * s1) ** (1 - a)) / (c * (1 - a) * (hi - lo))
    assert np.abs(np.exp(g.site_log_pgf(z, horizon)) - exact).max() < 1e-12


STARTUPS = [
    {"dist": "uniform", "low": 1, "high": 5},
    {"dist": "gamma", "mean": 6.77, "sd": 2.1},
    {"dist": "gamma", "shape": 0.6, "scale": 8.0},  # infinite density at 0
    {"dist": "normal", "mean": 3, "sd": 2},  # some mass below 0: opens at the start
    {"dist": "truncnormal", "mean": 4, "sd": 3, "low": 1, "high": 12},
    {"dist": "lognormal", "median": 5, "gsd": 1.6},
    {"dist": "exponential", "mean": 6},
    {"dist": "weibull", "shape": 1.5, "scale": 7},
    {"dist": "beta", "a": 2, "b": 3},
    {"dist": "piecewise", "breaks": [0, 3, 6, 30], "probs": [0.5, 0.3, 0.2]},  # some beyond the horizon
    {"dist": "categorical", "values": [0.0, 2.0, 9.0], "probs": [0.2, 0.5, 0.3]},
    {"dist": "empirical", "values": [1.0, 3.5, 4.0, 7.5]},
    {"dist": "constant", "value": 2.5},
]


@pytest.mark.parametrize("spec", STARTUPS, ids=lambda s: s["dist"])
def test_startup_quadrature_against_monte_carlo(spec):
    """E[f(clip(U, 0, T))] by the quadrature equals the sample mean of the distribution's own sampler,
    for a smooth f (a site's PGF at a real point) and for the clipped start-up itself."""
    d = dist(**spec)
    horizon = 18.0
    x, w = A.startup_quadrature(d, horizon)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    u = np.clip(d.sample(np.random.default_rng(7), 400_000), 0, horizon)
    for f in (lambda s: s, lambda s: (1.6 / (1.6 + 0.3 * (horizon - s))) ** 1.28):
        mc = f(u)
        se = mc.std() / math.sqrt(mc.size)
        assert abs(float(w @ f(x)) - mc.mean()) < 4.5 * se + 1e-9


def test_moments_match_the_exact_pmf():
    act = A.Activation(dist(dist="gamma", mean=6.77, sd=2.1), never_open=0.11, ramp_up_months=2.0)
    groups = [A.SiteGroup(12, 0.9, 0.81, 0.05, act), A.SiteGroup(4, 0.3, 0.0, 0.0, A.Activation())]
    pmf = A.enrolled_pmf(groups, 24.0)
    j = np.arange(pmf.size)
    mean = float(j @ pmf)
    var = float((j * j) @ pmf - mean**2)
    m, v = A.moments(groups, 24.0)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
    assert mean == pytest.approx(m, rel=1e-9) and var == pytest.approx(v, rel=1e-8)


def _monte_carlo(rng, sites, m, v, dropout, startup, never, horizon, reps):
    a, b = A.gamma_params(m, v)
    lam = rng.gamma(a, 1 / b, (reps, sites))
    u = np.where(
        rng.random((reps, sites)) < never, np.inf, startup.sample(rng, reps * sites).reshape(reps, sites)
    )
    counts = rng.poisson(lam * np.maximum(horizon - np.maximum(u, 0), 0))
    return rng.binomial(counts, 1 - dropout).sum(axis=1)


def test_staggered_start_against_monte_carlo():
    """Gamma start-up, sites that never open, dropout: P(S >= N) and the pmf against 200,000 replicates."""
    startup = dist(dist="gamma", mean=6.77, sd=2.1)
    group = A.SiteGroup(10, 0.8, 0.5, 0.1, A.Activation(startup, never_open=0.11))
    s = _monte_carlo(np.random.default_rng(20230901), 10, 0.8, 0.5, 0.1, startup, 0.11, 24.0, 200_000)
    pmf = A.enrolled_pmf([group], 24.0)
    for n in (40, 80, 110, 150):
        mc = (s >= n).mean()
        se = math.sqrt(mc * (1 - mc) / s.size)
        assert abs(A.success_probability([group], n, 24.0) - mc) < 4.5 * se
    for j in (0, 50, 100):
        mc = (s == j).mean()
        assert abs(pmf[j] - mc) < 4.5 * math.sqrt(mc * (1 - mc) / s.size) + 1e-6


def test_time_to_target_with_equal_rates_is_gamma():
    """Poisson with total rate n m: the N-th arrival is Gamma(N, n m)."""
    groups = [A.SiteGroup(5, 0.8, 0.0)]
    got = A.time_to_target_quantiles(groups, 40, (0.1, 0.5, 0.9))
    want = stats.gamma(40, scale=1 / (5 * 0.8)).ppf([0.1, 0.5, 0.9])
    assert np.allclose(got, want, atol=2e-3)


def test_time_to_target_cdf_is_the_negative_binomial_tail():
    groups = [A.SiteGroup(6, 0.8, 0.5)]
    t = np.array([5.0, 12.0, 20.0])
    a, b = A.gamma_params(0.8, 0.5)
    want = stats.nbinom.sf(59, 6 * a, b / (b + t))
    assert np.allclose(A.time_to_target_cdf(groups, 60, t), want, atol=1e-11)


def test_time_to_target_not_reached_is_none():
    """Every site closes at month 3: the target of 10,000 is never reached."""
    groups = [A.SiteGroup(2, 0.5, 0.1, activation=A.Activation(close_month=3.0))]
    assert A.time_to_target_quantiles(groups, 10_000, (0.5,), max_months=100) == [None]


def test_negative_binomial_approximation_is_exact_without_staggering():
    groups = [A.SiteGroup(8, 0.6, 0.4)]
    exact = A.success_probability(groups, 100, 20.0)
    assert A.approx_success_probability(groups, 100, 20.0, "negbin") == pytest.approx(exact, abs=1e-10)


def test_gamma_approximation_beats_normal_when_skewed():
    """Few sites with widely spread rates: the gamma (Mountain & Sherlock 2022) is closer than the normal."""
    groups = [A.SiteGroup(3, 0.8, 1.6, activation=A.Activation(dist(dist="uniform", low=0, high=6)))]
    for n in (30, 60):
        exact = A.success_probability(groups, n, 24.0)
        gam = A.approx_success_probability(groups, n, 24.0, "gamma")
        nor = A.approx_success_probability(groups, n, 24.0, "normal")
        assert abs(gam - exact) < abs(nor - exact)


def test_evaluator_agrees_with_direct_fft():
    startup = dist(dist="uniform", low=1, high=5)
    regions = (
        A.SiteGroup(1, 0.9, 0.8, 0.05, A.Activation(startup, never_open=0.1)),
        A.SiteGroup(1, 0.4, 0.2, 0.0, A.Activation(startup)),
        A.SiteGroup(1, 0.3, 0.0),
    )
    ev = A.Evaluator(regions, 90, 20.0, (8, 8, 8))
    allocs = np.array([[0, 0, 0], [8, 8, 8], [3, 1, 4], [5, 0, 2], [1, 8, 0]])
    got = ev.probability(allocs)
    for row, p in zip(allocs, got, strict=True):
        groups = [g.with_sites(int(n)) for g, n in zip(regions, row, strict=True)]
        assert p == pytest.approx(A.success_probability(groups, 90, 20.0), abs=1e-11)
    mean, _ = ev.moments(allocs)
    assert mean[2] == pytest.approx(
        A.moments([g.with_sites(int(n)) for g, n in zip(regions, allocs[2], strict=True)], 20.0)[0]
    )


@settings(max_examples=40, deadline=None)
@given(
    sites=st.integers(0, 12),
    extra=st.integers(1, 5),
    m=st.floats(0.05, 2.0),
    cv=st.floats(0.1, 2.0),
    target=st.integers(1, 120),
    horizon=st.floats(1.0, 36.0),
    scale=st.floats(1.0, 3.0),
    low=st.floats(0.0, 6.0),
    width=st.floats(0.0, 6.0),
    never=st.floats(0.0, 0.5),
)
def test_more_sites_or_higher_rates_never_lower_success(
    sites, extra, m, cv, target, horizon, scale, low, width, never
):
    """Monotonicity: adding sites, or multiplying every site's rate by scale >= 1 (mean x c, variance x c^2,
    a stochastically larger rate), never lowers P(enrolled >= target)."""
    act = A.Activation(dist(dist="uniform", low=low, high=low + width), never_open=never)
    v = (cv * m) ** 2
    base = A.success_probability([A.SiteGroup(sites, m, v, activation=act)], target, horizon)
    more = A.success_probability([A.SiteGroup(sites + extra, m, v, activation=act)], target, horizon)
    faster = A.success_probability(
        [A.SiteGroup(sites, m * scale, v * scale**2, activation=act)], target, horizon
    )
    assert more >= base - 1e-10
    assert faster >= base - 1e-10


def test_validate_does_not_import_scipy_optimize():
    """scipy.optimize (~0.3 s) is imported where a quantile is solved for, not by importing the analytic
    module: `validate` does not need it."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = ("import sys; from hn005_sim.cli import main; rc = main(['validate', 'scenarios/baseline.toml']); "
            "print('scipy.optimize' in sys.modules); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
