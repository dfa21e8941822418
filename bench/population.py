"""Time and peak memory to generate 1,000,000 candidates (issue 2 targets: < 2 s on one core, < 1.5 GB).

Usage: .venv/bin/python bench/population.py [--patients N] [--repeats R] [--scenario PATH]
Prints the best wall and CPU time of R runs, the peak Python-heap allocation of one run (tracemalloc:
numpy arrays; polars' own buffers are outside it) and the process's peak resident memory (getrusage,
which includes everything: interpreter, libraries, numpy and polars buffers).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# One core, as the target says: keep BLAS/polars thread pools to one thread before they load.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "POLARS_MAX_THREADS"):
    os.environ.setdefault(var, "1")

from hn005_sim.population import sample  # noqa: E402
from hn005_sim.rng import stream  # noqa: E402
from hn005_sim.scenario.load import load_scenario  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "baseline.toml"))
    args = ap.parse_args()
    scenario, _ = load_scenario(args.scenario)
    cfg = scenario.population
    sample(cfg, 1000, stream(0, 0, "population"))  # warm-up: imports, first-call overheads

    walls, cpus = [], []
    for r in range(args.repeats):
        rng = stream(r + 1, 0, "population")
        t0, c0 = time.perf_counter(), time.process_time()
        frame = sample(cfg, args.patients, rng)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        del frame

    tracemalloc.start()
    frame = sample(cfg, args.patients, stream(99, 0, "population"))
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(f"population bench: {args.patients:,} candidates x {frame.width} columns")
    print(f"  wall time   best {min(walls):.3f} s, all runs {', '.join(f'{w:.3f}' for w in walls)} s")
    print(f"  cpu time    best {min(cpus):.3f} s")
    print(f"  frame size  {frame.estimated_size('mb'):.0f} MB (polars estimated_size)")
    print(f"  peak numpy/python heap (tracemalloc) {py_peak / 2**20:.0f} MiB")
    print(f"  peak resident memory (getrusage)     {rss_kib / 2**10:.0f} MiB")
    print(f"  targets: < 2 s on one core, < 1.5 GB -> time {'met' if min(walls) < 2 else 'NOT met'}, "
          f"memory {'met' if rss_kib * 1024 < 1.5e9 else 'NOT met'}")
    print(f"BENCH population_1m_wall {min(walls):.3f} s target < 2")
    print(f"BENCH population_1m_wall_median {sorted(walls)[len(walls) // 2]:.3f} s")
    print(f"BENCH population_1m_cpu {min(cpus):.3f} s")
    print(f"BENCH population_1m_peak_rss {rss_kib * 1024 / 1e9:.2f} GB target < 1.5")
    small = []
    for r in range(200):
        t0 = time.perf_counter()
        sample(cfg, 1024, stream(r, 1, "population"))
        small.append(time.perf_counter() - t0)
    print(f"BENCH population_1024_batch_ms {1000 * sorted(small)[len(small) // 2]:.2f} ms")


if __name__ == "__main__":
    main()
