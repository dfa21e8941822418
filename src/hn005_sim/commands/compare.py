"""`hn005-sim compare A B ... --out DIR`: key figures side by side and overlaid curves.

Each argument is a scenario file (run here with `--replicates` and `--seed`; the same seed for every
scenario, so replicate r of each draws the same random numbers and the differences are the change, not
noise) or an output folder a previous `run`/`screen`/`sites` wrote (read as it is).

Writes into DIR: comparison.csv (`metric`, then one column per scenario: every number in the scenarios'
summary.json, dotted keys; then each later scenario's difference from the first with its paired Monte
Carlo interval, report/paired.py), the overlaid files with a leading `scenario` column (enrollment_curve.csv,
time_to_target.csv, ... whichever the inputs have), summaries.json, report.html with charts/, and
manifest.json; scenarios run here also get their own folder under DIR/scenarios/.
"""

from __future__ import annotations

import re
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
    SeedOpt,
    console,
    print_json,
)
from hn005_sim.report.data import flatten_numbers, load_folder, stack_scenarios
from hn005_sim.report.paired import (
    CONFIDENCE,
    Difference,
    ReplicateFigures,
    check_paired,
    differences,
    figure_kind,
    figure_label,
    format_difference,
    point_difference,
)
from hn005_sim.report.tables import KEY_FIGURES, format_figure, lookup
from hn005_sim.scenario.load import display

InputsArg = Annotated[
    list[Path],
    typer.Argument(
        help="Two or more scenario TOML files or output folders (from run, screen or sites).",
        show_default=False,
    ),
]

# Files drawn as overlays (one curve or bar group per scenario); the others are per-scenario only.
OVERLAID = (
    "enrollment_curve.csv",
    "time_to_target.csv",
    "screen_failures.csv",
    "funnel.csv",
    "criteria.csv",
    "sweeps.csv",
    "relaxation.csv",
    "curve.csv",
    "drug_demand.csv",
)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "scenario"


def _unique(names: list[str]) -> list[str]:
    """Scenario names as column headers: repeated names get #2, #3 (two folders of one scenario)."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return out


DIFFERENCE_COLUMNS = ("difference_vs_first", "difference_low", "difference_high", "within_noise",
                      "difference_method")


Diffs = dict[str, dict[str, Difference]]


def comparison_rows(summaries: dict[str, dict[str, Any]],
                    diffs: Diffs | None = None) -> tuple[list[str], list[list[Any]]]:
    """(header, rows) of comparison.csv: headline figures first, then every other number.

    diffs: {later scenario: {key: Difference}} (`scenario_differences`); with two scenarios the
    difference columns are DIFFERENCE_COLUMNS, with more each is suffixed `.<scenario>`.
    """
    flat = {name: flatten_numbers(s) for name, s in summaries.items()}
    keys: dict[str, None] = {k: None for k, _, _ in KEY_FIGURES if any(k in f for f in flat.values())}
    for f in flat.values():
        keys.update(dict.fromkeys(f))
    header = ["metric", *summaries]
    later = list(diffs or {})
    for name in later:
        header += [c if len(later) == 1 else f"{c}.{name}" for c in DIFFERENCE_COLUMNS]
    rows = []
    for k in keys:
        integer = figure_kind(k) == "int"
        row = [k, *(_number(f.get(k), integer, digits=None) for f in flat.values())]
        for name in later:
            d = diffs[name].get(k)
            row += ["", "", "", "", ""] if d is None else [
                *(_number(v, integer) for v in (d.difference, d.low, d.high)),
                "" if d.within_noise is None else str(d.within_noise).lower(), d.method]
        rows.append(row)
    return header, rows


def _number(v: float | None, integer: bool = False, digits: int | None = 6) -> float | int | None:
    """A CSV number: integers (seed, replicates, counts) as integers; differences rounded to 1e-6 (far
    below the Monte Carlo error; keeps float noise such as 0.6466330000000013 out)."""
    if v is None:
        return None
    if integer and float(v).is_integer():
        return int(v)
    return float(v) if digits is None else round(float(v), digits)


def scenario_differences(names: list[str], summaries: dict[str, dict[str, Any]],
                         figures: dict[str, ReplicateFigures]) -> dict[str, dict[str, Difference]]:
    """Each later scenario minus the first, per figure: paired (with an interval) where both were run
    here with common random numbers, else the plain difference of the two summaries' figures."""
    first = names[0]
    flat = {n: flatten_numbers(summaries[n]) for n in names}
    out: dict[str, dict[str, Difference]] = {}
    for name in names[1:]:
        mine = {k: point_difference(k, flat[first], flat[name]) for k in {**flat[first], **flat[name]}}
        for d in mine.values():
            if d.difference is not None and first in figures and name in figures:
                mine[d.key] = Difference(d.key, d.difference, None, None,
                                         "no interval: not a per-replicate figure")
        if first in figures and name in figures:
            for key, d in differences(figures[first], figures[name]).items():
                # the point difference is that of the figures as summary.json rounds them
                shown = mine.get(key)
                mine[key] = Difference(key, shown.difference if shown and shown.difference is not None
                                       else d.difference, d.low, d.high, d.method)
        out[name] = mine
    return out


