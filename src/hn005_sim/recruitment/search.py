"""Site allocations judged by the scenario's own simulation (`hn005-sim sites SCENARIO`, method `full`).

The analytic Poisson-gamma answer (planning.plan_sites) leaves out screening time, screening capacity,
seasonal dips, lab re-tests and re-screening, so the full DES (`hn005-sim run`) can fall short of it. This
module searches allocations with the DES itself:

1. **Start from the analytic answer** a0 (cost-minimal on the exact Poisson-gamma distribution) and
   simulate every region up to a cap c_r = min(sites_max_r, a0_r + max(3, ceil(a0_r / 2))) sites, `replicates`
   replicates, recruiting to the deadline without stopping at the target.
2. **Common random numbers.** Each site has its own streams keyed by (region, position in the region)
   (recruitment.sites), and sites do not interact until the stop at the target, which only comes after
   the target is reached. So for ANY allocation x <= c, replicate i reaches the target by the deadline
   in the DES of that allocation exactly when sum_r (enrolled by the deadline at the first x_r sites of
   region r in replicate i) >= target. One simulation at the caps judges every allocation below them on
   the same draws, and `hn005-sim run` of the answer (answer.toml, same seed and replicates)
   reproduces the simulated probability exactly.
3. **Acceptance rule (Monte Carlo error accounted for).** An allocation is accepted when the lower end of
   the two-sided 90% Wilson interval of its simulated P(target by deadline) is >= p - 0.01. With 400
   replicates and p = 0.8 that asks for a simulated P of about 0.82.
4. **Search.** The accepted set is monotone (a site more never lowers a replicate's count, and the
   Wilson lower end rises with the estimate), so planning.optimise (greedy, local improvement, branch
   and bound) finds the cost-minimal accepted allocation under the caps, exactly for these replicates.
   When the answer touches a cap below sites_max, or nothing under the caps is accepted, the caps are
   doubled (up to sites_max) and the simulation repeated.
Costs are the planning convention's linear per-site expected costs (planning.site_costs); without costs
the fewest sites win.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hn005_sim.recruitment import planning as P
from hn005_sim.recruitment.config import MONTH_DAYS

INTERVAL = 0.90
"""Two-sided level of the Wilson interval whose lower end is compared with p - TOLERANCE."""
TOLERANCE = 0.01
"""Slack on the required probability: accept when lower end >= p - TOLERANCE."""
Z = 1.6448536269514722  # standard normal quantile at (1 + INTERVAL) / 2
RULE = (f"accept when the lower end of the two-sided {INTERVAL:.0%} Wilson interval of the simulated "
        f"P(target by deadline) >= required probability - {TOLERANCE:g}")


def wilson_interval(p_hat: np.ndarray | float, n: int, z: float = Z) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion (Wilson 1927, JASA 22:209)."""
    p = np.asarray(p_hat, dtype=float)
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


@dataclass
class SiteCounts:
    """Enrolled by the deadline at each simulated site, per replicate: one (replicates, cap_r) array per
    region, sites in configuration order (the first x_r make an allocation's region)."""

    counts: list[np.ndarray]
    caps: np.ndarray
    replicates: int
    seed: int

    def cumulative(self) -> list[np.ndarray]:
        return [np.concatenate([np.zeros((c.shape[0], 1), np.int64), np.cumsum(c, axis=1)], axis=1)
                for c in self.counts]


def simulate_site_counts(scenario, caps: np.ndarray, replicates: int, seed: int, jobs: int = 1) -> SiteCounts:
    """Run the scenario's DES with every region at its cap, recruiting to the deadline without the stop at
    the target (target set above anything reachable), and count each site's enrolments by the deadline."""
    from hn005_sim.montecarlo import run_scenario

    rec = scenario.recruitment
    names = [r.name for r in rec.regions]
    sc = P.scenario_with_allocation(scenario, dict(zip(names, (int(c) for c in caps), strict=True)))
    deadline = float(scenario.trial.deadline_months)
    r = sc.recruitment
    horizon = r.horizon_months.model_copy(update={"value": deadline})
    unreachable = int(sum(caps)) * 10_000 + 1
    trial = sc.trial.model_copy(update={"target_enrolled": unreachable})
    sc = sc.model_copy(update={"supply": None, "trial": trial,
                               "recruitment": r.model_copy(update={"horizon_months": horizon})})
    offsets = np.concatenate([[0], np.cumsum(caps)]).astype(int)
    table = np.zeros((replicates, int(offsets[-1])), np.int64)
    deadline_day = deadline * MONTH_DAYS

    def collect(record) -> None:
        upto = int(np.searchsorted(record.enrol_day, deadline_day, side="right"))
        table[record.replicate] = np.bincount(record.enrol_site[:upto], minlength=table.shape[1])

    run_scenario(sc, replicates, seed, jobs=jobs, on_record=collect)
    counts = [table[:, offsets[i]:offsets[i + 1]] for i in range(len(names))]
    return SiteCounts(counts, np.asarray(caps, int), replicates, seed)


