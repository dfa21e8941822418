"""Benchmark: a full run (recruitment + treatment + supply) of 500 baseline replicates with --jobs 2
(target < 120 s), and the supply model's time per replicate on a realistic enrolment stream.

    .venv/bin/python bench/supply.py [--replicates 500] [--jobs 2]

When the baseline cannot recruit yet (no population/criteria sections), the run uses the baseline with a
fixed-probability screening funnel instead, and says so.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNNEL = """
[recruitment.funnel]
prescreen_pass = { value = 0.5, source = "bench: fixed funnel standing in for population + criteria" }
screen_pass = { value = 0.7, source = "bench: fixed funnel standing in for population + criteria" }
bsa_m2 = { dist = "normal", mean = 1.7, sd = 0.15, source = "bench: Chinese adults, assumption" }
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicates", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()

    from hn005_sim import rng
    from hn005_sim.montecarlo import run_scenario
    from hn005_sim.recruitment.candidates import candidate_source
    from hn005_sim.scenario.errors import ConfigError
    from hn005_sim.scenario.load import load_scenario
    from hn005_sim.supply.search import enrolments_for
    from hn005_sim.supply.simulate import simulate_replicate

    path = ROOT / "scenarios" / "baseline.toml"
    sc, _ = load_scenario(path)
    note = "baseline"
    try:
        candidate_source(sc).__class__  # noqa: B018
        run_scenario(sc, 1, 1)
    except ConfigError:
        tmp = Path(tempfile.mkdtemp()) / "baseline_funnel.toml"
        tmp.write_text(f'extends = "{path}"\nname = "baseline-funnel"\n' + FUNNEL)
        sc, _ = load_scenario(tmp)
        note = "baseline + fixed screening funnel (population/criteria not available)"

    # supply model alone, per replicate, on the DES's enrolment streams
    source = candidate_source(sc)
    streams = [enrolments_for(sc, 1, r, source) for r in range(20)]
    t0 = time.perf_counter()
    recs = [simulate_replicate(sc, e, s, None, rng.stream(1, r, "treatment"), rng.stream(1, r, "supply"))
            for r, (e, s) in enumerate(streams)]
    per = (time.perf_counter() - t0) / len(streams)
    cycles = sum(r.cycles_given for r in recs) / len(recs)
    print(f"scenario: {note}")
    print(f"supply model: {per * 1000:.0f} ms per replicate ({recs[0].patients} patients, "
          f"{cycles:.0f} cycle visits on average, {per / cycles * 1e6:.0f} us per visit)")

    t0 = time.perf_counter()
    result = run_scenario(sc, args.replicates, 1, jobs=args.jobs)
    wall = time.perf_counter() - t0
    print(f"full run (recruitment + treatment + supply): {args.replicates} replicates, --jobs {args.jobs}: "
          f"{wall:.1f} s (target < 120 s) -> {'OK' if wall < 120 else 'SLOW'}")
    for drug, s in result.summary.get("supply", {}).items():
        print(f"  {drug}: packs to make p50/p90/p95 {s['units_p50']:.0f}/{s['units_p90']:.0f}/"
              f"{s['units_p95']:.0f}, P(stock-out) {s['stockout_probability']:.3f}, "
              f"waste p50 {s['waste_p50']:.0f}")


if __name__ == "__main__":
    main()
