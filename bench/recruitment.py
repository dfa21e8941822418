"""Recruitment benchmark: time per replicate for the baseline, and DES cost per event vs bare simpy.

    .venv/bin/python bench/recruitment.py [--replicates 1000] [--jobs 2] [--repeats 3] [--quick]

Prints (BENCH lines, see bench/run_all.py):
1. recruitment_ms_per_replicate: `simulate_recruitment` of the baseline on one core, population model
   and criteria engine included (median of --repeats runs; target < 40 ms so that, with supply at
   < 30 ms, 1,000 replicates fit in 60 s on 2 cores);
2. recruitment_1000_reps_jobs2: seconds for 1,000 full baseline replicates (recruitment + treatment +
   supply) with --jobs 2 (target < 60 s), and for recruitment alone (no target);
3. des_overhead_per_scheduled_event: the recruitment DES alone (verdicts drawn by the funnel source)
   in seconds per simpy event it schedules, over a bare simpy loop's seconds per timeout (target
   <= 5x); _with_judging: the same with the baseline's population model and criteria engine in the
   time (no target); _per_candidate_flow_event: per event of the candidate flow (arrivals, decisions,
   screening starts, of which the DES schedules only the consenting candidates'), for information;
4. recruitment_vs_large_batch_judging: `simulate_recruitment` of a replicate over judging the same
   number of candidates in one batch (`CandidateSource.judge`; target <= 2x, issue 16).
Ratios come from >= 5 interleaved rounds (medians); nothing is extrapolated from --quick's replicates.
Figures depend on the machine and its load; run on an idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import simpy

from hn005_sim.montecarlo import run_scenario
from hn005_sim.recruitment.candidates import FunnelSource, candidate_source
from hn005_sim.recruitment.config import Funnel
from hn005_sim.recruitment.des import simulate_recruitment
from hn005_sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def bare_simpy(events: int, processes: int = 10) -> float:
    """Seconds for `events` timeouts spread over `processes` generator processes (the floor of simpy)."""
    env = simpy.Environment()
    per = events // processes

    def proc(env):
        for _ in range(per):
            yield env.timeout(1.0)

    for _ in range(processes):
        env.process(proc(env))
    t = time.perf_counter()
    env.run()
    return time.perf_counter() - t


def des_events(scenario, replicates: int) -> tuple[int, int, float]:
    """Trace events, simpy events scheduled, and seconds of the recruitment DES alone (verdicts drawn by
    the funnel source, so no population model or criteria engine in the time)."""
    funnel = Funnel.model_validate({
        "prescreen_pass": {"value": 0.17, "source": "bench: about the baseline's pre-screen pass rate"},
        "screen_pass": {"value": 0.56, "source": "bench: about the baseline's screening pass rate"},
        "bsa_m2": {"dist": "constant", "value": 1.7},
    })
    rec_cfg = scenario.recruitment.model_copy(update={"funnel": funnel})
    sc = scenario.model_copy(update={"recruitment": rec_cfg})
    source = FunnelSource(funnel)
    trace = scheduled = 0
    t = time.perf_counter()
    for r in range(replicates):
        rec, _ = simulate_recruitment(sc, source, 1, r)
        scheduled += rec.sim_events
        # the candidate flow's events: arrivals, decisions, screening starts (what the trace lists)
        trace += (2 * rec.candidates - rec.pending + rec.screenings)
    return trace, scheduled, time.perf_counter() - t


def recruitment_ms(scenario, replicates: int) -> float:
    """Milliseconds per replicate of `simulate_recruitment` (population + criteria included), one core."""
    source = candidate_source(scenario)
    simulate_recruitment(scenario, source, 1, 0)  # warm-up: compiled criteria, first-call costs
    t = time.perf_counter()
    for r in range(replicates):
        simulate_recruitment(scenario, source, 1, r)
    return 1000 * (time.perf_counter() - t) / replicates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "baseline.toml"))
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="runs of the single-core timings (median shown)")
    ap.add_argument("--quick", action="store_true", help="100 replicates (a smoke run)")
    args = ap.parse_args()
    reps = 100 if args.quick else args.replicates
    sc, _ = load_scenario(args.scenario)

    per = [recruitment_ms(sc, max(reps // 10, 20)) for _ in range(args.repeats)]
    print(f"simulate_recruitment (baseline, one core): {', '.join(f'{x:.1f}' for x in per)} ms/replicate")
    print(f"BENCH recruitment_ms_per_replicate {statistics.median(per):.1f} ms target < 40")

    t = time.perf_counter()
    res = run_scenario(sc, reps, seed=1, jobs=args.jobs)
    full = time.perf_counter() - t
    print(f"baseline, full replicate (recruitment + treatment + supply): {reps} replicates, "
          f"--jobs {args.jobs}: {full:.1f} s = {reps / full:.1f} replicates/s")
    # measured at `reps` replicates, never extrapolated; the target is stated at 1,000
    target = " target < 60" if reps == 1000 else ""
    print(f"BENCH recruitment_{reps}_reps_jobs{args.jobs} {full:.1f} s{target}")
    alone = sc.model_copy(update={"supply": None, "regimen": None})
    t = time.perf_counter()
    run_scenario(alone, reps, seed=1, jobs=args.jobs)
    rec_only = time.perf_counter() - t
    print(f"baseline, recruitment alone: {reps} replicates, --jobs {args.jobs}: {rec_only:.1f} s = "
          f"{reps / rec_only:.1f} replicates/s")
    print(f"BENCH recruitment_only_{reps}_reps_jobs{args.jobs} {rec_only:.1f} s")
    print(f"  mean candidates per replicate {res.summary['funnel_mean']['candidates']:.0f}, "
          f"enrolled {res.summary['funnel_mean']['enrolled']:.1f}")

    # interleaved rounds (>= 5): in each, the DES with the funnel source, the DES with the real source
    # (population model and criteria engine: the judging included), the same candidates judged in one
    # large batch, and bare simpy loops of the same event counts; each ratio is a median of per-round
    # ratios
    n = max(reps // 50, 10)
    rounds = max(args.repeats, 5)
    source = candidate_source(sc)
    simulate_recruitment(sc, source, 1, 0)  # warm-up
    sched, with_judging, judge_ratio, trace_ratio = [], [], [], []
    for i in range(rounds):
        trace, scheduled, secs = des_events(sc, n)
        bare_sched = bare_simpy(scheduled)
        sched.append((secs / scheduled) / (bare_sched / scheduled))
        trace_ratio.append((secs / trace) / (bare_simpy(trace) / trace))
        real_secs = judge_secs = 0.0
        real_sched = 0
        for r in range(i * n, (i + 1) * n):
            t = time.perf_counter()
            rec, _ = simulate_recruitment(sc, source, 1, r)
            real_secs += time.perf_counter() - t
            real_sched += rec.sim_events
            rng = np.random.default_rng(r)
            none = np.zeros(rec.candidates, bool)
            t = time.perf_counter()
            source.judge(rng, rec.candidates, retest=none, rescreen_if_fail=none)
            judge_secs += time.perf_counter() - t
        with_judging.append((real_secs / real_sched) / (bare_simpy(real_sched) / real_sched))
        judge_ratio.append(real_secs / judge_secs)
        print(f"round {i + 1}: DES alone {secs:.2f} s for {scheduled} scheduled simpy events "
              f"({trace} candidate-flow events); with judging {real_secs:.2f} s for {real_sched} events; "
              f"the same candidates judged in one batch per replicate {judge_secs:.2f} s")
    print(f"DES overhead per scheduled simpy event over a bare simpy timeout, median of {rounds} rounds")
    print(f"BENCH des_overhead_per_scheduled_event {statistics.median(sched):.2f} x target <= 5")
    print(f"BENCH des_overhead_per_scheduled_event_with_judging {statistics.median(with_judging):.2f} x")
    print(f"BENCH des_overhead_per_candidate_flow_event {statistics.median(trace_ratio):.2f} x")
    print(f"BENCH recruitment_vs_large_batch_judging {statistics.median(judge_ratio):.2f} x target <= 2")


if __name__ == "__main__":
    main()
