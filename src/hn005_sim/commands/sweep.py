"""`hn005-sim sweep SCENARIO --set KEY=V1,V2 ...`: a grid of scenarios, each run with the same seeds.

Every grid point is the scenario with one value of each `--set` key (hn005_sim.scenario.overrides); all
points are validated before any simulation. Each point runs `--replicates` replicates with the same
`--seed`, so replicate r of every point draws the same random numbers (common random numbers): the
differences between points are the effect of the change, not noise. One executor (process pool or Dask
cluster) serves the whole grid.

Writes sweep.csv (one row per point: the --set keys, the headline figures, the supply figures per drug
when the scenario has supply, then each figure's difference from the first point with its paired Monte
Carlo interval: report/paired.py), grid.json (each point's overrides and full run summary), report.html
with charts/, and manifest.json.
"""

from __future__ import annotations

import contextlib
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from hn005_sim.commands.common import (
    ExecutorOpt,
    ForceOpt,
    Format,
    FormatOpt,
    JobsOpt,
    OutOpt,
    QuietOpt,
    ReplicatesOpt,
    ScenarioArg,
    SeedOpt,
    console,
    print_json,
)
from hn005_sim.scenario.load import display

SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="KEY=V1,V2,...: values of one config key (TOML literals); several --set make a grid. "
        "e.g. --set recruitment.regions[0].sites=5,10,20 --set criteria.crcl_min_ml_min=50,60",
        show_default=False,
    ),
]

METRICS = (
    "prob_target_by_deadline",
    "time_to_target_p50",
    "enrolled_by_deadline_p50",
    "screen_failure_rate_p50",
    "eligible_fraction",
    "time_to_target_p10",
    "time_to_target_p90",
    "reached_fraction",
    "screened_p50",
    "sites_zero_enrolled_fraction",
)
"""sweep.csv columns after the --set keys; the first five are the contract (docs/outputs.md)."""

SUPPLY_METRICS = ("stockout_probability", "missed_dispensing_probability", "out_of_stock_probability",
                  "units_p95", "waste_packs_p50")
"""Per drug (`<drug>_<figure>` columns, after METRICS) when the scenario simulates supply."""

DIFFERENCE_FIELDS = ("difference_vs_first", "difference_low", "difference_high", "within_noise")
"""Columns `<field>.<figure>` for each of DIFFERENCE_METRICS (and each drug's supply figures)."""

DIFFERENCE_METRICS = {
    "prob_target_by_deadline": "prob_target_by_deadline",
    "time_to_target_p50": "time_to_target_months.p50",
    "enrolled_by_deadline_p50": "enrolled_by_deadline.p50",
    "screen_failure_rate_p50": "screen_failure_rate.p50",
    "eligible_fraction": None,  # paired over the same candidates (eligible_flags)
}
"""sweep.csv figure -> summary key of its per-replicate figure (report/paired.py)."""

ELIGIBLE_SAMPLE = 20_000
"""Candidates drawn per grid point for the eligible fraction: binomial SE <= 0.5/sqrt(20000) = 0.0035."""


def metrics(summary: dict[str, Any], eligible_fraction: float | None) -> dict[str, Any]:
    """The sweep.csv figures of one grid point from its run summary (keys in DESIGN.md)."""
    ttt = summary["time_to_target_months"]
    return {
        "prob_target_by_deadline": summary["prob_target_by_deadline"],
        "time_to_target_p50": ttt["p50"],
        "enrolled_by_deadline_p50": summary["enrolled_by_deadline"]["p50"],
        "screen_failure_rate_p50": summary["screen_failure_rate"]["p50"],
        "eligible_fraction": eligible_fraction,
        "time_to_target_p10": ttt["p10"],
        "time_to_target_p90": ttt["p90"],
        "reached_fraction": ttt["reached_fraction"],
        "screened_p50": summary["screened"]["p50"],
        "sites_zero_enrolled_fraction": summary["sites_zero_enrolled_fraction"],
    }


def supply_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """`<drug>_<figure>` for SUPPLY_METRICS of every drug in the summary (none without supply)."""
    out: dict[str, Any] = {}
    for drug, figs in (summary.get("supply") or {}).items():
        for m in SUPPLY_METRICS:
            out[f"{drug}_{m}"] = figs.get(m)
    return out


def eligible_fraction(scenario, seed: int) -> float | None:
    """Share of ELIGIBLE_SAMPLE candidates passing every criterion; None when the run does not use the
    population and criteria models.

    The candidates come from the `population` stream of (seed, replicate 0), the same for every grid
    point, so a change of threshold is judged on the same patients.
    """
    flags = eligible_flags(scenario, seed)
    return None if flags is None else round(float(flags.mean()), 6)


