"""Time of `hn005-sim forecast` (issue 13 figures for the closing note).

    .venv/bin/python bench/forecast.py [--sites 40] [--replicates 20] [--jobs 1]

1. The whole analytic command (process start, reading, posterior, exact quantiles, additional-sites
   search, report) on a synthetic observed file of --sites sites of plans/china_network.toml at month 12.
2. The DES continuation of scenarios/baseline.toml from plans/observed/alter_hn005_month12.csv: seconds
   per replicate (the `des.seconds_per_replicate` of summary.json).
3. The calibration back-test of tests/recruitment/test_forecast.py (coverage of the 50/80/95% predictive
   intervals and of the plug-in intervals) at two amounts of data.
Figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
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


def run(args: list[str]) -> tuple[float, dict]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [EXE, *args, "--format", "json"], check=True, capture_output=True, text=True, cwd=ROOT
    )
    return time.perf_counter() - t0, json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=40)
    ap.add_argument("--replicates", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=1)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        obs = Path(tmp) / "observed.csv"
        observed_file(obs, a.sites)
        wall, s = run(
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
            f"analytic forecast, {a.sites} sites, whole command with report: {wall:.2f} s "
            f"(P = {s['prob_target_by_deadline']:.3f}, additional {s['additional_sites']})"
        )
        base = ["forecast", "plans/china_network.toml", "--observed", str(obs), "--as-of", "12"]
        for extra, what in (([], "no --out (no report)"), (["--target", "400"], "--target 400, no --out")):
            wall, s = run(base + extra)
            print(
                f"  {what}: {wall:.2f} s (P = {s['prob_target_by_deadline']:.3f}, "
                f"additional {s['additional_sites']})"
            )
        wall, s = run(
            [
                "forecast",
                "scenarios/baseline.toml",
                "--observed",
                "plans/observed/alter_hn005_month12.csv",
                "--as-of",
                "12",
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
            f"replicate ({a.replicates} replicates, jobs {a.jobs}; whole command {wall:.1f} s)"
        )
    from tests.recruitment.test_forecast import backtest

    for t0, target in ((6.0, 40), (18.0, 60)):
        res = backtest(4000, 2022, t0=t0, target=target)
        cells = ", ".join(f"{int(100 * lv)}%: {c:.3f} (plug-in {p:.3f})" for lv, (c, p, _n) in res.items())
        n = next(iter(res.values()))[2]
        print(f"calibration, {n} one-site trials, {t0:g} months of data, target {target}: {cells}")


if __name__ == "__main__":
    main()
