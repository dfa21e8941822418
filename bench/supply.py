"""Benchmark: a full run (recruitment + treatment + supply) of 500 baseline replicates with --jobs 2
(target < 120 s, wall clock), and the supply model's CPU time per baseline replicate (target < 30 ms).

    .venv/bin/python bench/supply.py [--replicates 500] [--jobs 2]

Prints `BENCH <name> <value> <unit> target <op> <value>` lines (bench/run_all.py parses them) and the
run's supply figures (model outputs, shown for information: a stock-out probability is not a
performance target).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicates", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()

    from hn005_sim import rng
    from hn005_sim.montecarlo import run_scenario
    from hn005_sim.recruitment.candidates import candidate_source
    from hn005_sim.scenario.load import load_scenario
    from hn005_sim.supply.search import enrolments_for
    from hn005_sim.supply.simulate import simulate_replicate

    sc, _ = load_scenario(ROOT / "scenarios" / "baseline.toml")

    # the supply model alone, on the recruitment DES's enrolments, with the horizon `run` uses
    source = candidate_source(sc)
    streams = [enrolments_for(sc, 1, r, source) for r in range(30)]
    horizon = sc.recruitment.horizon_days
    simulate_replicate(sc, *streams[0], horizon, rng.stream(1, 0, "treatment"), rng.stream(1, 0, "supply"))
    # CPU time of this process: the figure does not depend on what else the (shared) machine runs
    t0 = time.process_time()
    recs = [simulate_replicate(sc, e, s, horizon, rng.stream(1, r, "treatment"), rng.stream(1, r, "supply"))
            for r, (e, s) in enumerate(streams)]
    per_ms = (time.process_time() - t0) / len(streams) * 1000
    cycles = sum(r.cycles_given for r in recs) / len(recs)
    print(f"supply model: {per_ms:.1f} ms CPU per replicate ({cycles:.0f} cycle visits on average)")
    print(f"BENCH supply_model_per_replicate {per_ms:.1f} ms target < 30")

    t0 = time.perf_counter()
    result = run_scenario(sc, args.replicates, 1, jobs=args.jobs)
    wall = time.perf_counter() - t0
    print(f"BENCH full_run_{args.replicates}_jobs{args.jobs} {wall:.1f} s target < 120")
    for drug, s in result.summary.get("supply", {}).items():
        print(f"  {drug}: packs to make p50/p90/p95 {s['units_p50']:.0f}/{s['units_p90']:.0f}/"
              f"{s['units_p95']:.0f}, P(stock-out) {s['stockout_probability']:.3f}, "
              f"waste p50 {s['waste_p50']:.0f}")


if __name__ == "__main__":
    main()
