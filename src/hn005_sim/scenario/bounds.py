"""Bounds on every scenario figure that multiplies work, checked at load before any simulation.

Each bound is far above any plausible trial (the shipped scenarios use a 30-month deadline, a 60-month
horizon, at most 24 sites and about 9,000 expected referrals per replicate) and is there so that a typo
(`referral_rate_mean = 1e300`, `horizon_months = 1e300`) is one line naming the key and the bound
instead of a run that grows until the machine gives out. docs/validation.md lists them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hn005_sim.scenario.errors import Problem

if TYPE_CHECKING:
    from hn005_sim.scenario.load import RawScenario
    from hn005_sim.scenario.schema import Scenario

MAX_MONTHS = 1_200
"""trial.deadline_months and recruitment.horizon_months: at most 100 years."""

MAX_SITES = 10_000
"""Sites across all regions (each region is also capped at 2,000 by its schema)."""

MAX_REFERRALS_PER_REPLICATE = 10_000_000
"""Expected candidates referred in one replicate: sum over regions of sites x referral_rate_mean x the
simulated months (the longer of horizon and deadline). The shipped scenarios: 1,920 to 9,060."""

MAX_RATE_CV = 10.0
"""Coefficient of variation of the site referral rate across sites, sqrt(variance) / mean (the shipped
regions: 0.25 to 0.82). Beyond it the gamma's tail gives single sites absurd rates."""


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) < 1e15 else f"{x:.2g}"


def check_bounds(sc: Scenario, raw: RawScenario) -> list[Problem]:
    from hn005_sim.scenario.load import origin_of

    problems: list[Problem] = []

    def problem(loc: tuple[Any, ...], key: str, message: str) -> None:
        problems.append(Problem(origin_of(raw, loc), key, message))

    deadline = sc.trial.deadline_months
    if deadline > MAX_MONTHS:
        problem(("trial", "deadline_months"), "trial.deadline_months",
                f"must be <= {MAX_MONTHS:,} months (MAX_MONTHS), got {_fmt(deadline)}")
    rec = sc.recruitment
    if rec is None:
        return problems
    horizon = rec.horizon_months.value
    if horizon > MAX_MONTHS:
        problem(("recruitment", "horizon_months", "value"), "recruitment.horizon_months.value",
                f"must be <= {MAX_MONTHS:,} months (MAX_MONTHS), got {_fmt(horizon)}")
    sites = sum(r.sites for r in rec.regions)
    if sites > MAX_SITES:
        problem(("recruitment", "regions"), "recruitment.regions",
                f"{sites:,} sites in all; at most {MAX_SITES:,} are allowed (MAX_SITES)")
    for i, region in enumerate(rec.regions):
        mean, var = region.referral_rate_mean.value, region.referral_rate_variance.value
        if mean > 0 and var > 0 and var ** 0.5 / mean > MAX_RATE_CV:
            problem(("recruitment", "regions", i, "referral_rate_variance", "value"),
                    f"recruitment.regions[{i}].referral_rate_variance.value",
                    f"coefficient of variation sqrt(variance)/mean = {_fmt(var ** 0.5 / mean)}; at most "
                    f"{MAX_RATE_CV:g} is allowed (MAX_RATE_CV)")
    if problems:
        return problems
    months = max(horizon, deadline)
    loads = [(r.sites * r.referral_rate_mean.value * months, i) for i, r in enumerate(rec.regions)]
    total = sum(load for load, _ in loads)
    if total > MAX_REFERRALS_PER_REPLICATE:
        _, worst = max(loads)
        r = rec.regions[worst]
        problem(("recruitment", "regions", worst, "referral_rate_mean", "value"),
                f"recruitment.regions[{worst}].referral_rate_mean.value",
                f"{_fmt(r.referral_rate_mean.value)} per site per month x {r.sites:,} sites x "
                f"{_fmt(months)} months (all regions: about {_fmt(total)} candidates per replicate); at "
                f"most {MAX_REFERRALS_PER_REPLICATE:,} are allowed (rates x months x sites, "
                "MAX_REFERRALS_PER_REPLICATE)")
    return problems
