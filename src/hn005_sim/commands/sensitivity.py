"""`hn005-sim sensitivity SCENARIO`: which uncertain assumptions move the answers most (SALib).

Every figure of the scenario that carries an `uncertainty` (scenario/uncertainty.py) is a dimension of a
Sobol' or Morris design (hn005_sim.sensitivity). Writes sensitivity.csv (one row per figure and output:
the indices and their confidence intervals, and the output with the figure at the low and high end of its
range), summary.json, report.html with a tornado chart and charts/, and manifest.json.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated

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
    ScenarioArg,
    SeedOpt,
    console,
    print_json,
)
from hn005_sim.scenario.load import display, load_scenario


class Method(StrEnum):
    sobol = "sobol"
    morris = "morris"


def sensitivity(
    scenario: ScenarioArg,
    out: OutOpt,
    method: Annotated[Method, typer.Option(
        "--method", help="Sobol' indices (variance shares, default) or Morris elementary effects (a cheaper "
        "screening).")] = Method.sobol,
    samples: Annotated[int, typer.Option(
        "--samples", min=2, max=65_536,
        help="Sobol': base sample N (a power of 2; N x (figures + 2) design points). Morris: trajectories "
        "(N x (figures + 1) points). Larger N narrows the intervals as 1/sqrt(N).")] = 32,
    replicates: Annotated[int, typer.Option(
        "--replicates", min=1, max=10_000,
        help="Replicates per design point (same seeds at every point). More replicates smooth each "
        "point's outputs (P(target) is a share of them).")] = 2,
    seed: SeedOpt = 20230901,
    jobs: JobsOpt = 1,
    executor: ExecutorOpt = "process",
    quiet: QuietOpt = False,
    format: FormatOpt = Format.table,
    force: ForceOpt = False,
) -> None:
    """Global sensitivity of P(target by deadline), median time to target, screen-failure rate and
    packs at P95 per drug to every figure with an `uncertainty`.

    Writes sensitivity.csv, summary.json, report.html (tornado chart), charts/ and manifest.json into
    OUT. Same scenario and seed give the same outputs whatever --jobs and --executor.
    """
    from hn005_sim.errors import InputError
    from hn005_sim.io import manifest, output_dir
    from hn005_sim.montecarlo import parse_executor
    from hn005_sim.report.sensitivity import write_sensitivity_report
    from hn005_sim.scenario.draws import UncertainScenario
    from hn005_sim.scenario.errors import ConfigError
    from hn005_sim.sensitivity import points_for
    from hn005_sim.sensitivity import sensitivity as analyse

    try:
        parse_executor(executor)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if method is Method.sobol and samples & (samples - 1):
        raise InputError(f"--samples {samples}: Sobol' sampling needs a power of 2 (e.g. 16, 32, 64)")
    sc, raw = load_scenario(scenario)
    if sc.recruitment is None:
        raise ConfigError.one(display(raw.path), "recruitment",
                              "missing section: a sensitivity analysis runs the recruitment simulation")
    uncertain = UncertainScenario.from_scenario(sc, raw)
    if not uncertain.figures:
        raise InputError(f"{display(raw.path)} has no figure with an `uncertainty`: nothing to analyse "
                         "(docs/sensitivity.md shows how to give one)")
    points = points_for(method.value, len(uncertain.figures), samples)
    if points * replicates > 2_000_000:
        raise InputError(f"{points:,} design points x {replicates} replicates is too large a run; "
                         "lower --samples or --replicates")
    con = console(quiet or format is Format.json)
    con.print(f"{method.value}: {len(uncertain.figures)} uncertain figures, {points} design "
              f"points x {replicates} replicates", highlight=False)
    started = time.perf_counter()
    try:
        result = analyse(uncertain, method.value, samples, replicates, seed, jobs=jobs, executor=executor,
                         progress=not quiet and format is Format.table)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    summary = {"scenario": sc.name, **result.summary}
    with output_dir(out, force=force) as o:
        o.write_csv("sensitivity.csv", result.table)
        o.write_json("summary.json", summary)
        man = manifest(
            "sensitivity", scenario_path=display(raw.path), scenario_sha256=raw.sha256(),
            resolved_config=sc.model_dump(mode="json", by_alias=True), seed=seed,
            replicates=result.summary["replicates_total"], wall_time_s=time.perf_counter() - started,
            extra={"jobs": jobs, "executor": executor, "method": method.value, "samples": samples,
                   "replicates_per_point": replicates, "common_random_numbers": True,
                   "files": ["sensitivity.csv", "summary.json", "report.html", "charts/"]},
        )
        o.write_json("manifest.json", man)
        write_sensitivity_report(o.path, result.table, summary, man)
    if format is Format.json:
        print_json(summary)
        return
    if quiet:
        return
    con = console(False)
    con.print(ranking_table(summary))
    con.print(f"wrote {display(out)}/: sensitivity.csv, summary.json, report.html, manifest.json")


def ranking_table(summary: dict) -> Table:
    t = Table(title=f"sensitivity ({summary['method']}, {summary['design_points']} points x "
                    f"{summary['replicates_per_point']} replicates, seed {summary['seed']}): "
                    f"figures ranked by {summary['index']}")
    t.add_column("output")
    t.add_column("mean over the design", justify="right")
    t.add_column("most influential figures")
    for output, names in summary["top_parameters"].items():
        mean = summary["outputs"][output]["mean"]
        t.add_row(output, "-" if mean is None else f"{mean:.4g}", ", ".join(names[:3]))
    return t
