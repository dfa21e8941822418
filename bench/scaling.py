"""Scaling of `run` from --jobs 1 to --jobs 2: the same baseline replicates, inline then on a 2-process pool.

    .venv/bin/python bench/scaling.py [--replicates 600] [--jobs 2] [--quick]

Prints (BENCH lines, see bench/run_all.py):
1. run_replicates_per_s_jobs1 and run_replicates_per_s_jobs<J>: full baseline replicates (recruitment,
   treatment, supply) per second, pool start-up included;
2. run_speedup_jobs1_to_<J>: wall time with --jobs 1 over wall time with --jobs J. Target >= 1.6 for
   J = 2 on a 2-core machine (perfect: 2; the parent folds results and the pool spawns its workers).
600 replicates by default: with 200, the pool's start-up (about 2 s) is a quarter of the --jobs 2 wall
time and the speed-up read 1.29x where 600 replicates give 1.74x on the same idle machine.
It also checks that both runs give the same summary (same seed, any --jobs) and exits 1 if not.
Figures depend on the machine and its load; run on an idle machine with at least J cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from hn005_sim.montecarlo import run_scenario
from hn005_sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def timed(sc, reps: int, jobs: int):
    t = time.perf_counter()
    res = run_scenario(sc, reps, seed=7, jobs=jobs)
    return time.perf_counter() - t, res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "baseline.toml"))
    ap.add_argument("--replicates", type=int, default=600)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="40 replicates (a smoke run)")
    args = ap.parse_args()
    reps = 40 if args.quick else args.replicates
    sc, _ = load_scenario(args.scenario)

    t1, r1 = timed(sc, reps, 1)
    tj, rj = timed(sc, reps, args.jobs)
    print(f"baseline, {reps} full replicates: --jobs 1 {t1:.1f} s, --jobs {args.jobs} {tj:.1f} s")
    print(f"BENCH run_replicates_per_s_jobs1 {reps / t1:.2f} replicates/s")
    print(f"BENCH run_replicates_per_s_jobs{args.jobs} {reps / tj:.2f} replicates/s")
    target = " target >= 1.6" if args.jobs == 2 else ""
    print(f"BENCH run_speedup_jobs1_to_{args.jobs} {t1 / tj:.2f} x{target}")
    same = json.dumps(r1.summary, sort_keys=True, default=str) == json.dumps(rj.summary, sort_keys=True,
                                                                             default=str)
    print(f"summary identical for --jobs 1 and --jobs {args.jobs}: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