KINDS = {k: kind for k, _, kind in KEY_FIGURES}


def _fmt(v: Any, key: str = "", summary: dict[str, Any] | None = None) -> str:
    """A comparison cell: key figures as the report shows them (percentages, counts), others as numbers.

    An empty cell is a figure the input does not have; a time-to-target percentile the summary records
    as null is one the runs did not reach."""
    if v is None:
        reached_null = summary is not None and _is_null(summary, key)
        return "not reached" if reached_null and key.startswith("time_to_target_months.p") else ""
    kind = figure_kind(key)
    if kind != "num":
        return format_figure(v, kind)
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _is_null(summary: dict[str, Any], dotted: str) -> bool:
    """The summary records this figure as null (it has the key), unlike an input that lacks it."""
    return lookup(summary, dotted, missing=False) is None


SHOWN = tuple(k for k, _, _ in KEY_FIGURES)
SHOWN_SUPPLY = (".stockout_probability", ".missed_dispensing_probability", ".out_of_stock_probability",
                ".units_p95", ".waste_p50")


def _diff_cell(d: Difference | None, key: str) -> str:
    return "" if d is None else format_difference(d, figure_kind(key))


def report_table(names: list[str], summaries: dict[str, dict[str, Any]], rows: list[list[Any]],
                 diffs: dict[str, dict[str, Difference]]) -> tuple[list[str], list[list[str]]]:
    """The report's comparison table in users' words: one row per figure, each later scenario's
    difference from the first with its interval (percentages differ in percentage points)."""
    header = ["figure", *names, *(f"{n} − {names[0]} ({CONFIDENCE:.0%} interval)" for n in names[1:])]
    out = []
    for r in rows:
        key = r[0]
        out.append([figure_label(key),
                    *(_fmt(v, key, summaries[n]) for n, v in zip(names, r[1:1 + len(names)], strict=True)),
                    *(_diff_cell(diffs[n].get(key), key) for n in names[1:])])
    return header, out


def replicate_mismatch(summaries: dict[str, dict[str, Any]]) -> str | None:
    """A warning when the inputs rest on different numbers of replicates (their figures differ in noise)."""
    counts = {n: s.get("replicates") for n, s in summaries.items() if s.get("replicates") is not None}
    if len(set(counts.values())) > 1:
        return "inputs differ in replicates (" + ", ".join(f"{n}: {c}" for n, c in counts.items()) + \
            "); their figures carry different Monte Carlo error"
    return None


