"""The `run` summary's `treatment` figures from the simulated courses: by hand and against the curve."""

from __future__ import annotations

import numpy as np
import pytest

from hn005_sim.supply.aggregate import SupplyAggregate
from hn005_sim.supply.simulate import simulate_supply
from hn005_sim.treatment.course import DAYS_PER_MONTH

from .conftest import deterministic_regimen, generous_supply

SITES = [("S1", "r1", 0.0, None)]


def test_months_on_treatment_by_hand(base):
    """Progression at 10 months (304.4 days) with no toxicity: cycles on days 0, 21, ..., 294 (15), so
    the last cycle ends on day 315 = 10.349 months after the first dose; nobody is progression-free
    at 12 months, nobody reaches the 24-month cap."""
    reg = deterministic_regimen(base.regimen, induction=4, progression_months=10.0)
    enrol = [(i, "S1", "r1", 10.0 * (i + 1), 1.70) for i in range(3)]  # after the site is stocked
    rec = simulate_supply(reg, generous_supply(base.supply), enrol, SITES, 2000.0,
                          np.random.default_rng(1), np.random.default_rng(2))
    t = rec.treatment
    assert t["patients"] == 3 and t["progression_free_12m"] == 0 and t["reached_cap"] == 0
    assert t["months_on_treatment_milli"] == round(3 * 315 / DAYS_PER_MONTH * 1000)
    agg = SupplyAggregate()
    agg.add(rec)
    s = agg.treatment_summary()
    assert s["months_on_treatment_mean"] == pytest.approx(315 / DAYS_PER_MONTH, abs=1e-3)
    assert s["progression_free_12m"] == 0.0 and s["on_treatment_at_horizon_fraction"] == 0.0


def test_progression_free_shares_follow_the_curve(base):
    """2,000 patients of the baseline regimen: the shares progression-free at 12 and 24 months are within
    4 binomial standard errors of the configured curve; months on treatment are below the mean
    progression-free time (the course also ends at death, withdrawal and intolerance)."""
    n = 2000
    enrol = [(i, "S1", "r1", 10.0 + i % 50, 1.70) for i in range(n)]
    sup = generous_supply(base.supply)
    rec = simulate_supply(base.regimen, sup, enrol, SITES, 200 * DAYS_PER_MONTH,
                          np.random.default_rng(5), np.random.default_rng(6))
    agg = SupplyAggregate()
    agg.add(rec)
    s = agg.treatment_summary()
    curve = base.regimen.course.progression_months
    assert s["patients"] == n
    for m in (12, 24):
        p = float(curve.survival_at(m))
        assert abs(s[f"progression_free_{m}m"] - p) < 4 * np.sqrt(p * (1 - p) / n), m
    assert 0 < s["months_on_treatment_mean"] < curve.mean()
    assert s["on_treatment_at_horizon_fraction"] < 0.01
