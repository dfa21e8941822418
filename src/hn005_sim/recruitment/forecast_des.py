"""Continue a scenario's own recruitment DES from a running trial's observed state (`forecast --method des`).

Per replicate, every observed site gets its own `sites` child stream (rng.site_stream, keyed by its
row in the observed file), from which are drawn: its enrolment rate from its posterior Gamma(a + k,
b + t) (forecast.py), converted to a referral rate by the scenario's P(a referred candidate enrols)
(pre-screen x consent x screening x no withdrawal: planning.plan_from_scenario, or the --log's funnel);
for a site not open yet, its opening month from the start-up law given it has not opened (or never).
The DES then runs as `run` does (recruitment.des.simulate_recruitment with these sites): screening
time, screening capacity, seasonal dips (the calendar shifted to --as-of), re-tests and re-screening,
stopping at the remaining target. Time 0 of the continuation is --as-of.

The DES's own scale: its sites' referral rates are turned into enrolments by the DES's whole funnel,
with lab re-tests when screening outlasts the lab window and re-screening of failures
(`des_enrol_probability`, which `sites`' static P(enrol) leaves out), and seasonal dips lower the
referrals the site saw. So the posterior drawn in the DES is that of the base enrolment rate,
Gamma(a + k, b + t_season) with the prior on the DES's scale (referral prior x des_enrol_probability)
and t_season the open months weighted by the seasonal multiplier and the ramp-up; the site's referral
rate is that rate / des_enrol_probability. Without dips, re-tests or re-screening (and with the same
funnel) this is the analytic posterior exactly.

Simplifications, documented in docs/forecast.md: candidates already in screening at --as-of are not
carried over (the continuation starts with empty screening slots); an open site still in its ramp-up
restarts the remaining ramp from a rate of 0; screening capacity that bound in the past is not undone
(the observed counts already reflect it, and the DES applies it again).

Each replicate depends only on (scenario, observed state, seed, replicate), so --jobs gives identical
output.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hn005_sim.recruitment import forecast as F
from hn005_sim.recruitment.config import MONTH_DAYS
from hn005_sim.recruitment.des import simulate_recruitment
from hn005_sim.recruitment.sites import Site, site_stream


@dataclass(frozen=True)
class SiteDraw:
    """What a replicate needs to draw one observed site (picklable, sent to workers)."""

    name: str
    region: str
    shape: float  # posterior gamma shape of the counted enrolment rate (inf: known rate)
    rate: float
    mean: float
    opened_month: float | None
    later: F.NotYetOpen | None  # start-up law given not open (sites not open yet)
    ramp_up_months: float
    close_month: float | None
    capacity: int | None


def continuation_scenario(
    scenario, fc: F.Forecast, funnel: dict[str, Any] | None = None, until: float | None = None
):
    """The scenario from --as-of: target reduced by the enrolled, calendar and horizon shifted, and (with
    a --log) the funnel probabilities replaced by the log's."""
    rec = scenario.recruitment
    # simulated months from as_of: at least the scenario's horizon and the deadline, and `until` (months
    # since the start) when asked, so that the upper time-to-target quantiles are seen (at most 600)
    horizon = max(rec.horizon_months.value - fc.as_of, fc.deadline - fc.as_of, 1.0)
    if until is not None:
        horizon = min(max(horizon, until - fc.as_of), 600.0)
    start = scenario.trial.start_date + dt.timedelta(days=round(fc.as_of * MONTH_DAYS))
    trial = scenario.trial.model_copy(
        update={
            "target_enrolled": max(fc.remaining, 1),
            "start_date": start,
            "deadline_months": max(fc.deadline - fc.as_of, 0.0),
        }
    )
    update: dict[str, Any] = {"horizon_months": rec.horizon_months.model_copy(update={"value": horizon})}
    if funnel is not None:
        update.update(funnel_update(rec, funnel))
    new_rec = rec.model_copy(update=update)
    return scenario.model_copy(update={"trial": trial, "recruitment": new_rec, "supply": None})


