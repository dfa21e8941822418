"""Site planning: how many sites, in which regions, to reach the target by the deadline with probability p.

A *planning file* gives per-site enrolment rates (gamma-distributed across sites, Poisson-gamma model),
start-up times, bounds and costs per region (contract: DESIGN.md "Planning file"). A *scenario* gives
referral rates; `plan_from_scenario` turns it into a plan by multiplying them by the probability that a
referred candidate is enrolled (pre-screen pass x consent x screening pass x no withdrawal).

The search (`optimise`) finds the allocation with the least expected cost such that
P(enrolled >= target by T) >= p, the probability judged on the exact distribution (analytic.Evaluator).
Expected cost of an allocation = sum_r n_r c_r with the per-site cost
    c_r = cost_startup + cost_per_month x E[months open] + cost_per_patient x E[enrolments per site],
so the objective is linear and the constraint monotone (a site more never lowers the probability):
a greedy start, local improvement, then branch and bound that proves optimality
(docs/recruitment_analytic.md).
`simulate` is an independent vectorised Monte Carlo of the same model (`--method des`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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


# ------------------------------------------------------------------------------------------- costing


@dataclass(frozen=True)
class SiteCost:
    """Expected cost of one site of a region over the plan's duration."""

    months_open: float
    enrolments: float  # every expected enrolment by the deadline, dropouts included
    paid_patients: float  # those cost_per_patient is paid for (plan.patient_cost_basis)
    per_site: float


def site_costs(plan: Plan, groups: Sequence[A.SiteGroup]) -> list[SiteCost]:
    """Per-site expected cost: cost_startup + cost_per_month x E[months open] + cost_per_patient x
    E[paid patients by the deadline], paid patients = retained after dropout (default, as
    ClinicalTrialOptm.jl's mean_cost) or all enrolments. Patients beyond the target are paid for: every
    expected enrolment by the deadline counts, as in ClinicalTrialOptm.jl."""
    out = []
    for r, g in zip(plan.regions, groups, strict=True):
        months = g.activation.mean_months_open(plan.duration_months)
        e, w = g.activation.nodes(plan.duration_months)
        enrol = r.rate_mean * float(w @ e)
        paid = enrol * (1 - r.dropout) if plan.patient_cost_basis == "retained" else enrol
        out.append(SiteCost(months, enrol, paid,
                            r.cost_startup + r.cost_per_month * months + r.cost_per_patient * paid))
    return out


# -------------------------------------------------------------------------------------------- search


ProbFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class SearchResult:
    allocation: np.ndarray
    probability: float
    feasible: bool
    proved_optimal: bool
    evaluations: int


@dataclass
class _Counter:
    fn: ProbFn
    evaluations: int = 0
    cache: dict[tuple[int, ...], float] = field(default_factory=dict)

    def __call__(self, allocs: np.ndarray) -> np.ndarray:
        allocs = np.atleast_2d(allocs).astype(int)
        keys = [tuple(a) for a in allocs]
        todo = [i for i, k in enumerate(keys) if k not in self.cache]
        if todo:
            vals = self.fn(allocs[todo])
            self.evaluations += len(todo)
            for i, v in zip(todo, vals, strict=True):
                self.cache[keys[i]] = float(v)
        return np.array([self.cache[k] for k in keys])


