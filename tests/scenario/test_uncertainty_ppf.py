"""The ranges' quantile functions without scipy.stats (issue 16): the same bits as scipy.stats gives, and
loading a scenario imports no scipy.stats."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from hn005_sim.scenario.uncertainty import BETA_MASS, BetaRange, TriangularRange, _triang_ppf

ROOT = Path(__file__).resolve().parents[2]
# a grid with both ends, points on either side of each mode, and the spacing of a Sobol/Morris design
U = np.concatenate([np.linspace(0.0, 1.0, 20_001), np.random.default_rng(5).random(20_000),
                    [0.0, 1.0, 1e-12, 1 - 1e-12, 0.5]])


@pytest.mark.parametrize(("low", "mode", "high"), [
    (5.0, 8.0, 14.0),  # configs/alter_hn005/sites.toml screening_days
    (0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (0.75, 1.0, 1.25), (-3.0, 2.5, 7.0), (11.0, 13.6, 16.0)])
def test_triangular_ppf_is_scipys_bit_for_bit(low, mode, high):
    spec = TriangularRange(dist="triangular", low=low, mode=mode, high=high, source="assumption: test")
    width = high - low
    expected = stats.triang.ppf(U, (mode - low) / width, low, width)
    got = spec.ppf(U)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)
    # a scalar gives a scalar, as scipy's does
    scalar = spec.ppf(0.3)
    assert np.ndim(scalar) == 0
    assert float(scalar) == float(stats.triang.ppf(0.3, (mode - low) / width, low, width))


def test_triangular_ppf_outside_the_unit_interval_is_nan_as_in_scipy():
    q = np.array([-0.1, 1.1, np.nan, 0.5])
    expected = stats.triang.ppf(q, 0.3, 2.0, 4.0)
    got = _triang_ppf(q, 0.3, 2.0, 4.0)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert got[3] == expected[3]


@pytest.mark.parametrize(("a", "b", "low", "high"), [
    (143.0, 1160.0, 0.0, 1.0),  # configs/alter_hn005/population.toml hbsag_positive
    (1.0, 1.0, 0.0, 1.0), (0.5, 0.7, 0.0, 1.0), (2.0, 3.0, 0.2, 0.9), (60.0, 40.0, 0.0, 1.0),
    (300.5, 2.5, 0.0, 1.0)])
def test_beta_ppf_and_bounds_are_scipys_bit_for_bit(a, b, low, high):
    spec = BetaRange(dist="beta", a=a, b=b, low=low, high=high, source="assumption: test")
    tail = (1 - BETA_MASS) / 2
    expected = low + (high - low) * stats.beta.ppf(tail + BETA_MASS * U, a, b)
    assert np.array_equal(spec.ppf(U), expected)
    lo, hi = spec.bounds()
    assert (lo, hi) == (float(expected[0]), float(expected[20_000]))  # u = 0 and u = 1
    # the central 99% of the beta, by its own cdf (an independent check of what the bounds mean)
    assert stats.beta.cdf((lo - low) / (high - low), a, b) == pytest.approx(tail, abs=1e-9)
    assert stats.beta.cdf((hi - low) / (high - low), a, b) == pytest.approx(1 - tail, abs=1e-9)


def test_loading_a_scenario_imports_no_scipy_stats():
    code = ("from pathlib import Path; from hn005_sim.scenario.load import load_scenario; "
            "load_scenario(Path('scenarios/baseline.toml')); import sys; print('scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "False"
