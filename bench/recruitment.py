"""Recruitment benchmark: replicates per second for the baseline, and DES cost per event vs bare simpy.

    .venv/bin/python bench/recruitment.py [--replicates 1000] [--jobs 2] [--quick]

Prints:
1. baseline replicates per second with --jobs J (targets: 1,000 replicates in < 60 s with --jobs 2),
   for the full replicate (recruitment + treatment + supply) and for recruitment alone;
2. events per second of the recruitment DES (candidate judging excluded: the funnel source draws
   verdicts with numpy) against a bare simpy loop of timeouts on this machine (target: within 5x per
   event).
Figures depend on the machine and its load; run on an idle machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import simpy

from hn005_sim.montecarlo import run_scenario
from hn005_sim.recruitment.candidates import FunnelSource
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


def des_events(scenario, replicates: int) -> tuple[int, float]:
    """Events and seconds of the recruitment DES alone (verdicts drawn by the funnel source)."""
    funnel = Funnel.model_validate({
        "prescreen_pass": {"value": 0.17, "source": "bench: about the baseline's pre-screen pass rate"},
        "screen_pass": {"value": 0.56, "source": "bench: about the baseline's screening pass rate"},
        "bsa_m2": {"dist": "constant", "value": 1.7},
    })
    rec_cfg = scenario.recruitment.model_copy(update={"funnel": funnel})
    sc = scenario.model_copy(update={"recruitment": rec_cfg})
    source = FunnelSource(funnel)
    events = 0
    t = time.perf_counter()
    for r in range(replicates):
        rec, _ = simulate_recruitment(sc, source, 1, r)
        events += rec.sim_events
    return events, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "baseline.toml"))
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="100 replicates (a smoke run)")
    args = ap.parse_args()
    reps = 100 if args.quick else args.replicates
    sc, _ = load_scenario(args.scenario)

    t = time.perf_counter()
    res = run_scenario(sc, reps, seed=1, jobs=args.jobs)
    full = time.perf_counter() - t
    print(f"baseline, full replicate (recruitment + treatment + supply): {reps} replicates, "
          f"--jobs {args.jobs}: "
          f"{full:.1f} s = {reps / full:.1f} replicates/s "
          f"(1,000 in {1000 * full / reps:.0f} s; target < 60 s)")
    alone = sc.model_copy(update={"supply": None, "regimen": None})
    t = time.perf_counter()
    run_scenario(alone, reps, seed=1, jobs=args.jobs)
    rec_only = time.perf_counter() - t
    print(f"baseline, recruitment alone: {reps} replicates, --jobs {args.jobs}: {rec_only:.1f} s = "
          f"{reps / rec_only:.1f} replicates/s (1,000 in {1000 * rec_only / reps:.0f} s)")
    print(f"  mean candidates per replicate {res.summary['funnel_mean']['candidates']:.0f}, "
          f"enrolled {res.summary['funnel_mean']['enrolled']:.1f}")

    n = max(reps // 5, 20)
    events, secs = des_events(sc, n)
    des_rate = events / secs
    bare_secs = bare_simpy(events)
    bare_rate = events / bare_secs
    print(f"recruitment DES alone: {events} events in {secs:.2f} s = {des_rate:,.0f} events/s")
    print(f"bare simpy loop of timeouts: {events} events in {bare_secs:.2f} s = {bare_rate:,.0f} events/s")
    print(f"overhead per event: {bare_rate / des_rate:.2f}x the bare loop (target <= 5x)")


if __name__ == "__main__":
    main()
