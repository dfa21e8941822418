"""`hn005-sim run SCENARIO`: Monte Carlo of recruitment (and supply, when the scenario has it)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Annotated, Any

import polars as pl
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
from hn005_sim.scenario.load import display, load_scenario

CSV_FILES = ("enrollment_curve", "time_to_target", "screen_failures", "sites")
DRAWING_PROCESSES = 1
"""Processes drawing the report's charts while `run` computes (report/prerender.py). One: with every
chart built as a dict (no altair), a second process's Vega start-up cost more than its parallel drawing
saved (bench/startup.py --before, interleaved: 1 replicate 3.25 -> 2.75 s, 10 replicates 3.15 -> 2.99 s,
make run's run 7.39 -> 6.79 s with one process instead of two)."""
STANDBY_DRAWING_PROCESSES = 1
"""With --jobs 1: drawing processes started once the first one's Vega is ready (report/prerender.py
`standby`), while the command still loads the scenario and runs its replicates; they then draw the
charts beside the first (issue 16, phase 4; docs/scale.md). None with --jobs N: the workers use both
cores there and the drawing is not what the run waits for."""


def _fmt(x: Any, digits: int = 1) -> str:
    if x is None:
        return "not reached"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def summary_table(summary: dict[str, Any]) -> Table:
    """The console summary: one row per headline figure."""
    t = Table(title=f"run: {summary.get('scenario', '')} ({summary['replicates']} replicates, "
                    f"seed {summary['seed']})")
    t.add_column("figure")
    t.add_column("value", justify="right")
    ttt = summary["time_to_target_months"]
    target, deadline = summary["target_enrolled"], summary["deadline_months"]
    t.add_row(f"months to enrol {target}: p10 / p50 / p90",
              " / ".join(_fmt(ttt[k]) for k in ("p10", "p50", "p90")))
    t.add_row(f"reached {target} within {summary['horizon_months']:g} months",
              f"{ttt['reached_fraction']:.1%}")
    t.add_row(f"P(target by month {deadline:g})", f"{summary['prob_target_by_deadline']:.1%}")
    ebd = summary["enrolled_by_deadline"]
    t.add_row(f"enrolled by month {deadline:g}: p10 / p50 / p90 (at most {target}: runs stop there)",
              " / ".join(_fmt(ebd[k], 0) for k in ("p10", "p50", "p90")))
    if "eligible_fraction" in summary and "eligible_fraction_basis" in summary:
        b = summary["eligible_fraction_basis"]
        t.add_row(f"candidates eligible ({b['candidates_judged']:,} judged, seed {b['seed']}, as `screen`)",
                  f"{summary['eligible_fraction']:.1%}")
    sc = summary["screened"]
    t.add_row("screened: p10 / p50 / p90", " / ".join(_fmt(sc[k], 0) for k in ("p10", "p50", "p90")))
    sfr = summary["screen_failure_rate"]
    t.add_row("screen failure rate: p10 / p50 / p90",
              " / ".join(f"{sfr[k]:.1%}" if sfr[k] is not None else "-" for k in ("p10", "p50", "p90")))
    t.add_row("sites enrolling no one", f"{summary['sites_zero_enrolled_fraction']:.1%}")
    f = summary.get("funnel_mean", {})
    if f:
        t.add_row("mean candidates -> consented -> enrolled",
                  f"{f['candidates']:.0f} -> {f['consented']:.0f} -> {f['enrolled']:.1f}")
        if f.get("prescreen_unknown") and f["candidates"]:
            unknown, failed = f["prescreen_unknown"], f["prescreen_failures"]
            passed = f["candidates"] - failed - unknown
            t.add_row("chart review: pass / fail / unknown (share of candidates)",
                      " / ".join(f"{v / f['candidates']:.1%}" for v in (passed, failed, unknown)))
    basis = None
    for drug, s in (summary.get("supply") or {}).items():
        if isinstance(s, dict) and "units_p50" in s:
            t.add_row(f"{drug}: packs to make p50 / p90, P(stock-out)",
                      f"{_fmt(s['units_p50'], 0)} / {_fmt(s['units_p90'], 0)}, "
                      f"{_fmt(s.get('stockout_probability'), 2)}")
            basis = s.get("packs_basis"), s.get("replicates_reaching_target")
    if basis is not None and basis[0] is not None:
        t.caption = (f"packs to make over the {basis[1]} replicates reaching the target"
                     if basis[0] == "replicates_reaching_target"
                     else "packs to make over all replicates (none reached the target)")
    return t


def _analyses(sc, raw, seed: int, patients: int, summary: dict[str, Any],
              renderer: Any = None, queued: threading.Event | None = None) -> dict[str, pl.DataFrame]:
    """What the report shows beside the simulation: restrictiveness of the criteria on `patients`
    candidates (as `screen` computes it, same seed), the baseline figures of the eligible candidates, and
    the analytic Poisson-gamma success probability by number of sites (as `sites` computes it).

    The enrolled cohort has the distribution of the eligible candidates: consent and withdrawal do not
    depend on patient attributes in this model, so their baseline figures stand for the enrolled.

    renderer (with a report): each part's charts are queued for drawing as soon as its files exist (the
    restrictiveness charts while the sites curve is computed), so that the drawing process, the end of
    the report's critical path, starts on them sooner.

    queued: set once the restrictiveness charts are queued (the caller may hold the replicates until
    then: `replicates_wait_for_restrictiveness`); the caller sets it too if this function fails.
    """
    from hn005_sim.eligibility.analysis import RESTRICTIVENESS_FILES, analyse_scenario
    from hn005_sim.report.tables import cohort_figures

    chart_summary = _chart_summary(sc)
    files: dict[str, pl.DataFrame] = {}
    if sc.population is not None and sc.criteria is not None:
        # the sweeps chart first and alone, as soon as its frame exists (in the analyses' worker
        # thread, while the other restrictiveness figures are still computed): the costliest drawing
        # of the report (28 panels, about a third of all its drawing) and, with two drawing processes,
        # the end of its critical path (issue 16, phase 5)
        def sweeps_first(sweeps: pl.DataFrame) -> None:
            _draw_ahead(renderer, {"sweeps": sweeps}, chart_summary)

        frame, _, screening, res = analyse_scenario(
            sc, raw, patients, seed, on_sweeps=sweeps_first if renderer is not None else None)
        files.update({name: getattr(res, name) for name in RESTRICTIVENESS_FILES})
        # the other restrictiveness charts (the sweeps chart was queued by `sweeps_first`)
        _draw_ahead(renderer, {k: v for k, v in files.items() if k != "sweeps"}, chart_summary)
        if queued is not None:
            queued.set()
        eligible = frame.filter(pl.Series(screening.eligible))
        summary["eligible_fraction"] = res.summary["eligible_fraction"]
        for key in ("prescreen_pass_fraction", "prescreen_unknown_fraction"):
            summary[key] = res.summary[key]
        # one figure whichever command shows it: `screen --patients N --seed S` gives this same number
        summary["eligible_fraction_basis"] = {
            "candidates_judged": patients, "seed": seed,
            "same_as": f"hn005-sim screen SCENARIO --patients {patients} --seed {seed}",
            "note": "share of simulated candidates passing every criterion; the DES's enrolled share "
                    "differs (consent, withdrawal, re-tests, stop at the target)"}
        summary["baseline"] = {**cohort_figures(eligible),
                               "sites": sum(r.sites for r in sc.recruitment.regions)}
    # imported here, not with the others above: its import (~0.07 s) would delay the restrictiveness
    # figures and the sweeps chart, the start of the report's critical path (issue 16, phase 5)
    from hn005_sim.recruitment import planning

    plan = planning.plan_from_scenario(sc, seed, SITES_PROBABILITY)
    # the report shows the curve and the allocation's figures, not the analytic time to target (whose
    # root finding alone imports scipy.optimize, ~0.25 s)
    answer = planning.plan_sites(plan, "analytic", seed, 0, time_to_target=False)
    files["curve"] = pl.DataFrame([{c: r[c] for c in answer.curve_columns} for r in answer.curve])
    _draw_ahead(renderer, {"curve": files["curve"]}, chart_summary)
    summary["sites_needed"] = {k: answer.summary.get(k) for k in (
        "allocation", "probability_of_success", "expected_enrolled", "method", "feasible",
        "required_probability")}
    return files


SITES_PROBABILITY = 0.8
"""The success probability the report's sites curve asks for (summary.json sites_needed)."""

WAIT_FOR_RESTRICTIVENESS_UP_TO = 20
"""With --jobs 1 and a report, up to this many replicates start only once the report's restrictiveness
charts are queued for drawing (`replicates_wait_for_restrictiveness`)."""


def replicates_wait_for_restrictiveness(report: bool, jobs: int, replicates: int) -> bool:
    """Whether `run` holds its replicates until the analyses thread has queued the restrictiveness charts.

    Beside the replicates (pure Python, in the main thread) the analyses thread, whose polars calls
    give up the GIL and must win it back each time, ran slower (0.62 s in phase 3's idle timeline,
    against ~0.35-0.45 s of CPU alone), and the sweeps chart it leads to
    is the end of a short run's critical path (two drawing processes draw everything else meanwhile):
    holding the replicates made `run --replicates 1` 1.1x and `--replicates 10` 1.14x faster
    (bench/startup.py, interleaved pairs; docs/scale.md). With many replicates the replicates outlast
    the analyses and the drawing anyway, and with --jobs N they run in other processes: no wait."""
    return report and jobs <= 1 and replicates <= WAIT_FOR_RESTRICTIVENESS_UP_TO


def _chart_summary(sc) -> dict[str, Any]:
    """What the report's charts read from summary.json, as it will hold them: the target and deadline
    (the simulation's summary copies them from [trial]) and the probability the sites curve asks for.
    Charts built ahead with these are those the report takes again (ChartRenderer.chart compares them)."""
    return {"target_enrolled": sc.trial.target_enrolled, "deadline_months": sc.trial.deadline_months,
            "sites_needed": {"required_probability": SITES_PROBABILITY}}


def _draw_ahead(renderer: Any, files: dict[str, pl.DataFrame], summary: dict[str, Any]) -> None:
    """Queue the charts of `files` for drawing (report/build.py draw_ahead), with a report."""
    if renderer is not None and files:
        from hn005_sim.report.build import draw_ahead

        draw_ahead(renderer, files, [summary])


class Background:
    """`function(*args)` in a daemon thread; `result()` waits for it and returns or raises what it did.

    Daemon: an interrupted run does not wait for it (nothing it computes reaches the output folder
    unless `result()` returned).
    """

    def __init__(self, function, *args):
        self._out: list[Any] = []
        self._error: list[BaseException] = []
        self._thread = threading.Thread(target=self._target, args=(function, args), daemon=True,
                                        name="hn005-analyses")
        self._thread.start()

    def _target(self, function, args) -> None:
        try:
            self._out.append(function(*args))
        except BaseException as exc:  # handed to the caller by result()
            self._error.append(exc)

    def result(self) -> Any:
        self._thread.join()
        if self._error:
            raise self._error[0]
        return self._out[0]


def _chart_renderer(jobs: int = 1):
    from hn005_sim.report.prerender import ChartRenderer

    return ChartRenderer(processes=DRAWING_PROCESSES, standby=STANDBY_DRAWING_PROCESSES if jobs <= 1 else 0)


def run(
    scenario: ScenarioArg,
    out: OutOpt,
    force: ForceOpt = False,
    replicates: ReplicatesOpt = 200,
    seed: SeedOpt = 20230901,
    jobs: JobsOpt = 1,
    executor: ExecutorOpt = "process",
    screen_patients: Annotated[int, typer.Option(
        "--screen-patients", min=1000,
        help="Candidates drawn for the report's attrition and restrictiveness figures.")] = 50_000,
    report: Annotated[bool, typer.Option(
        "--report/--no-report", help="Write report.html and charts/ (SVG) beside the data.")] = True,
    png: Annotated[bool, typer.Option(
        "--png/--no-png", help="Also write each chart as PNG (charts/NAME.png, for slides); SVG is always "
                               "written with the report.")] = False,
    uncertainty: Annotated[bool, typer.Option(
        "--uncertainty/--no-uncertainty",
        help="Draw every figure that carries an `uncertainty` anew for each replicate (second-order Monte "
        "Carlo): intervals then include what is not known about the assumptions, not only chance.")] = False,
    sensitivity: Annotated[Path | None, typer.Option(
        "--sensitivity", exists=True, dir_okay=True, file_okay=True,
        help="A `sensitivity` output folder (or its sensitivity.csv): the report adds its tornado chart.",
        show_default=False)] = None,
    quiet: QuietOpt = False,
    format: FormatOpt = Format.table,
) -> None:
    """Simulate recruitment REPLICATES times: when is the target reached, how many are screened, why
    do they fail, which sites enrol.

    Writes summary.json, enrollment_curve.csv, time_to_target.csv, screen_failures.csv, sites.csv
    (and the supply files when the scenario has a supply chain), the restrictiveness files of `screen`
    (criteria.csv, funnel.csv, cofailure.csv, sweeps.csv, relaxation.csv), the analytic success
    probability by number of sites (curve.csv), report.html with charts/ (SVG; PNG too with --png), and
    manifest.json into OUT.
    Same scenario and seed give the same outputs whatever --jobs and --executor.

    Example:

    
      hn005-sim run scenarios/baseline.toml --replicates 200 --seed 20230901 --jobs 2 --out out/baseline
    """
    # vl-convert starts (~0.5 s) in a drawing process of its own while this process imports the model
    # and loads the scenario (it holds the GIL while it draws: in a thread it would stall this
    # process); the charts are then drawn there as their files appear (report/prerender.py). Started
    # before the model's imports (~0.35 s), so that Vega is ready before the first chart is, except
    # with --jobs N: the pool is forked first (prestart_workers), from a process with no thread of its
    # own yet (the renderer's lane is one) and no pipe to the drawing process for workers to inherit
    renderer = _chart_renderer(jobs) if report and jobs <= 1 else None
    from hn005_sim.errors import InputError
    from hn005_sim.io import manifest, output_dir
    from hn005_sim.montecarlo import parse_executor, prestart_workers, run_scenario

    try:
        parse_executor(executor)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    prestart_workers(executor, jobs)  # --jobs N: forks the pool now, before any thread or scenario
    if report and renderer is None:
        renderer = _chart_renderer(jobs)
    sc, raw = load_scenario(scenario)
    if sc.recruitment is None:
        from hn005_sim.scenario.errors import ConfigError

        raise ConfigError.one(display(raw.path), "recruitment",
                              "missing section: a run needs [recruitment] (sites, rates, screening)")
    missing = [k for k in ("population", "criteria") if getattr(sc, k, None) is None]
    if sc.recruitment.funnel is None and missing:
        from hn005_sim.scenario.errors import ConfigError

        raise ConfigError.one(display(raw.path), missing[0],
                              "missing section: judging candidates needs [population] and [criteria], "
                              "or [recruitment.funnel] probabilities")
    if sc.population is not None and sc.criteria is not None:
        # the report's restrictiveness figures draw --screen-patients candidates after the simulation:
        # refuse an impossible count before simulating, not after
        from hn005_sim.guards import check_memory, measure_bytes_per_row
        from hn005_sim.population import sample
        from hn005_sim.rng import stream

        per_row = measure_bytes_per_row(lambda n: sample(sc.population, n, stream(seed, 0, "population")))
        check_memory(screen_patients, per_row, f"run --screen-patients {screen_patients}", unit="patients")
    from hn005_sim.scenario.draws import UncertainScenario
    from hn005_sim.sensitivity import read_sensitivity, uncertainty_files

    uncertain = UncertainScenario.from_scenario(sc, raw)
    if uncertainty and not uncertain.figures:
        raise InputError(f"--uncertainty: {display(raw.path)} has no figure with an `uncertainty` "
                         "(docs/sensitivity.md shows how to give one)")
    sensitivity_frame = read_sensitivity(sensitivity) if sensitivity is not None else None
    started = time.perf_counter()
    # the report's analyses depend on the scenario and seed only, not on the replicates: computed in a
    # thread while the replicates run (their polars and numpy work releases the GIL; with --jobs > 1 the
    # parent is otherwise idle), then merged into the summary in the order they always had; a short
    # run with a report starts its replicates once the restrictiveness charts are queued
    extra_summary: dict[str, Any] = {}
    queued = threading.Event()

    def analyses_then_release():
        try:
            return _analyses(sc, raw, seed, screen_patients, extra_summary, renderer, queued)
        finally:
            queued.set()  # failed, or no restrictiveness figures: the replicates never wait for nothing

    analyses = Background(analyses_then_release)
    if replicates_wait_for_restrictiveness(renderer is not None, jobs, replicates):
        queued.wait()
    try:
        result = run_scenario(sc, replicates, seed, jobs=jobs, executor=executor,
                              progress=not quiet and format is Format.table,
                              uncertain=uncertain if uncertainty else None)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    # the simulation's charts, drawn while the analyses finish (the files and summary keys they chart
    # are final here; a chart that differs in the report is simply drawn again)
    _draw_ahead(renderer, result.frames, _chart_summary(sc))
    extra_files = analyses.result()
    result.summary.update(extra_summary)
    result.summary["uncertainty"] = {
        "enabled": uncertainty, "uncertain_figures": len(uncertain.figures),
        "method": "second-order Monte Carlo: one parameter set per replicate, drawn from its "
                  "`uncertainty` stream" if uncertainty else "none: the figures at their central values"}
    if uncertainty:
        extra_files.update(uncertainty_files(uncertain, seed, replicates))
    if sensitivity_frame is not None:
        extra_files["sensitivity"] = sensitivity_frame
    with output_dir(out, force=force) as o:
        o.write_json("summary.json", result.summary)
        for name, frame in result.frames.items():
            o.write_csv(f"{name}.csv", frame)
        for name, frame in extra_files.items():
            o.write_csv(f"{name}.csv", frame)
        man = manifest(
            "run", scenario_path=display(raw.path), scenario_sha256=raw.sha256(),
            resolved_config=sc.model_dump(mode="json", by_alias=True), seed=seed, replicates=replicates,
            wall_time_s=time.perf_counter() - started,
            extra={"jobs": jobs, "executor": executor, "screen_patients": screen_patients,
                   "uncertainty": uncertainty, "files": sorted(
                ["summary.json", *(f"{n}.csv" for n in (*result.frames, *extra_files))])},
        )
        o.write_json("manifest.json", man)
        if report:
            from hn005_sim.report import write_report
            from hn005_sim.report.tables import published_trials

            write_report(o, title=f"{sc.trial.display_title} feasibility: {sc.name}", manifest=man,
                         published=published_trials(sc.trial.comparators), png=png, renderer=renderer)
    if renderer is not None:
        renderer.close()
    if quiet:
        return
    if format is Format.json:
        print_json(result.summary)
    else:
        con = console(quiet)
        con.print(summary_table(result.summary))
        con.print(f"wrote {display(out)}/: report.html, summary.json, manifest.json and the CSVs it charts")