def funnel_update(rec, funnel: dict[str, Any]) -> dict[str, Any]:
    """Recruitment fields from the log's funnel (fixed probabilities, as `[recruitment.funnel]`)."""
    from hn005_sim.recruitment.config import Funnel
    from hn005_sim.scenario import dists as D
    from hn005_sim.scenario.base import Probability

    src = f"observed log: posterior mean of {funnel['candidates']} candidates (uniform prior)"
    bsa = (
        rec.funnel.bsa_m2
        if rec.funnel is not None
        else D.Normal(
            dist="normal",
            mean=1.70,
            sd=0.15,
            source="assumption: body-surface area only feeds drug demand, which forecast does not report",
        )
    )
    return {
        "funnel": Funnel(
            prescreen_pass=Probability(value=funnel["prescreen_pass"], source=src),
            screen_pass=Probability(value=funnel["screen_pass"], source=src),
            bsa_m2=bsa,
        ),
        "consent": Probability(value=funnel["consent"], source=src),
        "withdrawal_before_dose": Probability(value=1 - funnel["no_withdrawal"], source=src),
    }


def des_enrol_probability(scenario, seed: int, candidates: int = 20_000) -> float:
    """P(a referred candidate is enrolled) through the DES's own funnel: pre-screen, consent, screening
    with labs re-tested when it outlasts the lab window, one re-screen of failures with its probability,
    no withdrawal. Fixed funnel probabilities: exact; else judged on `candidates` draws (the `screening`
    stream of replicate 0, as `sites` does), drawn as recruitment.des._Pool draws them."""
    from hn005_sim.recruitment.candidates import candidate_source
    from hn005_sim.rng import stream

    rec = scenario.recruitment
    consent, keep = rec.consent.value, 1 - rec.withdrawal_before_dose.value
    r = 0.0 if rec.rescreen is None else rec.rescreen.probability.value
    if rec.funnel is not None:
        p = rec.funnel.screen_pass.value  # a re-test is a fresh draw with the same probability
        return rec.funnel.prescreen_pass.value * consent * (p + (1 - p) * r * p) * keep
    source = candidate_source(scenario)
    rng = stream(seed, 0, "screening")
    n = candidates
    agree = rng.random(n) < consent
    duration = np.maximum(rec.screening_days.sample(rng, n), 0.0)
    again = rng.random(n) < r
    retest = agree & (duration > rec.lab_window_days.value)
    b = source.judge(stream(seed, 0, "population"), n, retest=retest, rescreen_if_fail=agree & again)
    ok = np.asarray(b.screen_pass, bool) | (again & np.asarray(b.rescreen_pass, bool))
    passed = np.asarray(b.prescreen_pass, bool) & agree & ok
    return float(passed.mean()) * keep


def season_exposure(scenario, opened: float, as_of: float, ramp_months: float) -> float:
    """Months open by as_of weighted by the seasonal multiplier and the linear ramp-up (full rate = 1)."""
    from hn005_sim.recruitment.sites import season_multiplier

    rec = scenario.recruitment
    lo, hi = opened * MONTH_DAYS, as_of * MONTH_DAYS
    if hi <= lo:
        return 0.0
    days = math.ceil(hi) + 1
    mult = season_multiplier(rec, scenario.trial.start_date, days)
    # pieces cut at day boundaries and at the end of the ramp: the ramp is linear inside each piece, so
    # its mean over a piece is its value at the midpoint (exact), the multiplier constant per day
    knots = [lo, hi] + ([lo + ramp_months * MONTH_DAYS] if ramp_months > 0 else [])
    edges = np.union1d(np.arange(days + 1, dtype=float), knots)
    edges = edges[(edges >= lo) & (edges <= hi)]
    a, b = edges[:-1], edges[1:]
    mid = (a + b) / 2
    day = np.minimum(np.floor(mid).astype(int), mult.size - 1)
    ramp = 1.0 if ramp_months <= 0 else np.clip((mid - lo) / (ramp_months * MONTH_DAYS), 0.0, 1.0)
    return float(np.sum((b - a) * mult[day] * ramp)) / MONTH_DAYS


