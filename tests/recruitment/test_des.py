"""The recruitment DES against closed forms, conservation, hand-computed traces and monotonicity."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from hn005_sim.montecarlo import run_scenario
from hn005_sim.recruitment.candidates import FunnelSource
from hn005_sim.recruitment.config import MONTH_DAYS
from hn005_sim.recruitment.des import (
    ENROLLED,
    NO_CONSENT,
    PRESCREEN_FAIL,
    SCREEN_FAIL,
    SCREEN_START,
    WITHDRAWN,
    simulate_recruitment,
)
from hn005_sim.recruitment.sites import Site, arrival_days, cumulative_intensity, season_multiplier
from hn005_sim.scenario.schema import Scenario

SRC = "assumption: test"
START = dt.date(2024, 1, 1)


def P(v: float) -> dict:
    return {"value": v, "source": SRC}


def scenario(*, target=10_000, horizon=6.0, sites=3, rate_mean=3.0, rate_var=4.5, activation=None,
             never=0.0, capacity=None, screening=None, consent=1.0, withdrawal=0.0, pre=1.0, screen=1.0,
             rescreen=None, dips=(), ramp=None, close=None, batch=64, regions=None) -> Scenario:
    region = {
        "name": "r", "sites": sites,
        "referral_rate_mean": P(rate_mean), "referral_rate_variance": P(rate_var),
        "activation_delay_days": activation or {"dist": "constant", "value": 0.0},
        "never_activate": P(never),
    }
    if capacity is not None:
        region["screening_capacity"] = {"value": capacity, "source": SRC}
    if ramp is not None:
        region["ramp_up_months"] = P(ramp)
    if close is not None:
        region["close_month"] = P(close)
    rec = {
        "horizon_months": P(horizon), "lab_window_days": P(7.0), "consent": P(consent),
        "withdrawal_before_dose": P(withdrawal),
        "screening_days": screening or {"dist": "constant", "value": 0.0},
        "regions": regions or [region], "seasonal_dips": list(dips), "candidate_batch": batch,
        "funnel": {"prescreen_pass": P(pre), "screen_pass": P(screen),
                   "bsa_m2": {"dist": "constant", "value": 1.7}},
    }
    if rescreen is not None:
        rec["rescreen"] = {"probability": P(rescreen), "delay_days": {"dist": "constant", "value": 10.0}}
    return Scenario.model_validate({
        "name": "t", "trial": {"target_enrolled": target, "start_date": START, "deadline_months": horizon},
        "recruitment": rec,
    })


def sim(sc: Scenario, replicate: int, seed: int = 7, **kw):
    return simulate_recruitment(sc, FunnelSource(sc.recruitment.funnel), seed, replicate, **kw)


# --- closed form -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_enrolled_by_t_is_negative_binomial():
    """Sites open from the start with gamma(k, theta) rates, instant screening, everyone eligible and no
    capacity limit: the count by time t at n sites is NB(n k, 1/(1 + theta t)) (Anisimov & Fedorov 2007)."""
    n_sites, mean, var, reps = 3, 3.0, 4.5, 1500
    sc = scenario(sites=n_sites, rate_mean=mean, rate_var=var, horizon=6.0)
    res = run_scenario(sc, reps, seed=11)
    k, theta = mean**2 / var, var / mean  # theta per month
    for month in (2, 6):
        counts = res.aggregate.curve[month]
        assert counts.sum() == reps
        nb = stats.nbinom(n_sites * k, 1 / (1 + theta * month))
        x = np.arange(counts.size)
        emp_mean = (counts @ x) / reps
        assert abs(emp_mean - nb.mean()) < 4.5 * nb.std() / math.sqrt(reps)
        ecdf = np.cumsum(counts) / reps
        for q in (0.1, 0.25, 0.5, 0.75, 0.9):
            v = int(nb.ppf(q))
            p = nb.cdf(v)
            assert abs(ecdf[v] - p) < 4.5 * math.sqrt(p * (1 - p) / reps), (month, v)


def test_cumulative_intensity_is_exact_for_dips_ramp_and_activation():
    """Lambda(t) by hand: rate 2/day, opens at day 3.5, 10-day linear ramp, closes at day 30, a dip to
    0.5 on days [20, 25)."""
    sc = scenario(horizon=2.0, dips=[{"name": "d", "dates": [START + dt.timedelta(days=20)],
                                      "days_before": 0.0, "days_after": 5.0, "multiplier": P(0.5)}])
    season = season_multiplier(sc.recruitment, START, 62)
    assert np.allclose(season[[19, 20, 24, 25]], [1, 0.5, 0.5, 1])
    site = Site(0, "s", "r", 3.5, 30.0, 2.0, 10.0, None)
    t, lam = cumulative_intensity(site, season, 60.0)
    assert t[0] == 3.5 and t[-1] == 30.0

    def exact(x):  # integral of 2 * ramp * season from 3.5 to x
        grid = np.linspace(3.5, x, 200_001)
        f = 2 * np.clip((grid - 3.5) / 10, 0, 1) * np.where((grid >= 20) & (grid < 25), 0.5, 1.0)
        return np.trapezoid(f, grid)

    for x in (5.0, 13.5, 20.0, 22.0, 25.0, 30.0):
        assert np.interp(x, t, lam) == pytest.approx(exact(x), rel=2e-3)


def test_no_arrivals_outside_the_open_period_or_in_a_full_dip():
    sc = scenario(horizon=3.0, dips=[{"name": "d", "dates": [START + dt.timedelta(days=40)],
                                      "days_before": 0.0, "days_after": 10.0, "multiplier": P(0.0)}])
    season = season_multiplier(sc.recruitment, START, 100)
    site = Site(0, "s", "r", 12.25, 70.0, 5.0, 0.0, None)
    days = arrival_days(site, season, 3 * MONTH_DAYS, np.random.default_rng(3))
    assert days.size > 100
    assert days.min() >= 12.25 and days.max() < 70.0
    assert not ((days >= 40) & (days < 50)).any()
    assert np.all(np.diff(days) >= 0)


# --- conservation ------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sites=st.integers(1, 3),
    capacity=st.one_of(st.none(), st.integers(1, 3)),
    target=st.integers(1, 25),
    horizon=st.floats(1.0, 8.0),
    pre=st.floats(0.0, 1.0), screen=st.floats(0.0, 1.0), consent=st.floats(0.0, 1.0),
    withdrawal=st.floats(0.0, 0.5),
    rescreen=st.one_of(st.none(), st.floats(0.0, 1.0)),
    never=st.floats(0.0, 0.5),
    replicate=st.integers(0, 10_000),
)
def test_every_candidate_is_accounted_for(sites, capacity, target, horizon, pre, screen, consent, withdrawal,
                                          rescreen, never, replicate):
    """candidates = pre-screen failures + no consent + screen failures + withdrawn + enrolled + pending,
    with `pending` counted independently from the event trace (consented, never decided)."""
    sc = scenario(sites=sites, capacity=capacity, target=target, horizon=horizon, pre=pre, screen=screen,
                  consent=consent, withdrawal=withdrawal, rescreen=rescreen, never=never, rate_mean=4.0,
                  rate_var=4.0, screening={"dist": "gamma", "mean": 9.0, "sd": 4.0},
                  activation={"dist": "uniform", "low": 0.0, "high": 30.0}, batch=8)
    rec, _ = sim(sc, replicate, keep_events=True)
    total = rec.prescreen_failures + rec.no_consent + rec.screen_failures + rec.withdrawn + rec.enrolled
    assert rec.candidates == total + rec.pending

    ev = np.array([(e.site, e.candidate, e.kind) for e in rec.events], dtype=np.int64).reshape(-1, 3)
    key = ev[:, 0] * 1_000_000 + ev[:, 1]
    arrived = set(key[ev[:, 2] == 0])
    decided = set(key[np.isin(ev[:, 2], [PRESCREEN_FAIL, NO_CONSENT, SCREEN_FAIL, WITHDRAWN, ENROLLED])])
    assert decided <= arrived
    assert len(arrived) == rec.candidates
    assert len(arrived - decided) == rec.pending
    # nobody is decided twice
    finals = key[np.isin(ev[:, 2], [PRESCREEN_FAIL, NO_CONSENT, SCREEN_FAIL, WITHDRAWN, ENROLLED])]
    assert finals.size == len(set(finals))
    assert rec.enrolled <= target
    assert (rec.enrolled == target) == math.isfinite(rec.time_to_target_day)
    assert np.all(np.diff(rec.enrol_day) >= 0)
    assert rec.enrol_day.size == 0 or rec.enrol_day[-1] <= horizon * MONTH_DAYS
    assert rec.site_enrolled.sum() == rec.enrolled
    assert rec.screened <= rec.consented
    assert rec.prescreen_reasons.sum() == rec.prescreen_failures
    assert rec.screen_reasons.sum() == rec.screen_failures


def test_capacity_one_spaces_decisions_by_the_screening_time():
    """One slot, every screening takes exactly 10 days: consecutive screenings start >= 10 days apart."""
    sc = scenario(sites=1, capacity=1, rate_mean=20.0, rate_var=1.0, horizon=6.0,
                  screening={"dist": "constant", "value": 10.0})
    rec, _ = sim(sc, 0, keep_events=True)
    starts = np.array([e.day for e in rec.events if e.kind == SCREEN_START])
    assert starts.size >= 15
    assert np.all(np.diff(starts) >= 10.0 - 1e-9)
    # screening is the bottleneck: about one enrolment per 10 days, whatever the arrival rate
    assert rec.enrolled == pytest.approx(6 * MONTH_DAYS / 10, abs=1.5)


def test_stops_at_the_target_everywhere():
    sc = scenario(sites=3, target=12, horizon=12.0, rate_mean=10.0, rate_var=5.0,
                  screening={"dist": "uniform", "low": 2.0, "high": 9.0})
    rec, _ = sim(sc, 3, keep_events=True)
    assert rec.enrolled == 12
    stop = rec.time_to_target_day
    assert stop == rec.enrol_day[-1]
    assert max(e.day for e in rec.events) == stop  # nothing happens after the target


def test_long_screening_retests_labs():
    """Screening of 10 days outlasts the 7-day lab window: every screened candidate is re-tested."""
    sc = scenario(screening={"dist": "constant", "value": 10.0}, pre=0.5, screen=0.6, horizon=3.0)
    rec, _ = sim(sc, 1)
    assert rec.retests == rec.screened > 0
    sc = scenario(screening={"dist": "constant", "value": 5.0}, pre=0.5, screen=0.6, horizon=3.0)
    rec, _ = sim(sc, 1)
    assert rec.retests == 0 and rec.screened > 0


# --- common random numbers: more sites or higher rates never slow recruitment -------------------------


def _enrolled_by_month(rec, months):
    return np.searchsorted(rec.enrol_day, np.arange(months + 1) * MONTH_DAYS, side="right")


@pytest.mark.parametrize("variant", [
    {"capacity": 2},
    {"rescreen": 0.5},
    {"capacity": 1, "screening": {"dist": "gamma", "mean": 12.0, "sd": 6.0}},
])
def test_more_sites_or_higher_rates_never_slow_recruitment(variant):
    base = dict(target=40, horizon=24.0, pre=0.5, screen=0.7, consent=0.8, withdrawal=0.05, rate_mean=1.5,
                rate_var=1.0, activation={"dist": "gamma", "mean": 60.0, "sd": 30.0}, never=0.2,
                screening={"dist": "gamma", "mean": 8.0, "sd": 4.0}, batch=16)
    base.update(variant)
    few = scenario(sites=3, **base)
    more = scenario(sites=5, **base)
    faster = scenario(sites=3, **{**base, "rate_mean": 3.0, "rate_var": 4.0})  # same gamma shape, x2
    for r in range(25):
        a, _ = sim(few, r)
        for b in (sim(more, r)[0], sim(faster, r)[0]):
            assert np.all(_enrolled_by_month(b, 24) >= _enrolled_by_month(a, 24))
            if math.isfinite(a.time_to_target_day):
                assert b.time_to_target_day <= a.time_to_target_day


def test_same_seed_same_replicate_same_record():
    sc = scenario(target=30, capacity=2, rescreen=0.3, pre=0.6, screen=0.5,
                  screening={"dist": "gamma", "mean": 9.0, "sd": 4.0})
    a, _ = sim(sc, 5)
    b, _ = sim(sc, 5)
    c, _ = sim(sc, 6)
    assert np.array_equal(a.enrol_day, b.enrol_day) and a.candidates == b.candidates
    assert not np.array_equal(a.enrol_day, c.enrol_day)


# --- with the population model and the criteria engine ----------------------------------------------


def test_baseline_candidates_judged_by_the_criteria_engine():
    """The real source: failures are attributed to criteria of the right stage, and everyone is counted."""
    from pathlib import Path

    from hn005_sim.recruitment.candidates import ScreenerSource
    from hn005_sim.scenario.load import load_scenario

    sc, _ = load_scenario(Path(__file__).resolve().parents[2] / "scenarios" / "baseline.toml")
    source = ScreenerSource(sc)
    stages = np.asarray(source.reason_stages)
    rec, _ = simulate_recruitment(sc, source, 1, 0)
    assert rec.candidates == (rec.prescreen_failures + rec.no_consent + rec.screen_failures + rec.withdrawn
                              + rec.enrolled + rec.pending)
    assert rec.prescreen_reasons.sum() == rec.prescreen_failures > 0
    assert rec.screen_reasons.sum() == rec.screen_failures > 0
    assert rec.prescreen_reasons[stages != "prescreen"].sum() == 0
    assert rec.retests > 0  # some screenings outlast the 7-day lab window
    assert rec.enrolled > 0 and np.all((rec.enrol_bsa_m2 > 1.0) & (rec.enrol_bsa_m2 < 2.8))


def test_site_clock_is_the_sequential_sum_of_delays():
    """The clock the simulation keeps at each arrival is now + (day - now), step by step from 0, as a
    process waiting from arrival to arrival computes it (it can miss the day by an ulp)."""
    from hn005_sim.recruitment.des import _site_clock

    rng = np.random.default_rng(5)
    misses = 0
    for days in [np.sort(rng.uniform(0, 100, 20)) for _ in range(200)] + [
            np.cumsum(rng.exponential(scale, 5000)) for scale in (1e-3, 1.0, 37.0)]:
        expected, now = [], 0.0
        for d in days.tolist():
            now = now + (d - now)
            expected.append(now)
        clock = _site_clock(days)
        assert clock.tolist() == expected
        misses += int(np.sum(clock != days))
    assert misses > 0  # the ulp misses the vectorised path must step through do occur
    assert _site_clock(np.empty(0)).size == 0
