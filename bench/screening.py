"""Time to screen 1,000,000 candidates against every criterion and compute every restrictiveness figure.

Prints (BENCH lines, see bench/run_all.py): the bare evaluation (the substituted rule expressions
selected with polars, nothing else), the
engine's `Screener.evaluate` (pass matrix with null handling + failure-pattern keys), `analyse`
(fail/sole-fail/Shapley/funnel/co-failure/bootstrap intervals, threshold sweeps, relaxation plan), and
ratios to the bare evaluation. Targets (issue 3): screening_1m_all (evaluate + every figure) under 2 s;
screening_evaluate_vs_bare (the engine's evaluate over the bare expressions) within 2x.

    .venv/bin/python bench/screening.py [--patients 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

# OpenBLAS's threads spin-wait: on 2 shared cores with polars' own pool busy, a 2-thread float32 GEMM
# of the co-failure table (60,000 x 66) took 1-2 s instead of 25 ms. One BLAS thread, set before numpy
# loads; polars keeps its threads. (The CLI would want the same: reported to the lead.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import polars as pl

from hn005_sim.eligibility import compile_criteria
from hn005_sim.eligibility.restrictiveness import analyse
from hn005_sim.population import sample
from hn005_sim.rng import stream
from hn005_sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def best(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "baseline.toml"))
    args = ap.parse_args()
    sc, _ = load_scenario(args.scenario)
    frame = sample(sc.population, args.patients, stream(20230901, 0, "population"))
    screener = compile_criteria(sc.criteria, frame.schema)
    bare_exprs = [pl.sql_expr(sql).alias(i) for sql, i in zip(screener.sql, screener.ids, strict=True)]

    t_bare, _ = best(lambda: frame.select(bare_exprs), args.repeats)
    t_eval, _ = best(lambda: screener.evaluate(frame), args.repeats)

    def figures():
        s = screener.evaluate(frame)
        return analyse(s, screener=screener, frame=frame, rng=stream(20230901, 0, "bootstrap"))

    def core():
        s = screener.evaluate(frame)
        return analyse(s, rng=stream(20230901, 0, "bootstrap"))

    t_core, _ = best(core, args.repeats)
    t_all, res = best(figures, args.repeats)
    k = len(screener.ids)
    print(f"candidates: {args.patients:,}   criteria: {k}   distinct failure patterns: "
          f"{res.summary['distinct_failure_patterns']:,}   intervals: {res.summary['interval_method']}")
    print(f"sweep points: {res.sweeps.height}   relaxation steps: {res.relaxation.height - 1}   "
          f"BLAS threads: {os.environ.get('OPENBLAS_NUM_THREADS')}   best of {args.repeats} runs")
    print(f"bare rule expressions (polars select)                    : {t_bare:7.3f} s")
    print(f"Screener.evaluate (pass matrix, nulls, pattern keys)      : {t_eval:7.3f} s")
    print(f"evaluate + fail/sole/Shapley/funnel/co-failure/intervals   : {t_core:7.3f} s")
    print(f"evaluate + all of the above + threshold sweeps + relaxation : {t_all:7.3f} s")
    print("ratios: evaluate / bare = the engine's cost over the bare rules (target <= 2); "
          "all figures / bare (information)")
    print(f"BENCH screening_1m_all {t_all:.3f} s target < 2")
    print(f"BENCH screening_1m_evaluate {t_eval:.3f} s")
    print(f"BENCH screening_1m_bare {t_bare:.3f} s")
    print(f"BENCH screening_evaluate_vs_bare {t_eval / t_bare:.2f} x target <= 2")
    print(f"BENCH screening_core_figures_vs_bare {t_core / t_bare:.2f} x")
    print(f"BENCH screening_all_figures_vs_bare {t_all / t_bare:.2f} x")
    print(f"eligible fraction {res.summary['eligible_fraction']:.4f}, "
          f"screen failure rate {res.summary['screen_failure_rate']:.4f}")


if __name__ == "__main__":
    main()
