"""The cost-minimal allocation: per-site costs and the search (`optimise`).

The search finds the allocation with the least expected cost such that P(enrolled >= target by T) >= p,
the probability judged on the exact distribution (analytic.Evaluator). Expected cost of an allocation =
sum_r n_r c_r with the per-site cost
    c_r = cost_startup + cost_per_month x E[months open] + cost_per_patient x E[enrolments per site],
so the objective is linear and the constraint monotone (a site more never lowers the probability):
a greedy start, local improvement, then an exact search that proves optimality within its budget
(recruitment/enumeration.py; docs/recruitment_analytic.md).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from hn005_sim.recruitment import analytic as A
from hn005_sim.recruitment.plan import Plan

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


