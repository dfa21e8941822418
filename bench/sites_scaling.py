"""Scaling of `sites`: the whole command by number of regions and by target (issue 14 target: 8 regions,
or a target of 10,000, within 3x the time of a 2-region plan). As users run it: `hn005-sim sites PLAN`
in a fresh process per run (start-up, the exact search, the approximation searches shown for contrast,
the curve, the time-to-target quantiles, writing the output folder); the search alone is printed too.

    .venv/bin/python bench/sites_scaling.py [--pairs 5]

Plans are built here from the China network's regions (plans/china_network.toml; regions beyond its
five repeat them with rates scaled down, so every region matters). Each comparison interleaves runs of the
2-region plan (A) and the larger one (B), A B A B ..., and takes the median of >= 5 pairs, since the
machine is shared. Prints every figure as a BENCH line and exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tomli_w

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from hn005_sim.recruitment import planning as P  # noqa: E402


def plan_with(regions: int, target: int, months: float = 24.0) -> P.Plan:
    base = P.load_plan(ROOT / "plans" / "china_network.toml")
    out = []
    for i in range(regions):
        r = base.regions[i % len(base.regions)]
        k = 1 + i // len(base.regions)
        scale = 1.0 / k
        out.append(r.model_copy(update={
            "name": f"{r.name}{'' if k == 1 else k}", "rate_mean": r.rate_mean * scale,
            "rate_variance": r.rate_variance * scale * scale,
            "sites_min": 1 if i == 0 else 0,
            # a target of thousands needs hundreds of sites (at most the planning file's bound per region)
            "sites_max": min(P.MAX_SITES, max(r.sites_max or 0,
                                             int(3 * target / (r.rate_mean * scale * 18) / regions) + 2)),
        }))
    plan = base.model_copy(update={"regions": out, "target": target, "duration_months": months})
    return P.Plan.model_validate(plan.model_dump(by_alias=True))


WORK = Path(tempfile.mkdtemp(prefix="hn005-bench-sites-"))
CLI = str(Path(sys.executable).with_name("hn005-sim"))


def plan_file(plan: P.Plan, name: str) -> Path:
    path = WORK / f"{name}.toml"
    path.write_bytes(tomli_w.dumps(plan.model_dump(by_alias=True, exclude_none=True)).encode())
    return path


def timed(path: Path) -> float:
    """Wall time of the whole command in a fresh process."""
    t0 = time.perf_counter()
    subprocess.run([CLI, "sites", str(path), "-q", "--out", str(WORK / f"out_{path.stem}"), "--force"],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def search_only(plan: P.Plan) -> float:
    t0 = time.perf_counter()
    P.plan_sites(plan)
    return time.perf_counter() - t0


def pairs(a: Path, b: Path, n: int) -> tuple[float, float]:
    ta, tb = [], []
    for _ in range(n):
        ta.append(timed(a))
        tb.append(timed(b))
    return statistics.median(ta), statistics.median(tb)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=5)
    args = ap.parse_args()
    n = max(5, args.pairs)
    two_plan = plan_with(2, 110)
    two = plan_file(two_plan, "regions_2")
    timed(two)  # warm-up: the file cache
    missed = []
    rows = []
    for label, plan in (("regions_5", plan_with(5, 110)), ("regions_8", plan_with(8, 110)),
                        ("target_1000", plan_with(2, 1000)), ("target_10000", plan_with(2, 10_000))):
        ta, tb = pairs(two, plan_file(plan, label), n)
        inner_a, inner_b = search_only(two_plan), search_only(plan)
        ans = P.plan_sites(plan).summary
        ratio = tb / ta
        rows.append((label, ta, tb, ratio))
        print(f"{label}: 2-region plan {ta:.3f} s, this plan {tb:.3f} s (median of {n} interleaved "
              f"pairs), ratio {ratio:.2f}; answer {ans['total_sites']} sites, "
              f"P = {ans['probability_of_success']:.4f}, proved optimal {ans['search']['proved_optimal']}, "
              f"{ans['search']['evaluations']:,} evaluations; the answer alone, in process: "
              f"{inner_a:.3f} s vs {inner_b:.3f} s ({inner_b / inner_a:.1f}x)")
        print(f"BENCH sites_{label}_seconds {tb:.3f} s")
        print(f"BENCH sites_{label}_vs_2_regions {ratio:.2f} x target <= 3")
        if label in ("regions_8", "target_10000") and ratio > 3:
            missed.append(label)
    print(f"BENCH sites_regions_2_seconds {rows[0][1]:.3f} s")
    if missed:
        print(f"missed: {', '.join(missed)} over 3x the 2-region plan", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
