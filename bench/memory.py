"""Peak memory of Monte Carlo runs, and its growth with replicates (issue 7: 10,000 baseline replicates
under 1 GiB peak; memory flat as replicates grow).

Usage: .venv/bin/python bench/memory.py [--replicates N [N ...]] [--jobs J] [--seed S] [--scenario PATH]

By default the script measures two real runs, 1,000 and 10,000 baseline replicates (about 8 minutes
together on 2 cores at ~22 replicates per second), and prints the growth per 1,000 replicates between
them. Smaller counts (e.g. `--replicates 500 2000`) are quicker, and a projection to 10,000 is then
printed, but it underestimates: the workers' peak is the largest single replicate seen, which creeps up
as rarer long replicates appear (measured: 762 MiB at 10,000 against 615 MiB projected from 500 and
2,000), so the target is judged on the real 10,000-replicate run.

Each run happens in a fresh child process, so nothing this script loaded counts. Peak resident memory
comes from getrusage (ru_maxrss: everything the process touched, numpy and polars buffers included): the
main process (which folds every replicate into the aggregate) and, with --jobs > 1, the largest worker.
"All processes" adds jobs x the largest worker to the main process: an upper bound of what the run held.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024  # ru_maxrss is in KiB on Linux
TARGET_MIB = 1024
TARGET_REPLICATES = 10_000


def _child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from hn005_sim.montecarlo import run_scenario
    from hn005_sim.scenario.load import load_scenario

    [replicates] = args.replicates
    scenario, _ = load_scenario(args.scenario)
    step = max(replicates // 10, 1)
    samples: list[tuple[int, float]] = []

    def on_record(rec) -> None:
        done = rec.replicate + 1
        if done % step == 0 or done == replicates:
            samples.append((done, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MIB))

    started = time.perf_counter()
    result = run_scenario(scenario, replicates, args.seed, jobs=args.jobs, executor="process",
                          progress=False, on_record=on_record)
    seconds = time.perf_counter() - started
    print(json.dumps({
        "replicates": result.summary["replicates"],
        "seconds": seconds,
        "main_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MIB,
        "worker_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / MIB,
        "samples": samples,
    }))


def measure(replicates: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", "--replicates", str(replicates), "--jobs", str(args.jobs),
           "--seed", str(args.seed), "--scenario", args.scenario]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        sys.exit(proc.returncode)
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    r["all_mib"] = r["main_mib"] + (args.jobs * r["worker_mib"] if args.jobs > 1 else 0)
    return r


def label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, nargs="+", default=[1_000, 10_000],
                    help="replicate counts to measure (default 1000 10000; growth from the first and last)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--seed", type=int, default=20230901)
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "baseline.toml"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return

    runs = [measure(n, args) for n in sorted(set(args.replicates))]
    print(f"memory bench: {args.scenario}, --jobs {args.jobs}")
    for r in runs:
        n = r["replicates"]
        print(f"  {n:>6,} replicates in {r['seconds']:.0f} s ({n / r['seconds']:.1f} replicates/s): "
              f"peak main {r['main_mib']:.0f} MiB, largest worker {r['worker_mib']:.0f} MiB, all processes "
              f"{r['all_mib']:.0f} MiB")
        print("         main process peak as replicates are folded: "
              + ", ".join(f"{k:,}: {v:.0f}" for k, v in r["samples"]) + " MiB")
    for r in runs:
        n = r["replicates"]
        target = f" target < {TARGET_MIB}" if n >= TARGET_REPLICATES else ""
        print(f"BENCH memory_peak_{label(n)}_replicates_all_processes {r['all_mib']:.0f} MiB{target}")
        print(f"BENCH memory_peak_{label(n)}_replicates_main {r['main_mib']:.0f} MiB{target}")
    if len(runs) < 2:
        return
    lo, hi = runs[0], runs[-1]
    per_k = 1000 / (hi["replicates"] - lo["replicates"])
    growth_main = (hi["main_mib"] - lo["main_mib"]) * per_k
    growth_all = (hi["all_mib"] - lo["all_mib"]) * per_k
    print(f"  growth from {lo['replicates']:,} to {hi['replicates']:,} replicates: main "
          f"{growth_main:+.1f} MiB, all processes {growth_all:+.1f} MiB per 1,000 (flat memory: about 0; "
          f"the time-to-target column alone adds 8 kB per 1,000)")
    print(f"BENCH memory_growth_per_1k_replicates_main {growth_main:.1f} MiB")
    print(f"BENCH memory_growth_per_1k_replicates_all_processes {growth_all:.1f} MiB")
    if hi["replicates"] < TARGET_REPLICATES:
        ahead = (TARGET_REPLICATES - hi["replicates"]) / 1000
        projected = hi["all_mib"] + max(growth_all, 0.0) * ahead
        print(f"  projected peak at {TARGET_REPLICATES:,} replicates: {hi['all_mib']:.0f} + "
              f"{ahead:g} x {max(growth_all, 0.0):.1f} = {projected:.0f} MiB (all processes; may "
              f"underestimate: the largest worker grows with rarer long replicates; run --replicates 10000)")


if __name__ == "__main__":
    main()
