"""Registry calibration of the sponsor's site (a censored observation) and the per-site rates of the
network scenarios and plans (docs/recruitment_des.md, registry calibration)."""

from __future__ import annotations

import datetime as dt
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

from hn005_sim.recruitment.calibration import (
    posterior_moments,
    posterior_moments_closed,
    prior_probability_of_record,
)

ROOT = Path(__file__).resolve().parents[2]
MONTH_DAYS = 30.4375
# The registry record and the prior documented in configs/alter_hn005/sites.toml
K, START, RECORD = 59, dt.date(2023, 9, 1), dt.date(2026, 1, 23)
PRIOR_MEAN, PRIOR_CV = 110 / 12 / 3, 0.5
ENROLLED_PER_CANDIDATE = 0.0727  # baseline funnel_mean enrolled / candidates (100 replicates)


def t_months() -> float:
    return (RECORD - START).days / MONTH_DAYS


@pytest.mark.parametrize("k,t,shape,rate", [(59, 28.75, 4.0, 1.307), (5, 10.0, 1.0, 0.5),
                                            (30, 12.0, 9.0, 3.0), (100, 20.0, 2.0, 0.2)])
def test_grid_posterior_matches_closed_form(k, t, shape, rate):
    m1, v1 = posterior_moments(k, t, shape, rate)
    m2, v2 = posterior_moments_closed(k, t, shape, rate)
    assert m1 == pytest.approx(m2, rel=1e-6)
    assert v1 == pytest.approx(v2, rel=1e-5)


def test_closed_form_against_brute_force_rejection():
    """Draw lambda from the prior, a Poisson count at t for each, keep those with >= k: the kept
    lambdas are posterior draws. Tolerance: 5 standard errors of their mean."""
    k, t, shape, rate = 20, 8.0, 3.0, 1.2
    rng = np.random.default_rng(20230901)
    lam = rng.gamma(shape, 1 / rate, 2_000_000)
    kept = lam[rng.poisson(lam * t) >= k]
    mean, var = posterior_moments_closed(k, t, shape, rate)
    assert len(kept) / len(lam) == pytest.approx(prior_probability_of_record(k, t, shape, rate), abs=0.002)
    assert abs(kept.mean() - mean) <= 5 * math.sqrt(var / len(kept))
    assert kept.var() == pytest.approx(var, rel=0.02)


def test_censoring_raises_the_rate_above_the_naive_lower_bound():
    shape = 1 / PRIOR_CV**2
    mean, _ = posterior_moments_closed(K, t_months(), shape, shape / PRIOR_MEAN)
    assert mean > K / t_months()  # 59 / 28.75 = 2.05 is a lower bound, not the rate


def test_sponsor_site_uses_the_calibrated_posterior():
    cfg = tomllib.loads((ROOT / "configs/alter_hn005/sites.toml").read_text())
    sponsor = next(r for r in cfg["recruitment"]["regions"] if r["name"] == "sponsor")
    shape = 1 / PRIOR_CV**2
    mean, var = posterior_moments_closed(K, t_months(), shape, shape / PRIOR_MEAN)
    assert sponsor["referral_rate_mean"]["value"] * ENROLLED_PER_CANDIDATE == pytest.approx(mean, rel=0.005)
    got_var = sponsor["referral_rate_variance"]["value"] * ENROLLED_PER_CANDIDATE**2
    assert got_var == pytest.approx(var, rel=0.01)
    assert sponsor["max_sites"] == 1
    for path in sorted((ROOT / "scenarios").glob("network_*.toml")):
        regions = tomllib.loads(path.read_text())["recruitment"]["regions"]
        s = next(r for r in regions if r["name"] == "sponsor")
        assert s["max_sites"] == 1, path.name
        assert s["referral_rate_mean"]["value"] == sponsor["referral_rate_mean"]["value"], path.name
        assert s["referral_rate_variance"]["value"] == sponsor["referral_rate_variance"]["value"], path.name


def test_deadline_is_the_first_registry_versions_plan():
    base = tomllib.loads((ROOT / "configs/alter_hn005/base.toml").read_text())
    first_start, first_primary_completion = dt.date(2023, 6, 1), dt.date(2024, 6, 1)
    months = round((first_primary_completion - first_start).days / MONTH_DAYS)
    assert base["trial"]["deadline_months"] == months == 12


def test_per_site_rates_agree_between_scenarios_and_plans():
    """One enrolment rate per region: plans give enrolments per site-month directly, scenarios give
    referrals, which the baseline funnel turns into the same enrolments; all within 0.30-0.45 for the
    endemic provinces."""
    plan_rates: dict[str, float] = {}
    for path in sorted((ROOT / "plans").glob("*.toml")):
        for r in tomllib.loads(path.read_text())["regions"]:
            assert plan_rates.setdefault(r["name"], r["rate_mean"]) == r["rate_mean"], (path.name, r["name"])
    assert all(0.30 <= v <= 0.45 for v in plan_rates.values()), plan_rates
    seen = set()
    for path in sorted((ROOT / "scenarios").glob("network_*.toml")):
        for r in tomllib.loads(path.read_text())["recruitment"]["regions"]:
            if r["name"] in plan_rates:
                got = r["referral_rate_mean"]["value"] * ENROLLED_PER_CANDIDATE
                assert got == pytest.approx(plan_rates[r["name"]], abs=0.001), (path.name, r["name"])
                seen.add(r["name"])
    assert {"guangdong", "guangxi", "hunan", "fujian"} <= seen
