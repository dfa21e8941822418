"""The distribution registry: every entry's sample mean agrees with its stated mean."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError
from scipy import stats

from hn005_sim.scenario.dists import REGISTRY, Dist

ADAPTER = TypeAdapter(Dist)

EXAMPLES = {
    "normal": {"mean": 46.0, "sd": 10.0},
    "truncnormal": {"mean": 46.0, "sd": 12.0, "low": 18.0, "high": 60.0},
    "lognormal": {"median": 20.0, "gsd": 1.6},
    "gamma": {"mean": 6.8, "sd": 2.1},
    "beta": {"a": 2.0, "b": 5.0},
    "uniform": {"low": 1.0, "high": 5.0},
    "exponential": {"mean": 14.0},
    "weibull": {"shape": 1.3, "scale": 14.0},
    "bernoulli": {"p": 0.17},
    "categorical": {"values": [0, 1, 2], "probs": [0.5, 0.4, 0.1]},
    "piecewise": {"breaks": [0, 6, 12, 36, 60], "probs": [0.1, 0.3, 0.45, 0.15]},
    "piecewise_exponential": {"times": [0, 12, 24], "survival": [1.0, 0.44, 0.23], "tail_hazard": 0.027},
    "empirical": {"values": [38, 46, 53, 61], "weights": [1, 2, 2, 1]},
    "constant": {"value": 3.5},
}


def test_every_registry_entry_has_an_example():
    assert set(EXAMPLES) == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_sample_mean_matches_stated_mean(name):
    d = ADAPTER.validate_python({"dist": name, **EXAMPLES[name]})
    n = 200_000
    x = d.sample(np.random.default_rng(7), n).astype(float)
    assert x.shape == (n,)
    se = x.std(ddof=1) / math.sqrt(n)
    assert abs(x.mean() - d.mean()) <= 5 * se + 1e-12


def test_truncated_normal_mean_against_closed_form():
    # E[X | a < X < b] = mu + sd * (phi(alpha) - phi(beta)) / (Phi(beta) - Phi(alpha))
    d = ADAPTER.validate_python({"dist": "truncnormal", "mean": 46, "sd": 12, "low": 18, "high": 60})
    a, b = (18 - 46) / 12, (60 - 46) / 12
    expected = 46 + 12 * (stats.norm.pdf(a) - stats.norm.pdf(b)) / (stats.norm.cdf(b) - stats.norm.cdf(a))
    assert d.mean() == pytest.approx(expected, rel=1e-12)
    x = d.sample(np.random.default_rng(1), 10_000)
    assert x.min() >= 18 and x.max() <= 60


def test_gamma_mean_sd_and_shape_scale_agree():
    a = ADAPTER.validate_python({"dist": "gamma", "mean": 6.0, "sd": 3.0})
    b = ADAPTER.validate_python({"dist": "gamma", "shape": 4.0, "scale": 1.5})
    assert a.shape_scale() == pytest.approx(b.shape_scale())


def test_categorical_labels_sample_and_have_no_mean():
    d = ADAPTER.validate_python({"dist": "categorical", "values": ["M", "F"], "probs": [0.8, 0.2]})
    x = d.sample(np.random.default_rng(3), 100_000)
    share = (x == "M").mean()
    assert abs(share - 0.8) < 5 * math.sqrt(0.8 * 0.2 / 100_000)
    with pytest.raises(TypeError):
        d.mean()


@pytest.mark.parametrize(
    "bad",
    [
        {"dist": "normal", "mean": 1.0},  # missing sd
        {"dist": "normal", "mean": 1.0, "sd": -1.0},
        {"dist": "normal", "mean": "forty", "sd": 1.0},
        {"dist": "normal", "mean": 1.0, "sd": 1.0, "sdd": 2.0},  # unknown key
        {"dist": "gaussian", "mean": 1.0, "sd": 1.0},  # unknown distribution
        {"dist": "categorical", "values": [1, 2], "probs": [0.5, 0.6]},
        {"dist": "piecewise", "breaks": [0, 5, 3], "probs": [0.5, 0.5]},
        {"dist": "gamma", "mean": 1.0, "sd": 1.0, "shape": 2.0, "scale": 1.0},
        {"dist": "lognormal", "mu": 1.0},
        {"dist": "uniform", "low": 5.0, "high": 1.0},
        {"dist": "bernoulli", "p": 1.5},
    ],
)
def test_bad_distributions_are_refused(bad):
    with pytest.raises(ValidationError):
        ADAPTER.validate_python(bad)


def test_same_generator_seed_same_draws():
    d = ADAPTER.validate_python({"dist": "weibull", "shape": 1.2, "scale": 10})
    assert np.array_equal(d.sample(np.random.default_rng(5), 50), d.sample(np.random.default_rng(5), 50))


@pytest.mark.parametrize("a, b", [
    (-math.inf, math.inf), (-1.0, 2.0), (0.0, math.inf), (-math.inf, 0.0), (3.0, math.inf), (10.0, 12.0),
    (-40.0, -38.0), (-2.0, -1.0), (1.0, 30.0), (0.1, 0.2), (-5.0, 40.0), (25.0, 26.0), (-3.0, -2.9),
])
def test_truncated_normal_closed_form_mean_matches_scipy_in_the_tails(a, b):
    # the registry computes the mean without scipy.stats (imported by every run otherwise); scipy's
    # truncnorm, computed independently in log space, is the reference, far into either tail
    from hn005_sim.scenario.dists import truncnorm_standard_mean

    assert truncnorm_standard_mean(a, b) == pytest.approx(float(stats.truncnorm.mean(a, b)), rel=1e-11,
                                                          abs=1e-15)


def test_registry_and_restrictiveness_do_not_import_scipy_stats():
    # scipy.stats costs about a second of start-up in every process; the registry needs no more than means
    import subprocess
    import sys

    code = ("import sys, hn005_sim.scenario.dists, hn005_sim.eligibility.restrictiveness, "
            "hn005_sim.montecarlo; print('scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_piecewise_exponential_by_hand():
    """S through the given points, log-linear between them; the mean is the integral of S in closed form."""
    d = ADAPTER.validate_python({"dist": "piecewise_exponential", "times": [0, 12, 24],
                                 "survival": [1.0, 0.44, 0.23], "tail_hazard": 0.027})
    h1, h2 = math.log(1 / 0.44) / 12, math.log(0.44 / 0.23) / 12
    assert d.hazards().tolist() == pytest.approx([h1, h2, 0.027])
    assert d.survival_at([0, 6, 12, 18, 24, 36]).tolist() == pytest.approx(
        [1.0, math.exp(-6 * h1), 0.44, 0.44 * math.exp(-6 * h2), 0.23, 0.23 * math.exp(-12 * 0.027)])
    mean = (1 - 0.44) / h1 + 0.44 * (1 - 0.23 / 0.44) / h2 + 0.23 / 0.027
    assert d.mean() == pytest.approx(mean)
    x = d.sample(np.random.default_rng(2), 100_000)
    for t in (12, 24, 36):
        s = float(d.survival_at(t))
        assert abs((x > t).mean() - s) < 4 * math.sqrt(s * (1 - s) / x.size)
    with pytest.raises(ValueError, match="decrease"):
        ADAPTER.validate_python({"dist": "piecewise_exponential", "times": [0, 12], "survival": [1.0, 1.2],
                                 "tail_hazard": 0.1})
