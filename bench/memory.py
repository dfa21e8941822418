"""Peak memory of a long Monte Carlo run: 10,000 baseline replicates (issue 7 target: < 1 GiB peak).

Usage: .venv/bin/python bench/memory.py [--replicates N] [--jobs J] [--seed S] [--scenario PATH]

The run happens in a fresh child process, so the figure is the run's own and nothing this script loaded
counts. Peak resident memory comes from getrusage (ru_maxrss: everything the process touched, numpy and
polars buffers included): the main process (which folds every replicate into the aggregate) and, with
--jobs > 1, the largest worker. Resident memory is also sampled as replicates are folded, so the growth
per 1,000 replicates shows whether memory stays flat as replicates grow.
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


def _child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from hn005_sim.montecarlo import run_scenario
    from hn005_sim.scenario.load import load_scenario

    scenario, _ = load_scenario(args.scenario)
    step = max(args.replicates // 10, 1)
    samples: list[tuple[int, float]] = []

    def on_record(rec) -> None:
        done = rec.replicate + 1
        if done % step == 0 or done == args.replicates:
            samples.append((done, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MIB))

    started = time.perf_counter()
    result = run_scenario(scenario, args.replicates, args.seed, jobs=args.jobs, executor="process",
                          progress=False, on_record=on_record)
    seconds = time.perf_counter() - started
    print(json.dumps({
        "replicates": result.summary["replicates"],
        "seconds": seconds,
        "main_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MIB,
        "worker_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / MIB,
        "samples": samples,
    }))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=10_000)
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--seed", type=int, default=20230901)
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "baseline.toml"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return

    cmd = [sys.executable, __file__, "--child", "--replicates", str(args.replicates),
           "--jobs", str(args.jobs), "--seed", str(args.seed), "--scenario", args.scenario]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        sys.exit(proc.returncode)
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    total = r["main_mib"] + (args.jobs * r["worker_mib"] if args.jobs > 1 else 0)
    samples = r["samples"]
    (n0, m0), (n1, m1) = samples[0], samples[-1]
    growth = (m1 - m0) / (n1 - n0) * 1000 if n1 > n0 else 0.0
    n = r["replicates"]
    print(f"memory bench: {n:,} replicates of {args.scenario}, --jobs {args.jobs}, {r['seconds']:.0f} s "
          f"({n / r['seconds']:.1f} replicates/s)")
    print(f"  peak resident, main process   {r['main_mib']:.0f} MiB")
    if args.jobs > 1:
        print(f"  peak resident, largest worker {r['worker_mib']:.0f} MiB")
        print(f"  all processes together (main + {args.jobs} x worker, an upper bound) {total:.0f} MiB")
    print("  main process peak as replicates are folded: "
          + ", ".join(f"{k:,}: {v:.0f}" for k, v in samples) + " MiB")
    print(f"  growth {growth:.1f} MiB per 1,000 replicates (flat memory: about 0)")
    label = f"{n // 1000}k" if n % 1000 == 0 else str(n)
    print(f"BENCH memory_peak_{label}_replicates_all_processes {total:.0f} MiB target < {TARGET_MIB}")
    print(f"BENCH memory_peak_{label}_replicates_main {r['main_mib']:.0f} MiB target < {TARGET_MIB}")
    print(f"BENCH memory_growth_per_1k_replicates {growth:.1f} MiB")


if __name__ == "__main__":
    main()
