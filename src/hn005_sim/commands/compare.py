"""`hn005-sim compare A B ... --out DIR`: key figures side by side and overlaid curves.

Each argument is a scenario file (run here with `--replicates` and `--seed`; the same seed for every
scenario, so replicate r of each draws the same random numbers and the differences are the change, not
noise) or an output folder a previous `run`/`screen`/`sites` wrote (read as it is).

Writes into DIR: comparison.csv (`metric`, then one column per scenario: every number in the scenarios'
summary.json, dotted keys), the overlaid files with a leading `scenario` column (enrollment_curve.csv,
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


def comparison_rows(summaries: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """(header, rows) of comparison.csv: headline figures first, then every other number."""
    flat = {name: flatten_numbers(s) for name, s in summaries.items()}
    keys: dict[str, None] = {k: None for k, _, _ in KEY_FIGURES if any(k in f for f in flat.values())}
    for f in flat.values():
        keys.update(dict.fromkeys(f))
    header = ["metric", *summaries]
    rows = [[k, *(f.get(k) for f in flat.values())] for k in keys]
    return header, rows


KINDS = {k: kind for k, _, kind in KEY_FIGURES}


def _fmt(v: Any, key: str = "", summary: dict[str, Any] | None = None) -> str:
    """A comparison cell: key figures as the report shows them (percentages, counts), others as numbers.

    An empty cell is a figure the input does not have; a time-to-target percentile the summary records
    as null is one the runs did not reach."""
    if v is None:
        reached_null = summary is not None and _is_null(summary, key)
        return "not reached" if reached_null and key.startswith("time_to_target_months.p") else ""
    if key in KINDS:
        return format_figure(v, KINDS[key])
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _is_null(summary: dict[str, Any], dotted: str) -> bool:
    """The summary records this figure as null (it has the key), unlike an input that lacks it."""
    return lookup(summary, dotted, missing=False) is None


def replicate_mismatch(summaries: dict[str, dict[str, Any]]) -> str | None:
    """A warning when the inputs rest on different numbers of replicates (their figures differ in noise)."""
    counts = {n: s.get("replicates") for n, s in summaries.items() if s.get("replicates") is not None}
    if len(set(counts.values())) > 1:
        return "inputs differ in replicates (" + ", ".join(f"{n}: {c}" for n, c in counts.items()) + \
            "); their figures carry different Monte Carlo error"
    return None


def compare(
    inputs: InputsArg,
    out: OutOpt,
    force: ForceOpt = False,
    replicates: ReplicatesOpt = 200,
    seed: SeedOpt = 20230901,
    jobs: JobsOpt = 1,
    executor: ExecutorOpt = "process",
    quiet: QuietOpt = False,
    format: FormatOpt = Format.table,
) -> None:
    """Compare scenarios: key figures side by side (comparison.csv) and overlaid curves (report.html).

    Each input is a scenario file (run here, all with the same --seed: common random numbers) or an
    output folder from an earlier run. Example:
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
    started = time.perf_counter()
    summaries: dict[str, dict[str, Any]] = {}
    frames: dict[str, dict[str, pl.DataFrame]] = {}
    sources: dict[str, str] = {}
    ran: dict[str, Any] = {}
    for name, (_, item) in zip(names, plan, strict=True):
        if isinstance(item, tuple):
            sc, raw = item
            if not quiet and format is Format.table:
                console(quiet).print(f"running {name} ({display(raw.path)}): {replicates} replicates")
            try:
                result = run_scenario(
                    sc,
                    replicates,
                    seed,
                    jobs=jobs,
                    executor=executor,
                    progress=not quiet and format is Format.table,
                )
            except ValueError as exc:
                raise InputError(str(exc)) from None
            summaries[name] = result.summary
            frames[name] = {f"{stem}.csv": f for stem, f in result.frames.items()}
            sources[name] = display(raw.path)
            ran[name] = (sc, raw, result)
        else:
            summaries[name] = item.summary
            frames[name] = dict(item.frames)
            sources[name] = display(item.folders[0])
    header, rows = comparison_rows(summaries)
    mismatch = replicate_mismatch(summaries)
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
            comparison=(header, [[r[0], *(_fmt(v, r[0], summaries[n]) for n, v in zip(names, r[1:],
                                                                                         strict=True))]
                                 for r in rows]),
            subtitle=" · ".join(f"{n}: {s}" for n, s in sources.items())
            + (f" · {replicates} replicates, seed {seed}" if ran else "")
            + (f" · warning: {mismatch}" if mismatch else ""),
        )
    if quiet:
        return
    if format is Format.json:
        print_json(
            {"scenarios": names, "comparison": {r[0]: dict(zip(names, r[1:], strict=True)) for r in rows}}
        )
        return
    t = Table(title="compare")
    t.add_column("figure")
    for n in names:
        t.add_column(n, justify="right")
    labels = {k: label for k, label, _ in KEY_FIGURES}
    for r in rows:
        if r[0] in labels:
            t.add_row(labels[r[0]], *(_fmt(v, r[0], summaries[n]) for n, v in zip(names, r[1:], strict=True)))
    con = console(quiet)
    con.print(t)
    if mismatch:
        con.print(f"[yellow]warning[/yellow]: {mismatch}")
    con.print(f"wrote {display(out)}/: " + ", ".join([*written, "report.html"]))