def optimise(
    prob: ProbFn,
    lo: Sequence[int],
    hi: Sequence[int],
    cost: Sequence[float],
    mean: Sequence[float],
    p: float,
    max_evaluations: int = 2_000_000,
) -> SearchResult:
    """Least-cost integer allocation lo <= n <= hi with prob(n) >= p; prob must not fall as any n_r grows.

    Objective: (expected cost, number of sites) lexicographically. 1) Greedy: from lo, add the site with
    the largest gain in probability per unit cost (gain in expected enrolment per cost when the
    probability has not moved). 2) Local improvement: drop a site, or move one between regions, while
    cheaper and still feasible. 3) Depth-first branch and bound over regions ordered by cost per expected
    enrolment, pruned by (a) lower bound: cost so far + the rest at their minimum >= incumbent;
    (b) infeasible even with the rest at their maximum (monotonicity); (c) for a region, once the rest
    at their minimum is feasible, larger counts only cost more. The last region is solved by one
    vectorised evaluation of all its counts. Exact unless `max_evaluations` is reached.
    """
    lo_a, hi_a = np.asarray(lo, dtype=int), np.asarray(hi, dtype=int)
    c = np.asarray(cost, dtype=float)
    mu = np.asarray(mean, dtype=float)
    n_r = lo_a.size
    f = _Counter(prob)
    top = float(f(hi_a)[0])
    if top < p:
        return SearchResult(hi_a, top, False, True, f.evaluations)

    # costs in integer 1e-4 units so sums in any order compare exactly
    ci = np.round(c * 1e4).astype(np.int64)

    def key(x: np.ndarray) -> tuple[int, int]:
        return (int(ci @ x), int(x.sum()))

    # 1) greedy
    x = lo_a.copy()
    px = float(f(x)[0])
    while px < p:
        free = np.flatnonzero(x < hi_a)
        cand = np.repeat(x[None, :], free.size, axis=0)
        cand[np.arange(free.size), free] += 1
        pc = f(cand)
        per = np.maximum(c[free], 1e-12)
        score = (pc - px) / per
        if not np.any(score > 1e-15):
            score = mu[free] / per
        j = int(np.argmax(score))
        x, px = cand[j], float(pc[j])
    # 2) local improvement: remove one site, or move one site between regions
    improved = True
    while improved:
        improved = False
        moves = [(-1, r, None) for r in range(n_r)] + [
            (0, r, s) for r, s in itertools.permutations(range(n_r), 2)
        ]
        cand, ok = [], []
        for _kind, r, s in moves:
            y = x.copy()
            y[r] -= 1
            if s is not None:
                y[s] += 1
            if (y >= lo_a).all() and (y <= hi_a).all() and key(y) < key(x):
                cand.append(y)
        if cand:
            arr = np.array(cand)
            pc = f(arr)
            ok = [i for i in range(len(cand)) if pc[i] >= p]
            if ok:
                i = min(ok, key=lambda i: key(arr[i]))
                x, px, improved = arr[i], float(pc[i]), True
    best_x, best_p = x.copy(), px
    best_key = key(x)

    # 3) exact: vectorised enumeration of every allocation whose key can beat the incumbent, the last
    # region by bisection (recruitment/enumeration.py); depth-first branch and bound if that is too big
    from hn005_sim.recruitment.enumeration import BudgetExceeded, cheapest_below

    try:
        got = cheapest_below(f.fn, lo_a, hi_a, ci, p, best_key,
                             max_evaluations=max(0, max_evaluations - f.evaluations))
    except BudgetExceeded as exc:  # the incumbent stands, not proved optimal
        return SearchResult(best_x, best_p, True, False, f.evaluations + exc.evaluations)
    if got is not None:
        y, py, n_eval = got
        f.evaluations += n_eval
        if key(y) < best_key or (key(y) == best_key and py > best_p):
            best_x, best_p = y, py
        return SearchResult(best_x, best_p, True, True, f.evaluations)
    order = sorted(range(n_r), key=lambda r: (c[r] / mu[r] if mu[r] > 0 else math.inf, r))
    exhausted = False

    def dfs(depth: int, alloc: np.ndarray) -> None:
        nonlocal best_x, best_p, best_key, exhausted
        if f.evaluations > max_evaluations:
            exhausted = True
            return
        r = order[depth]
        rest = order[depth + 1 :]
        rest_lo = alloc.copy()
        rest_hi = alloc.copy()
        rest_lo[rest] = lo_a[rest]
        rest_hi[rest] = hi_a[rest]
        counts = np.arange(lo_a[r], hi_a[r] + 1)
        base_cost = int(ci @ rest_lo) - int(ci[r]) * int(rest_lo[r])
        base_sites = int(rest_lo.sum()) - int(rest_lo[r])
        counts = np.array(
            [n for n in counts if (base_cost + int(ci[r]) * int(n), base_sites + int(n)) <= best_key],
            dtype=int,
        )
        if counts.size == 0:
            return
        # (b) feasible with the rest at their maximum, and (c) with the rest at their minimum
        high = np.repeat(rest_hi[None, :], counts.size, axis=0)
        high[:, r] = counts
        low = np.repeat(rest_lo[None, :], counts.size, axis=0)
        low[:, r] = counts
        p_high = f(high)
        p_low = f(low) if rest else p_high
        for i, n in enumerate(counts):
            if p_high[i] < p:
                continue
            here = low[i]
            if key(here) > best_key:
                break
            if p_low[i] >= p:
                if key(here) < best_key or (key(here) == best_key and p_low[i] > best_p):
                    best_x, best_p, best_key = here.copy(), float(p_low[i]), key(here)
                break
            if rest:
                nxt = alloc.copy()
                nxt[r] = n
                dfs(depth + 1, nxt)

    dfs(0, lo_a.copy())
    return SearchResult(best_x, best_p, True, not exhausted, f.evaluations)


