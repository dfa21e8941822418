"""Charts of recruitment (`run`, `sites`): enrolment fan, time to target, screen failures, sites, curve."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

if TYPE_CHECKING:
    import altair as alt

from hn005_sim.report.charts.common import (
    BAND_COLOURS,
    MAX_CRITERIA,
    MAX_SITES,
    WIDTH,
    Chart,
    _axis_dict,
    _bars_with_spread,
    _cols,
    _copy_shared,
    _Data,
    _finish_spec,
    _has_scenarios,
    _stage_scale_dict,
    _title,
    _tooltip,
)

# --------------------------------------------------------------------------------------------------
# Recruitment (run)


def _rule_layers(target: list[float], deadline: list[float], y_title: str = "target") -> list[alt.Chart]:
    """Target and deadline rules as altair layers (for charts still built with altair: the forecast's)."""
    import altair as alt

    layers: list[alt.Chart] = []
    for t in sorted(set(target)):
        layers.append(alt.Chart().mark_rule(color="firebrick", strokeDash=[6, 3]).encode(y=alt.datum(t)))
        layers.append(
            alt.Chart()
            .mark_text(align="left", dx=4, dy=-6, color="firebrick")
            .encode(y=alt.datum(t), x=alt.value(0), text=alt.datum(f"{y_title} {t:g}"))
        )
    for d in sorted(set(deadline)):
        layers.append(alt.Chart().mark_rule(color="#444", strokeDash=[2, 3]).encode(x=alt.datum(d)))
        layers.append(
            alt.Chart()
            .mark_text(align="left", dx=4, y=8, color="#444")
            .encode(x=alt.datum(d), text=alt.datum(f"deadline {d:g} months"))
        )
    return layers


def _rule_layer_dicts(target: list[float], deadline: list[float], y_title: str = "target") -> list[dict]:
    """`_rule_layers(...)` as the layer dicts altair writes for them (their data: the "empty" dataset)."""
    layers: list[dict[str, Any]] = []
    empty = {"name": "empty"}
    for t in sorted(set(target)):
        layers.append({"data": empty, "mark": {"type": "rule", "color": "firebrick", "strokeDash": [6, 3]},
                       "encoding": {"y": {"datum": t}}})
        layers.append({"data": empty,
                       "mark": {"type": "text", "align": "left", "color": "firebrick", "dx": 4, "dy": -6},
                       "encoding": {"text": {"datum": f"{y_title} {t:g}"}, "x": {"value": 0},
                                    "y": {"datum": t}}})
    for d in sorted(set(deadline)):
        layers.append({"data": empty, "mark": {"type": "rule", "color": "#444", "strokeDash": [2, 3]},
                       "encoding": {"x": {"datum": d}}})
        layers.append({"data": empty,
                       "mark": {"type": "text", "align": "left", "color": "#444", "dx": 4, "y": 8},
                       "encoding": {"text": {"datum": f"deadline {d:g} months"}, "x": {"datum": d}}})
    return layers


def enrolment_fan(frame: pl.DataFrame, *, target: list[float], deadline: list[float]) -> Chart:
    """Cumulative enrolment by month: median with 50/80/95% bands (enrollment_curve.csv).

    Written as the dict altair builds (`_finish_spec`; 0.06-0.18 s through altair's layering)."""
    data = _Data()
    cols = _cols(frame, "month", "enrolled_mean", "p025", "p10", "p25", "p50", "p75", "p90", "p975")
    data.put("enrolment", frame.select(cols), "enrollment_curve.csv")
    x = {"field": "month", "title": "Months since the trial opened", "type": "quantitative"}
    ytitle = "Patients enrolled (cumulative)"
    tips = [
        _tooltip("month", "quantitative", fmt=".1f"),
        _tooltip("p50", "quantitative", "median", ",.0f"),
        _tooltip("p25", "quantitative", "25th percentile", ",.0f"),
        _tooltip("p75", "quantitative", "75th percentile", ",.0f"),
        _tooltip("p10", "quantitative", "10th percentile", ",.0f"),
        _tooltip("p90", "quantitative", "90th percentile", ",.0f"),
    ]

    def q(field_: str, title: str | None = None) -> dict[str, Any]:
        return {"field": field_, **({"title": title} if title is not None else {}), "type": "quantitative"}

    if _has_scenarios(frame):
        tips.insert(0, _tooltip("scenario", "nominal"))
        colour = {"field": "scenario", "title": "Scenario", "type": "nominal"}
        layers: list[dict[str, Any]] = [
            {"mark": {"type": "area", "opacity": 0.18},
             "encoding": {"color": colour, "x": x, "y": q("p10", ytitle), "y2": {"field": "p90"}}},
            {"mark": {"type": "line", "strokeWidth": 2.5},
             "encoding": {"color": colour, "tooltip": tips, "x": x, "y": q("p50")}},
        ]
        subtitle = "Median for each scenario, shaded: 80% of simulated runs"
    else:
        scale = {"domain": list(BAND_COLOURS), "range": list(BAND_COLOURS.values())}
        colour = {"field": "band", "scale": scale, "title": "Runs", "type": "nominal"}

        def tagged(label: str, layer: dict[str, Any]) -> dict[str, Any]:
            # a constant field per layer gives one shared legend for the bands and the median
            return {**layer, "transform": [{"calculate": f"toString({label!r})", "as": "band"}]}

        layers = [
            tagged("95% of runs", {"mark": {"type": "area"}, "encoding": {
                "color": colour, "x": x, "y": q("p025", ytitle), "y2": {"field": "p975"}}}),
            tagged("80% of runs", {"mark": {"type": "area"}, "encoding": {
                "color": colour, "x": x, "y": q("p10"), "y2": {"field": "p90"}}}),
            tagged("50% of runs", {"mark": {"type": "area"}, "encoding": {
                "color": colour, "x": x, "y": q("p25"), "y2": {"field": "p75"}}}),
            tagged("median", {"mark": {"type": "line", "strokeWidth": 2.5}, "encoding": {
                "color": colour, "tooltip": tips, "x": x, "y": q("p50")}}),
        ]
        subtitle = "Median of simulated runs with the ranges holding 50%, 80% and 95% of them"
    rules = _rule_layer_dicts(target, deadline)
    title = "When will the trial be full?"
    if rules:  # each layer names its data; the rules draw from altair's "empty" dataset
        body = {"layer": [{"data": {"name": "enrolment"}, **layer} for layer in layers] + rules,
                "height": 320, "title": _title(title, subtitle), "width": WIDTH}
        extra = {"empty": [{}]}
    else:  # one dataset for every layer: altair names it once, on the chart
        body = {"layer": layers, "data": {"name": "enrolment"}, "height": 320,
                "title": _title(title, subtitle), "width": WIDTH}
        extra = {}
    chart = _finish_spec(
        "enrolment",
        title,
        "Each simulated run of the trial gives a curve of patients enrolled over time; the dark line is the "
        "middle run and the bands hold the given share of runs. Where the bands cross the red target line "
        "shows how early or late the target is reached; the dotted line is the deadline.",
        _copy_shared(body),
        data,
    )
    if extra:
        chart.spec["datasets"] = {**extra, **chart.spec["datasets"]}
    return chart


def _bin_width(values: np.ndarray) -> float:
    """A round bin width (months) giving at most about 40 bins."""
    span = float(values.max() - values.min()) if values.size else 0.0
    for width in (0.25, 0.5, 1.0, 2.0, 3.0, 6.0, 12.0, 24.0):
        if span / width <= 40:
            return width
    return 10.0 ** math.ceil(math.log10(span / 40))


def time_to_target_histogram(frame: pl.DataFrame) -> pl.DataFrame:
    """Runs reaching the target in each bin of months; bins [bin_start, bin_end), common to scenarios.

    Runs that never reach the target are not binned (their share is in the subtitle and summary.json).
    """
    groups = frame["scenario"].unique(maintain_order=True).to_list() if _has_scenarios(frame) else [None]
    t_all = frame["time_to_target_months"].drop_nulls().drop_nans().to_numpy().astype(float)
    if t_all.size == 0:
        return pl.DataFrame(schema={"bin_start": pl.Float64, "bin_end": pl.Float64, "runs": pl.Int64})
    width = _bin_width(t_all)
    lo = math.floor(t_all.min() / width) * width
    n_bins = max(1, math.floor((t_all.max() - lo) / width) + 1)
    edges = lo + width * np.arange(n_bins + 1)
    parts = []
    for g in groups:
        sub = frame if g is None else frame.filter(pl.col("scenario") == g)
        t = sub["time_to_target_months"].drop_nulls().drop_nans().to_numpy().astype(float)
        idx = np.floor((t - lo) / width).astype(np.int64)
        counts = np.bincount(idx, minlength=n_bins)[:n_bins]
        part = pl.DataFrame({"bin_start": edges[:-1], "bin_end": edges[1:], "runs": counts.astype(np.int64)})
        if g is not None:
            part = part.select(pl.lit(g).alias("scenario"), pl.all())
        parts.append(part)
    return pl.concat(parts)


def time_to_target(frame: pl.DataFrame, *, deadline: list[float]) -> Chart:
    """Distribution of months to reach the target across runs (time_to_target.csv, binned).

    Written as the dict altair builds (`_finish_spec`; ~25 ms through altair's layering)."""
    data = _Data()
    hist = time_to_target_histogram(frame)
    data.put(
        "time_to_target",
        hist,
        "time_to_target.csv",
        rows="histogram",
        column="time_to_target_months",
        group="scenario" if _has_scenarios(frame) else None,
    )
    n = frame.height
    reached = frame["time_to_target_months"].drop_nulls().drop_nans().len()
    tips = [
        _tooltip("bin_start", "quantitative", "from month", ".2f"),
        _tooltip("bin_end", "quantitative", "to month", ".2f"),
        _tooltip("runs", "quantitative", "runs reaching the target"),
    ]
    x = {"bin": "binned", "field": "bin_start", "title": "Months to reach the target", "type": "quantitative"}
    axis = _axis_dict([0, *hist["runs"]])
    if _has_scenarios(frame):
        tips.insert(0, _tooltip("scenario", "nominal"))
        bars = {"mark": {"type": "bar", "binSpacing": 0, "opacity": 0.55},
                "encoding": {"color": {"field": "scenario", "title": "Scenario", "type": "nominal"},
                             "tooltip": tips, "x": x, "x2": {"field": "bin_end"},
                             "y": {"axis": axis, "field": "runs", "stack": None, "title": "Simulated runs",
                                   "type": "quantitative"}}}
        subtitle = "Runs reaching the target in each interval, per scenario"
    else:
        bars = {"mark": {"type": "bar", "binSpacing": 1, "color": "#4292c6"},
                "encoding": {"tooltip": tips, "x": x, "x2": {"field": "bin_end"},
                             "y": {"axis": axis, "field": "runs", "title": "Simulated runs",
                                   "type": "quantitative"}}}
        share = reached / n if n else 0.0
        subtitle = f"{reached} of {n} runs ({share:.0%}) reached the target within the simulated horizon"
    rules = _rule_layer_dicts([], deadline)
    title = "How long until the target is reached?"
    if rules:  # each layer names its data; the rules draw from altair's "empty" dataset
        body = {"layer": [{"data": {"name": "time_to_target"}, **bars}, *rules], "height": 260,
                "title": _title(title, subtitle), "width": WIDTH}
    else:  # one dataset for every layer: altair names it once, on the chart
        body = {"layer": [bars], "data": {"name": "time_to_target"}, "height": 260,
                "title": _title(title, subtitle), "width": WIDTH}
    chart = _finish_spec(
        "time_to_target",
        title,
        "Each bar counts the simulated runs that reached the target in that interval. Runs to the right of "
        "the dotted deadline line are late; runs that never reached the target are not drawn.",
        _copy_shared(body),
        data,
    )
    if rules:
        chart.spec["datasets"] = {"empty": [{}], **chart.spec["datasets"]}
    return chart


def screen_failures(frame: pl.DataFrame) -> Chart:
    """Why candidates seen at sites did not enrol (screen_failures.csv).

    Written as the dict altair builds (`_finish_spec`; ~20 ms through altair's layering)."""
    data = _Data()
    cols = _cols(frame, "stage", "criterion_id", "failures_mean", "failures_p10", "failures_p90", "share")
    ranked = (
        frame.group_by("stage", "criterion_id")
        .agg(pl.col("failures_mean").max())
        .sort(["failures_mean", "criterion_id"], descending=[True, False])
    )
    keep = ranked.head(MAX_CRITERIA).select("stage", "criterion_id")
    shown = frame.join(keep, on=["stage", "criterion_id"], how="semi").select(cols)
    data.put_shown("screen_failures", shown, frame, "screen_failures.csv",
                   f"the {MAX_CRITERIA} most frequent reasons")
    order = ranked.head(MAX_CRITERIA)["criterion_id"].unique(maintain_order=True).to_list()
    tips = [
        _tooltip("criterion_id", "nominal", "reason"),
        _tooltip("stage", "nominal"),
        _tooltip("failures_mean", "quantitative", "candidates per run (mean)", ",.1f"),
    ]
    if "failures_p10" in frame.columns:
        tips += [
            _tooltip("failures_p10", "quantitative", "10th percentile", ",.0f"),
            _tooltip("failures_p90", "quantitative", "90th percentile", ",.0f"),
        ]
    if "share" in frame.columns:
        tips.append(_tooltip("share", "quantitative", "share of all losses", ".1%"))
    y = {"axis": {"labelLimit": 220}, "field": "criterion_id", "sort": order, "title": None,
         "type": "nominal"}
    colour = {"field": "stage", "scale": _stage_scale_dict(frame), "title": "Lost at", "type": "nominal"}
    layers = _bars_with_spread(frame, y, tips, colour, ("failures_mean", "Candidates lost per run (mean)"),
                               ("failures_p10", "failures_p90"))
    title = "Why candidates seen at the sites did not enrol"
    body = {"layer": layers, "data": {"name": "screen_failures"}, "height": max(140, 18 * len(order)),
            "title": _title(title, "Candidates lost per simulated run, by reason (black: 10th to 90th "
                                   "percentile)"),
            "width": WIDTH - 220}
    return _finish_spec(
        "screen_failures",
        title,
        "Counts are per run of the whole trial. Prescreen losses cost a chart review; screening losses "
        "cost a consent and a screening visit; consent and withdrawal are candidates who were eligible "
        "but did not go on.",
        _copy_shared(body),
        data,
    )


def sites(frame: pl.DataFrame) -> Chart:
    """Enrolment per site with its spread across runs (sites.csv).

    Written as the dict altair builds (`_finish_spec`; ~18 ms through altair's layering)."""
    data = _Data()
    cols = _cols(
        frame,
        "site",
        "region",
        "activation_month_mean",
        "never_activated_fraction",
        "enrolled_mean",
        "enrolled_p10",
        "enrolled_p90",
        "zero_enrolled_fraction",
    )
    ranked = frame.sort(["enrolled_mean", "site"], descending=[True, False])
    keep = ranked["site"].unique(maintain_order=True).head(MAX_SITES).to_list()
    shown = frame.filter(pl.col("site").is_in(keep)).select(cols)
    data.put_shown("sites", shown, frame, "sites.csv",
                   f"the {MAX_SITES} sites enrolling most")
    tips = [
        _tooltip("site", "nominal"),
        _tooltip("region", "nominal"),
        _tooltip("enrolled_mean", "quantitative", "enrolled (mean)", ",.1f"),
    ]
    for col, title, fmt in (
        ("enrolled_p10", "10th percentile", ",.0f"),
        ("enrolled_p90", "90th percentile", ",.0f"),
        ("activation_month_mean", "opens at month (mean)", ".1f"),
        ("never_activated_fraction", "never opens", ".0%"),
        ("zero_enrolled_fraction", "enrols no one", ".0%"),
    ):
        if col in frame.columns:
            tips.append(_tooltip(col, "quantitative", title, fmt))
    # hospital names run to 40 characters ("Sun Yat-sen University Cancer Center"): shown whole
    y = {"axis": {"labelLimit": 320}, "field": "site", "sort": keep, "title": None, "type": "nominal"}
    layers = _bars_with_spread(frame, y, tips, {"field": "region", "title": "Region", "type": "nominal"},
                               ("enrolled_mean", "Patients enrolled per run (mean)"),
                               ("enrolled_p10", "enrolled_p90"))
    title = "Enrolment per site"
    body = {"layer": layers, "data": {"name": "sites"}, "height": max(60, 20 * len(keep)),
            "title": _title(title, "Mean patients enrolled per simulated run (black: 10th to 90th "
                                   "percentile)"),
            "width": WIDTH - 200}
    return _finish_spec(
        "sites",
        title,
        "Sites differ in how fast they recruit and when they open; the spread shows how much a site's "
        "contribution varies from run to run. Hover for how often a site never opens or enrols no one.",
        _copy_shared(body),
        data,
    )


def site_curve(frame: pl.DataFrame, *, probability: float | None) -> Chart:
    """Probability of reaching the target by number of sites (sites command's curve.csv).

    Written as the dict altair builds (`_finish_spec`; ~16 ms through altair's layering)."""
    data = _Data()
    x_col = "sites" if "sites" in frame.columns else "total_sites"
    data.put(
        "site_curve",
        frame.select(_cols(frame, x_col, "probability_of_success", "expected_enrolled", "method")),
        "curve.csv",
    )
    tips = [
        _tooltip(x_col, "quantitative", "sites"),
        _tooltip("probability_of_success", "quantitative", "probability of success", ".1%"),
    ]
    if "expected_enrolled" in frame.columns:
        tips.append(_tooltip("expected_enrolled", "quantitative", "expected enrolled", ",.1f"))
    enc: dict[str, Any] = {
        "tooltip": tips,
        "x": {"axis": _axis_dict(frame[x_col].to_list()), "field": x_col, "title": "Number of sites",
              "type": "quantitative"},
        "y": {"axis": {"format": "%"}, "field": "probability_of_success", "scale": {"domain": [0, 1]},
              "title": "Probability of reaching the target", "type": "quantitative"},
    }
    colour_field = "scenario" if _has_scenarios(frame) else ("method" if "method" in frame.columns else None)
    if colour_field:
        enc["color"] = {"field": colour_field, "title": colour_field.capitalize(), "type": "nominal"}
        tips.insert(0, _tooltip(colour_field, "nominal"))
        if colour_field == "scenario" and "method" in frame.columns:
            enc["strokeDash"] = {"field": "method", "title": "Method", "type": "nominal"}
    line = {"mark": {"type": "line", "point": True}, "encoding": dict(sorted(enc.items()))}
    title = "How many sites do we need?"
    subtitle = "Probability of enrolling the target by the deadline, by number of sites"
    if probability is not None:  # each layer names its data; the rule draws from altair's "empty" dataset
        rule = {"data": {"name": "empty"},
                "mark": {"type": "rule", "color": "firebrick", "strokeDash": [6, 3]},
                "encoding": {"y": {"datum": probability}}}
        body = {"layer": [{"data": {"name": "site_curve"}, **line}, rule], "height": 280,
                "title": _title(title, subtitle), "width": WIDTH}
    else:  # one dataset for every layer: altair names it once, on the chart
        body = {"layer": [line], "data": {"name": "site_curve"}, "height": 280,
                "title": _title(title, subtitle), "width": WIDTH}
    how = ("Each point is a site count; the red dashed line is the probability asked for "
           f"({probability:.0%}). The first point above it is the smallest number of sites that meets the "
           "goal under this recruitment model." if probability is not None else
           "Each point is a site count. The first point at the probability you need is the smallest number "
           "of sites that meets the goal under this recruitment model.")
    chart = _finish_spec("site_curve", title, how, _copy_shared(body), data)
    if probability is not None:
        chart.spec["datasets"] = {"empty": [{}], **chart.spec["datasets"]}
    return chart
