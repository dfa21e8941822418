"""The sensitivity report and the tornado chart (from sensitivity.csv), and the run report's section on
uncertain figures (from uncertainty.csv)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from hn005_sim.report.charts import Chart, _Data, _finish
from hn005_sim.report.html import Section, Table

MAX_FIGURES = 12  # bars per output in the tornado chart; sensitivity.csv has all of them
TITLES = {
    "prob_target_by_deadline": "P(target by deadline)",
    "enrolled_by_deadline_mean": "Mean enrolled by the deadline",
    "time_to_target_p50": "Median months to target",
    "screen_failure_rate": "Screen-failure rate",
}


def _title(output: str) -> str:
    if output.startswith("packs_p95_"):
        return f"Packs at P95: {output.removeprefix('packs_p95_')}"
    return TITLES.get(output, output)


def tornado(frame: pl.DataFrame) -> Chart:
    """One panel per output: for each figure (most influential on top), a bar from the output with the
    figure at the low end of its range to the output at the high end (the others at their average, from
    a linear fit over the design: sensitivity.swings); the label is its total Sobol' index (or mu*)."""
    import altair as alt  # here: the run report's other sections, and run, need no altair

    key = "ST" if "ST" in frame.columns else "mu_star"
    data = _Data()
    rows = []
    outputs = list(dict.fromkeys(frame["output"].to_list()))
    # an output no figure moves (e.g. P(target) 0 at every design point) has no bars to draw
    still = frame.filter((pl.col(key).fill_null(0) == 0)
                         & (pl.col("output_at_low") == pl.col("output_at_high")))
    moved = [o for o in outputs
             if still.filter(pl.col("output") == o).height < frame.filter(pl.col("output") == o).height]
    for output in moved or outputs:
        sub = frame.filter(pl.col("output") == output).head(MAX_FIGURES).with_row_index("rank")
        rows.append(sub.select(
            pl.col("output"), pl.lit(_title(output)).alias("panel"), pl.col("parameter"),
            pl.col("rank").cast(pl.Int64), pl.col(key).alias("index"),
            pl.col("output_at_low"), pl.col("output_at_high")))
    chart_frame = pl.concat(rows) if rows else pl.DataFrame()
    named = data.add("tornado", chart_frame, "sensitivity.csv", rows="subset",
                     why=f"the first {MAX_FIGURES} figures of each output (the file ranks them by {key}); "
                         "`panel` is the output's title and `rank` the order",
                     columns={"output": "output", "parameter": "parameter", "index": key,
                              "output_at_low": "output_at_low", "output_at_high": "output_at_high"})
    panels = []
    for output in dict.fromkeys(chart_frame["output"].to_list() if rows else []):
        base = alt.Chart(named).transform_filter(alt.datum.output == output)
        y = alt.Y("parameter:N", sort=alt.EncodingSortField("rank", order="ascending"), title=None,
                  axis=alt.Axis(labelLimit=360))
        bars = base.mark_bar(color="#4292c6", height=10).encode(
            x=alt.X("output_at_low:Q", title=_title(output), scale=alt.Scale(zero=False)),
            x2="output_at_high:Q", y=y,
            tooltip=[alt.Tooltip("parameter:N"),
                     alt.Tooltip("output_at_low:Q", title="figure low", format=".4g"),
                     alt.Tooltip("output_at_high:Q", title="figure high", format=".4g"),
                     alt.Tooltip("index:Q", title=key, format=".3f")])
        low_tick = base.mark_tick(color="#08306b", thickness=2).encode(x="output_at_low:Q", y=y)
        text = base.mark_text(align="left", dx=4, fontSize=10, color="#333").encode(
            x=alt.X("max_end:Q"), y=y, text=alt.Text("index:Q", format=".2f")).transform_calculate(
            max_end="max(datum.output_at_low, datum.output_at_high)")
        panels.append(alt.layer(bars, low_tick, text).properties(width=480, height=alt.Step(16)))
    chart = alt.vconcat(*panels).resolve_scale(x="independent", y="independent")
    return _finish(
        "tornado", "Which assumptions, if measured, would move the answer most",
        f"Bar: the answer with the figure at the low end of its range (dark tick) to the high end, others "
        f"at their average (linear fit over the design); number: {key}",
        "Each panel is one answer; figures are ranked by their share of its variance (total Sobol' index "
        "ST, or Morris mu*). A long bar with a large index is an assumption worth measuring: pinning it "
        "down would narrow the answer most. The dark tick marks the figure's low end, so a bar whose tick "
        "is on the right means the answer falls as the figure rises. Indices whose interval "
        "(sensitivity.csv) includes 0 are not distinguishable from no effect at this sample size. An "
        "answer that no figure moves (every index 0) has no panel.",
        chart, data)


