"""Time and peak memory to generate 1,000,000 candidates (issue 2 targets: < 2 s on one core, < 1.5 GB),
and the cost of a batch of 1,024 against the random numbers it draws (issue 16, no target).

Usage: .venv/bin/python bench/population.py [--patients N] [--repeats R] [--scenario PATH] [--rounds K]
Prints the best wall and CPU time of R runs, the peak Python-heap allocation of one run (tracemalloc:
numpy arrays; polars' own buffers are outside it) and the process's peak resident memory (getrusage,
which includes everything: interpreter, libraries, numpy and polars buffers).

Then, as the recruitment simulation calls them (one call per batch of `candidate_batch` = 1,024):
- population_1024_vs_rng_replay: `sample(cfg, 1024, rng)` over a bare replay of the same random-number
  calls (same methods, arguments and sizes, on generators in the same states, results discarded;
  bench/_rng_replay.py), i.e. the cost of the sampler around its RNG; population_1024_batch_ms and
  population_1024_rng_replay_ms the two per call;
- retest_labs_1024_vs_rng_replay: `retest_labs` of those 1,024 candidates over a bare replay of its calls.
K interleaved rounds (A B A B, >= 5; each A or B is 40 calls on 40 generators made beforehand), medians
of the per-round ratios and of the per-call times. No target: issue 16 measured 2.27x but set none.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

# One core, as the target says: keep BLAS/polars thread pools to one thread before they load.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "POLARS_MAX_THREADS"):
    os.environ.setdefault(var, "1")

from _rng_replay import RecordingGenerator, replay  # noqa: E402

from hn005_sim.population import retest_labs, sample  # noqa: E402
from hn005_sim.rng import stream  # noqa: E402
from hn005_sim.scenario.load import load_scenario  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "baseline.toml"))
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds of the replay ratios (>= 5)")
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
    batch_against_replay(cfg, max(args.rounds, 5))


def batch_against_replay(cfg, rounds: int, calls: int = 40, n: int = 1024) -> None:
    """sample() and retest_labs() of n candidates against bare replays of their RNG calls (see above)."""
    rec = RecordingGenerator(stream(0, 1, "population"))
    frame = sample(cfg, n, rec)
    drawn, sample_calls = rec.variates, rec.calls
    rec = RecordingGenerator(stream(0, 2, "population"))
    retest_labs(cfg, frame, rec)
    retest_calls = rec.calls
    print(f"  sample({n}): {len(sample_calls)} RNG calls, {drawn / n:.0f} variates per candidate; "
          f"retest_labs({n}): {len(retest_calls)} RNG calls")

    def gens(r, key):
        return [stream(1000 * r + i, key, "population") for i in range(calls)]

    def timed(fn, generators) -> float:
        t0 = time.perf_counter()
        for g in generators:
            fn(g)
        return (time.perf_counter() - t0) / len(generators)

    cases = {
        "population_1024": (lambda g: sample(cfg, n, g), lambda g: replay(sample_calls, g)),
        "retest_labs_1024": (lambda g: retest_labs(cfg, frame, g), lambda g: replay(retest_calls, g)),
    }
    for name, (full, bare) in cases.items():
        full(stream(0, 3, "population")), bare(stream(0, 3, "population"))  # warm-up
        a_times, b_times = [], []
        for r in range(rounds):  # A B A B ...
            a_times.append(timed(full, gens(r, 4)))
            b_times.append(timed(bare, gens(r, 4)))
        ratio = statistics.median(a / b for a, b in zip(a_times, b_times, strict=True))
        print(f"  {name}: {1000 * statistics.median(a_times):.3f} ms per call, bare RNG replay "
              f"{1000 * statistics.median(b_times):.3f} ms; ratios "
              f"{', '.join(f'{a / b:.2f}' for a, b in zip(a_times, b_times, strict=True))}")
        if name == "population_1024":
            print(f"BENCH population_1024_batch_ms {1000 * statistics.median(a_times):.3f} ms")
            print(f"BENCH population_1024_rng_replay_ms {1000 * statistics.median(b_times):.3f} ms")
        print(f"BENCH {name}_vs_rng_replay {ratio:.2f} x")

if __name__ == "__main__":
    main()
