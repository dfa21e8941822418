"""Where the fixed cost of `run` goes: the report's critical chain, timed inside the command.

    .venv/bin/python bench/run_timeline.py [--repeats 5] [--replicates 1] [--before SRC] [--quick]

Each repeat runs `hn005-sim run scenarios/baseline.toml --replicates N --seed 20230901` (with its report)
in a fresh process that stamps, from the process's start (its own clock, so the load of the moment falls
on every interval of one run alike):
- load_end: `load_scenario` returned (imports, the drawing process started, the scenario validated);
- sweeps_queued: the sweeps chart (the report's costliest drawing) queued for drawing
  (`ChartRenderer.draw_ahead`), i.e. the end of the restrictiveness analyses' way to it;
- inventory_queued: the replicate's inventory chart (the second costliest) queued;
- last_svg: the last chart drawn (any lane); end: the command returned;
- CPU: the command's process and its drawing processes (rusage, after they ended).
Prints (BENCH lines, bench/run_all.py's convention; no targets, these are diagnostics, the targets are
bench/startup.py's) the medians of `sweeps_after_load` (sweeps_queued - load_end), `inventory_after_load`,
`last_svg`, `end`, `cpu_parent` and `cpu_children`, and with --before SRC the same for another version
(a folder holding its `hn005_sim` package, e.g. `git -C /work/main archive HEAD src | tar -x -C /tmp/old`),
interleaved A B B A A B ... so that a change of load falls on both alike, with each figure's ratio
(before / this). The stamps wrap functions by name; a version lacking one prints nan for its figures.
--quick: 1 repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _versions import checked_source, env_for

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import functools, json, resource, sys, threading, time
T0 = time.perf_counter()
stamps = {}
def stamp(name):
    stamps.setdefault(name, time.perf_counter() - T0)
from hn005_sim.cli import main
import hn005_sim.commands.run as run
import hn005_sim.report.prerender as pr

def after(mod, name, key):
    f = getattr(mod, name, None)
    if f is None:
        return
    @functools.wraps(f)
    def w(*a, **k):
        try:
            return f(*a, **k)
        finally:
            stamp(key)
    setattr(mod, name, w)

after(run, "load_scenario", "load_end")
draw_ahead = pr.ChartRenderer.draw_ahead
def queued(self, spec):
    key = pr.spec_key(spec)
    if '"name":"sweeps"' in key:
        stamp("sweeps_queued")
    if '"name":"inventory"' in key:
        stamp("inventory_queued")
    return draw_ahead(self, spec)
pr.ChartRenderer.draw_ahead = queued
svg = pr._Lane.svg
def drawn(self, spec):
    out = svg(self, spec)
    stamps["last_svg"] = time.perf_counter() - T0
    return out
pr._Lane.svg = drawn
code = main(sys.argv[1:])
stamp("end")
s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": code, **stamps, "cpu_parent": s.ru_utime + s.ru_stime,
                  "cpu_children": c.ru_utime + c.ru_stime}))
"""

FIGURES = ("sweeps_after_load", "inventory_after_load", "last_svg", "end", "cpu_parent", "cpu_children")


def one(replicates: int, out: Path, src: Path | None) -> dict[str, float]:
    """One run's figures (nan where a stamp is missing)."""
    args = ["run", "scenarios/baseline.toml", "--replicates", str(replicates), "--seed", "20230901",
            "--out", str(out), "--quiet"]
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=ROOT, capture_output=True, text=True,
                          env=env_for(src))
    if proc.returncode != 0 or not proc.stdout.strip():
        raise SystemExit(f"bench/run_timeline.py: {' '.join(args)} failed: {proc.stderr.strip()[-500:]}")
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    if got["code"] != 0:
        raise SystemExit(f"bench/run_timeline.py: {' '.join(args)} exited {got['code']}")
    nan = float("nan")
    load = got.get("load_end", nan)
    return {"sweeps_after_load": got.get("sweeps_queued", nan) - load,
            "inventory_after_load": got.get("inventory_queued", nan) - load,
            "last_svg": got.get("last_svg", nan), "end": got.get("end", nan),
            "cpu_parent": got["cpu_parent"], "cpu_children": got["cpu_children"]}


def median(rows: list[dict[str, float]], name: str) -> float:
    return statistics.median(r[name] for r in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--replicates", type=int, default=1)
    ap.add_argument("--before", type=Path, default=None, metavar="SRC")
    ap.add_argument("--quick", action="store_true", help="1 repeat")
    args = ap.parse_args()
    before = checked_source(args.before, "bench/run_timeline.py")
    repeats = 1 if args.quick else max(args.repeats, 1)
    versions: list[Path | None] = [None] if before is None else [before, None]
    rows: dict[Path | None, list[dict[str, float]]] = {v: [] for v in versions}
    start_load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="hn005-timeline-") as tmp:
        for i in range(repeats):
            for v in versions if i % 2 == 0 else versions[::-1]:
                rows[v].append(one(args.replicates, Path(tmp) / f"run{i}{v is None}", v))
    print(f"load average at the start: {start_load:.1f}, at the end: {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores; {repeats} repeats, --replicates {args.replicates}")
    tag = f"r{args.replicates}"
    for name in FIGURES:
        print(f"{name}: " + ", ".join(f"{r[name]:.3f}" for r in rows[None]) + " s")
        print(f"BENCH run_timeline_{name}_{tag} {median(rows[None], name):.3f} s")
        if before is not None:
            old = median(rows[before], name)
            print(f"{name} before ({before}): " + ", ".join(f"{r[name]:.3f}" for r in rows[before]) + " s")
            print(f"BENCH run_timeline_{name}_{tag}_before {old:.3f} s")
            print(f"BENCH run_timeline_{name}_{tag}_ratio {old / median(rows[None], name):.2f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