def eligible_flags(scenario, seed: int):
    """Per candidate of `eligible_fraction`'s sample: passes every criterion (numpy bools), or None."""
    pop_cfg = getattr(scenario, "population", None)
    crit_cfg = getattr(scenario, "criteria", None)
    if pop_cfg is None or crit_cfg is None or scenario.recruitment.funnel is not None:
        return None  # a funnel scenario judges candidates by fixed probabilities, not by the criteria
    from hn005_sim import eligibility, population
    from hn005_sim.rng import stream

    frame = population.sample(pop_cfg, ELIGIBLE_SAMPLE, stream(seed, 0, "population"))
    screening = eligibility.compile_criteria(crit_cfg, dict(frame.schema)).evaluate(frame)
    import numpy as np

    return np.asarray(screening.eligible, dtype=bool)


def sweep(
    scenario: ScenarioArg,
    out: OutOpt,
    force: ForceOpt = False,
    set_: SetOpt = None,
    replicates: ReplicatesOpt = 200,
    seed: SeedOpt = 20230901,
    jobs: JobsOpt = 1,
    executor: ExecutorOpt = "process",
    quiet: QuietOpt = False,
    format: FormatOpt = Format.table,
) -> None:
    """Run a grid of scenarios (every combination of the --set values) with common random numbers.

    Keys are the scenario's own dotted keys (list items as [i]); values are TOML literals. Every grid
    point is validated before any work; a bad key or value is one line naming --set and the key.
    Writes sweep.csv, grid.json, report.html, charts/ and manifest.json into OUT. Results do not depend
    on --jobs or --executor.
    """
    from hn005_sim.cli import InputError
    from hn005_sim.io import manifest, output_dir
    from hn005_sim.montecarlo import open_executor, parse_executor, run_scenario
    from hn005_sim.report.paired import ReplicateFigures
    from hn005_sim.scenario.errors import ConfigError, Problem
    from hn005_sim.scenario.overrides import format_value, load_grid, parse_sets

    if not set_:
        raise InputError("sweep needs at least one --set KEY=V1,V2,..."
                         ", e.g. --set trial.deadline_months=24,36")
    try:
        parse_executor(executor)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    from hn005_sim.guards import MAX_REPLICATES, check_count
    from hn005_sim.scenario.overrides import grid

    overrides = parse_sets(set_)
    keys = [o.key for o in overrides]
    size = len(grid(overrides))  # refuses a grid above MAX_GRID_POINTS before reading any file
    check_count(f"sweep grid points x --replicates ({size:,} x {replicates:,})", size * replicates,
                MAX_REPLICATES, " (MAX_REPLICATES)")
    points = load_grid(scenario, set_)
    missing = [p for p in points if p.scenario.recruitment is None]
    if missing:
        raise ConfigError(Problem(display(points[0].raw.path), "recruitment",
                                  "missing section: a sweep runs the recruitment simulation"))

    check_points_memory(points, replicates, jobs, executor)

    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    grid: list[dict[str, Any]] = []
    figures: list[ReplicateFigures] = []
    flags: list[Any] = []
    con = console(quiet or format is Format.json)
    with contextlib.ExitStack() as stack:
        try:
            ex, workers = stack.enter_context(open_executor(executor, jobs))
        except ValueError as exc:  # an executor that cannot start or be reached
            raise InputError(str(exc)) from None
        for point in points:
            label = ", ".join(f"{k}={format_value(v)}" for k, v in point.values.items())
            con.print(f"[{point.index + 1}/{len(points)}] {label}", highlight=False)
            trial = point.scenario.trial
            figs = ReplicateFigures(trial.target_enrolled, trial.deadline_months)
            result = run_scenario(point.scenario, replicates, seed, jobs=workers,
                                  executor=ex if ex is not None else "process",
                                  progress=not quiet and format is Format.table, on_record=figs)
            values = {k: format_value(v) for k, v in point.values.items()}
            elig = eligible_flags(point.scenario, seed)
            ef = None if elig is None else round(float(elig.mean()), 6)
            rows.append({**values, **metrics(result.summary, ef), **supply_metrics(result.summary)})
            figures.append(figs)
            flags.append(elig)
            grid.append({"point": point.index, "set": values, "summary": result.summary})

    supply_cols = list(dict.fromkeys(c for r in rows for c in supply_metrics_columns(r, keys)))
    diff_cols = add_differences(rows, figures, flags)
    header = [*keys, *METRICS, *supply_cols, *diff_cols]
    base_raw = points[0].raw
    with output_dir(out, force=force) as o:
        o.write_rows("sweep.csv", header, [[_cell(r.get(h)) for h in header] for r in rows])
        o.write_json("grid.json", grid)
        man = manifest(
            "sweep", scenario_path=display(base_raw.path), scenario_sha256=base_raw.sha256(),
            resolved_config=points[0].scenario.model_dump(mode="json", by_alias=True), seed=seed,
            replicates=replicates, wall_time_s=time.perf_counter() - started,
            extra={"jobs": jobs, "executor": executor, "set": list(set_), "grid_points": len(points),
                   "common_random_numbers": True,
                   "files": ["sweep.csv", "grid.json", "report.html", "charts/"]},
        )
        o.write_json("manifest.json", man)
        write_sweep_report(o.path, keys, rows, man, header)

    if format is Format.json:
        print_json(rows)
        return
    if quiet:
        return
    con = console(False)
    con.print(sweep_table(keys, rows, replicates, seed))
    con.print(f"wrote {display(out)}/: sweep.csv, grid.json, report.html, manifest.json")


