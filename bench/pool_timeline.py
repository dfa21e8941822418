"""Where a `run --jobs J` spends its time and CPU: the serial head and tail, and CPU by process.

    .venv/bin/python bench/pool_timeline.py [--replicates 1000] [--jobs 2] [--quick] [--verbose]

Runs `hn005-sim run scenarios/baseline.toml --replicates N --seed 7 --jobs J --quiet` once, as the
command runs (the report included), in a fresh process that notes, on one monotonic clock shared by
the parent and its workers: when the pool was forked, when each batch of replicates began and ended
in which process (with that thread's CPU time and the garbage collector's, gc.callbacks), when the
simulation returned, and at exit the parent's CPU (getrusage SELF: its
main thread, the report's analyses thread) and its children's (the workers and the drawing process).
It changes nothing the command computes (the hooks wrap functions, the outputs are the same files).
Prints (BENCH lines, see bench/run_all.py; no targets: a diagnostic beside bench/scaling.py):
- pool_head_s: command start -> the first replicate begins (imports, fork, loading the scenario, the
  first task's hand-over); pool_tail_s: the last replicate ends -> exit (fold of the last batch, the
  summary and frames, the CSVs, the report and its charts); pool_end_idle_s: how long the worker that finished
  first waited for the last one;
- pool_replicate_cpu_ms: the workers' CPU per replicate inside their batches; pool_gc_ms: of which in
  the garbage collector; pool_recruitment_cpu_ms and pool_supply_loop_cpu_ms: of which in the batch's
  recruitment (`simulate_recruitment_many`: its DES and judging) and in the supply model's event loop
  (`SupplyModel._loop`), and pool_outside_cpu_ms the rest (treatment and supply set-up and totals, the
  record; the collector's time counts where its pauses fall); pool_worker_other_cpu_s: the workers'
  CPU outside their batches (start-up, receiving tasks, sending records);
- pool_parent_cpu_s and pool_children_cpu_s (workers + the drawing process).
With --jobs 1 the batches run in the parent (no pool; head and tail still apply). --verbose prints the
timeline itself. Another version of the tool: PYTHONPATH=/tmp/old/src (bench/scaling.py --before).
Absolute figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def inside(log: str, args: list[str]) -> None:
    """The command, with notes written to `log` (one line per event, every process appending)."""
    import gc
    import importlib.abc
    import importlib.util
    import resource
    import time

    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    gc_time = {"pid": None, "s": 0.0, "t0": 0.0}

    def cpu(who: int = resource.RUSAGE_SELF) -> float:
        r = resource.getrusage(who)
        return r.ru_utime + r.ru_stime

    def note(event: str, *extra: object) -> None:
        line = " ".join(str(x) for x in (time.monotonic(), os.getpid(), event, *extra))
        os.write(fd, (line + "\n").encode())

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_time["t0"] = time.thread_time()
        else:
            gc_time["s"] += time.thread_time() - gc_time["t0"]

    note("start", cpu())
    from hn005_sim.cli import main

    def wrap(owner, name: str, event: str) -> None:
        original = getattr(owner, name)

        def wrapped(*a, **k):
            note(f"{event}_begin", cpu())
            try:
                return original(*a, **k)
            finally:
                note(f"{event}_end", cpu())

        setattr(owner, name, wrapped)

    part_cpu = {"recruitment": 0.0, "loop": 0.0}

    def timed(owner, name: str, part: str) -> None:
        """Thread CPU spent in owner.name, added to part_cpu[part] (read at each batch's end)."""
        original = getattr(owner, name)

        def wrapped(*a, **k):
            t = time.thread_time()
            try:
                return original(*a, **k)
            finally:
                part_cpu[part] += time.thread_time() - t

        setattr(owner, name, wrapped)

    def hook(mc) -> None:
        wrap(mc, "prestart_workers", "prestart")
        wrap(mc, "run_scenario", "simulation")
        # the parts of a replicate that are not its set-up and hand-over: the recruitment of the batch
        # (its DES and judging) and the supply model's event loop
        from hn005_sim.supply.model import SupplyModel

        timed(mc, "simulate_recruitment_many", "recruitment")
        timed(SupplyModel, "_loop", "loop")
        batch = mc.run_batch

        def run_batch(scenario, seed, start, stop, uncertain=None, **kw):
            if gc_time["pid"] != os.getpid():  # first batch of this process (a worker, or inline)
                gc_time.update(pid=os.getpid(), s=0.0)
                gc.callbacks.append(on_gc)
            t, g = time.thread_time(), gc_time["s"]
            r0, l0 = part_cpu["recruitment"], part_cpu["loop"]
            note("batch_begin", start, stop)
            try:
                return batch(scenario, seed, start, stop, uncertain, **kw)
            finally:
                note("batch_end", start, stop, time.thread_time() - t, gc_time["s"] - g, cpu(),
                     part_cpu["recruitment"] - r0, part_cpu["loop"] - l0)

        # what run_task calls, in the parent (inline) and in forked workers; named as the original, so
        # that a version submitting run_batch itself pickles it by the same reference
        run_batch.__module__, run_batch.__qualname__ = batch.__module__, batch.__qualname__
        mc.run_batch = run_batch

    class AfterImport(importlib.abc.MetaPathFinder):
        """Hooks hn005_sim.montecarlo once the command imports it (not sooner: the command's own order
        of imports, renderer start and fork stays as it is)."""

        def find_spec(self, name, path, target=None):
            if name != "hn005_sim.montecarlo":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            run_module = spec.loader.exec_module

            def exec_module(module):
                run_module(module)
                hook(module)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, AfterImport())
    sys.argv = ["hn005-sim", *args]
    try:
        code = main()
    except SystemExit as exc:
        code = exc.code
    note("exit", cpu(), cpu(resource.RUSAGE_CHILDREN))
    sys.exit(code or 0)


