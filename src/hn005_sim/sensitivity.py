"""Global sensitivity of the headline answers to every uncertain figure (SALib: Sobol or Morris).

The design: SALib samples the unit cube, one coordinate per uncertain figure (scenario/uncertainty.py).
Each design
point maps onto figure values through their ranges' quantile functions and is one scenario; each
scenario runs `replicates` replicates with the same seeds as every other point (common random numbers),
so output differences between points come from the figures, not from chance. The outputs of a point:

- prob_target_by_deadline: share of its replicates with the target enrolled by the deadline;
- enrolled_by_deadline_mean: mean patients enrolled by the deadline (smoother than the share above,
  which a few replicates per point estimate coarsely when it is near 0 or 1);
- time_to_target_p50: median months to the target, a replicate that does not reach it counted at the
  horizon (so the median is always defined);
- screen_failure_rate: mean over its replicates of screen failures / screening decisions;
- packs_p95_DRUG: packs to make at the 95th percentile of its replicates (with few replicates, close
  to their maximum), per drug of the supply chain.

SALib then estimates, for each output, first-order and total Sobol indices (Saltelli/Jansen estimators
with bootstrap confidence intervals) or Morris elementary-effect statistics (mu*, its bootstrap
interval, mu, sigma). Results are identical for any --jobs or executor: the design depends only on the
seed, and each point only on its values and the seed.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from hn005_sim.recruitment.config import MONTH_DAYS
from hn005_sim.scenario.errors import ConfigError

BASE_OUTPUTS = ("prob_target_by_deadline", "enrolled_by_deadline_mean", "time_to_target_p50",
                "screen_failure_rate")
METHODS = ("sobol", "morris")
MORRIS_LEVELS = 4
CONF_LEVEL = 0.95
RESAMPLES = 200


# ---------------------------------------------------------------------------------------------------
# evaluating design points


def point_outputs(scenario, seed: int, replicates: int) -> dict[str, float]:
    """The outputs of one scenario over replicates 0..replicates-1 with `seed` (module docstring)."""
    from hn005_sim import montecarlo as mc

    source = mc._source_for(scenario)
    recs = [mc.run_replicate(scenario, seed, r, source) for r in range(replicates)]
    target = scenario.trial.target_enrolled
    deadline_day = scenario.trial.deadline_months * MONTH_DAYS
    horizon = scenario.recruitment.horizon_months.value
    by_deadline = [min(int(np.searchsorted(r.enrol_day, deadline_day, side="right")), target) for r in recs]
    reached = [n >= target for n in by_deadline]
    ttt = [r.time_to_target_day / MONTH_DAYS if math.isfinite(r.time_to_target_day) else horizon
           for r in recs]
    rates = []
    for r in recs:
        decided = r.screen_failures + r.withdrawn + r.enrolled
        rates.append(r.screen_failures / decided if decided > 0 else 0.0)
    out = {
        "prob_target_by_deadline": float(np.mean(reached)),
        "enrolled_by_deadline_mean": float(np.mean(by_deadline)),
        "time_to_target_p50": float(np.median(np.minimum(ttt, horizon))),
        "screen_failure_rate": float(np.mean(rates)),
    }
    supplies = [r.supply for r in recs if r.supply is not None]
    if supplies:
        for drug in dict.fromkeys(supplies[0].drugs):
            packs = [s.drug_total(s.released, drug) for s in supplies]
            out[f"packs_p95_{drug}"] = float(np.quantile(packs, 0.95))
    return out


def evaluate_batch(uncertain, points: list[tuple[int, list[float]]], seed: int, replicates: int):
    """[(index, outputs)] for each (index, figure values); the unit of work sent to an executor."""
    return [(k, point_outputs(uncertain.scenario_with(values), seed, replicates)) for k, values in points]


def evaluate(uncertain, values: list[list[float]], seed: int, replicates: int, jobs: int = 1,
             executor: Any = "process", progress: bool = False) -> list[dict[str, float]]:
    """Outputs of every design point, in order; identical for any jobs/executor."""
    from hn005_sim.montecarlo import _progress, open_executor, sigint_held

    n = len(values)
    results: dict[int, dict[str, float]] = {}
    with open_executor(executor, jobs) as (ex, workers), _progress(n, progress) as bar:
        task = bar.add_task("points", total=n) if bar is not None else None
        size = max(1, min(20, math.ceil(n / (4 * workers))))
        batches = [[(k, values[k]) for k in range(s, min(s + size, n))] for s in range(0, n, size)]
        if ex is None:
            for b in batches:
                results.update(evaluate_batch(uncertain, b, seed, replicates))
                if bar is not None:
                    bar.advance(task, len(b))
        else:
            pending: set[cf.Future] = set()
            todo = iter(batches)
            window = 2 * workers
            while True:
                for b in todo:
                    with sigint_held():
                        pending.add(ex.submit(evaluate_batch, uncertain, b, seed, replicates))
                    if len(pending) >= window:
                        break
                if not pending:
                    break
                finished, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    got = fut.result()
                    results.update(got)
                    if bar is not None:
                        bar.advance(task, len(got))
    return [results[k] for k in range(n)]


# ---------------------------------------------------------------------------------------------------
# design and analysis (SALib)


def _problem(names: list[str]) -> dict[str, Any]:
    return {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0]] * len(names)}


def design(method: str, names: list[str], samples: int, seed: int) -> np.ndarray:
    """Points of the unit cube, one column per name: Sobol' (Saltelli scheme, N x (D + 2) points, no
    second-order terms) or Morris (N trajectories x (D + 1) points on a 4-level grid)."""
    problem = _problem(names)
    if method == "sobol":
        from SALib.sample import sobol

        return sobol.sample(problem, samples, calc_second_order=False, seed=seed)
    from SALib.sample import morris

    return morris.sample(problem, samples, num_levels=MORRIS_LEVELS, seed=seed)


def points_for(method: str, dims: int, samples: int) -> int:
    return samples * (dims + 2) if method == "sobol" else samples * (dims + 1)


def analyse(method: str, names: list[str], x: np.ndarray, y: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Indices of one output. A constant output has every index 0 (nothing moves it)."""
    problem = _problem(names)
    d = len(names)
    if not np.ptp(y) > 0:
        zero = np.zeros(d)
        if method == "sobol":
            return {"S1": zero, "S1_conf": zero, "ST": zero, "ST_conf": zero}
        return {"mu": zero, "mu_star": zero, "mu_star_conf": zero, "sigma": zero}
    if method == "sobol":
        from SALib.analyze import sobol

        res = sobol.analyze(problem, y, calc_second_order=False, num_resamples=RESAMPLES,
                            conf_level=CONF_LEVEL, seed=seed)
        return {k: np.asarray(res[k], float) for k in ("S1", "S1_conf", "ST", "ST_conf")}
    from SALib.analyze import morris

    res = morris.analyze(problem, x, y, num_resamples=RESAMPLES, conf_level=CONF_LEVEL,
                         num_levels=MORRIS_LEVELS, seed=seed)
    return {k: np.asarray(res[k], float) for k in ("mu", "mu_star", "mu_star_conf", "sigma")}


