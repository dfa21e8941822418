"""Site planning: how many sites, in which regions, to reach the target by the deadline with probability p.

The concepts live in their own modules, re-exported here for the commands and tests that call
`planning.X`: the plan and planning files (`recruitment/plan.py`), costs and the cost-minimal search
(`recruitment/optimise.py`), the Monte Carlo check (`recruitment/plan_simulation.py`). This module
assembles the answer (`plan_sites`) and runs an allocation through a scenario's own simulation
(`scenario_check`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from hn005_sim.recruitment import analytic as A
from hn005_sim.recruitment.optimise import (
    ProbFn,
    SearchResult,
    SiteCost,
    _Counter,
    greedy_path,
    optimise,
    site_costs,
)
from hn005_sim.recruitment.plan import (
    _PLAN_FIGURES,
    _REGION_FIGURES,
    MAX_COST,
    MAX_MONTHS,
    MAX_RATE,
    MAX_RATE_CV,
    MAX_SITES,
    MAX_TARGET,
    Plan,
    RegionPlan,
    is_planning_file,
    load_plan,
    plan_from_scenario,
    screened_pass_probability,
    site_groups,
    with_overrides,
)
from hn005_sim.recruitment.plan_simulation import (
    Simulated,
    _exposure_at,
    simulate,
)

# the concepts' modules are re-exported: commands, tests and benchmarks call planning.X
__all__ = [
    "MAX_COST",
    "MAX_MONTHS",
    "MAX_RATE",
    "MAX_RATE_CV",
    "MAX_SITES",
    "MAX_TARGET",
    "MONTH_DAYS",
    "_PLAN_FIGURES",
    "_REGION_FIGURES",
    "Method",
    "Plan",
    "ProbFn",
    "RegionPlan",
    "SearchResult",
    "Simulated",
    "SiteCost",
    "SitesAnswer",
    "_Counter",
    "_exposure_at",
    "greedy_path",
    "is_planning_file",
    "load_plan",
    "optimise",
    "plan_from_scenario",
    "plan_sites",
    "scenario_check",
    "scenario_with_allocation",
    "screened_pass_probability",
    "simulate",
    "site_costs",
    "site_groups",
    "with_overrides",
]

Method = Literal["analytic", "des", "both"]
MONTH_DAYS = 30.4375

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
    time_to_target: bool = True,
) -> SitesAnswer:
    """Answer the planning question: the allocation, its figures, the curve, and (des/both) simulation.

    time_to_target: also the analytic quantiles of the months to reach the target at the allocation
    (summary key `time_to_target_months`; root finding, which imports scipy.optimize, ~0.25 s the first
    time). `run` shows only the curve and the allocation's figures and leaves them out; nothing else in
    the answer depends on them.
    """
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
    ttt: list[float | None] | None = None
    if time_to_target:
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
        **({} if ttt is None else
           {"time_to_target_months": dict(zip(("p10", "p50", "p90"), ttt, strict=True))}),
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
