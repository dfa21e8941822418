"""Scaling of `run` from --jobs 1 to --jobs 2, timed as the command runs (a fresh process each run).

    .venv/bin/python bench/scaling.py [--replicates 1000] [--jobs 2] [--pairs 3] [--quick]

Runs `hn005-sim run scenarios/baseline.toml --replicates N --jobs 1` and `... --jobs J` in interleaved
pairs (1 J 1 J ...; the order alternates from pair to pair), each the whole command: imports, the pool's
start-up, the replicates (recruitment, treatment, supply), the report's analyses and the report.
Prints (BENCH lines, see bench/run_all.py):
1. run_<N>_jobs1 and run_<N>_jobs<J>: median wall time. Target for N = 1000, J = 2: <= 10 s;
   beside them run_<N>_jobs<J>_cpu: the median CPU time of the command and its workers (no target: on a
   shared machine it moves far less with the load than the wall time does);
2. run_speedup_jobs1_to_<J>_<N>: median over the pairs of (--jobs 1 wall) / (--jobs J wall).
   Target >= 1.7 for N = 1000, J = 2 on a 2-core machine (perfect: 2).
Every figure is measured at N; nothing is extrapolated. --quick: 100 replicates, 3 pairs, no targets
(the targets are stated at 1,000 replicates). It also checks that every run wrote the same summary.json
and CSVs (same seed, any --jobs) and exits 1 if not.
--before SRC: also time another version of the tool (SRC a folder holding its `hn005_sim` package, e.g.
`git archive <commit> src | tar -x -C /tmp/old` gives /tmp/old/src, put first on PYTHONPATH) in the same
pairs (this version's 1 and J, then the other's, the order alternating from pair to pair), and print its
figures as `<name>_before` and `run_<N>_jobs<J>_speedup` (before / after, median of the pairs' ratios;
no target). Its outputs must be the same files too.
Absolute figures depend on the machine and its load; run on an idle machine with at least J cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _versions import checked_source, child_cpu, env_for

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "import sys; from hn005_sim.cli import main; sys.exit(main())"]


CPU: dict[tuple[bool, int], list[float]] = {}
"""(another version, jobs) -> CPU seconds of each run: the command and its workers (user + system)."""


def timed(reps: int, jobs: int, out: Path, src: Path | None = None) -> float:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [*CLI, "run", "scenarios/baseline.toml", "--replicates", str(reps), "--seed", "7", "--jobs",
           str(jobs), "--quiet", "--out", str(out)]
    env = env_for(src)
    c = child_cpu()
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    CPU.setdefault((src is not None, jobs), []).append(child_cpu() - c)
    if proc.returncode != 0:
        raise SystemExit(f"bench/scaling.py: --jobs {jobs} failed: {proc.stderr.strip()[-500:]}")
    return wall


def outputs(folder: Path) -> dict[str, str]:
    """summary.json and every CSV (the files that must not depend on --jobs)."""
    return {p.name: p.read_text() for p in sorted(folder.iterdir()) if p.suffix == ".csv"} | {
        "summary.json": json.dumps(json.loads((folder / "summary.json").read_text()), sort_keys=True)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="100 replicates, no targets")
    ap.add_argument("--before", type=Path, default=None, metavar="SRC",
                    help="a folder holding another version's hn005_sim package, timed in the same pairs")
    args = ap.parse_args()
    args.before = checked_source(args.before, "bench/scaling.py")
    reps = 100 if args.quick else args.replicates
    pairs = max(args.pairs, 3)
    targets = not args.quick and reps == 1000 and args.jobs == 2
    one, many, ratios = [], [], []
    old_one, old_many, old_ratios, speedups = [], [], [], []
    reference: dict[str, str] | None = None
    same = True
    versions = [None] if args.before is None else [None, args.before]
    with tempfile.TemporaryDirectory(prefix="hn005-scaling-") as tmp:
        for i in range(pairs):
            order = (1, args.jobs) if i % 2 == 0 else (args.jobs, 1)
            walls: dict[tuple[bool, int], float] = {}
            for src in versions if i % 2 == 0 else versions[::-1]:
                for jobs in order:
                    out = Path(tmp) / f"jobs{jobs}"
                    walls[src is not None, jobs] = timed(reps, jobs, out, src)
                    got = outputs(out)
                    reference = got if reference is None else reference
                    same = same and got == reference
            one.append(walls[False, 1])
            many.append(walls[False, args.jobs])
            ratios.append(one[-1] / many[-1])
            line = (f"pair {i + 1}: --jobs 1 {one[-1]:.1f} s, --jobs {args.jobs} {many[-1]:.1f} s, "
                    f"ratio {ratios[-1]:.2f}")
            if args.before is not None:
                old_one.append(walls[True, 1])
                old_many.append(walls[True, args.jobs])
                old_ratios.append(old_one[-1] / old_many[-1])
                speedups.append(old_many[-1] / many[-1])
                line += (f"; before: --jobs 1 {old_one[-1]:.1f} s, --jobs {args.jobs} {old_many[-1]:.1f} s, "
                         f"ratio {old_ratios[-1]:.2f}")
            print(line, flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"baseline, {reps} replicates, {pairs} interleaved pairs; load average {load:.1f} on "
          f"{os.cpu_count()} cores")
    for (old, jobs), cpu in sorted(CPU.items()):
        # CPU of the command and its workers: what a loaded machine does not inflate much (no target)
        print(f"BENCH run_{reps}_jobs{jobs}_cpu{'_before' if old else ''} {statistics.median(cpu):.2f} s")
    print(f"BENCH run_{reps}_jobs1 {statistics.median(one):.2f} s")
    print(f"BENCH run_{reps}_jobs{args.jobs} {statistics.median(many):.2f} s"
          + (" target <= 10" if targets else ""))
    print(f"BENCH run_speedup_jobs1_to_{args.jobs}_{reps} {statistics.median(ratios):.2f} x"
          + (" target >= 1.7" if targets else ""))
    if args.before is not None:
        print(f"BENCH run_{reps}_jobs1_before {statistics.median(old_one):.2f} s")
        print(f"BENCH run_{reps}_jobs{args.jobs}_before {statistics.median(old_many):.2f} s")
        print(f"BENCH run_speedup_jobs1_to_{args.jobs}_{reps}_before {statistics.median(old_ratios):.2f} x")
        print(f"BENCH run_{reps}_jobs{args.jobs}_speedup {statistics.median(speedups):.2f} x")
    print(f"outputs identical for --jobs 1 and --jobs {args.jobs}"
          + (" and both versions" if args.before is not None else "") + f": {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
