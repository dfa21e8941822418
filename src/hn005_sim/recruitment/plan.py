"""Planning files and plans from scenarios: per-site enrolment rates, start-up, bounds and costs per region.

A *planning file* gives per-site enrolment rates (gamma-distributed across sites, Poisson-gamma model),
start-up times, bounds and costs per region (contract: DESIGN.md "Planning file"). A *scenario* gives
referral rates; `plan_from_scenario` turns it into a plan by multiplying them by the probability that a
referred candidate is enrolled (pre-screen pass x consent x screening pass x no withdrawal).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from hn005_sim.recruitment import analytic as A
from hn005_sim.rng import stream
from hn005_sim.scenario.base import Strict
from hn005_sim.scenario.dists import Dist
from hn005_sim.scenario.errors import ConfigError

Method = Literal["analytic", "des", "both"]
MONTH_DAYS = 30.4375
# ------------------------------------------------------------------------------------- planning file

_REGION_FIGURES = (
    "rate_mean",
    "rate_variance",
    "dropout",
    "never_open",
    "cost_startup",
    "cost_per_month",
    "cost_per_patient",
    "startup",
    "startup_days",
    "ramp_up_months",
    "close_month",
)
# Bounds that catch typos before a search that would take hours or an FFT that cannot fit in memory:
# the largest oncology trials enrol a few thousand patients at a few hundred sites over a few years.
MAX_TARGET = 100_000
MAX_MONTHS = 600.0
MAX_SITES = 2_000
MAX_RATE = 1_000.0
"""Enrolments per site per month (the example plans: 0.2 to 1.5)."""
MAX_COST = 1e9
"""Any one cost figure (per site, per site-month, per patient); costs are summed in 1e-4 units as int64."""
MAX_RATE_CV = 10.0
"""sqrt(rate_variance) / rate_mean across sites (the example plans: 1)."""
_PLAN_FIGURES = ("duration_months", "target", "probability", "startup")


class RegionPlan(Strict):
    """One region of a planning file. Rates are enrolments per site per month, gamma across sites."""

    name: str = Field(min_length=1)
    rate_mean: float = Field(gt=0, le=MAX_RATE,
                             description="enrolments per site per month, mean across sites")
    rate_variance: float = Field(ge=0, description="variance across sites of the rate (0: all equal)")
    dropout: float = Field(default=0.0, ge=0, lt=1, description="share of enrolments that do not count")
    never_open: float = Field(default=0.0, ge=0, le=1, description="share of selected sites that never open")
    startup: Dist | None = Field(default=None, description="months to open; default: the plan's startup")
    startup_days: Dist | None = Field(default=None, description="days to open (a scenario activation delay)")
    ramp_up_months: float = Field(default=0.0, ge=0, le=MAX_MONTHS,
                                  description="months over which the rate rises linearly to full")
    close_month: float | None = Field(default=None, gt=0, le=MAX_MONTHS,
                                      description="months from start the site closes")
    sites_min: int = Field(default=0, ge=0)
    sites_max: int | None = Field(default=None, ge=0, le=MAX_SITES)
    sites: int | None = Field(default=None, ge=0, le=MAX_SITES,
                              description="fixed number of sites (evaluate, not search)")
    cost_startup: float = Field(default=0.0, ge=0, le=MAX_COST, description="per site, once")
    cost_per_month: float = Field(default=0.0, ge=0, le=MAX_COST, description="per site per month open")
    cost_per_patient: float = Field(default=0.0, ge=0, le=MAX_COST, description="per patient enrolled")
    sources: dict[str, str] = Field(default_factory=dict, description="figure name -> citation or assumption")

    @field_validator("sources")
    @classmethod
    def _source_keys(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(set(v) - set(_REGION_FIGURES))
        if bad:
            raise ValueError(f"sources names unknown figures {bad}; expected some of {list(_REGION_FIGURES)}")
        return v

    @model_validator(mode="after")
    def _bounds(self):
        if self.sites is None and self.sites_max is None:
            raise ValueError("give sites_max (to search) or sites (a fixed number to evaluate)")
        if self.startup is not None and self.startup_days is not None:
            raise ValueError("give startup (months) or startup_days, not both")
        if self.sites_max is not None and self.sites_max < self.sites_min:
            raise ValueError(f"sites_max must be >= sites_min ({self.sites_min}), got {self.sites_max}")
        if self.rate_variance ** 0.5 > MAX_RATE_CV * self.rate_mean:
            raise ValueError(f"rate_variance gives a coefficient of variation sqrt(variance)/mean = "
                             f"{self.rate_variance ** 0.5 / self.rate_mean:.3g}; at most {MAX_RATE_CV:g} "
                             "is allowed (MAX_RATE_CV)")
        return self

    @property
    def bounds(self) -> tuple[int, int]:
        if self.sites is not None:
            return self.sites, self.sites
        return self.sites_min, self.sites_max  # type: ignore[return-value]


class Plan(Strict):
    """A planning file (DESIGN.md "Planning file"). Time in months."""

    name: str = ""
    description: str = ""
    duration_months: float = Field(gt=0, le=MAX_MONTHS, allow_inf_nan=False)
    target: int = Field(gt=0, le=MAX_TARGET, description="enrolments that count, wanted by duration_months")
    probability: float = Field(gt=0, lt=1, description="required P(enrolled >= target by duration_months)")
    currency: str | None = Field(default=None, max_length=8, description="unit of the costs, e.g. USD")
    patient_cost_basis: Literal["retained", "enrolled"] = Field(
        default="retained",
        description="patients cost_per_patient is paid for: retained after dropout (ClinicalTrialOptm.jl's "
        "convention, the default) or every enrolment, dropouts included",
    )
    startup: Dist | None = Field(default=None, description="months from start to a site opening (None: 0)")
    regions: list[RegionPlan] = Field(min_length=1)
    sources: dict[str, str] = Field(default_factory=dict)
    # set by plan_from_scenario: how the rates were derived, carried into summary.json
    derivation: dict[str, Any] | None = None
    # set by plan_from_scenario: each region's exact activation law (days, ramp-up, closing)
    _activations: dict[str, A.Activation] = PrivateAttr(default_factory=dict)

    @field_validator("sources")
    @classmethod
    def _source_keys(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(set(v) - set(_PLAN_FIGURES))
        if bad:
            raise ValueError(f"sources names unknown figures {bad}; expected some of {list(_PLAN_FIGURES)}")
        return v

    @model_validator(mode="after")
    def _names(self):
        names = [r.name for r in self.regions]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"region names must be unique, repeated: {', '.join(dup)}")
        return self

    def groups(self) -> list[A.SiteGroup]:
        """One site of each region (sites=1) as an analytic SiteGroup."""
        out = []
        for r in self.regions:
            dist = r.startup if r.startup is not None else self.startup
            scale = 1.0
            if r.startup_days is not None:
                dist, scale = r.startup_days, 1 / MONTH_DAYS
            act = A.Activation(dist, scale, r.never_open, r.ramp_up_months, r.close_month)
            out.append(A.SiteGroup(1, r.rate_mean, r.rate_variance, r.dropout, act, r.name))
        return out


def is_planning_file(data: dict[str, Any]) -> bool:
    """A planning file has `duration_months` at the top; a scenario has `[trial]`/`[recruitment]`."""
    return "duration_months" in data


def load_plan(path: str | Path) -> Plan:
    """Read and validate a planning file (with `extends`, like scenarios); ConfigError lists every problem."""
    from hn005_sim.scenario.load import problems_from, read_raw

    raw = read_raw(path)
    try:
        return Plan.model_validate(raw.data)
    except ValidationError as exc:
        raise ConfigError(problems_from(exc, raw)) from None


# --------------------------------------------------------------------------- from a scenario's config


def screened_pass_probability(scenario, seed: int, candidates: int = 20_000) -> tuple[float, float]:
    """P(a referred candidate passes pre-screening and screening), and its Monte Carlo standard error.

    Judged by the scenario's own candidate source (fixed funnel probabilities when given, else the
    population model and the criteria engine) on `candidates` draws from the `screening` stream.
    For a funnel it is exact: prescreen_pass x screen_pass.
    """
    from hn005_sim.recruitment.candidates import candidate_source

    rec = scenario.recruitment
    if rec.funnel is not None:
        return rec.funnel.prescreen_pass.value * rec.funnel.screen_pass.value, 0.0
    source = candidate_source(scenario)
    rng = stream(seed, 0, "screening")
    none = np.zeros(candidates, dtype=bool)
    batch = source.judge(rng, candidates, retest=none, rescreen_if_fail=none)
    ok = np.asarray(batch.prescreen_pass, dtype=bool) & np.asarray(batch.screen_pass, dtype=bool)
    q = float(ok.mean())
    return q, math.sqrt(q * (1 - q) / candidates)


def plan_from_scenario(scenario, seed: int, probability: float = 0.8, candidates: int = 20_000) -> Plan:
    """The scenario's regions as a plan: enrolment rate = referral rate x P(a referred candidate enrols).

    P(enrols) = P(pass pre-screen and screening) x consent x (1 - withdrawal before first dose), the
    first factor from `screened_pass_probability`. Thinning a gamma rate by q gives a gamma rate with
    mean q m and variance q^2 v. Each region may use 0 .. max_sites sites (default max(10, 3 x its
    sites)); every site a region adds is like its configured ones. The scenario's own network is
    kept in `derivation["scenario_sites"]` and evaluated beside the answer. Scenarios carry
    no costs, so the search minimises the number of sites. Target and deadline come from `[trial]`.
    Start-up: the region's activation delay (days, converted to months), never_activate, ramp-up and
    closing month carry over exactly. Seasonal dips, screening time, capacity and stopping at the
    target are not in the closed form (see `differences` in summary.json).
    """
    rec = scenario.recruitment
    if rec is None:
        raise ConfigError.one(
            scenario.name,
            "recruitment",
            "the scenario has no [recruitment] section; `sites` needs its regions",
        )
    q_screen, se = screened_pass_probability(scenario, seed, candidates)
    q = q_screen * rec.consent.value * (1 - rec.withdrawal_before_dose.value)
    if q <= 0:
        raise ConfigError.one(
            scenario.name,
            "recruitment",
            "no referred candidate can enrol (pass probability x consent x no withdrawal = 0)",
        )
    regions = []
    mult = rec.referral_scale  # a multiplier m on the rate: mean x m, variance x m^2
    by = "" if mult == 1 else f" x referral_multiplier {mult:g}"
    for r in rec.regions:
        costs = {k: getattr(r, k) for k in ("cost_startup", "cost_per_month", "cost_per_patient")}
        regions.append(
            RegionPlan(
                name=r.name,
                rate_mean=r.referral_rate_mean.value * mult * q,
                rate_variance=r.referral_rate_variance.value * (mult * q) ** 2,
                never_open=r.never_activate.value,
                sites_min=0,
                sites_max=r.max_sites if r.max_sites is not None else max(10, 3 * r.sites),
                **{k: fig.value for k, fig in costs.items() if fig is not None},
                sources={
                    "rate_mean": f"referral_rate_mean ({r.referral_rate_mean.source}){by} x P(enrol) {q:.4f}",
                    "rate_variance": (
                        f"referral_rate_variance ({r.referral_rate_variance.source}){by}^2 x P(enrol)^2"
                    ),
                    **{k: fig.source for k, fig in costs.items() if fig is not None},
                },
            )
        )
    trial = scenario.trial
    plan = Plan(
        name=scenario.name,
        description=f"derived from scenario '{scenario.name}'",
        duration_months=float(trial.deadline_months),
        target=trial.target_enrolled,
        probability=probability,
        currency=rec.currency,
        regions=regions,
        derivation={
            "referral_multiplier": mult,
            "screened_pass_probability": q_screen,
            "screened_pass_probability_se": se,
            "consent": rec.consent.value,
            "withdrawal_before_dose": rec.withdrawal_before_dose.value,
            "enrol_probability": q,
            "screening_candidates": 0 if rec.funnel is not None else candidates,
            "scenario_sites": {r.name: r.sites for r in rec.regions},
        },
    )
    # the activation law of each region is in days and may carry ramp-up and closing: keep it exact
    plan._activations.update(
        {
            r.name: A.Activation(
                r.activation_delay_days,
                1 / MONTH_DAYS,
                r.never_activate.value,
                0.0 if r.ramp_up_months is None else r.ramp_up_months.value,
                None if r.close_month is None else r.close_month.value,
            )
            for r in rec.regions
        }
    )
    return plan


def with_overrides(
    plan: Plan, target: int | None = None, months: float | None = None, probability: float | None = None
) -> Plan:
    """The plan with command-line values in place of the file's (validated like the file's)."""
    update: dict[str, Any] = {}
    if target is not None:
        update["target"] = target
    if months is not None:
        update["duration_months"] = float(months)
    if probability is not None:
        update["probability"] = float(probability)
    if not update:
        return plan
    data = plan.model_dump(by_alias=True, exclude_unset=False)
    data.update(update)
    try:
        new = Plan.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        flag = {"target": "--target", "duration_months": "--months", "probability": "--probability"}
        raise ValueError(f"{flag.get(where, where)}: {err['msg']}, got {err.get('input')}") from None
    new._activations.update(plan._activations)
    return new


def site_groups(plan: Plan) -> list[A.SiteGroup]:
    """Per-site laws of the plan's regions (activation from the scenario when the plan came from one)."""
    acts = plan._activations
    return [
        g
        if g.name not in acts
        else A.SiteGroup(1, g.rate_mean, g.rate_variance, g.dropout, acts[g.name], g.name)
        for g in plan.groups()
    ]


