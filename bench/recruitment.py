"""Recruitment benchmark: time per replicate for the baseline, and DES cost per event vs bare simpy.

    .venv/bin/python bench/recruitment.py [--replicates 1000] [--jobs 2] [--repeats 3] [--quick]

Prints (BENCH lines, see bench/run_all.py):
1. recruitment_ms_per_replicate: `simulate_recruitment` of the baseline on one core, population model
   and criteria engine included (median of --repeats runs; target < 40 ms so that, with supply at
   < 30 ms, 1,000 replicates fit in 60 s on 2 cores);
2. recruitment_1000_reps_jobs2: seconds for 1,000 full baseline replicates (recruitment + treatment +
   supply) with --jobs 2 (target < 60 s), and for recruitment alone (no target);
3. des_overhead_vs_bare_simpy: the recruitment DES alone (verdicts drawn by the funnel source) in
   seconds per event of the candidate flow (arrivals, decisions, screening starts: what the trace
   lists), over a bare simpy loop's seconds per timeout (target <= 5x). The DES follows in time only
   the candidates who consent, so it schedules fewer simpy events than the flow has; the ratio per
   scheduled simpy event is printed too (des_overhead_per_scheduled_event, no target).
Figures depend on the machine and its load; run on an idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

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
    print(f"BENCH recruitment_1000_reps_jobs{args.jobs} {1000 * full / reps:.1f} s target < 60")
    alone = sc.model_copy(update={"supply": None, "regimen": None})
    t = time.perf_counter()
    run_scenario(alone, reps, seed=1, jobs=args.jobs)
    rec_only = time.perf_counter() - t
    print(f"baseline, recruitment alone: {reps} replicates, --jobs {args.jobs}: {rec_only:.1f} s = "
          f"{reps / rec_only:.1f} replicates/s")
    print(f"BENCH recruitment_only_1000_reps_jobs{args.jobs} {1000 * rec_only / reps:.1f} s")
    print(f"  mean candidates per replicate {res.summary['funnel_mean']['candidates']:.0f}, "
          f"enrolled {res.summary['funnel_mean']['enrolled']:.1f}")

    n = max(reps // 5, 20)
    ratios, ratios_sched = [], []
    for _ in range(args.repeats):
        trace, scheduled, secs = des_events(sc, n)
        bare_trace = bare_simpy(trace)
        bare_sched = bare_simpy(scheduled)
        ratios.append((secs / trace) / (bare_trace / trace))
        ratios_sched.append((secs / scheduled) / (bare_sched / scheduled))
        print(f"recruitment DES alone ({n} replicates): {secs:.2f} s for {trace} candidate-flow events "
              f"({scheduled} simpy events scheduled: only consenting candidates are followed in time); "
              f"bare simpy loop: {trace / bare_trace:,.0f} timeouts/s")
    print("DES overhead = DES seconds per candidate-flow event / bare simpy seconds per timeout "
          f"(median of {args.repeats}); per simpy event actually scheduled it is "
          f"{statistics.median(ratios_sched):.2f}x")
    print(f"BENCH des_overhead_vs_bare_simpy {statistics.median(ratios):.2f} x target <= 5")
    print(f"BENCH des_overhead_per_scheduled_event {statistics.median(ratios_sched):.2f} x")


if __name__ == "__main__":
    main()