def supply_metrics_columns(row: dict[str, Any], keys: list[str]) -> list[str]:
    return [c for c in row if c not in keys and c not in METRICS and not c.startswith(DIFFERENCE_FIELDS)]


def add_differences(rows: list[dict[str, Any]], figures: list, flags: list) -> list[str]:
    """Add to each row every figure's difference from the first point with its paired interval
    (`<field>.<figure>` columns); returns the column names."""
    from hn005_sim.report.paired import differences, paired_mean

    supply_keys = {}
    for d in figures[0].drugs:
        supply_keys[f"{d}_stockout_probability"] = f"supply.{d}.stockout_probability"
        supply_keys[f"{d}_units_p95"] = f"supply.{d}.units_p95"
    targets = {**DIFFERENCE_METRICS, **supply_keys}
    cols = [f"{f}.{m}" for m in targets for f in DIFFERENCE_FIELDS]
    for row, figs, elig in zip(rows, figures, flags, strict=True):
        diffs = differences(figures[0], figs)
        for m, key in targets.items():
            if key is None:  # the eligible fraction: the same candidates at every point
                if elig is None or flags[0] is None:
                    d = lo = hi = None
                else:
                    d, lo, hi = paired_mean(flags[0].astype(float), elig.astype(float))
            else:
                got = diffs.get(key)
                d, lo, hi = (None, None, None) if got is None else (got.difference, got.low, got.high)
            row[f"difference_vs_first.{m}"] = None if d is None else round(d, 6)
            row[f"difference_low.{m}"] = None if lo is None else round(lo, 6)
            row[f"difference_high.{m}"] = None if hi is None else round(hi, 6)
            row[f"within_noise.{m}"] = None if lo is None or hi is None else str(lo <= 0 <= hi).lower()
    return cols


def check_points_memory(points, replicates: int, jobs: int, executor: str) -> None:
    """Refuse the sweep before any simulation when one grid point's run would not fit in memory (e.g.
    --set trial.target_enrolled=110,1000000000000): the same estimate `run_scenario` checks, per point."""
    from hn005_sim.guards import check_run_memory
    from hn005_sim.montecarlo import parse_executor
    from hn005_sim.scenario.overrides import format_value

    kind, arg = parse_executor(executor)
    local_workers = {"process": jobs if jobs > 1 else 0, "dask-local": arg or jobs}.get(kind, 0)
    for point in points:
        cfg = point.scenario.recruitment
        label = ", ".join(f"{k}={format_value(v)}" for k, v in point.values.items())
        check_run_memory(
            target=point.scenario.trial.target_enrolled, months=cfg.horizon_month_count(),
            sites=sum(len(r.names()) for r in cfg.regions), replicates=replicates,
            processes=1 + local_workers,
            what=f"sweep point {point.index + 1} ({label}; {replicates:,} replicates)")


def _cell(value: Any) -> Any:
    return "" if value is None else value


def sweep_table(keys: list[str], rows: list[dict[str, Any]], replicates: int, seed: int) -> Table:
    t = Table(title=f"sweep: {len(rows)} scenarios x {replicates} replicates, seed {seed} "
                    "(common random numbers)")
    for k in keys:
        t.add_column(k)
    shown = {"prob_target_by_deadline": "P(target by deadline)",
             "time_to_target_p50": "months to target p50",
             "enrolled_by_deadline_p50": "enrolled by deadline p50",
             "screen_failure_rate_p50": "screen fail p50",
             "eligible_fraction": "eligible"}
    for title in shown.values():
        t.add_column(title, justify="right")
    paired = "difference_vs_first.prob_target_by_deadline" in (rows[0] if rows else {})
    if paired:
        t.add_column("P(target) − first point (95% paired interval)", justify="right")
    for r in rows:
        cells = [str(r[k]) for k in keys]
        for m in shown:
            v = r[m]
            if v is None:
                cells.append("-" if m == "eligible_fraction" else "not reached")
            elif m in ("prob_target_by_deadline", "screen_failure_rate_p50", "eligible_fraction"):
                cells.append(f"{v:.1%}")
            else:
                cells.append(f"{v:.1f}")
        if paired:
            from hn005_sim.report.paired import Difference, format_difference

            m = "prob_target_by_deadline"
            cells.append(format_difference(Difference(
                m, r[f"difference_vs_first.{m}"], r[f"difference_low.{m}"], r[f"difference_high.{m}"], ""),
                "pct"))
        t.add_row(*cells)
    return t