def question_mismatch(summaries: dict[str, dict[str, Any]]) -> str | None:
    """A warning when the inputs ask different questions: P(target by deadline) and enrolled by the deadline
    then differ partly because the target or the deadline does, not only because the scenario does."""
    parts = []
    for key, word in (("target_enrolled", "target"), ("deadline_months", "deadline (months)")):
        values = {n: s.get(key) for n, s in summaries.items() if s.get(key) is not None}
        if len(set(values.values())) > 1:
            parts.append(f"{word}: " + ", ".join(f"{n} {v:g}" for n, v in values.items()))
    if parts:
        return ("inputs differ in " + "; ".join(parts) + ": the figures 'by the deadline' answer different "
                "questions (compare months to target, or give them one deadline)")
    return None


def compare(
    inputs: InputsArg,
    out: OutOpt,
    force: ForceOpt = False,
    replicates: ReplicatesOpt = 200,
    seed: SeedOpt = 20230901,
    jobs: JobsOpt = 1,
    executor: ExecutorOpt = "process",
    allow_unpaired: Annotated[bool, typer.Option(
        "--allow-unpaired", help="Compare inputs that differ in seed or replicates (differences then have "
        "no interval); without it such inputs are refused.")] = False,
    quiet: QuietOpt = False,
    format: FormatOpt = Format.table,
) -> None:
    """Compare scenarios: key figures side by side with each one's difference from the first and its
    paired Monte Carlo interval (comparison.csv), and overlaid curves (report.html).

    Each input is a scenario file (run here, all with the same --seed: common random numbers) or an
    output folder from an earlier run. Inputs that differ in seed or replicates are refused (their
    replicates do not share random numbers) unless --allow-unpaired. Example:
    hn005-sim compare scenarios/baseline.toml scenarios/relaxed_crcl50.toml --replicates 200 --out out/cmp
    """
    from hn005_sim.errors import InputError
    from hn005_sim.io import manifest, output_dir
    from hn005_sim.montecarlo import parse_executor, run_scenario
    from hn005_sim.report import write_report
    from hn005_sim.scenario.load import load_scenario

    if len(inputs) < 2:
        raise InputError("compare needs two or more scenario files or output folders")
    try:
        parse_executor(executor)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    # Everything is read and validated before anything runs.
    plan: list[tuple[str, Any]] = []
    for path in inputs:
        if path.is_dir():
            if not (path / "summary.json").is_file():
                raise InputError(
                    f"{display(path)}: not an output folder (no summary.json); give a scenario "
                    "file or a folder written by run, screen or sites"
                )
            files = load_folder(path)
            name = (
                files.summary.get("scenario")
                or (files.manifest.get("resolved_config") or {}).get("name")
                or path.name
            )
            plan.append((str(name), files))
        elif path.is_file():
            sc, raw = load_scenario(path)
            plan.append((sc.name, (sc, raw)))
        else:
            raise InputError(f"{display(path)}: no such file or folder")
    names = _unique([n for n, _ in plan])
    settings = {n: ({"seed": seed, "replicates": replicates} if isinstance(item, tuple) else
                    {"seed": item.summary.get("seed"), "replicates": item.summary.get("replicates")})
                for n, (_, item) in zip(names, plan, strict=True)}
    unpaired = check_paired(settings)
    if unpaired and not allow_unpaired:
        raise InputError(unpaired + "; run them with one --seed and --replicates, or pass --allow-unpaired")
    started = time.perf_counter()
    summaries: dict[str, dict[str, Any]] = {}
    frames: dict[str, dict[str, pl.DataFrame]] = {}
    sources: dict[str, str] = {}
    ran: dict[str, Any] = {}
    figures: dict[str, ReplicateFigures] = {}
    for name, (_, item) in zip(names, plan, strict=True):
        if isinstance(item, tuple):
            sc, raw = item
            if not quiet and format is Format.table:
                console(quiet).print(f"running {name} ({display(raw.path)}): {replicates} replicates")
            figs = ReplicateFigures(sc.trial.target_enrolled, sc.trial.deadline_months)
            try:
                result = run_scenario(
                    sc,
                    replicates,
                    seed,
                    jobs=jobs,
                    executor=executor,
                    progress=not quiet and format is Format.table,
                    on_record=figs,
                )
            except ValueError as exc:
                raise InputError(str(exc)) from None
            summaries[name] = result.summary
            frames[name] = {f"{stem}.csv": f for stem, f in result.frames.items()}
            sources[name] = display(raw.path)
            ran[name] = (sc, raw, result)
            figures[name] = figs
        else:
            summaries[name] = item.summary
            frames[name] = dict(item.frames)
            sources[name] = display(item.folders[0])
    if unpaired:
        figures = {}  # not paired: no interval for any difference
    diffs = scenario_differences(names, summaries, figures)
    header, rows = comparison_rows(summaries, diffs)
    mismatch = "; ".join(w for w in (unpaired or replicate_mismatch(summaries), question_mismatch(summaries))
                         if w) or None
    with output_dir(out, force=force) as o:
        o.write_rows("comparison.csv", header, rows)
        written = ["comparison.csv"]
        for file in OVERLAID:
            parts = [(n, frames[n][file]) for n in names if file in frames[n] and frames[n][file].height > 0]
            if parts:
                o.write_csv(file, stack_scenarios(parts))
                written.append(file)
        o.write_json("summaries.json", summaries)
        for name, (_, _, result) in ran.items():
            sub = f"scenarios/{_safe(name)}"
            o.write_json(f"{sub}/summary.json", result.summary)
            for stem, frame in result.frames.items():
                o.write_csv(f"{sub}/{stem}.csv", frame)
        man = manifest(
            "compare",
            seed=seed if ran else None,
            replicates=replicates if ran else None,
            wall_time_s=time.perf_counter() - started,
            extra={
                "scenarios": sources,
                "paired_differences": bool(figures),  # intervals from common random numbers
                "jobs": jobs,
                "executor": executor,
                "resolved_configs": {
                    n: sc.model_dump(mode="json", by_alias=True) for n, (sc, _, _) in ran.items()
                },
                "files": [*written, "summaries.json", "report.html", "charts/"],
            },
        )
        o.write_json("manifest.json", man)
        write_report(
            o,
            title="Comparison: " + " vs ".join(names),
            manifest=man,
            summaries=list(summaries.values()),
            comparison=report_table(names, summaries, rows, diffs),
            subtitle=" · ".join(f"{n}: {s}" for n, s in sources.items())
            + (f" · {replicates} replicates, seed {seed}" if ran else "")
            + (f" · warning: {mismatch}" if mismatch else ""),
        )
    if quiet:
        return
    if format is Format.json:
        print_json({
            "scenarios": names,
            "comparison": {r[0]: dict(zip(names, r[1:1 + len(names)], strict=True)) for r in rows},
            "differences": {n: {k: {"difference_vs_first": d.difference, "difference_low": d.low,
                                    "difference_high": d.high, "within_noise": d.within_noise,
                                    "method": d.method} for k, d in diffs[n].items()} for n in names[1:]},
        })
        return
    t = Table(title=f"compare: differences from {names[0]} with {CONFIDENCE:.0%} paired intervals")
    t.add_column("figure")
    for n in names:
        t.add_column(n, justify="right")
    for n in names[1:]:
        t.add_column(f"{n} − {names[0]}", justify="right")
    for r in rows:
        if r[0] in SHOWN or (r[0].startswith("supply.") and r[0].endswith(SHOWN_SUPPLY)):
            t.add_row(figure_label(r[0]),
                      *(_fmt(v, r[0], summaries[n]) for n, v in zip(names, r[1:1 + len(names)], strict=True)),
                      *(_diff_cell(diffs[n].get(r[0]), r[0]) for n in names[1:]))
    con = console(quiet)
    con.print(t)
    if mismatch:
        con.print(f"[yellow]warning[/yellow]: {mismatch}")
    con.print(f"wrote {display(out)}/: " + ", ".join([*written, "report.html"]))
