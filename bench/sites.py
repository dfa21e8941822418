"""Time of an analytic site search (issue 4 target: under 2 s).

    .venv/bin/python bench/sites.py [--plan plans/china_network.toml] [--repeats 5]

Prints, for the plan: the exact branch-and-bound search alone (greedy start, local improvement, proof of
optimality on the exact distribution), the whole `sites --method analytic` answer (search + the three
approximation searches for contrast + curve + time-to-target quantiles), and, for scale, a brute-force
enumeration of every allocation in the bounds with the same evaluator. Best of R runs; figures depend on
the machine and its load.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from hn005_sim.recruitment import analytic as A  # noqa: E402
from hn005_sim.recruitment import planning as P  # noqa: E402


def best_of(repeats: int, fn):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plan", default=str(ROOT / "plans" / "china_network.toml"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--brute-force", action="store_true", help="also time the full enumeration")
    args = ap.parse_args()
    plan = P.load_plan(args.plan)
    groups = P.site_groups(plan)
    cost = np.array([c.per_site for c in P.site_costs(plan, groups)])
    lo = np.array([r.bounds[0] for r in plan.regions])
    hi = np.array([r.bounds[1] for r in plan.regions])
    boxes = int(np.prod(hi - lo + 1))

    def search():
        # a fresh evaluator each time: the per-region PGFs on the FFT grid are part of the cost
        ev = A.Evaluator(tuple(P.site_groups(P.load_plan(args.plan))), plan.target, plan.duration_months,
                         tuple(int(h) for h in hi))
        return P.optimise(ev.probability, lo, hi, cost, ev.site_moments[:, 0], plan.probability), ev

    P.plan_sites(plan)  # warm-up: imports, first-call overheads
    t_search, (res, ev) = best_of(args.repeats, search)
    t_all, _ = best_of(args.repeats, lambda: P.plan_sites(P.load_plan(args.plan)))
    print(f"plan: {Path(args.plan).name}: {len(plan.regions)} regions, {boxes:,} allocations in the bounds, "
          f"target {plan.target} in {plan.duration_months:g} months, p >= {plan.probability:g}")
    print(f"allocation: {dict(zip([r.name for r in plan.regions], res.allocation.tolist(), strict=True))}, "
          f"P(success) = {res.probability:.4f}, proved optimal: {res.proved_optimal}, "
          f"{res.evaluations:,} allocations evaluated, FFT length {ev.length}")
    print(f"analytic site search (exact, branch and bound): {t_search:.3f} s   (target < 2 s)\n"
          f"BENCH sites_analytic_search {t_search:.3f} s target < 2")
    print(f"whole `sites --method analytic` answer:         {t_all:.3f} s\n"
          f"BENCH sites_analytic_answer {t_all:.3f} s")
    if args.brute_force:
        allocs = np.array(list(itertools.product(*[range(a, b + 1) for a, b in zip(lo, hi, strict=True)])))
        t_brute, _ = best_of(1, lambda: ev.probability(allocs))
        print(f"brute force over all {boxes:,} allocations:   {t_brute:.3f} s\n"
              f"BENCH sites_brute_force_{boxes}_allocations {t_brute:.3f} s")


if __name__ == "__main__":
    main()