# ---------------------------------------------------------------------------------------------------
# report


def sweep_chart(keys: list[str], rows: list[dict[str, Any]]):
    """Headline figures against the first --set key; the second key as colour, the rest as panels.

    Field names in the chart are k0, k1, ... because Vega-Lite reads dots in a field name as nesting.
    """
    import altair as alt

    from hn005_sim.report.charts import Chart

    data = []
    for r in rows:
        d: dict[str, Any] = {f"k{i}": r[k] for i, k in enumerate(keys)}
        d["rest"] = ", ".join(f"{k}={r[k]}" for k in keys[2:]) or "all"
        d.update({m: r[m] for m in ("prob_target_by_deadline", "time_to_target_p50", "eligible_fraction")})
        data.append(d)
    numeric = all(_is_number(r[keys[0]]) for r in rows)
    if numeric:
        for d in data:
            d["k0"] = float(d["k0"])
    x = alt.X("k0:Q" if numeric else "k0:N", title=keys[0], scale=alt.Scale(zero=False) if numeric else None)
    colour = (alt.Color("k1:N", title=keys[1], legend=alt.Legend(titleLimit=600, labelLimit=300))
              if len(keys) > 1 else alt.value("#4292c6"))
    tips = [alt.Tooltip(f"k{i}:N", title=k) for i, k in enumerate(keys)]

    def panel(field: str, title: str, fmt: str) -> alt.Chart:
        return alt.Chart(alt.NamedData(name="sweep")).mark_line(point=True).encode(
            x=x, y=alt.Y(f"{field}:Q", title=title, axis=alt.Axis(format=fmt)), color=colour,
            tooltip=[*tips, alt.Tooltip(f"{field}:Q", title=title, format=fmt)],
        ).properties(width=280, height=200)

    row = alt.hconcat(panel("prob_target_by_deadline", "P(target by deadline)", ".0%"),
                      panel("time_to_target_p50", "Median months to target", ".1f"))
    chart = row if len(keys) <= 2 else alt.vconcat(*[
        row.transform_filter(alt.datum.rest == rest).properties(title=rest)
        for rest in dict.fromkeys(d["rest"] for d in data)
    ])
    spec = chart.properties(title=alt.TitleParams(
        "What each grid point buys",
        subtitle="Same seeds at every point: differences are the change, not noise",
        anchor="start", fontSize=15)).to_dict()
    spec["datasets"] = {**spec.get("datasets", {}), "sweep": data}
    spec["usermeta"] = {"hn005": {"chart": "sweep", "sources": {"sweep": {
        "file": "sweep.csv", "rows": "all", "columns": {f"k{i}": k for i, k in enumerate(keys)}}}}}
    return Chart("sweep", "What each grid point buys",
                 "Each point is one scenario of the grid, run with the same random numbers as the others. "
                 "Left: probability of reaching the target by the deadline; right: median months to reach it "
                 "(missing where fewer than half the runs reach it).", spec, ("sweep.csv",))


def _is_number(text: Any) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def write_sweep_report(folder, keys: list[str], rows: list[dict[str, Any]], man: dict[str, Any],
                       header: list[str] | None = None) -> None:
    """report.html (self-contained: Vega inlined, no network) and charts/sweep.png|svg."""
    from hn005_sim.report.html import Section, render_page
    from hn005_sim.report.html import Table as HtmlTable
    from hn005_sim.report.images import save_images

    chart = sweep_chart(keys, rows)
    save_images(chart.spec, folder / "charts", chart.name)
    header = header or [*keys, *METRICS]
    table = HtmlTable(header, [["" if r.get(h) is None else _fmt_cell(r[h]) for h in header] for r in rows],
                      caption="sweep.csv", notes=[
                          f"{man['replicates']} replicates per scenario, seed {man['seed']} at every point "
                          "(common random numbers). Time in months (30.4375 days). difference_vs_first.X: "
                          "figure X minus the first point's, with its 95% paired interval "
                          "(difference_low/high.X; per-replicate differences, a paired bootstrap for "
                          "percentiles); within_noise.X: the interval covers 0."])
    subtitle = (f"hn005-sim {man['tool_version']} · scenario {man['scenario_path']} · "
                f"{len(rows)} scenarios x {man['replicates']} replicates · seed {man['seed']}")
    page = render_page("Sweep: " + ", ".join(keys), subtitle, [
        Section("sweep", "Grid of scenarios", "Every combination of the --set values.", [chart, table]),
    ])
    (folder / "report.html").write_text(page, encoding="utf-8")


def _fmt_cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
