"""Time to screen 1,000,000 candidates against every criterion and compute every restrictiveness figure.

Prints (BENCH lines, see bench/run_all.py): the bare evaluation (the substituted rule expressions
selected with polars, nothing else), the
engine's `Screener.evaluate` (pass matrix with null handling + failure-pattern keys), `analyse`
(fail/sole-fail/Shapley/funnel/co-failure/bootstrap intervals, threshold sweeps, relaxation plan), and
ratios to the bare evaluation. Targets (issue 3): screening_1m_all (evaluate + every figure) under 2 s;
screening_evaluate_vs_bare (the engine's evaluate over the bare expressions) within 2x; (issue 16)
screening_all_figures_vs_evaluate (every restrictiveness figure, sweeps and relaxation included, over
the evaluation) within 3x. Rounds are interleaved (>= 5), ratios are medians of per-round ratios, and
the process runs with the thread settings the command has (no BLAS override).

    .venv/bin/python bench/screening.py [--patients 1000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import polars as pl

from hn005_sim.eligibility import compile_criteria
from hn005_sim.eligibility.restrictiveness import analyse
from hn005_sim.population import sample
from hn005_sim.rng import stream
from hn005_sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds (at least 5)")
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "baseline.toml"))
    args = ap.parse_args()
    repeats = max(args.repeats, 5)
    sc, _ = load_scenario(args.scenario)
    frame = sample(sc.population, args.patients, stream(20230901, 0, "population"))
    screener = compile_criteria(sc.criteria, frame.schema)
    bare_exprs = [pl.sql_expr(sql).alias(i) for sql, i in zip(screener.sql, screener.ids, strict=True)]

    def figures():
        s = screener.evaluate(frame)
        return analyse(s, screener=screener, frame=frame, rng=stream(20230901, 0, "bootstrap"))

    def core():
        s = screener.evaluate(frame)
        return analyse(s, rng=stream(20230901, 0, "bootstrap"))

    # interleaved rounds (bare, evaluate, core, all in each): a change of load falls on every figure of
    # a round alike; each ratio is the median over the rounds of that round's ratio
    rounds = []
    res = None
    for _ in range(repeats):
        t_bare, _ = timed(lambda: frame.select(bare_exprs))
        t_eval, _ = timed(lambda: screener.evaluate(frame))
        t_core, _ = timed(core)
        t_all, res = timed(figures)
        rounds.append((t_bare, t_eval, t_core, t_all))

    def med(f):
        return statistics.median(f(*r) for r in rounds)

    k = len(screener.ids)
    print(f"candidates: {args.patients:,}   criteria: {k}   distinct failure patterns: "
          f"{res.summary['distinct_failure_patterns']:,}   intervals: {res.summary['interval_method']}")
    print(f"sweep points: {res.sweeps.height}   relaxation steps: {res.relaxation.height - 1}   "
          f"BLAS threads as the command runs (no override)   {repeats} interleaved rounds, medians")
    print(f"bare rule expressions (polars select)                    : {med(lambda b, e, c, a: b):7.3f} s")
    print(f"Screener.evaluate (pass matrix, nulls, pattern keys)      : {med(lambda b, e, c, a: e):7.3f} s")
    print(f"evaluate + fail/sole/Shapley/funnel/co-failure/intervals   : {med(lambda b, e, c, a: c):7.3f} s")
    print(f"evaluate + all of the above + threshold sweeps + relaxation : {med(lambda b, e, c, a: a):7.3f} s")
    print("ratios: evaluate / bare = the engine's cost over the bare rules (target <= 2); all figures /"
          " evaluate = restrictiveness, sweeps and relaxation over the evaluation (target <= 3)")
    print(f"BENCH screening_1m_all {med(lambda b, e, c, a: a):.3f} s target < 2")
    print(f"BENCH screening_1m_evaluate {med(lambda b, e, c, a: e):.3f} s")
    print(f"BENCH screening_1m_bare {med(lambda b, e, c, a: b):.3f} s")
    print(f"BENCH screening_evaluate_vs_bare {med(lambda b, e, c, a: e / b):.2f} x target <= 2")
    print(f"BENCH screening_all_figures_vs_evaluate {med(lambda b, e, c, a: a / e):.2f} x target <= 3")
    print(f"BENCH screening_core_figures_vs_bare {med(lambda b, e, c, a: c / b):.2f} x")
    print(f"BENCH screening_all_figures_vs_bare {med(lambda b, e, c, a: a / b):.2f} x")
    print(f"eligible fraction {res.summary['eligible_fraction']:.4f}, "
          f"screen failure rate {res.summary['screen_failure_rate']:.4f}")


if __name__ == "__main__":
    main()
