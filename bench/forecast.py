"""Time of `hn005-sim forecast` (issue 13 figures for the closing note).

    .venv/bin/python bench/forecast.py [--sites 40] [--replicates 20] [--jobs 1]

1. The whole analytic command (process start, reading, posterior, exact quantiles, additional-sites
   search, report) on a synthetic observed file of --sites sites of plans/china_network.toml at month 12.
2. The DES continuation of scenarios/baseline.toml from plans/observed/alter_hn005_month12.csv (with
   --deadline 30: the baseline's own deadline is month 12): seconds per replicate (the
   `des.seconds_per_replicate` of summary.json).
3. The calibration back-test of tests/recruitment/test_forecast.py (coverage of the 50/80/95% predictive
   intervals and of the plug-in intervals) at two amounts of data.
Prints BENCH lines (bench/run_all.py) with no targets: issue 13 set none on time, and coverage is a model
figure (tested in tests/recruitment/test_forecast.py), not a performance target.
Figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXE = str(ROOT / ".venv" / "bin" / "hn005-sim")


def observed_file(path: Path, sites: int, seed: int = 1) -> None:
    regions = ["guangdong", "guangxi", "hunan", "fujian", "jiangxi"]
    rng = np.random.default_rng(seed)
    lines = ["site,region,opened_month,enrolled"]
    for i in range(sites):
        opened = rng.gamma(10.4, 0.65)  # about the plan's start-up (mean 6.77, sd 2.1)
        if opened > 12 or rng.random() < 0.11:
            lines.append(f"S{i + 1},{regions[i % 5]},,0")
        else:
            lines.append(f"S{i + 1},{regions[i % 5]},{opened:.2f},{rng.poisson(0.6 * (12 - opened))}")
    path.write_text("\n".join(lines) + "\n")


def run(args: list[str]) -> tuple[str, dict, float]:
    """Wall time and CPU time (user + system) of the whole command as text, its summary, the wall time."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(
        [EXE, *args, "--format", "json"], check=True, capture_output=True, text=True, cwd=ROOT
    )
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return f"{wall:.2f} s wall, {cpu:.2f} s CPU", json.loads(out.stdout), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=40)
    ap.add_argument("--replicates", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument(
        "--multisite-trials",
        type=int,
        default=0,
        help="also run the many-site calibration back-test with this many trials (slow)",
    )
    a = ap.parse_args()
    if a.multisite_trials:
        res = multisite_backtest(a.multisite_trials)
        cells = ", ".join(f"{int(100 * lv)}%: {c:.3f} (plug-in {p:.3f})" for lv, (c, p, _n) in res.items())
        print(f"calibration, {next(iter(res.values()))[2]} four-site trials (exact many-site path): {cells}")
    with tempfile.TemporaryDirectory() as tmp:
        obs = Path(tmp) / "observed.csv"
        observed_file(obs, a.sites)
        wall, s, secs = run(
            [
                "forecast",
                "plans/china_network.toml",
                "--observed",
                str(obs),
                "--as-of",
                "12",
                "--out",
                str(Path(tmp) / "out"),
            ]
        )
        print(
            f"analytic forecast, {a.sites} sites, whole command with report: {wall} "
            f"(P = {s['prob_target_by_deadline']:.3f}, additional {s['additional_sites']}, "
            f"feasible {s['additional_sites_detail']['feasible']})"
        )
        print(f"BENCH forecast_analytic_{a.sites}_sites_with_report {secs:.2f} s")
        base = ["forecast", "plans/china_network.toml", "--observed", str(obs), "--as-of", "12"]
        for extra, what in (([], "no --out (no report)"), (["--target", "400"], "--target 400, no --out")):
            wall, s, _ = run(base + extra)
            print(
                f"  {what}: {wall} (P = {s['prob_target_by_deadline']:.3f}, "
                f"additional {s['additional_sites']}, feasible {s['additional_sites_detail']['feasible']})"
            )
        wall, s, _ = run(
            [
                "forecast",
                "scenarios/baseline.toml",
                "--observed",
                "plans/observed/alter_hn005_month12.csv",
                "--as-of",
                "12",
                "--deadline",
                "30",
                "--method",
                "des",
                "--replicates",
                str(a.replicates),
                "--jobs",
                str(a.jobs),
            ]
        )
        d = s["des"]
        print(
            f"DES continuation of the baseline from month 12: {d['seconds_per_replicate'] * 1000:.0f} ms per "
            f"replicate ({a.replicates} replicates, jobs {a.jobs}; whole command {wall})"
        )
        print(f"BENCH forecast_des_per_replicate {d['seconds_per_replicate'] * 1000:.1f} ms")
    from tests.recruitment.test_forecast import backtest

    for t0, target in ((6.0, 40), (18.0, 60)):
        res = backtest(4000, 2022, t0=t0, target=target)
        cells = ", ".join(f"{int(100 * lv)}%: {c:.3f} (plug-in {p:.3f})" for lv, (c, p, _n) in res.items())
        n = next(iter(res.values()))[2]
        print(f"calibration, {n} one-site trials, {t0:g} months of data, target {target}: {cells}")
        # a model figure, shown without a target (a performance bench sets no target on model outputs)
        print(f"BENCH forecast_coverage80_one_site_{t0:g}_months {res[0.8][0]:.3f} fraction")


def multisite_backtest(trials: int, seed: int = 2022) -> dict[float, tuple[float, float, int]]:
    """Synthetic 4-site trials from the prior (rate ~ Gamma(2, 2) per site, sites opened at months 0, 1, 3,
    5, forecast at month 8, target 40): coverage of the forecast's own central intervals of the remaining
    time (the many-site path: exact count distribution inverted over time) and of plug-in intervals
    (Gamma(R, sum of the sites' ML rates k_i / t_i)). The truth: all four open, so the remaining time is
    Gamma(R, sum of the true rates)."""
    from scipy import optimize, stats

    from hn005_sim.recruitment import analytic as A
    from hn005_sim.recruitment import forecast as F
    from hn005_sim.recruitment import planning as P

    plan = P.Plan.model_validate(
        {
            "name": "b",
            "duration_months": 30,
            "target": 40,
            "probability": 0.8,
            "regions": [{"name": "r", "sites_max": 10, "rate_mean": 1.0, "rate_variance": 0.5}],
        }
    )
    opened = np.array([0.0, 1.0, 3.0, 5.0])
    as_of = 8.0
    rng = np.random.default_rng(seed)
    levels = (0.5, 0.8, 0.95)
    hits = {lv: [0, 0] for lv in levels}
    used = 0
    for _ in range(trials):
        lam = rng.gamma(2.0, 0.5, 4)
        k = rng.poisson(lam * (as_of - opened))
        r = 40 - int(k.sum())
        if r <= 0 or k.sum() == 0:
            continue
        used += 1
        truth = rng.gamma(r, 1 / lam.sum())
        fc = F.build(
            plan,
            [
                F.ObservedSite(f"s{i}", "r", float(o), int(c))
                for i, (o, c) in enumerate(zip(opened, k, strict=True))
            ],
            as_of,
        )
        g = fc.groups

        def q_time(q, g=g, r=r):
            hi = 2.0 * r / sum(x.rate_mean for x in g)
            while A.success_probability(g, r, hi) < q:
                hi *= 2
            return optimize.brentq(lambda h: A.success_probability(g, r, h) - q, 1e-9, hi, xtol=1e-3)

        rate_ml = float((k / (as_of - opened)).sum())
        for lv in levels:
            lo_q, hi_q = (1 - lv) / 2, (1 + lv) / 2
            hits[lv][0] += q_time(lo_q) <= truth <= q_time(hi_q)
            hits[lv][1] += (
                stats.gamma.ppf(lo_q, r, scale=1 / rate_ml)
                <= truth
                <= stats.gamma.ppf(hi_q, r, scale=1 / rate_ml)
            )
    return {lv: (h[0] / used, h[1] / used, used) for lv, h in hits.items()}


if __name__ == "__main__":
    main()
