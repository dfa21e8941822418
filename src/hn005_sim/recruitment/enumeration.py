"""Exact cheapest feasible allocation by vectorised enumeration below an incumbent (planning.optimise,
step 3).

Problem: minimise (cost . n, sum n) lexicographically over integers lo <= n <= hi with P(n) >= p, P
monotone (a site more never lowers it). Given an incumbent key U = (cost, sites) of a feasible allocation:

1. **Prefixes.** Every allocation of all regions but one (the last: the one with the widest range) whose
   key with the last region at its minimum does not exceed U, built region by region with numpy
   (np.repeat); rows whose lower key already exceeds U are dropped at every step, and (once there are
   many) rows infeasible even with every remaining region at the most sites the remaining budget buys.
2. **Last region by bisection.** For each prefix the smallest feasible count of the last region is found
   by bisection (P is monotone in it), all prefixes at once: about log2(range) vectorised evaluations.
   The last count is capped where the key would exceed U; a prefix infeasible at that cap is dropped.
3. The cheapest (cost, sites; ties: the higher probability) of prefix + its smallest feasible count is
   the optimum: any feasible
   allocation with a key <= U has its prefix in the list, and its last count can only be lowered to
   the smallest feasible one, which lowers its key.

The work is (prefixes) x (log2 range + 1) evaluations in a few large batches, rather than one Python
call per branch-and-bound node; it returns None when the prefixes would exceed `max_rows` (the caller
falls back to depth-first branch and bound).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ProbFn = Callable[[np.ndarray], np.ndarray]


class BudgetExceeded(Exception):
    """The proof would take more than `max_evaluations` evaluations; `evaluations` were spent."""

    def __init__(self, evaluations: int):
        super().__init__(evaluations)
        self.evaluations = evaluations


def _le(cost: np.ndarray, sites: np.ndarray, bound: tuple[int, int]) -> np.ndarray:
    """(cost, sites) <= bound lexicographically, elementwise."""
    return (cost < bound[0]) | ((cost == bound[0]) & (sites <= bound[1]))


def cheapest_below(
    prob: ProbFn,
    lo: np.ndarray,
    hi: np.ndarray,
    ci: np.ndarray,
    p: float,
    bound: tuple[int, int],
    max_rows: int = 3_000_000,
    chunk: int = 200_000,
    max_evaluations: int | None = None,
) -> tuple[np.ndarray, float, int] | None:
    """(allocation, its probability, evaluations) of the least (cost, sites) feasible allocation with a key
    <= bound; `ci` integer costs. None when too many prefixes; BudgetExceeded when the proof would take
    more than `max_evaluations` evaluations (see module docstring)."""
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    n_r = lo.size
    last = int(np.argmax(hi - lo))
    others = [r for r in range(n_r) if r != last]
    # prefix rows over `others` (columns in region order), with the running key of prefix + rest at lo
    rows = np.zeros((1, n_r), dtype=np.int64)
    rows[0] = lo
    cost = np.array([int(ci @ lo)], dtype=np.int64)
    sites = np.array([int(lo.sum())], dtype=np.int64)
    evaluations = 0

    def evaluate(allocs: np.ndarray) -> np.ndarray:
        nonlocal evaluations
        if max_evaluations is not None and evaluations + allocs.shape[0] > max_evaluations:
            raise BudgetExceeded(evaluations)
        evaluations += allocs.shape[0]
        return np.concatenate([prob(allocs[s : s + chunk]) for s in range(0, allocs.shape[0], chunk)])

    def within_budget(rows, cost, rest) -> np.ndarray:
        """Rows still feasible with every region in `rest` at the most sites the remaining budget buys
        (monotone: no completion within the incumbent's cost does better)."""
        top = rows.copy()
        for j in rest:
            most = np.full(rows.shape[0], hi[j])
            if ci[j] > 0:
                most = np.minimum(most, lo[j] + np.maximum(bound[0] - cost, 0) // int(ci[j]))
            top[:, j] = most
        return evaluate(top) >= p

    return _search(rows, cost, sites, others, last, lo, hi, ci, p, bound, max_rows, evaluate, within_budget,
                   lambda: evaluations)


def _search(rows, cost, sites, others, last, lo, hi, ci, p, bound, max_rows, evaluate, within_budget, used):
    for depth, r in enumerate(others):
        k = int(hi[r] - lo[r]) + 1
        if rows.shape[0] * k > max_rows:
            return None
        extra = np.arange(k, dtype=np.int64)
        rows = np.repeat(rows, k, axis=0)
        add = np.tile(extra, cost.size)
        rows[:, r] += add
        cost = np.repeat(cost, k) + add * int(ci[r])
        sites = np.repeat(sites, k) + add
        keep = _le(cost, sites, bound)
        rows, cost, sites = rows[keep], cost[keep], sites[keep]
        if rows.shape[0] > 2_000 and depth < len(others) - 1:
            keep = within_budget(rows, cost, [*others[depth + 1 :], last])
            rows, cost, sites = rows[keep], cost[keep], sites[keep]
        if rows.shape[0] == 0:
            return None

    # the most sites the last region may add within the incumbent's key
    cap = np.full(rows.shape[0], hi[last])
    c_last = int(ci[last])
    if c_last > 0:
        cap = np.minimum(cap, lo[last] + (bound[0] - cost) // c_last)
    else:
        cap = np.where(cost == bound[0], np.minimum(cap, lo[last] + bound[1] - sites), cap)
    keep = cap >= lo[last]
    rows, cost, sites, cap = rows[keep], cost[keep], sites[keep], cap[keep]
    # feasible at all with the last region at that most?
    top = rows.copy()
    top[:, last] = cap
    p_top = evaluate(top)
    ok = p_top >= p
    rows, cost, sites, cap = rows[ok], cost[ok], sites[ok], cap[ok]
    if rows.shape[0] == 0:
        return None
    a = np.full(rows.shape[0], lo[last])  # invariant: answer in [a, b], b feasible
    b = cap.copy()
    p_b = p_top[ok]
    while True:
        open_ = np.flatnonzero(a < b)
        if open_.size == 0:
            break
        mid = (a[open_] + b[open_]) // 2
        trial = rows[open_].copy()
        trial[:, last] = mid
        pm = evaluate(trial)
        good = pm >= p
        b[open_[good]] = mid[good]
        p_b[open_[good]] = pm[good]
        a[open_[~good]] = mid[~good] + 1
    rows[:, last] = b
    total_cost = cost + (b - lo[last]) * int(ci[last])
    total_sites = sites + (b - lo[last])
    # least cost, then fewest sites, then the highest probability
    order = np.lexsort((-p_b, total_sites, total_cost))
    best = int(order[0])
    if not _le(total_cost[best : best + 1], total_sites[best : best + 1], bound)[0]:
        return None
    return rows[best].astype(int), float(p_b[best]), used()