def uncertainty_section(files, chart: Chart | None = None) -> Section | None:
    """The run report's section on uncertain figures: what --uncertainty drew (uncertainty.csv) and,
    when sensitivity.csv is beside it, the tornado chart."""
    figures = files.frames.get("uncertainty.csv")
    enabled = (files.summary.get("uncertainty") or {}).get("enabled", False)
    items: list[Any] = []
    intro = ""
    if enabled and figures is not None:
        intro = (f"Intervals in this report include the uncertainty of {figures.height} assumptions: each "
                 "replicate ran with its own parameter set, drawn from the ranges below (second-order "
                 "Monte Carlo; `run --uncertainty`). The restrictiveness and baseline figures use the "
                 "central values.")
        items.append(_figures_table(figures))
    elif files.summary.get("uncertainty") is not None:
        intro = ("Intervals in this report show chance only: every figure at its central value (run with "
                 "--uncertainty to include what is not known about the assumptions).")
    if chart is not None:
        items.append(chart)
    if not items and not intro:
        return None
    return Section("uncertainty", "Uncertainty of the assumptions", intro, items)


def _figures_table(frame: pl.DataFrame) -> Table:
    rows = [[r["parameter"], f"{r['value']:.4g}", f"{r['low']:.4g} – {r['high']:.4g}", r["distribution"],
             r["source"]] for r in frame.iter_rows(named=True)]
    return Table(["figure", "central value", "range", "distribution", "source"], rows,
                 caption="uncertainty.csv")


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write_sensitivity_report(folder: Path, table: pl.DataFrame, summary: dict[str, Any],
                             man: dict[str, Any]) -> None:
    """report.html (self-contained) and charts/tornado.png|svg for `sensitivity`."""
    from hn005_sim.report.html import render_page
    from hn005_sim.report.images import save_images
    from hn005_sim.report.tables import manifest_rows

    chart = tornado(table)
    save_images(chart.spec, folder / "charts", chart.name)
    shown = [c for c in table.columns if c not in ("method",)]
    idx_table = Table(shown, [[_cell(r[c]) for c in shown] for r in table.iter_rows(named=True)],
        caption="sensitivity.csv", notes=[
            f"{summary['design_points']} design points x {summary['replicates_per_point']} replicates, "
            f"seed {summary['seed']}, {summary['conf_level']:.0%} bootstrap intervals. "
            "output_at_low / output_at_high: the output with the figure at the low / high end of its "
            "range and the others at their average, from a linear fit over all design points (R^2 of the "
            "fit per output in summary.json linear_r2)."])
    figures = Table(["figure", "central value", "range", "distribution", "source"],
                    [[f["parameter"], f"{f['value']:.4g}", f"{f['low']:.4g} – {f['high']:.4g}",
                      f["distribution"], f["source"]] for f in summary["figures"]],
                    caption="the uncertain figures (summary.json figures)")
    intro = (f"{summary['method']} design over {summary['uncertain_figures']} uncertain figures; every "
             f"design point ran the same {summary['replicates_per_point']} replicate seeds (common random "
             f"numbers). Indices whose {summary['conf_level']:.0%} interval includes 0 are not "
             "distinguishable from no effect at this sample size (docs/sensitivity.md: tighter intervals).")
    subtitle = (f"hn005-sim {man['tool_version']} · scenario {man['scenario_path']} · seed {man['seed']} · "
                f"{summary['design_points']} points x {summary['replicates_per_point']} replicates")
    page = render_page("Sensitivity: " + summary.get("scenario", ""), subtitle, [
        Section("sensitivity", "Which assumptions matter", intro, [chart, idx_table]),
        Section("figures", "Uncertain figures and their sources", "", [figures]),
        Section("manifest", "How this report was made", "The manifest (also in manifest.json).",
                [Table(["", ""], manifest_rows(man))]),
    ])
    (folder / "report.html").write_text(page, encoding="utf-8")