def swings(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The tornado's bars: the output with each figure at the low and at the high end of its range, the
    others at their design average, from the least-squares linear fit of the output on every figure's
    quantile over all design points (which separates each figure's effect from the others'); and the
    fit's R^2 (how much of the output's variation a linear, additive model explains)."""
    n = x.shape[0]
    design_matrix = np.column_stack([np.ones(n), x])
    beta = np.linalg.lstsq(design_matrix, y, rcond=None)[0]
    mean_x, mean_y = x.mean(axis=0), float(y.mean())
    slope = beta[1:]
    resid = y - design_matrix @ beta
    total = float(((y - mean_y) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / total if total > 0 else math.nan
    return mean_y + slope * (0.0 - mean_x), mean_y + slope * (1.0 - mean_x), r2


@dataclass(frozen=True)
class SensitivityResult:
    table: pl.DataFrame  # sensitivity.csv
    summary: dict[str, Any]
    design: np.ndarray
    outputs: dict[str, np.ndarray]


def _r(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def sensitivity(uncertain, method: str, samples: int, replicates: int, seed: int, jobs: int = 1,
                executor: Any = "process", progress: bool = False) -> SensitivityResult:
    """Run the design and analyse every output (module docstring)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    figures = list(uncertain.figures)
    names = [f.name for f in figures]
    x = design(method, names, samples, seed)
    values = [uncertain.values_at(row) for row in x]
    results = evaluate(uncertain, values, seed, replicates, jobs, executor, progress)
    outputs = list(BASE_OUTPUTS) + [k for k in results[0] if k not in BASE_OUTPUTS]
    y = {o: np.array([r[o] for r in results], float) for o in outputs}
    bounds = {f.name: f.bounds() for f in figures}
    rows = []
    linear_r2 = {}
    for o in outputs:
        idx = analyse(method, names, x, y[o], seed)
        at_low, at_high, linear_r2[o] = swings(x, y[o])
        for i, name in enumerate(names):
            row: dict[str, Any] = {"parameter": name, "output": o, "method": method}
            if method == "sobol":
                for k in ("S1", "ST"):
                    v, c = idx[k][i], idx[f"{k}_conf"][i]
                    row.update({k: _r(v), f"{k}_ci_low": _r(v - c), f"{k}_ci_high": _r(v + c)})
            else:
                v, c = idx["mu_star"][i], idx["mu_star_conf"][i]
                row.update({"mu_star": _r(v), "mu_star_ci_low": _r(v - c), "mu_star_ci_high": _r(v + c),
                            "mu": _r(idx["mu"][i]), "sigma": _r(idx["sigma"][i])})
            lo, hi = bounds[name]
            row.update({
                "output_at_low": _r(at_low[i]),
                "output_at_high": _r(at_high[i]),
                "figure_low": _r(lo),
                "figure_high": _r(hi),
            })
            rows.append(row)
    key = "ST" if method == "sobol" else "mu_star"
    # outputs in their order, the figures of each ranked by their index (most influential first)
    rows.sort(key=lambda r: (outputs.index(r["output"]), -(r[key] if r[key] is not None else -math.inf)))
    table = pl.DataFrame(rows, infer_schema_length=None)
    ranking = {}
    for o in outputs:
        sub = table.filter(pl.col("output") == o).sort(key, descending=True, nulls_last=True)
        ranking[o] = sub["parameter"].head(5).to_list()
    summary = {
        "method": method,
        "samples": samples,
        "replicates_per_point": replicates,
        "design_points": int(x.shape[0]),
        "replicates_total": int(x.shape[0]) * replicates,
        "seed": seed,
        "uncertain_figures": len(figures),
        "index": key,
        "conf_level": CONF_LEVEL,
        "outputs": {o: {"mean": _r(float(y[o].mean())), "sd": _r(float(y[o].std())),
                        "min": _r(float(y[o].min())), "max": _r(float(y[o].max()))} for o in outputs},
        "top_parameters": ranking,
        "linear_r2": {o: _r(v) for o, v in linear_r2.items()},
        "figures": [f.row() for f in figures],
    }
    return SensitivityResult(table, summary, x, y)