def greedy_path(
    prob: ProbFn, lo: np.ndarray, hi: np.ndarray, cost: np.ndarray, mean: np.ndarray
) -> list[np.ndarray]:
    """Allocations from lo to hi, one site added per step where it raises P(success) most per unit cost.

    Used for the multi-region curve.csv (success probability by total number of sites).
    """
    x = lo.astype(int).copy()
    path = [x.copy()]
    px = float(prob(x[None, :])[0])
    per = np.maximum(cost, 1e-12)
    while (x < hi).any():
        free = np.flatnonzero(x < hi)
        cand = np.repeat(x[None, :], free.size, axis=0)
        cand[np.arange(free.size), free] += 1
        pc = prob(cand)
        score = (pc - px) / per[free]
        if not np.any(score > 1e-12):
            score = mean[free] / per[free]
        j = int(np.argmax(score))
        x, px = cand[j], float(pc[j])
        path.append(x.copy())
    return path


# -------------------------------------------------------------------------------------- Monte Carlo


@dataclass(frozen=True)
class Simulated:
    """Monte Carlo estimates for each allocation (rows) of the same plan, common random numbers."""

    probability: np.ndarray
    standard_error: np.ndarray
    mean: np.ndarray
    variance: np.ndarray
    zero_enrolled_fraction: np.ndarray  # share of sites (that opened or not) enrolling no one
    time_to_target: np.ndarray  # months, for the LAST allocation; inf when not reached within 10 T
    replicates: int