def site_draws(scenario, fc: F.Forecast, q_des: float, q_plan: float) -> list[SiteDraw]:
    """Each observed site's law in the DES: posterior of its base enrolment rate on the DES's scale."""
    regions = {r.name: r for r in scenario.recruitment.regions}
    out = []
    for s in fc.sites:
        reg = regions[s.region]
        prior = fc.priors[s.region]
        act = prior.activation
        later = s.group.activation if isinstance(s.group.activation, F.NotYetOpen) else None
        # the prior re-expressed on the DES's scale: thinning by q_des / q_plan keeps the shape
        m = prior.mean * q_des / q_plan
        v = prior.variance * (q_des / q_plan) ** 2
        if v == 0:
            shape, rate, mean = math.inf, math.inf, m
        else:
            a, b = m * m / v, m / v
            t = (
                0.0
                if s.opened_month is None
                else season_exposure(scenario, s.opened_month, fc.as_of, act.ramp_up_months)
            )
            k = s.enrolled if s.opened_month is not None else 0
            shape, rate = a + k, b + t
            mean = shape / rate
        out.append(
            SiteDraw(
                s.site,
                s.region,
                shape,
                rate,
                mean,
                s.opened_month,
                later,
                act.ramp_up_months,
                act.close_month,
                None if reg.screening_capacity is None else reg.screening_capacity.value,
            )
        )
    return out


def draw_sites(
    draws: Sequence[SiteDraw],
    as_of: float,
    horizon_days: float,
    enrol_probability: float,
    seed: int,
    replicate: int,
) -> list[Site]:
    """The replicate's sites, each from its own `sites` child stream (times relative to --as-of)."""
    out = []
    for i, d in enumerate(draws):
        rng = site_stream(seed, replicate, "sites", i)
        lam = d.mean if math.isinf(d.shape) else float(rng.standard_gamma(d.shape)) / d.rate
        close = (
            horizon_days if d.close_month is None else min(horizon_days, (d.close_month - as_of) * MONTH_DAYS)
        )
        if d.opened_month is not None:
            start: float | None = 0.0
            ramp = max(0.0, d.ramp_up_months - (as_of - d.opened_month)) * MONTH_DAYS
        else:
            month = d.later.sample_start(rng) if d.later is not None else as_of
            start = None if month is None else (month - as_of) * MONTH_DAYS
            ramp = d.ramp_up_months * MONTH_DAYS
        if start is not None and start >= close:
            start = None
        out.append(
            Site(i, d.name, d.region, start, close, lam / enrol_probability / MONTH_DAYS, ramp, d.capacity)
        )
    return out


def run_batch(scenario, draws, as_of: float, q: float, seed: int, start: int, stop: int):
    """Replicates start..stop-1: (enrolment days relative to --as-of, time to target day or nan)."""
    from hn005_sim.montecarlo import _source_for

    source = _source_for(scenario)
    out = []
    for r in range(start, stop):
        sites = draw_sites(draws, as_of, scenario.recruitment.horizon_days, q, seed, r)
        rec, _ = simulate_recruitment(scenario, source, seed, r, sites=sites)
        out.append((rec.enrol_day, rec.time_to_target_day))
    return out


