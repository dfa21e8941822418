"""The fixed cost of `run` and the runs users make, timed as the command runs them (a fresh process each).

    .venv/bin/python bench/startup.py [--repeats 3] [--quick]

Prints (BENCH lines, see bench/run_all.py), each the median of --repeats runs of
`hn005-sim run scenarios/baseline.toml ... --quiet --out TMP` in a new process, started as the console
script starts it (imports, scenario loading, the report's analyses, the report and its charts, and the
process's exit all included):
1. run_fixed_cost: 1 replicate with the report (an upper bound of the fixed cost: it includes one
   replicate). Target <= 2 s.
2. run_10_replicates_with_report: 10 replicates with the report. Target <= 3 s.
3. make_run: `make run`'s run (200 replicates, --jobs 2, the report). Target <= 5 s.
4. run_import_cli: `python -c "import hn005_sim.cli"` (no target; what every command pays first).
Each run's CPU (the process and its children) is printed too, `<name>_cpu` (its median; no target).
The three runs are interleaved (A B C A B C ...) so that a change of load falls on all of them alike.
--quick: 1 repeat and no make_run (a smoke run; its figures carry no target).
--before SRC: also time the same commands with another version of the tool, SRC being a folder holding
   its `hn005_sim` package (e.g. `git archive <commit> src | tar -x -C /tmp/old` gives /tmp/old/src),
   put first on PYTHONPATH; each case then runs before, after, before, after... (interleaved, so load
   falls on both alike) and `<name>_before` and `<name>_speedup` (before / after, medians) are printed
   beside each figure (no targets: the targets are the current version's), with the ratio of each
   pair and their median (a pair shares its moment's load).
--only NAME[,NAME...]: time only these cases (e.g. `--only run_fixed_cost,run_10_replicates_with_report`
   to compare versions without the longer make_run); the other cases are not run and print nothing.
Absolute figures depend on the machine and its load: run on an idle machine.
"""

from __future__ import annotations

import argparse
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
CLI = [sys.executable, "-c", "import sys; from hn005_sim import entry; "
       "sys.exit(getattr(entry, 'console', entry.main)())"]
"""What the console script `hn005-sim` runs (pyproject [project.scripts]: entry.console, which ends the
process without the interpreter's teardown; a version without it, e.g. --before, has entry.main)."""


CPU: dict[str, list[float]] = {}


def timed(args: list[str], out: Path, name: str = "", src: Path | None = None) -> float:
    """Wall time of one run; its CPU time (the process and its workers) goes to CPU[name].
    src: a folder holding another version's `hn005_sim`, imported instead of this one."""
    shutil.rmtree(out, ignore_errors=True)
    env = env_for(src)
    c = child_cpu()
    t = time.perf_counter()
    proc = subprocess.run([*CLI, *args, "--out", str(out), "--quiet"], cwd=ROOT, capture_output=True,
                          text=True, env=env)
    wall = time.perf_counter() - t
    CPU.setdefault(name, []).append(child_cpu() - c)
    if proc.returncode != 0:
        raise SystemExit(f"bench/startup.py: {' '.join(args)} failed: {proc.stderr.strip()[-500:]}")
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1 repeat, no make_run (no targets)")
    ap.add_argument("--before", type=Path, default=None, metavar="SRC",
                    help="a folder holding another version's hn005_sim package, timed interleaved with this "
                         "one")
    ap.add_argument("--only", default=None, metavar="NAMES",
                    help="comma-separated case names to time (default: every case)")
    args = ap.parse_args()
    args.before = checked_source(args.before, "bench/startup.py")
    repeats = 1 if args.quick else args.repeats
    base = ["run", "scenarios/baseline.toml", "--seed", "20230901"]
    cases = {
        "run_fixed_cost": ([*base, "--replicates", "1"], 2.0),
        "run_10_replicates_with_report": ([*base, "--replicates", "10"], 3.0),
    }
    if not args.quick:
        cases["make_run"] = ([*base, "--replicates", "200", "--jobs", "2"], 5.0)
    if args.only is not None:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in cases]
        if unknown or not wanted:
            print(f"bench/startup.py: --only {args.only}: expected names among {', '.join(cases)}",
                  file=sys.stderr)
            return 2
        cases = {n: cases[n] for n in wanted}
    start_load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    walls: dict[str, list[float]] = {name: [] for name in cases}
    before: dict[str, list[float]] = {name: [] for name in cases}
    imports: list[float] = []
    with tempfile.TemporaryDirectory(prefix="hn005-bench-") as tmp:
        for _ in range(repeats):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import hn005_sim.cli"], cwd=ROOT, check=True)
            imports.append(time.perf_counter() - t)
            for name, (cmd, _) in cases.items():
                if args.before is not None:
                    before[name].append(timed(cmd, Path(tmp) / name, f"{name}_before", args.before))
                walls[name].append(timed(cmd, Path(tmp) / name, name))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at the start: {start_load:.1f}, at the end: {load:.1f} on {os.cpu_count()} cores; "
          f"{repeats} repeats")
    for name, (cmd, target) in cases.items():
        print(f"{name}: {' '.join(cmd)}: wall " + ", ".join(f"{w:.2f}" for w in walls[name]) + " s; CPU "
              + ", ".join(f"{c:.2f}" for c in CPU[name]) + " s")
        tail = "" if args.quick else f" target <= {target:g}"
        print(f"BENCH {name} {statistics.median(walls[name]):.2f} s{tail}")
        # CPU of the process and its children (drawing processes, pool workers): less sensitive than the
        # wall time to the load of a shared machine, though a busy machine still inflates it
        print(f"BENCH {name}_cpu {statistics.median(CPU[name]):.2f} s")
        if args.before is not None:
            old = statistics.median(before[name])
            print(f"{name} before ({args.before}): wall " + ", ".join(f"{w:.2f}" for w in before[name])
                  + " s; CPU " + ", ".join(f"{c:.2f}" for c in CPU[f"{name}_before"]) + " s")
            print(f"BENCH {name}_before {old:.2f} s")
            print(f"BENCH {name}_cpu_before {statistics.median(CPU[f'{name}_before']):.2f} s")
            print(f"BENCH {name}_speedup {old / statistics.median(walls[name]):.2f} x")
            pairs = [b / a for b, a in zip(before[name], walls[name], strict=True)]
            print(f"{name} before / after, pair by pair: " + ", ".join(f"{r:.2f}" for r in pairs)
                  + f" (median {statistics.median(pairs):.2f}x)")
    print(f"BENCH run_import_cli {statistics.median(imports):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
