"""Benchmark: the supply model of one replicate against a bare event loop replaying its events
(issue 16: <= 2x), and a full run of baseline replicates with --jobs 2.

    .venv/bin/python bench/supply.py [--pairs 5] [--streams 30] [--replicates 500] [--jobs 2] [--quick]

Prints `BENCH <name> <value> <unit> [target <op> <value>]` lines (bench/run_all.py parses them):
1. supply_vs_bare_event_loop (baseline; target <= 2x): `simulate_replicate` as `run` calls it (the
   treatment plan in numpy, the event loop, the totals) over a plain heapq loop replaying the same
   events (supply/trace.py `replay`: each event the model's heap held, in the model's order, pushed
   when the event that scheduled it is handled, doing only the event's stock arithmetic: packs
   dispensed, shipped, delivered, released, written off). Both over the same --streams replicates
   (the recruitment DES's enrolments as the rows `run` gives the model, made untimed; the horizon `run`
   asks for: the last enrolment + the follow-up), interleaved A B A B for --pairs rounds, CPU time of
   this process, median of the per-round ratios;
2. supply_loop_vs_bare_event_loop: the same with `SupplyModel.run` alone (the event loop and the totals
   summed in numpy after it; the model and its numpy plan built beforehand, untimed), to show what is
   the loop's and what the plan's;
3. supply_us_per_event and bare_loop_us_per_event: microseconds per event handled (the median round);
   supply_model_per_replicate: ms CPU per replicate (target < 30 ms);
4. supply_vs_bare_simpy_loop and bare_simpy_us_per_event, for information (no target): the replicate
   over the same events replayed in a bare simpy environment (supply/trace.py `replay_simpy`: a
   timeout per event with a callback doing the same arithmetic; the basis issue 16 measured on), timed
   in the same interleaved rounds;
5. replicate_outside_recruitment and fold_supply_record, for information (no target): ms CPU per
   replicate of `montecarlo.run_replicate` besides the recruitment DES (its results computed first and
   handed back from a table while timing: the rows, the treatment plan, the supply chain, the record),
   and per supply record folded by the parent (`SupplyAggregate.add`); medians of --pairs rounds;
6. the same figures for scenarios/network_south_china.toml (24 sites: most events are shipments and the
   echelon stock the depot orders on), for information;
7. full_run_500_jobs2 (target < 120 s), skipped with --quick; the run's supply figures are printed for
   information (model outputs, not performance targets).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(scenario, streams, pairs: int) -> dict[str, float]:
    """Interleaved rounds of (the replicate as `run` calls it, its event loop alone, the bare replay)."""
    from hn005_sim import rng
    from hn005_sim.supply import simulate
    from hn005_sim.supply.levels import demand_weights
    from hn005_sim.supply.trace import replay, replay_simpy, trace_supply
    from hn005_sim.treatment.course import DAYS_PER_MONTH

    # the rows `run` gives the model (montecarlo.run_replicate: supply/simulate.py `recruitment_rows`),
    # made untimed, and the horizon it asks for (None: the last enrolment + the follow-up)
    streams = [(simulate._enrolments(e), simulate._sites(s)) for e, s in streams]
    horizon = None
    follow = scenario.supply.followup_months * DAYS_PER_MONTH
    weights = demand_weights(scenario)
    traces = []
    for r, (e, s) in enumerate(streams):
        rec, tr = trace_supply(scenario.regimen, scenario.supply, e, s, horizon,
                               rng.stream(1, r, "treatment"), rng.stream(1, r, "supply"), weights=weights)
        totals, handled = replay(tr)
        # the replay must be the model's events: same count, and its arithmetic ends at the model's stock
        if handled != tr.events or totals[0] != rec.on_hand_depot.tolist() or \
                [sum(x) for x in zip(*totals[1:], strict=True)] != rec.on_hand_sites.tolist():
            sys.exit(f"bench/supply.py: the replay of replicate {r} does not match the model")
        if replay_simpy(tr) != (totals, handled):
            sys.exit(f"bench/supply.py: the simpy replay of replicate {r} does not match the heapq replay")
        traces.append(tr)
    events = sum(t.events for t in traces)

    def replicates() -> float:
        t0 = time.process_time()
        for r, (e, s) in enumerate(streams):
            simulate.simulate_replicate(scenario, e, s, horizon, rng.stream(1, r, "treatment"),
                                        rng.stream(1, r, "supply"))
        return time.process_time() - t0

    def loops() -> float:
        spent = 0.0
        for r, (e, s) in enumerate(streams):
            m = simulate.SupplyModel(scenario.regimen, scenario.supply, s, e,
                                     max((x.day for x in e), default=0.0) + follow,
                                     rng.stream(1, r, "treatment"), rng.stream(1, r, "supply"), None, weights)
            t0 = time.process_time()
            m.run()
            spent += time.process_time() - t0
        return spent

    def bare() -> float:
        t0 = time.process_time()
        for tr in traces:
            replay(tr)
        return time.process_time() - t0

    def bare_simpy() -> float:
        t0 = time.process_time()
        for tr in traces:
            replay_simpy(tr)
        return time.process_time() - t0

    replicates(), bare(), bare_simpy()  # warm up
    rounds = []
    for _ in range(pairs):
        a = replicates()
        b = bare()
        c = loops()
        d = bare_simpy()
        rounds.append((a, b, c, d))
    ratio = statistics.median(a / b for a, b, _, _ in rounds)
    loop_ratio = statistics.median(c / b for _, b, c, _ in rounds)
    simpy_ratio = statistics.median(a / d for a, _, _, d in rounds)
    mid = sorted(rounds, key=lambda x: x[0] / x[1])[len(rounds) // 2]
    return {"ratio": ratio, "loop_ratio": loop_ratio, "simpy_ratio": simpy_ratio,
            "model_us": mid[0] / events * 1e6, "bare_us": mid[1] / events * 1e6,
            "loop_us": mid[2] / events * 1e6, "simpy_us": mid[3] / events * 1e6,
            "ms_per_replicate": mid[0] / len(streams) * 1000, "events_per_replicate": events / len(streams)}


def outside_recruitment(scenario, source, n: int, rounds: int) -> tuple[float, float]:
    """(ms CPU per replicate of `montecarlo.run_replicate` without the recruitment DES, ms CPU per
    supply record folded by the parent's `SupplyAggregate.add`), medians of `rounds` rounds over the
    same n replicates. The DES's results are computed first and handed back from a table while timing
    (montecarlo's `simulate_recruitment` replaced for the rounds): what is timed is the rest of
    `run_replicate` as `run` calls it (the rows, the treatment plan, the supply chain, the record)."""
    from hn005_sim import montecarlo as mc
    from hn005_sim.supply.simulate import SupplyAggregate

    done = {r: mc.simulate_recruitment(scenario, source, 1, r) for r in range(n)}
    real = mc.simulate_recruitment
    reps, folds = [], []
    try:
        mc.simulate_recruitment = lambda _sc, _src, _seed, r: done[r]
        for _ in range(rounds):
            t0 = time.process_time()
            recs = [mc.run_replicate(scenario, 1, r, source) for r in range(n)]
            t1 = time.process_time()
            agg = SupplyAggregate(scenario, n)
            for rec in recs:
                agg.add(rec.supply)
            t2 = time.process_time()
            reps.append((t1 - t0) / n * 1000)
            folds.append((t2 - t1) / n * 1000)
    finally:
        mc.simulate_recruitment = real
    return statistics.median(reps), statistics.median(folds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=5, help="interleaved rounds (>= 5)")
    ap.add_argument("--streams", type=int, default=30, help="replicates timed in each round")
    ap.add_argument("--replicates", type=int, default=500, help="replicates of the full run")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="10 streams, no full run")
    args = ap.parse_args()
    if args.pairs < 5:
        ap.error("--pairs must be at least 5")
    n_streams = 10 if args.quick else args.streams

    from hn005_sim.montecarlo import run_scenario
    from hn005_sim.recruitment.candidates import candidate_source
    from hn005_sim.scenario.load import load_scenario
    from hn005_sim.supply.search import enrolments_for

    for name, target in (("baseline", "target <= 2"), ("network_south_china", "")):
        sc, _ = load_scenario(ROOT / "scenarios" / f"{name}.toml")
        source = candidate_source(sc)
        streams = [enrolments_for(sc, 1, r, source) for r in range(n_streams)]
        f = measure(sc, streams, args.pairs)
        tag = "" if name == "baseline" else f"_{name}"
        print(f"{name}: {f['events_per_replicate']:.0f} events per replicate; replicate "
              f"{f['ms_per_replicate']:.1f} ms CPU ({f['model_us']:.2f} us/event; loop alone "
              f"{f['loop_us']:.2f}), bare replay {f['bare_us']:.2f} us/event, bare simpy "
              f"{f['simpy_us']:.2f} us/event; median of {args.pairs} rounds")
        print(f"BENCH supply_vs_bare_event_loop{tag} {f['ratio']:.2f} x {target}".rstrip())
        print(f"BENCH supply_loop_vs_bare_event_loop{tag} {f['loop_ratio']:.2f} x")
        print(f"BENCH supply_us_per_event{tag} {f['model_us']:.2f} us")
        print(f"BENCH bare_loop_us_per_event{tag} {f['bare_us']:.2f} us")
        # for information (no target): the basis issue 16 measured on, the same events in bare simpy
        print(f"BENCH supply_vs_bare_simpy_loop{tag} {f['simpy_ratio']:.2f} x")
        print(f"BENCH bare_simpy_us_per_event{tag} {f['simpy_us']:.2f} us")
        if name == "baseline":
            print(f"BENCH supply_model_per_replicate {f['ms_per_replicate']:.1f} ms target < 30")
        # for information (no target): a replicate of `run` besides its recruitment DES, and its fold
        rep_ms, fold_ms = outside_recruitment(sc, source, n_streams, args.pairs)
        print(f"BENCH replicate_outside_recruitment{tag} {rep_ms:.1f} ms")
        print(f"BENCH fold_supply_record{tag} {fold_ms:.2f} ms")

    if args.quick:
        return
    sc, _ = load_scenario(ROOT / "scenarios" / "baseline.toml")
    t0 = time.perf_counter()
    result = run_scenario(sc, args.replicates, 1, jobs=args.jobs)
    wall = time.perf_counter() - t0
    print(f"BENCH full_run_{args.replicates}_jobs{args.jobs} {wall:.1f} s target < 120")
    for drug, s in result.summary.get("supply", {}).items():
        print(f"  {drug}: packs to make p50/p90/p95 {s['units_p50']:.0f}/{s['units_p90']:.0f}/"
              f"{s['units_p95']:.0f}, P(stock-out) {s['stockout_probability']:.3f}, "
              f"waste p50 {s['waste_p50']:.0f}")


if __name__ == "__main__":
    main()