def simulate(
    groups: Sequence[A.SiteGroup],
    allocations: np.ndarray,
    target: int,
    horizon: float,
    replicates: int,
    seed: int,
) -> Simulated:
    """Vectorised Monte Carlo of the Poisson-gamma plan, independent of the closed forms.

    For every replicate and site up to the largest allocation: rate ~ Gamma(a, b) (`sites` stream),
    start-up from the registry distribution's own sampler and never-open ~ Bernoulli, enrolments
    ~ Poisson(rate x exposure) and those that count ~ Binomial(enrolments, 1 - dropout) (`arrivals`
    stream). An allocation uses the first n_r sites of each region, so all allocations share the same
    draws (a site more never lowers a replicate's count). Time to target for the last allocation: the
    N-th event of a Poisson process with cumulative intensity L(t) = sum_i rate_i (1-d) E_i(t) is
    L^-1(Gamma(N, 1)) (time change), found by bisection.
    """
    allocs = np.atleast_2d(np.asarray(allocations, dtype=int))
    n_max = allocs.max(axis=0)
    r_sites, r_arr = stream(seed, 0, "sites"), stream(seed, 0, "arrivals")
    cum_counts, all_counts, rates, acts, starts = [], [], [], [], []
    for g, n in zip(groups, n_max, strict=True):
        shape = (replicates, int(n))
        if g.rate_variance == 0:
            lam = np.full(shape, g.rate_mean)
        else:
            a, b = A.gamma_params(g.rate_mean, g.rate_variance)
            lam = r_sites.gamma(a, 1 / b, shape)
        act = g.activation
        if act.dist is None:
            u = np.zeros(shape)
        else:
            u = act.dist.sample(r_sites, int(np.prod(shape))).reshape(shape) * act.scale
        u = np.where(r_sites.random(shape) < act.never_open, np.inf, u)
        exposure = act.exposure(u, horizon)
        counts = r_arr.poisson(lam * exposure)
        kept = r_arr.binomial(counts, 1 - g.dropout)
        all_counts.append(kept)
        cum_counts.append(
            np.concatenate([np.zeros((replicates, 1), dtype=np.int64), np.cumsum(kept, axis=1)], axis=1)
        )
        rates.append(lam * (1 - g.dropout))
        acts.append(act)
        starts.append(u)
    prob, se, mean, var, zero = [], [], [], [], []
    for row in allocs:
        total = sum(cc[:, n] for cc, n in zip(cum_counts, row, strict=True))
        ok = total >= target
        pr = float(ok.mean())
        prob.append(pr)
        se.append(math.sqrt(max(pr * (1 - pr), 0.25 / replicates) / replicates))
        mean.append(float(total.mean()))
        var.append(float(total.var(ddof=1)))
        z = [(k[:, :n] == 0).sum() for k, n in zip(all_counts, row, strict=True)]
        zero.append(float(sum(z) / max(1, replicates * int(row.sum()))))
    last = allocs[-1]
    need = r_arr.gamma(target, 1.0, replicates) if target > 0 else np.zeros(replicates)

    def intensity(t: np.ndarray) -> np.ndarray:
        out = np.zeros(replicates)
        for r, a, s, n in zip(rates, acts, starts, last, strict=True):
            if n:
                out += (r[:, :n] * _exposure_at(a, s[:, :n], t)).sum(axis=1)
        return out

    t_hi = np.full(replicates, 10 * horizon)
    reached = intensity(t_hi) >= need
    lo_t, hi_t = np.zeros(replicates), t_hi.copy()
    for _ in range(50):  # bisection to 10 T / 2^50 months
        mid = (lo_t + hi_t) / 2
        up = intensity(mid) >= need
        hi_t = np.where(up, mid, hi_t)
        lo_t = np.where(up, lo_t, mid)
    ttt = np.where(reached, hi_t, np.inf)
    return Simulated(
        np.array(prob), np.array(se), np.array(mean), np.array(var), np.array(zero), ttt, replicates
    )


