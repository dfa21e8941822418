"""Continue a scenario's own recruitment DES from a running trial's observed state (`forecast --method des`).

Per replicate, every observed site gets its own `sites` child stream (rng.site_stream, keyed by its
row in the observed file), from which are drawn: its enrolment rate from its posterior Gamma(a + k,
b + t) (forecast.py), converted to a referral rate by the scenario's P(a referred candidate enrols)
(pre-screen x consent x screening x no withdrawal: planning.plan_from_scenario, or the --log's funnel);
for a site not open yet, its opening month from the start-up law given it has not opened (or never).
The DES then runs as `run` does (recruitment.des.simulate_recruitment with these sites): screening
time, screening capacity, seasonal dips (the calendar shifted to --as-of), re-tests and re-screening,
stopping at the remaining target. Time 0 of the continuation is --as-of.

Simplifications, documented in docs/forecast.md: candidates already in screening at --as-of are not
carried over (the continuation starts with empty screening slots); an open site still in its ramp-up
restarts the remaining ramp from a rate of 0.

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


def continuation_scenario(scenario, fc: F.Forecast, funnel: dict[str, Any] | None = None):
    """The scenario from --as-of: target reduced by the enrolled, calendar and horizon shifted, and (with
    a --log) the funnel probabilities replaced by the log's."""
    rec = scenario.recruitment
    horizon = max(rec.horizon_months.value - fc.as_of, fc.deadline - fc.as_of, 1.0)
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


def site_draws(scenario, fc: F.Forecast) -> list[SiteDraw]:
    regions = {r.name: r for r in scenario.recruitment.regions}
    out = []
    for s in fc.sites:
        reg = regions[s.region]
        act = fc.priors[s.region].activation
        later = s.group.activation if isinstance(s.group.activation, F.NotYetOpen) else None
        out.append(
            SiteDraw(
                s.site,
                s.region,
                s.shape,
                s.rate,
                s.mean,
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
) -> dict[str, Any]:
    """Run the continuation; returns enrolment days and times to target per replicate (months since start)."""
    from hn005_sim.montecarlo import _batches, open_executor, sigint_held

    sc = continuation_scenario(scenario, fc, funnel)
    draws = site_draws(scenario, fc)
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