def figures(log: Path, parent: int) -> tuple[dict[str, float], list[str]]:
    rows = [line.split() for line in log.read_text().splitlines()]
    t0 = float(rows[0][0])
    first = last = None
    batch_cpu = gc_s = rec_s = loop_s = 0.0
    worker_last_end: dict[int, float] = {}
    worker_cpu_at_end: dict[int, float] = {}
    batch_cpu_by: dict[int, float] = defaultdict(float)
    events: dict[str, list[str]] = {}
    lines = []
    for r in rows:
        t, pid, event = float(r[0]) - t0, int(r[1]), r[2]
        lines.append(f"{t:8.3f} s  pid {pid}{' (parent)' if pid == parent else ''}  {' '.join(r[2:])}")
        if event == "batch_begin":
            first = t if first is None else min(first, t)
        elif event == "batch_end":
            last = t if last is None else max(last, t)
            batch_cpu += float(r[5])
            gc_s += float(r[6])
            rec_s += float(r[8])
            loop_s += float(r[9])
            batch_cpu_by[pid] += float(r[5])
            worker_last_end[pid] = max(worker_last_end.get(pid, 0.0), t)
            worker_cpu_at_end[pid] = float(r[7])
        elif pid == parent:
            events[event] = [str(t), *r[3:]]
    exit_t, parent_cpu, children_cpu = (float(x) for x in events["exit"])
    reps = sum(int(r[4]) - int(r[3]) for r in rows if r[2] == "batch_end")
    workers = [p for p in worker_cpu_at_end if p != parent]
    out = {
        "pool_head_s": first,
        "pool_tail_s": exit_t - last,
        "pool_end_idle_s": max(worker_last_end.values()) - min(worker_last_end.values()),
        "pool_replicate_cpu_ms": 1e3 * batch_cpu / reps,
        "pool_gc_ms": 1e3 * gc_s / reps,
        "pool_recruitment_cpu_ms": 1e3 * rec_s / reps,
        "pool_supply_loop_cpu_ms": 1e3 * loop_s / reps,
        "pool_outside_cpu_ms": 1e3 * (batch_cpu - rec_s - loop_s) / reps,
        "pool_worker_other_cpu_s": sum(worker_cpu_at_end[p] - batch_cpu_by[p] for p in workers),
        "pool_parent_cpu_s": parent_cpu,
        "pool_children_cpu_s": children_cpu,
    }
    return out, lines


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--inside":
        inside(sys.argv[2], sys.argv[3:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="100 replicates")
    ap.add_argument("--verbose", action="store_true", help="print the timeline")
    args = ap.parse_args()
    reps = 100 if args.quick else args.replicates
    with tempfile.TemporaryDirectory(prefix="hn005-timeline-") as tmp:
        log = Path(tmp) / "timeline.log"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--inside", str(log), "run",
               "scenarios/baseline.toml", "--replicates", str(reps), "--seed", "7", "--jobs", str(args.jobs),
               "--quiet", "--out", str(Path(tmp) / "out")]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, err = proc.communicate()
        if proc.returncode != 0:
            print(f"bench/pool_timeline.py: the run failed: {err.strip()[-500:]}", file=sys.stderr)
            return 1
        got, lines = figures(log, proc.pid)
    if args.verbose:
        print("\n".join(lines))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"baseline, {reps} replicates, --jobs {args.jobs}; load average {load:.1f} on "
          f"{os.cpu_count()} cores")
    for name, value in got.items():
        unit = "ms" if name.endswith("_ms") else "s"
        print(f"BENCH {name}_{reps}_jobs{args.jobs} {value:.3f} {unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