def simulate(
    scenario,
    fc: F.Forecast,
    enrol_probability: float,
    replicates: int,
    seed: int,
    jobs: int = 1,
    funnel: dict[str, Any] | None = None,
    until: float | None = None,
) -> dict[str, Any]:
    """Run the continuation; returns enrolment days and times to target per replicate (months since start).

    `enrol_probability` is the static P(enrol) on which the forecast's priors were built (the plan's);
    the DES's own (`des_enrol_probability` of the continued scenario, whose funnel is the --log's when
    given) re-expresses the priors and converts enrolment rates into referral rates.
    """
    from hn005_sim.montecarlo import _batches, open_executor, sigint_held

    # the DES's P(enrol) through its own funnel: the scenario's, or the log's stage probabilities (exact)
    q_des = des_enrol_probability(continuation_scenario(scenario, fc, funnel), seed)
    if until is not None and q_des < enrol_probability:  # slower on the DES's scale: simulate longer
        until = fc.as_of + (until - fc.as_of) * enrol_probability / q_des
    sc = continuation_scenario(scenario, fc, funnel, until)
    draws = site_draws(scenario, fc, q_des, enrol_probability)
    enrol_probability = q_des
    started = time.perf_counter()
    results: list[tuple[np.ndarray, float]] = []
    with open_executor("process", jobs) as (ex, workers):
        batches = _batches(replicates, workers)
        if ex is None:
            for a, b in batches:
                results += run_batch(sc, draws, fc.as_of, enrol_probability, seed, a, b)
        else:
            with sigint_held():
                futs = [
                    ex.submit(run_batch, sc, draws, fc.as_of, enrol_probability, seed, a, b)
                    for a, b in batches
                ]
            for f in futs:  # in submission order: the output does not depend on which finishes first
                results += f.result()
    wall = time.perf_counter() - started
    days = [d for d, _ in results]
    ttt = np.array([np.inf if math.isnan(t) else t for _, t in results])
    ttt_months = fc.as_of + ttt / MONTH_DAYS
    if fc.remaining == 0:
        ttt_months = np.full(len(results), fc.as_of)
    return {
        "des_enrol_probability": q_des,
        "enrol_days": days,
        "time_to_target": ttt_months,
        "wall_time_s": wall,
        "horizon_months": fc.as_of + sc.recruitment.horizon_months.value,
        "replicates": replicates,
    }


def _lower(x: np.ndarray, q: float) -> float:
    s = np.sort(x)
    return float(s[min(s.size - 1, max(0, math.ceil(q * s.size) - 1))])


def summarise(
    fc: F.Forecast, sim: dict[str, Any], months: Sequence[float]
) -> tuple[dict[str, Any], list[list]]:
    """summary figures and forecast.csv rows from the simulated continuation (lower empirical quantiles)."""
    n = sim["replicates"]
    ttt = sim["time_to_target"]
    tq = []
    for q in F.TIME_PROBS:
        v = _lower(ttt, q)
        tq.append(round(v, 4) if math.isfinite(v) else None)
    reached = np.isfinite(ttt)

    def counts_at(m: float) -> np.ndarray:
        h = (m - fc.as_of) * MONTH_DAYS
        return np.array([fc.enrolled + int(np.searchsorted(d, h, side="right")) for d in sim["enrol_days"]])

    at_deadline = counts_at(fc.deadline)
    p = float((ttt <= fc.deadline).mean())
    summary = {
        "time_to_target_months": {
            **dict(zip(F.TIME_KEYS, tq, strict=True)),
            "mean": round(float(ttt.mean()), 4) if reached.all() else None,
        },
        "prob_target_by_deadline": p,
        "prob_target_by_deadline_se": math.sqrt(max(p * (1 - p), 0.25 / n) / n),
        "enrolled_by_deadline": {
            **dict(zip(F.COUNT_KEYS, (int(_lower(at_deadline, q)) for q in F.COUNT_PROBS), strict=True)),
            "mean": float(at_deadline.mean()),
        },
        "reached_within_horizon_fraction": float(reached.mean()),
        "horizon_months": sim["horizon_months"],
        "replicates": n,
        "wall_time_s": round(sim["wall_time_s"], 3),
        "seconds_per_replicate": round(sim["wall_time_s"] / n, 5),
    }
    rows = []
    for m in months:
        c = counts_at(m)
        rows.append(
            [
                m,
                *(int(_lower(c, q)) for q in F.CURVE_PROBS),
                round(float(c.mean()), 4),
                float((ttt <= m).mean()),
                "des",
            ]
        )
    return summary, rows
