"""Assemble the report from an output folder: which charts and tables, in which order.

`write_report` is what `run`, `sites`, `screen` and `compare` call last. Every section is built only from
files that exist, so the same function serves every command.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from hn005_sim.io import OutputDir
from hn005_sim.report import charts as ch
from hn005_sim.report.data import OutputFiles, load_folder
from hn005_sim.report.html import Raw, Section, Table, esc, render_page
from hn005_sim.report.images import javascript_bundle, save_images
from hn005_sim.report.prerender import ChartRenderer
from hn005_sim.report.tables import (
    PUBLISHED,
    PublishedTrial,
    baseline_table,
    cohort_figures,
    key_figures,
    manifest_rows,
    parameter_rows,
    supply_rows,
)


def _values(summaries: list[dict[str, Any]], key: str) -> list[float]:
    out = []
    for s in summaries:
        v = s.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool):
            out.append(float(v))
    return out


def build_charts(files: OutputFiles, summaries: list[dict[str, Any]] | None = None) -> list[ch.Chart]:
    """Every chart whose file exists, in page order. `summaries` give target and deadline lines."""
    return list(iter_charts(files, summaries))


def iter_charts(files: OutputFiles, summaries: list[dict[str, Any]] | None = None,
                memo: ChartRenderer | None = None) -> Iterator[ch.Chart]:
    """`build_charts` one chart at a time (write_report renders each while the next is built).
    memo: charts already built from an equal frame with the same target, deadline and probability
    (report/prerender.py) are taken from it instead of being built again."""
    summaries = summaries if summaries is not None else [files.summary]
    target = _values(summaries, "target_enrolled")
    deadline = _values(summaries, "deadline_months")
    # the probability asked for: `sites` writes required_probability, `run` writes it in sites_needed
    probability = (_values(summaries, "required_probability")
                   or _values([s.get("sites_needed") or {} for s in summaries], "required_probability")
                   or _values(summaries, "probability") or [None])[0]
    f = files.frames
    builders: list[tuple[str, Any]] = [
        ("enrollment_curve.csv", lambda d: ch.enrolment_fan(d, target=target, deadline=deadline)),
        ("time_to_target.csv", lambda d: ch.time_to_target(d, deadline=deadline)),
        ("screen_failures.csv", ch.screen_failures),
        ("sites.csv", ch.sites),
        ("curve.csv", lambda d: ch.site_curve(d, probability=probability)),
        ("funnel.csv", ch.funnel),
        ("criteria.csv", ch.criteria),
        ("cofailure.csv", ch.cofailure),
        ("sweeps.csv", ch.sweeps),
        ("relaxation.csv", ch.relaxation),
        ("drug_demand.csv", ch.drug_demand),
        ("inventory.csv", ch.inventory),
        ("sensitivity.csv", _tornado),
    ]
    key = (tuple(target), tuple(deadline), probability)
    for name, build in builders:
        frame = f.get(name)
        if frame is not None and frame.height > 0:
            yield build(frame) if memo is None else memo.chart(name, frame, key, build)


def _save_images(spec: dict[str, Any], directory: Path, name: str, png: bool, svg: cf.Future) -> list[Path]:
    return save_images(spec, directory, name, png=png, svg_text=svg.result())


def _tornado(frame: pl.DataFrame) -> ch.Chart:
    from hn005_sim.report.sensitivity import tornado

    return tornado(frame)


SECTIONS = (
    (
        "recruitment",
        "Recruitment: when will the trial be full?",
        "Simulated runs of the whole trial: sites opening, candidates arriving, prescreen, consent, "
        "screening and enrolment, stopping at the target.",
        ("enrolment", "time_to_target", "screen_failures", "sites", "site_curve"),
    ),
    (
        "eligibility",
        "Eligibility: who the criteria turn away",
        "The protocol's criteria applied to simulated R/M NPC candidates.",
        ("funnel", "criteria", "cofailure", "sweeps", "relaxation"),
    ),
    (
        "supply",
        "Drug supply: how much to make and where it runs out",
        "Dispensing follows each enrolled patient's cycles, dose changes and stopping; the depot ships to "
        "sites and resupplies them.",
        ("drug_demand", "inventory"),
    ),
)


def _sections(
    files: OutputFiles,
    charts: list[ch.Chart],
    *,
    manifest: dict[str, Any],
    parameters: list[dict[str, Any]] | None,
    published: tuple[PublishedTrial, ...] | None,
    comparison: tuple[list[str], list[list[str]]] | None,
) -> list[Section]:
    by_name = {c.name: c for c in charts}
    sections: list[Section] = []
    if comparison is not None:
        header, rows = comparison
        sections.append(
            Section(
                "comparison",
                "Scenarios side by side",
                "Key figures from each scenario's summary (comparison.csv), and each later scenario's "
                "difference from the first with its 95% paired Monte Carlo interval: scenarios run with "
                "one seed share their random numbers replicate by replicate, so the interval comes from "
                "the per-replicate differences (a paired bootstrap for medians and other percentiles). "
                "'Within noise': the interval covers 0. Percentages differ in percentage points (pp).",
                [Table(header, rows)],
            )
        )
    kf = key_figures(files.summary)
    if kf:
        sections.append(Section("key-figures", "Key figures", "", [Table(["figure", "value"], kf)]))
    for key, heading, intro, names in SECTIONS:
        items: list[Any] = [by_name[n] for n in names if n in by_name]
        if key == "supply" and "supply.csv" in files.frames:
            header, rows = supply_rows(files.frames["supply.csv"])
            items.insert(
                0,
                Table(header, rows, caption="Packs to make and ship (percentiles across runs; a pack is a "
                      "box of capsules, a vial or a bottle of tablets)"),
            )
        sections.append(Section(key, heading, intro, items))
    from hn005_sim.report.sensitivity import uncertainty_section

    uncertain = uncertainty_section(files, by_name.get("tornado"))
    if uncertain is not None:
        sections.append(uncertain)
    sections.append(_baseline_section(files, published))
    resolved = manifest.get("resolved_config") or files.manifest.get("resolved_config")
    rows = parameter_rows(resolved, parameters)
    if rows:
        n_assumed = sum(r[3] == "assumption" for r in rows)
        sections.append(
            Section(
                "parameters",
                "Every parameter and its source",
                f"{len(rows)} figures with a source: {len(rows) - n_assumed} from published evidence, "
                f"{n_assumed} "
                "assumptions (marked, with the reason given in the configuration).",
                [Table(["parameter", "value", "source", "kind"], rows, row_classes=[r[3] for r in rows])],
            )
        )
    if manifest:
        items = [Table(["", ""], manifest_rows(manifest))]
        if manifest.get("resolved_config") is not None:
            text = json.dumps(manifest["resolved_config"], indent=2, default=str)
            items.append(
                Raw(f"<details><summary>Resolved configuration</summary><pre>{esc(text)}</pre></details>")
            )
        sections.append(
            Section(
                "manifest", "How this report was made", "The run manifest (also in manifest.json).", items
            )
        )
    return sections


def _baseline_section(files: OutputFiles, published: tuple[PublishedTrial, ...] | None) -> Section:
    simulated: dict[str, dict[str, Any]] = {}
    cohort = files.cohort
    if cohort is not None and files.pass_matrix is not None and "eligible" not in cohort.columns:
        # screen --save-matrix: eligible = passes every criterion (same candidates when sizes agree)
        checks = [c for c, t in files.pass_matrix.schema.items() if t == pl.Boolean]
        if files.pass_matrix.height == cohort.height and checks:
            ok = files.pass_matrix.select(pl.col("patient_id"), pl.all_horizontal(checks).alias("eligible"))
            cohort = cohort.join(ok, on="patient_id", how="left")
    if cohort is not None:
        if "eligible" in cohort.columns:
            simulated["Simulated eligible candidates"] = cohort_figures(cohort.filter(pl.col("eligible")))
            simulated["All simulated candidates"] = cohort_figures(cohort)
        else:
            simulated["Simulated candidates"] = cohort_figures(cohort)
    enrolled = files.summary.get("enrolled_baseline")
    if isinstance(enrolled, dict):
        simulated[f"Simulated enrolled patients (all {enrolled.get('replicates', '')} runs)"] = enrolled
    baseline = files.summary.get("baseline")
    if isinstance(baseline, dict):
        simulated["Simulated eligible candidates (screening sample)"] = baseline
    if not simulated:
        return Section("baseline", "", "", [])
    header, rows, notes = baseline_table(simulated, published if published is not None else PUBLISHED)
    return Section(
        "baseline",
        "Who is enrolled, beside published first-line R/M NPC trials",
        "Baseline figures of the simulated cohort next to those reported by comparable trials.",
        [Table(header, rows, notes=notes)],
    )


def draw_ahead(renderer: ChartRenderer, frames: Mapping[str, pl.DataFrame],
               summaries: Sequence[dict[str, Any]]) -> int:
    """Build the charts `frames` ({"funnel": frame, ...}, as the command will write them) give and
    queue their SVGs on `renderer`; returns how many. The frames are written to CSV and read back as the
    report reads its folder, so the specs are those the report will build from the same files."""
    with tempfile.TemporaryDirectory(prefix="hn005-ahead-") as tmp:
        for name, frame in frames.items():
            frame.write_csv(Path(tmp) / f"{name}.csv")  # as io.OutputDir.write_csv writes it
        files = load_folder(Path(tmp))
    n = 0
    for chart in iter_charts(files, list(summaries), memo=renderer):
        renderer.draw_ahead(chart.spec)
        n += 1
    return n


def write_report(
    out: OutputDir | Path,
    *,
    title: str,
    sections_from: Path | Sequence[Path] | None = None,
    manifest: dict[str, Any] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    published: tuple[PublishedTrial, ...] | None = None,
    comparison: tuple[list[str], list[list[str]]] | None = None,
    subtitle: str | None = None,
    summaries: list[dict[str, Any]] | None = None,
    images: bool = True,
    png: bool = True,
    renderer: ChartRenderer | None = None,
) -> list[str]:
    """Write `report.html` and `charts/NAME.svg|png` into `out`; return the names of the charts drawn.

    out: an `OutputDir` (files go to its staging folder) or a folder path.
    sections_from: folder(s) holding the command's files (default: `out` itself); first folder wins.
    manifest: the run manifest (shown, and its `resolved_config` walked for `source` keys).
    parameters: extra {parameter, value, source} rows for the parameter table.
    published: published trials for the baseline table (default: `tables.PUBLISHED`).
    comparison: (header, rows) of comparison.csv, shown first (used by `compare`).
    subtitle: line under the title (default: tool version, scenario, seed, replicates from `manifest`).
    summaries: summaries whose target and deadline are drawn (default: the folder's summary.json).
    images: also write charts/NAME.svg (and charts/NAME.png when `png`).
    png: with `images`, also the PNG of each chart (rasterised from its SVG).
    renderer: the command's `ChartRenderer` (report/prerender.py), holding the charts it built and the
        SVGs it drew ahead; default: one drawing thread for this report, in this process.
    """
    folder = out.path if isinstance(out, OutputDir) else Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    files = load_folder(sections_from if sections_from is not None else folder)
    manifest = manifest if manifest is not None else files.manifest
    charts: list[ch.Chart] = []
    # one drawing thread (its jobs in order, so charts not drawn ahead are drawn in page order as
    # before); vl-convert holds the GIL while it draws, unless the renderer draws in a process of its
    # own (`run`'s does: report/prerender.py)
    render = renderer if renderer is not None else ChartRenderer(warm=False)
    try:
        rendered = []
        for chart in iter_charts(files, summaries, memo=renderer):
            charts.append(chart)
            if images:
                # drawn ahead, else drawn now; queued before the job saving it: done when that job runs
                svg = render.take(chart.spec) or render.draw(chart.spec)
                rendered.append(render.submit(_save_images, chart.spec, folder / "charts", chart.name, png,
                                              svg))
        rendered.append(render.submit(javascript_bundle))  # ready (cached) when the page is rendered
        for job in rendered:
            job.result()
    finally:
        if renderer is None:
            render.close()
    # every CSV a chart draws sits beside report.html (its links and data checks rely on that)
    for chart in charts:
        for name in chart.files:
            src = files.origin.get(name)
            if src is not None and src.resolve() != folder.resolve():
                shutil.copyfile(src / name, folder / name)
    sections = _sections(
        files, charts, manifest=manifest, parameters=parameters, published=published, comparison=comparison
    )
    if subtitle is None:
        bits = [f"hn005-sim {manifest.get('tool_version', '')}".strip()]
        for key in ("scenario_path", "seed", "replicates"):
            if manifest.get(key) is not None:
                bits.append(f"{key.replace('_', ' ')}: {manifest[key]}")
        subtitle = " · ".join(bits)
    (folder / "report.html").write_text(render_page(title, subtitle, sections), encoding="utf-8")
    return [c.name for c in charts]