class SimulatedProbability:
    """P(target by deadline) of allocations from one SiteCounts (common random numbers)."""

    def __init__(self, sc: SiteCounts, target: int):
        self.cum = sc.cumulative()
        self.target = target
        self.n = sc.replicates

    def estimate(self, allocs: np.ndarray) -> np.ndarray:
        allocs = np.atleast_2d(np.asarray(allocs, dtype=int))
        out = np.empty(allocs.shape[0])
        for i, x in enumerate(allocs):
            total = sum(c[:, n] for c, n in zip(self.cum, x, strict=True))
            out[i] = float(np.mean(total >= self.target))
        return out

    def score(self, allocs: np.ndarray) -> np.ndarray:
        """Wilson lower end + TOLERANCE: accepted when >= p (monotone in the allocation)."""
        return wilson_interval(self.estimate(allocs), self.n)[0] + TOLERANCE


def _caps(a0: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.minimum(hi, a0 + np.maximum(3, np.ceil(a0 / 2).astype(int)))


def full_model_search(scenario, plan: P.Plan, analytic: dict[str, Any], replicates: int, seed: int,
                      jobs: int = 1) -> dict[str, Any]:
    """The cheapest allocation the scenario's own simulation accepts (module docstring), as a summary
    block: the answer, its simulated P with its 90% interval, the analytic start and how it fared."""
    names = [r.name for r in plan.regions]
    groups = P.site_groups(plan)
    cost = np.array([k.per_site for k in P.site_costs(plan, groups)])
    mu = np.array([g.site_moments(plan.duration_months)[0] for g in groups])
    lo = np.array([r.bounds[0] for r in plan.regions])
    hi = np.array([r.bounds[1] for r in plan.regions])
    a0 = np.array([analytic["allocation"][n] for n in names])
    p, target = plan.probability, plan.target
    caps = _caps(a0, hi)
    rounds = 0
    while True:
        rounds += 1
        counts = simulate_site_counts(scenario, caps, replicates, seed, jobs)
        sim = SimulatedProbability(counts, target)
        res = P.optimise(sim.score, lo, caps, cost, mu, p)
        at_cap = res.feasible and bool(((res.allocation == caps) & (caps < hi)).any())
        if (res.feasible and not at_cap) or (caps >= hi).all() or rounds >= 4:
            break
        caps = np.minimum(hi, 2 * caps + 1)
    x = res.allocation
    p_hat = float(sim.estimate(x)[0])
    low, high = wilson_interval(p_hat, replicates)
    p_a0 = float(sim.estimate(a0)[0])
    a0_low, _ = wilson_interval(p_a0, replicates)
    accepted = bool(res.feasible and float(low) >= p - TOLERANCE - 1e-12)
    full = [g.with_sites(int(n)) for g, n in zip(groups, x, strict=True)]
    from hn005_sim.recruitment import analytic as A

    total = sum(c[:, n] for c, n in zip(sim.cum, x, strict=True))
    return {
        "model": "the scenario's own DES (as `hn005-sim run`): screening time, capacity, seasonal dips, lab "
                 "re-tests, re-screening; common random numbers across allocations",
        "rule": RULE,
        "interval_level": INTERVAL,
        "tolerance": TOLERANCE,
        "replicates": replicates,
        "seed": seed,
        "accepted": accepted,
        "allocation": dict(zip(names, (int(n) for n in x), strict=True)),
        "total_sites": int(x.sum()),
        "probability_of_success": p_hat,
        "standard_error": math.sqrt(max(p_hat * (1 - p_hat), 1e-12) / replicates),
        "interval_90": [float(low), float(high)],
        "expected_cost": float(cost @ x),
        "expected_enrolled": float(total.mean()),
        "variance_enrolled": float(total.var(ddof=1)) if replicates > 1 else 0.0,
        "analytic_probability_of_that_allocation": A.success_probability(full, target, plan.duration_months),
        "analytic_start": {
            "allocation": dict(zip(names, (int(n) for n in a0), strict=True)),
            "analytic_probability": analytic["probability_of_success"],
            "simulated_probability": p_a0,
            "accepted": bool(float(a0_low) >= p - TOLERANCE - 1e-12),
        },
        "search": {
            "algorithm": "greedy + local improvement + branch and bound (planning.optimise) on the Wilson "
                         "lower end of the simulated probability",
            "simulated_sites_per_region": dict(zip(names, (int(c) for c in caps), strict=True)),
            "simulation_rounds": rounds,
            "allocations_judged": res.evaluations,
            "proved_optimal_for_these_replicates": bool(res.proved_optimal),
        },
    }


# ------------------------------------------------------------------------------------- files written


def answer_document(raw, scenario, allocation: dict[str, int], extends: str, note: str) -> dict[str, Any]:
    """answer.toml: a scenario that extends the input (`extends` is relative to the output folder) and
    lists every region (lists replace whole) with the answer's site count; the trial's target and
    deadline when the command line changed them; the horizon raised to the deadline if it was shorter."""
    import copy

    regions = copy.deepcopy(raw.data["recruitment"]["regions"])
    for r in regions:
        n = int(allocation[r["name"]])
        if r.get("site_names") is not None and len(r["site_names"]) != n:
            del r["site_names"]  # names become REGION-1.. (as scenario_with_allocation)
        r["sites"] = n
    doc: dict[str, Any] = {
        "extends": extends,
        "name": f"{scenario.name}_answer",
        "description": note,
    }
    base_trial = raw.data.get("trial", {})
    trial = {k: v for k, v in (("target_enrolled", scenario.trial.target_enrolled),
                               ("deadline_months", scenario.trial.deadline_months))
             if base_trial.get(k) != v}
    if trial:
        doc["trial"] = trial
    rec: dict[str, Any] = {}
    if scenario.recruitment.horizon_months.value < scenario.trial.deadline_months:
        rec["horizon_months"] = {"value": float(scenario.trial.deadline_months), "unit": "months",
                                 "source": "assumption: simulated at least to the deadline the answer is for"}
    rec["regions"] = regions
    doc["recruitment"] = rec
    return doc


def plan_document(plan: P.Plan, scenario, raw) -> dict[str, Any]:
    """plan.toml: the scenario's per-site enrolment rates as a planning file (the figures `sites SCENARIO`
    derives), so the planning-file route and the scenario route share one source of rates."""
    rec = scenario.recruitment
    raw_regions = {r["name"]: r for r in raw.data["recruitment"]["regions"]}
    trial = scenario.trial
    doc: dict[str, Any] = {
        "name": plan.name,
        "description": f"per-site enrolment rates derived from scenario '{scenario.name}' by hn005-sim sites "
                       "--write-plan",
        "duration_months": plan.duration_months,
        "target": plan.target,
        "probability": plan.probability,
        "patient_cost_basis": plan.patient_cost_basis,
    }
    if plan.currency:
        doc["currency"] = plan.currency
    doc["sources"] = {"duration_months": f"scenario trial.deadline_months ({trial.source})",
                      "target": f"scenario trial.target_enrolled ({trial.source})",
                      "probability": "assumption: the probability `sites` was asked for (default 0.8)"}
    regions = []
    for r, cfg in zip(plan.regions, rec.regions, strict=True):
        src = dict(r.sources)
        entry: dict[str, Any] = {"name": r.name, "rate_mean": r.rate_mean, "rate_variance": r.rate_variance,
                                 "never_open": r.never_open,
                                 "startup_days": raw_regions[r.name]["activation_delay_days"]}
        src["never_open"] = f"scenario never_activate ({cfg.never_activate.source})"
        if cfg.ramp_up_months is not None:
            entry["ramp_up_months"] = cfg.ramp_up_months.value
            src["ramp_up_months"] = cfg.ramp_up_months.source
        if cfg.close_month is not None:
            entry["close_month"] = cfg.close_month.value
            src["close_month"] = cfg.close_month.source
        entry.update(sites_min=r.sites_min, sites_max=r.sites_max)
        for k in ("cost_startup", "cost_per_month", "cost_per_patient"):
            if getattr(cfg, k) is not None:
                entry[k] = getattr(r, k)
        entry["sources"] = src
        regions.append(entry)
    doc["regions"] = regions
    return doc


def dumps(doc: dict[str, Any], header: str) -> str:
    """TOML text of a document (tomli-w: strings escaped, nothing of the input executed)."""
    import tomli_w

    lines = "".join(f"# {line}\n" for line in header.splitlines())
    return lines + tomli_w.dumps(doc)
