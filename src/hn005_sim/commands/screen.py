"""`hn005-sim screen SCENARIO --patients N --seed S --out DIR`: which criteria restrict the most."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from hn005_sim.commands.common import (
    ForceOpt,
    Format,
    FormatOpt,
    OutOpt,
    QuietOpt,
    ScenarioArg,
    SeedOpt,
    console,
    print_json,
)
from hn005_sim.eligibility import compile_criteria
from hn005_sim.eligibility.restrictiveness import analyse
from hn005_sim.io import manifest, output_dir
from hn005_sim.rng import stream
from hn005_sim.scenario.errors import ConfigError
from hn005_sim.scenario.load import display, load_scenario

RESTRICTIVENESS_FILES = ("criteria", "funnel", "cofailure", "sweeps", "relaxation")


def chart_for_screen(sc, raw, screener, seed: int, site_type: str | None):
    """The chart draws of the `screen` cohort: site type `site_type` (default chart_review.site_type),
    uniforms from the replicate-0 children of the named stream "chart"."""
    from hn005_sim.eligibility.chart import ChartModel, SiteChart

    cfg = sc.chart_review
    if site_type is not None and (cfg is None or site_type not in cfg.site_types):
        known = sorted(cfg.site_types) if cfg is not None else []
        raise ConfigError.one(display(raw.path), "chart_review.site_types",
                              f"--site-type must be one of {known}, got {site_type!r}" if cfg is not None
                              else "--site-type needs a [chart_review] section")
    model = ChartModel.build(cfg, screener)
    return SiteChart(model, model.probabilities(site_type), model.generators(seed, 0))


def analyse_scenario(sc, raw, patients: int, seed: int, target_fraction: float | None = None,
                     site_type: str | None = None):
    """Draw `patients` candidates from the population stream, screen them, analyse restrictiveness.

    Prescreen judges each criterion on the values in the chart of a site of type `site_type` (default:
    chart_review.site_type; eligibility/chart.py). Returns (frame, screener, screening,
    restrictiveness). Shared by `screen` and `run` (whose report shows the same attrition and
    restrictiveness figures), so both give the same numbers for a seed.
    """
    from hn005_sim.guards import check_memory, measure_bytes_per_row
    from hn005_sim.population import sample

    for section in ("population", "criteria"):
        if getattr(sc, section) is None:
            raise ConfigError.one(display(raw.path), section, f"the scenario has no [{section}] section")
    per_row = measure_bytes_per_row(lambda n: sample(sc.population, n, stream(seed, 0, "population")))
    check_memory(patients, per_row, f"screen --patients {patients}", unit="patients")
    frame = sample(sc.population, patients, stream(seed, 0, "population"))
    screener = compile_criteria(sc.criteria, frame.schema, file=display(raw.path))
    chart = chart_for_screen(sc, raw, screener, seed, site_type)
    screening = screener.evaluate(frame, chart.draw(frame))
    res = analyse(screening, screener=screener, frame=frame, rng=stream(seed, 0, "bootstrap"),
                  target_fraction=target_fraction)
    if sc.chart_review is not None:
        res.summary["site_type"] = site_type or sc.chart_review.site_type
    return frame, screener, screening, res


def screen(
    scenario: ScenarioArg,
    patients: Annotated[int, typer.Option("--patients", min=1, help="Candidates to screen.")] = 100_000,
    seed: SeedOpt = 20230901,
    out: OutOpt = ...,  # type: ignore[assignment]
    save_matrix: Annotated[bool, typer.Option("--save-matrix", help="Write pass_matrix.parquet.")] = False,
    force: ForceOpt = False,
    target_fraction: Annotated[
        float | None,
        typer.Option("--target-fraction", min=0.0, max=1.0,
                     help="Eligible fraction the relaxation plan aims for (default: criteria config)."),
    ] = None,
    site_type: Annotated[
        str | None,
        typer.Option("--site-type", help="Site type of [chart_review] whose charts prescreen reads "
                     "(default: chart_review.site_type)."),
    ] = None,
    quiet: QuietOpt = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Sample candidates, screen them against every criterion, and rank the criteria by restrictiveness.

    Writes summary.json, criteria.csv, funnel.csv, cofailure.csv, sweeps.csv, relaxation.csv,
    manifest.json (and pass_matrix.parquet with --save-matrix) into --out.
    """
    started = time.perf_counter()
    sc, raw = load_scenario(scenario)
    frame, _, screening, res = analyse_scenario(sc, raw, patients, seed, target_fraction, site_type)
    summary = {**res.summary, "scenario": sc.name, "seed": seed}
    with output_dir(out, force=force) as od:
        od.write_json("summary.json", summary)
        for name in RESTRICTIVENESS_FILES:
            od.write_csv(f"{name}.csv", getattr(res, name))
        if save_matrix:
            pid = frame["patient_id"] if "patient_id" in frame.columns else None
            od.write_parquet("pass_matrix.parquet", screening.matrix_frame(pid))
        od.write_json("manifest.json", manifest(
            "screen", scenario_path=display(raw.path), scenario_sha256=raw.sha256(),
            resolved_config=sc.model_dump(mode="json", by_alias=True), seed=seed, replicates=1,
            wall_time_s=time.perf_counter() - started, extra={"patients": patients}))
    if fmt is Format.json:
        if not quiet:
            print_json(summary)
        return
    con = console(quiet)
    s = res.summary
    iv = s.get("intervals", {})

    def ci(key: str) -> str:
        return f" [{iv[key][0]:.1%}, {iv[key][1]:.1%}]" if key in iv else ""

    con.print(f"[bold]{sc.name}[/bold]: {s['patients']:,} candidates, eligible {s['eligible']:,} "
              f"({s['eligible_fraction']:.1%}{ci('eligible_fraction')}); prescreen pass "
              f"{s['prescreen_pass_fraction']:.1%}{ci('prescreen_pass_fraction')}; screen failure "
              f"{s['screen_failure_rate']:.1%}{ci('screen_failure_rate')}")
    known_pass = s["prescreen_pass_fraction"] - s["prescreen_unknown_fraction"]
    con.print(f"chart review{' (' + s['site_type'] + ')' if 'site_type' in s else ''}: pass "
              f"{known_pass:.1%} (every prescreen criterion judged), fail {s['prescreen_fail_fraction']:.1%}"
              f" (a criterion fails on known values), unknown {s['prescreen_unknown_fraction']:.1%}"
              f"{ci('prescreen_unknown_fraction')} (goes to consent with a value not in the chart)")
    ranked = res.criteria.sort("shapley", descending=True).head(15)
    table = Table(title="Most restrictive criteria (Shapley share of exclusions)")
    cols = ("rank", "criterion", "kind", "stage", "fail rate", "sole-fail", "Shapley share", "funnel drop",
            "unknown at prescreen")
    for col in cols:
        table.add_column(col, justify="left" if col in ("criterion", "kind", "stage") else "right")
    for i, r in enumerate(ranked.iter_rows(named=True), start=1):
        table.add_row(str(i), r["criterion_id"], r["kind"], r["stage"], f"{r['fail_rate']:.1%}",
                      f"{r['sole_fail_rate']:.2%}", f"{r['shapley_share']:.1%}", f"{r['funnel_drop']:.1%}",
                      f"{r['unknown_at_prescreen_rate']:.0%}")
    con.print(table)
    plan = s.get("relaxation_plan", {})
    if plan.get("steps"):
        con.print("Relaxation plan: " + " -> ".join(plan["steps"])
                  + f" reaches {plan['eligible_fraction']:.1%}"
                  + ("" if plan["target_eligible_fraction"] is None
                     else f" (target {plan['target_eligible_fraction']:.0%}: "
                          + ("reached" if plan["reached"]
                             else "not reached: the whole menu of relaxations gets no further") + ")"))
    con.print(f"wrote {display(out)}")