def _exposure_at(act: A.Activation, start: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Exposure by per-replicate times t (column vector broadcast over sites)."""
    end = t[:, None] if act.close_month is None else np.minimum(t[:, None], act.close_month)
    d = np.maximum(end - np.maximum(start, 0.0), 0.0)
    r = act.ramp_up_months
    return d if r <= 0 else np.where(d >= r, d - r / 2, d * d / (2 * r))


# ------------------------------------------------------------------------------- the whole answer

DIFFERENCES = (
    "the closed form and the Poisson-gamma simulation count every enrolment up to the deadline; the "
    "scenario DES (`hn005-sim run`) stops recruiting at the target, so its costs per patient are lower",
    "screening takes time in the DES (consent to decision, lab window re-tests), so an enrolment counts "
    "later than its referral; here it counts at once",
    "screening capacity per site caps the DES's throughput; here a site's rate has no cap",
    "seasonal dips (e.g. Spring Festival) and re-screening of failures are in the DES only",
)


def _quantiles(x: np.ndarray, probs: Sequence[float]) -> list[float | None]:
    """Lower empirical quantiles; None where the quantile is not reached (inf)."""
    s = np.sort(x)
    out: list[float | None] = []
    for q in probs:
        v = float(s[min(s.size - 1, max(0, math.ceil(q * s.size) - 1))])
        out.append(round(v, 4) if math.isfinite(v) else None)
    return out


@dataclass(frozen=True)
class SitesAnswer:
    summary: dict[str, Any]
    curve: list[dict[str, Any]]
    curve_columns: list[str]


def plan_sites(
    plan: Plan,
    method: Method = "analytic",
    seed: int = 0,
    replicates: int = 20_000,
    max_evaluations: int = 10_000,
) -> SitesAnswer:
    """Answer the planning question: the allocation, its figures, the curve, and (des/both) simulation."""
    groups = site_groups(plan)
    costs = site_costs(plan, groups)
    c = np.array([x.per_site for x in costs])
    names = [r.name for r in plan.regions]
    lo = np.array([r.bounds[0] for r in plan.regions])
    hi = np.array([r.bounds[1] for r in plan.regions])
    curve_hi = np.array(
        [r.sites_max if r.sites_max is not None else max(2 * (r.sites or 0), 1) for r in plan.regions]
    )
    curve_lo = np.array(
        [r.sites_min if r.sites is None or r.sites_max is not None else 0 for r in plan.regions]
    )
    curve_hi = np.maximum(curve_hi, hi)
    curve_lo = np.minimum(curve_lo, lo)
    T, N, p = plan.duration_months, plan.target, plan.probability
    ev = A.Evaluator(tuple(groups), N, T, tuple(int(h) for h in curve_hi))
    mu = ev.site_moments[:, 0]
    fixed = bool((lo == hi).all())
    res = optimise(ev.probability, lo, hi, c, mu, p, max_evaluations)
    alloc = res.allocation

    def figures(x: np.ndarray) -> dict[str, Any]:
        full = [g.with_sites(int(n)) for g, n in zip(groups, x, strict=True)]
        m, v = A.moments(full, T)
        q10, q50, q90 = A.enrolled_quantiles(full, T, (0.1, 0.5, 0.9))
        return {
            "allocation": dict(zip(names, (int(n) for n in x), strict=True)),
            "total_sites": int(x.sum()),
            "expected_enrolled": m,
            "variance_enrolled": v,
            "probability_of_success": A.success_probability(full, N, T),
            # P(S > N), ClinicalTrialOptm.jl's "probability of success" (its ccdf at the target)
            "probability_more_than_target": A.success_probability(full, N + 1, T),
            "enrolled_by_deadline": {"p10": q10, "p50": q50, "p90": q90},
            "expected_cost": float(c @ x),
        }

    best = figures(alloc)
    full = [g.with_sites(int(n)) for g, n in zip(groups, alloc, strict=True)]
    ttt = A.time_to_target_quantiles(full, N, (0.1, 0.5, 0.9)) if alloc.sum() else [None] * 3
    approximations: dict[str, Any] = {}
    for kind in ("normal", "gamma", "negbin"):
        entry: dict[str, Any] = {"probability_at_allocation": ev.approx_probability(alloc[None, :], kind)[0]}  # type: ignore[arg-type]
        if not fixed:
            r2 = optimise(lambda a, k=kind: ev.approx_probability(a, k), lo, hi, c, mu, p, max_evaluations)
            entry["allocation"] = dict(zip(names, (int(n) for n in r2.allocation), strict=True))
            entry["expected_cost"] = float(c @ r2.allocation)
            entry["exact_probability_of_that_allocation"] = float(ev.probability(r2.allocation[None, :])[0])
        approximations[kind] = entry
    summary: dict[str, Any] = {
        "method": method,
        "question": "evaluate" if fixed else "optimise",
        "plan": plan.name,
        "target": N,
        "duration_months": T,
        "required_probability": p,
        "feasible": bool(res.feasible and best["probability_of_success"] >= p - 1e-9),
        **best,
        "time_to_target_months": dict(zip(("p10", "p50", "p90"), ttt, strict=True)),
        "regions": {
            r.name: {
                "sites": int(n),
                "sites_min": int(a),
                "sites_max": int(b),
                "rate_mean": r.rate_mean,
                "rate_variance": r.rate_variance,
                "dropout": r.dropout,
                "never_open": r.never_open,
                "expected_months_open_per_site": k.months_open,
                "expected_enrolments_per_site": k.enrolments,
                "expected_paid_patients_per_site": k.paid_patients,
                "expected_cost_per_site": k.per_site,
                "expected_counted_per_site": float(m),
            }
            for r, n, a, b, k, m in zip(plan.regions, alloc, lo, hi, costs, mu, strict=True)
        },
        "search": {
            "algorithm": "greedy + local improvement, then a vectorised enumeration of every allocation "
            "that could be cheaper (proof of optimality) on the exact distribution",
            "proved_optimal": res.proved_optimal,
            "proof_budget_evaluations": max_evaluations,
            "evaluations": res.evaluations,
            "fft_length": ev.length,
        },
        "approximations": approximations,
        "currency": plan.currency,
        "patient_cost_basis": plan.patient_cost_basis,
        "cost_formula": "sites x (cost_startup + cost_per_month x E[months open] + cost_per_patient x "
        + ("E[patients per site retained after dropout by the deadline]" if plan.patient_cost_basis ==
           "retained" else "E[enrolments per site by the deadline, dropouts included]")
        + "); patients beyond the target are paid for",
    }
    if plan.derivation:
        summary["derivation"] = dict(plan.derivation)
        current = plan.derivation.get("scenario_sites")
        if current:
            x = np.array([current.get(n, 0) for n in names])
            full_c = [g.with_sites(int(n)) for g, n in zip(groups, x, strict=True)]
            summary["scenario_network"] = {
                "allocation": current,
                "probability_of_success": A.success_probability(full_c, N, T),
                "expected_enrolled": A.moments(full_c, T)[0],
            }

    # curve: success probability by number of sites
    multi = len(groups) > 1
    if multi:
        path = greedy_path(ev.probability, curve_lo, curve_hi, c, mu)
    else:
        path = [np.array([n]) for n in range(int(curve_lo[0]), int(curve_hi[0]) + 1)]
    allocs = np.array(path)
    p_an = ev.probability(allocs)
    mean_an, var_an = ev.moments(allocs)
    p_norm = ev.approx_probability(allocs, "normal")
    p_gam = ev.approx_probability(allocs, "gamma")
    lead = ["total_sites", *[f"sites_{n}" for n in names]] if multi else ["sites"]
    columns = [
        *lead,
        "probability_of_success",
        "expected_enrolled",
        "variance_enrolled",
        "expected_cost",
        "probability_normal_approx",
        "probability_gamma_approx",
        "standard_error",
        "method",
    ]

    def row(x, prob, mean, var, pn, pg, se, how):
        head = [int(x.sum()), *(int(v) for v in x)] if multi else [int(x[0])]
        return dict(zip(columns, [*head, prob, mean, var, float(c @ x), pn, pg, se, how], strict=True))

    curve = [
        row(x, float(a), float(m), float(v), float(pn), float(pg), None, "analytic")
        for x, a, m, v, pn, pg in zip(allocs, p_an, mean_an, var_an, p_norm, p_gam, strict=True)
    ]

    if method in ("des", "both"):
        sim_allocs = np.vstack([allocs, alloc[None, :]])
        sim = simulate(groups, sim_allocs, N, T, replicates, seed)
        curve += [
            row(x, float(a), float(m), float(v), None, None, float(se), "des")
            for x, a, m, v, se in zip(
                allocs,
                sim.probability[:-1],
                sim.mean[:-1],
                sim.variance[:-1],
                sim.standard_error[:-1],
                strict=True,
            )
        ]
        p_sim, se_sim = float(sim.probability[-1]), float(sim.standard_error[-1])
        z = (p_sim - best["probability_of_success"]) / se_sim
        t10, t50, t90 = _quantiles(sim.time_to_target, (0.1, 0.5, 0.9))
        des: dict[str, Any] = {
            "model": "vectorised Monte Carlo of the same Poisson-gamma plan (rates, start-up, Poisson "
            "counts, "
            "binomial dropout); common random numbers across allocations",
            "replicates": replicates,
            "seed": seed,
            "allocation": best["allocation"],
            "probability_of_success": p_sim,
            "standard_error": se_sim,
            "expected_enrolled": float(sim.mean[-1]),
            "variance_enrolled": float(sim.variance[-1]),
            "sites_zero_enrolled_fraction": float(sim.zero_enrolled_fraction[-1]),
            "time_to_target_months": {
                "p10": t10,
                "p50": t50,
                "p90": t90,
                "reached_fraction_by_deadline": float((sim.time_to_target <= T).mean()),
            },
            "analytic_minus_des_in_standard_errors": -z,
            "agrees_within_4_standard_errors": bool(abs(z) <= 4),
            "differences_from_scenario_des": list(DIFFERENCES),
        }
        if not multi:
            ok = np.flatnonzero(sim.probability[:-1] >= p)
            des["minimum_sites_by_simulation"] = int(allocs[ok[0], 0]) if ok.size else None
        summary["des"] = des
        if method == "des":
            # the simulated figures lead; one region: the smallest count the simulation finds enough
            if not multi and des["minimum_sites_by_simulation"] is not None and not fixed:
                n = des["minimum_sites_by_simulation"]
                k = int(np.flatnonzero(allocs[:, 0] == n)[0])
                summary["allocation"] = {names[0]: n}
                summary["total_sites"] = n
                summary["expected_cost"] = float(c[0] * n)
                summary["probability_of_success"] = float(sim.probability[k])
                summary["expected_enrolled"] = float(sim.mean[k])
                summary["variance_enrolled"] = float(sim.variance[k])
                summary["feasible"] = True
            else:
                summary["probability_of_success"] = p_sim
                summary["expected_enrolled"] = float(sim.mean[-1])
                summary["variance_enrolled"] = float(sim.variance[-1])
            summary["analytic"] = best
    return SitesAnswer(summary, curve, columns)


def scenario_with_allocation(scenario, allocation: dict[str, int]):
    """The scenario with each region's site count set to the allocation's (names REGION-1.. where the
    count changes), for the full scenario simulation of a site answer."""
    rec = scenario.recruitment
    regions = []
    for r in rec.regions:
        n = int(allocation.get(r.name, r.sites))
        regions.append(r if n == r.sites else r.model_copy(update={"sites": n, "site_names": None}))
    return scenario.model_copy(update={"recruitment": rec.model_copy(update={"regions": regions})})


def scenario_check(scenario, allocation: dict[str, int], replicates: int, seed: int, jobs: int = 1,
                   analytic_probability: float | None = None) -> dict[str, Any]:
    """The answer's allocation run through the scenario's own DES (`run`: screening time, capacity,
    seasonal dips, lab re-tests, re-screening, stopping at the target), recruitment only."""
    from hn005_sim.montecarlo import run_scenario

    sc = scenario_with_allocation(scenario, allocation).model_copy(update={"supply": None})
    rec = sc.recruitment
    if rec.horizon_months.value < sc.trial.deadline_months:  # simulate at least to the deadline
        horizon = rec.horizon_months.model_copy(update={"value": float(sc.trial.deadline_months)})
        sc = sc.model_copy(update={"recruitment": rec.model_copy(update={"horizon_months": horizon})})
    res = run_scenario(sc, replicates, seed, jobs=jobs)
    p = float(res.summary["prob_target_by_deadline"])
    se = math.sqrt(max(p * (1 - p), 1e-12) / replicates)
    out: dict[str, Any] = {
        "allocation": dict(allocation),
        "replicates": replicates,
        "probability_of_success": p,
        "standard_error": se,
        "time_to_target_months": res.summary["time_to_target_months"],
        "enrolled_by_deadline": res.summary["enrolled_by_deadline"],
        "models_beyond_the_closed_form": list(DIFFERENCES),
    }
    if analytic_probability is not None:
        out["analytic_minus_scenario_des"] = analytic_probability - p
    return out