# ---------------------------------------------------------------------------------------------------
# files shared with `run`


def uncertainty_files(uncertain, seed: int, replicates: int) -> dict[str, pl.DataFrame]:
    """`run --uncertainty`: uncertainty.csv (the uncertain figures, ranges and sources) and
    parameter_sets.csv (each replicate's drawn values, one column per figure)."""
    figures = pl.DataFrame([f.row() for f in uncertain.figures], schema={
        "parameter": pl.String, "value": pl.Float64, "low": pl.Float64, "high": pl.Float64,
        "distribution": pl.String, "source": pl.String})
    draws = np.array([uncertain.draw(seed, r) for r in range(replicates)], float).reshape(
        replicates, len(uncertain.figures))
    sets = pl.DataFrame({"replicate": np.arange(replicates),
                         **{f.name: draws[:, i] for i, f in enumerate(uncertain.figures)}})
    return {"uncertainty": figures, "parameter_sets": sets.with_columns(pl.col(pl.Float64).round(6))}


def read_sensitivity(path: Path) -> pl.DataFrame:
    """A sensitivity.csv (or the folder holding one) for the run report; a bad file is one line."""
    from hn005_sim.report.data import read_csv

    path = Path(path)
    if path.is_dir():
        path = path / "sensitivity.csv"
    if not path.is_file():
        raise ConfigError.one(str(path), "", "not found: expected a `sensitivity` output folder or its "
                              "sensitivity.csv")
    frame = read_csv(path)
    missing = [c for c in ("parameter", "output", "method") if c not in frame.columns]
    if missing:
        raise ConfigError.one(str(path), "", f"missing column(s) {', '.join(missing)} (see docs/outputs.md)")
    return frame
