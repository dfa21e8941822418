"""The report's charts as altair built them before issue 16: the reference the dict-written specs are
compared with (tests/report/test_chart_specs.py). Copied from src/hn005_sim/report/charts/ as they were
(only the names changed); do not edit them to make a comparison pass.

One deliberate change since: the sweeps chart's axes say `labelLimit=0` (issue 16, phase 4: the same
labels drawn without Vega measuring each against its default limit). test_chart_specs.py checks that the
SVG drawn from that spec is byte for byte the SVG of the spec without it.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import polars as pl

from hn005_sim.report.charts.common import (
    BAND_COLOURS,
    CHART_REVIEW_COLOURS,
    CHART_REVIEW_COLUMNS,
    MAX_CRITERIA,
    MAX_HEATMAP,
    MAX_LOCATIONS,
    MAX_SITES,
    WIDTH,
    Chart,
    _axis,
    _cols,
    _Data,
    _finish,
    _has_scenarios,
    _pct,
    _stage_scale,
)
from hn005_sim.report.charts.recruitment import _rule_layers, time_to_target_histogram


def sweeps(frame: pl.DataFrame) -> Chart:
    """Eligible share as each threshold moves (sweeps.csv): one panel per threshold, its axis in the
    threshold's unit (the `unit` column) with whole-number ticks when the threshold takes whole values."""
    data = _Data()
    src = data.add(
        "sweeps",
        frame.select(_cols(frame, "parameter", "value", "eligible_fraction", "is_current", "unit")),
        "sweeps.csv",
    )
    many = _has_scenarios(frame)
    params = frame["parameter"].unique(maintain_order=True).to_list()
    columns = 2 if len(params) > 1 else 1
    panels = []
    for name in params:
        sub = frame.filter(pl.col("parameter") == name)
        units = sub["unit"].drop_nulls().unique().to_list() if "unit" in sub.columns else []
        unit = units[0] if len(units) == 1 and units[0] else ""
        tips = [
            alt.Tooltip("parameter:N", title="threshold"),
            alt.Tooltip("value:Q", title=f"value ({unit})" if unit else "value"),
            _pct("eligible_fraction", "eligible"),
        ]
        base = alt.Chart(src).transform_filter(alt.datum.parameter == name).encode(
            x=alt.X("value:Q", title=f"{name} ({unit})" if unit else name, scale=alt.Scale(zero=False),
                    axis=_axis(sub["value"].to_list(), labelFlush=True, labelLimit=0)),
            y=alt.Y("eligible_fraction:Q", title="Candidates eligible",
                    axis=alt.Axis(format="%", labelLimit=0)),
        )
        if many:
            tips.insert(0, alt.Tooltip("scenario:N"))
            line = base.mark_line(point=True).encode(
                color=alt.Color("scenario:N", title="Scenario"), tooltip=tips
            )
        else:
            line = base.mark_line(point=True, color="#4292c6").encode(tooltip=tips)
        current = (
            base.mark_point(size=140, shape="diamond", filled=True, color="firebrick")
            .encode(tooltip=tips)
            .transform_filter(alt.datum.is_current)
        )
        panels.append(alt.layer(line, current).properties(width=(WIDTH - 80) // columns, height=170))
    chart = alt.concat(*panels, columns=columns, spacing=24)
    return _finish(
        "sweeps",
        "How much relaxing a threshold buys",
        "Share of candidates eligible as one threshold moves, all others as written (red: protocol value)",
        "Each panel moves one threshold (its name and unit under the axis) and keeps every other criterion "
        "as in the scenario. A flat line means the threshold barely matters; a steep one means it decides "
        "eligibility for many candidates.",
        chart,
        data,
    )


def criteria(frame: pl.DataFrame) -> Chart:
    """Shapley share with interval, beside fail and sole-fail rates (criteria.csv)."""
    data = _Data()
    cols = _cols(
        frame,
        "criterion_id",
        "kind",
        "stage",
        "fail_rate",
        "fail_rate_lo",
        "fail_rate_hi",
        "sole_fail_rate",
        "sole_fail_rate_lo",
        "sole_fail_rate_hi",
        "shapley",
        "shapley_share",
        "shapley_share_lo",
        "shapley_share_hi",
    )
    ranked = (
        frame.group_by("criterion_id")
        .agg(pl.col("shapley_share").max())
        .sort(["shapley_share", "criterion_id"], descending=[True, False])
    )
    keep = ranked["criterion_id"].head(MAX_CRITERIA).to_list()
    shown = frame.filter(pl.col("criterion_id").is_in(keep)).select(cols)
    subset = shown.height < frame.height
    src = data.add(
        "criteria",
        shown,
        "criteria.csv",
        rows="subset" if subset else "all",
        why=f"the {MAX_CRITERIA} criteria with the largest Shapley share" if subset else None,
    )
    many = _has_scenarios(frame)
    y = alt.Y("criterion_id:N", sort=keep, title=None, axis=alt.Axis(labelLimit=200))
    tips = [
        alt.Tooltip("criterion_id:N", title="criterion"),
        alt.Tooltip("stage:N"),
        _pct("shapley_share", "share of exclusions (Shapley)"),
        _pct("fail_rate", "fail rate"),
        _pct("sole_fail_rate", "sole-fail rate"),
    ]
    if many:
        tips.insert(0, alt.Tooltip("scenario:N"))
    colour = (
        alt.Color("scenario:N", title="Scenario")
        if many
        else alt.Color("stage:N", title="Checked at", scale=_stage_scale(frame))
    )
    height = max(160, 16 * len(keep))
    panel_w = (WIDTH - 200) // 3 + 20

    def panel(measure: str, title: str, axis_title: str) -> alt.LayerChart:
        base = alt.Chart(src).encode(y=y)
        enc: dict[str, Any] = {
            "x": alt.X(f"{measure}:Q", title=axis_title, axis=alt.Axis(format="%")),
            "color": colour,
            "tooltip": tips,
        }
        if many:
            enc["yOffset"] = "scenario:N"
        layers = [base.mark_bar(opacity=0.85).encode(**enc)]
        if f"{measure}_lo" in frame.columns and f"{measure}_hi" in frame.columns:
            eb: dict[str, Any] = {"x": f"{measure}_lo:Q", "x2": f"{measure}_hi:Q"}
            if many:
                eb["yOffset"] = "scenario:N"
            layers.append(base.mark_rule(color="black", strokeWidth=1.5).encode(**eb))
        return alt.layer(*layers).properties(width=panel_w, height=height, title=title)

    chart = alt.hconcat(
        panel("shapley_share", "Share of all exclusions", "Shapley share"),
        panel("fail_rate", "Fail it", "Candidates failing"),
        panel("sole_fail_rate", "Fail only it", "Failing this and nothing else"),
        spacing=8,
    ).resolve_scale(y="shared")
    return _finish(
        "criteria",
        "Which criteria exclude the most candidates",
        "Shapley share of exclusions (95% interval), fail rate and sole-fail rate per criterion",
        "Shapley share splits each excluded candidate equally between the criteria they fail, so the shares "
        "add up to all exclusions. Fail rate counts everyone failing a criterion, even those another "
        "criterion would exclude anyway; sole-fail rate is the pool gained by dropping that criterion alone. "
        "Black lines are 95% intervals.",
        chart,
        data,
    )


def inventory(frame: pl.DataFrame) -> Chart:
    """Stock on hand and probability of a stock-out by location and drug (inventory.csv)."""
    data = _Data()
    cols = _cols(
        frame,
        "month",
        "location",
        "drug",
        "on_hand_p10",
        "on_hand_p50",
        "on_hand_p90",
        "stockout_probability",
    )
    locations = frame["location"].unique(maintain_order=True).to_list()
    if len(locations) > MAX_LOCATIONS:
        risk_col = "stockout_probability" if "stockout_probability" in frame.columns else "on_hand_p50"
        desc = risk_col == "stockout_probability"
        ranked = frame.group_by("location").agg(pl.col(risk_col).max() if desc else pl.col(risk_col).min())
        ranked = ranked.sort([risk_col, "location"], descending=[desc, False])
        depot = [loc for loc in locations if "depot" in loc.lower()][:1]
        rest = [loc for loc in ranked["location"].to_list() if loc not in depot]
        keep = depot + rest[: MAX_LOCATIONS - len(depot)]
    else:
        keep = locations
    shown = frame.filter(pl.col("location").is_in(keep)).select(cols)
    subset = shown.height < frame.height
    src = data.add(
        "inventory",
        shown,
        "inventory.csv",
        rows="subset" if subset else "all",
        why=f"the depot and the {MAX_LOCATIONS} locations most at risk" if subset else None,
    )
    tips = [
        alt.Tooltip("location:N"),
        alt.Tooltip("drug:N"),
        alt.Tooltip("month:Q", format=".1f"),
        alt.Tooltip("on_hand_p50:Q", title="median on hand", format=",.0f"),
        alt.Tooltip("on_hand_p10:Q", title="10th percentile", format=",.0f"),
        alt.Tooltip("on_hand_p90:Q", title="90th percentile", format=",.0f"),
    ]
    if "stockout_probability" in frame.columns:
        tips.append(_pct("stockout_probability", "chance of a stock-out"))
    colour = alt.Color("location:N", title="Location")
    base = alt.Chart(src).encode(x=alt.X("month:Q", title="Months since the trial opened"))
    stock = alt.layer(
        base.mark_area(opacity=0.15).encode(
            y=alt.Y("on_hand_p10:Q", title="Packs on hand"), y2="on_hand_p90:Q", color=colour
        ),
        base.mark_line().encode(y="on_hand_p50:Q", color=colour, tooltip=tips),
    ).properties(width=(WIDTH - 80) // 2, height=150)
    panels: list[Any] = [stock]
    if "stockout_probability" in frame.columns:
        risk = (
            base.mark_line(interpolate="step-after")
            .encode(
                y=alt.Y(
                    "stockout_probability:Q",
                    title="Chance of a stock-out",
                    axis=alt.Axis(format="%"),
                    scale=alt.Scale(domain=[0, 1]),
                ),
                color=colour,
                tooltip=tips,
            )
            .properties(width=(WIDTH - 80) // 2, height=150)
        )
        panels.append(risk)
    # one row per drug (packs differ between drugs), stock beside stock-out risk
    chart = alt.vconcat(
        *[
            alt.hconcat(*[p.transform_filter(alt.datum.drug == d) for p in panels]).properties(
                title=alt.TitleParams(d, anchor="start", fontSize=13)
            )
            for d in shown["drug"].unique(maintain_order=True).to_list()
        ]
    )
    return _finish(
        "inventory",
        "Stock on hand and the risk of running out",
        "Median packs on hand (shaded: 10th to 90th percentile) and the share of runs out of stock, by month",
        "Left: stock at each location; right: the share of simulated runs in which that location has run out "
        "that month. A site running out means a patient's dose is late.",
        chart,
        data,
    )
def enrolment_fan(frame: pl.DataFrame, *, target: list[float], deadline: list[float]) -> Chart:
    """Cumulative enrolment by month: median with 50/80/95% bands (enrollment_curve.csv)."""
    data = _Data()
    cols = _cols(frame, "month", "enrolled_mean", "p025", "p10", "p25", "p50", "p75", "p90", "p975")
    src = data.add("enrolment", frame.select(cols), "enrollment_curve.csv")
    x = alt.X("month:Q", title="Months since the trial opened")
    ytitle = "Patients enrolled (cumulative)"
    tips = [
        alt.Tooltip("month:Q", format=".1f"),
        alt.Tooltip("p50:Q", title="median", format=",.0f"),
        alt.Tooltip("p25:Q", title="25th percentile", format=",.0f"),
        alt.Tooltip("p75:Q", title="75th percentile", format=",.0f"),
        alt.Tooltip("p10:Q", title="10th percentile", format=",.0f"),
        alt.Tooltip("p90:Q", title="90th percentile", format=",.0f"),
    ]
    base = alt.Chart(src).encode(x=x)
    if _has_scenarios(frame):
        tips.insert(0, alt.Tooltip("scenario:N"))
        colour = alt.Color("scenario:N", title="Scenario")
        layers: list[Any] = [
            base.mark_area(opacity=0.18).encode(y=alt.Y("p10:Q", title=ytitle), y2="p90:Q", color=colour),
            base.mark_line(strokeWidth=2.5).encode(y="p50:Q", color=colour, tooltip=tips),
        ]
        subtitle = "Median for each scenario, shaded: 80% of simulated runs"
    else:
        scale = alt.Scale(domain=list(BAND_COLOURS), range=list(BAND_COLOURS.values()))
        band = "Runs"
        colour = alt.Color("band:N", scale=scale, title=band)

        def tagged(label: str) -> alt.Chart:
            # a constant field per layer gives one shared legend for the bands and the median
            return base.transform_calculate(band=alt.expr.toString(label))

        layers = [
            tagged("95% of runs")
            .mark_area()
            .encode(y=alt.Y("p025:Q", title=ytitle), y2="p975:Q", color=colour),
            tagged("80% of runs").mark_area().encode(y="p10:Q", y2="p90:Q", color=colour),
            tagged("50% of runs").mark_area().encode(y="p25:Q", y2="p75:Q", color=colour),
            tagged("median").mark_line(strokeWidth=2.5).encode(y="p50:Q", color=colour, tooltip=tips),
        ]
        subtitle = "Median of simulated runs with the ranges holding 50%, 80% and 95% of them"
    chart = alt.layer(*layers, *_rule_layers(target, deadline)).properties(width=WIDTH, height=320)
    return _finish(
        "enrolment",
        "When will the trial be full?",
        subtitle,
        "Each simulated run of the trial gives a curve of patients enrolled over time; the dark line is the "
        "middle run and the bands hold the given share of runs. Where the bands cross the red target line "
        "shows how early or late the target is reached; the dotted line is the deadline.",
        chart,
        data,
    )


def drug_demand(frame: pl.DataFrame) -> Chart:
    """Units dispensed per month per drug, median with 10th-90th percentile band (drug_demand.csv)."""
    data = _Data()
    src = data.add(
        "drug_demand",
        frame.select(_cols(frame, "month", "drug", "units_p10", "units_p50", "units_p90")),
        "drug_demand.csv",
    )
    tips = [
        alt.Tooltip("drug:N"),
        alt.Tooltip("month:Q", format=".1f"),
        alt.Tooltip("units_p50:Q", title="median packs", format=",.0f"),
        alt.Tooltip("units_p10:Q", title="10th percentile", format=",.0f"),
        alt.Tooltip("units_p90:Q", title="90th percentile", format=",.0f"),
    ]
    base = alt.Chart(src).encode(x=alt.X("month:Q", title="Months since the trial opened"))
    if _has_scenarios(frame):
        tips.insert(0, alt.Tooltip("scenario:N"))
        colour = alt.Color("scenario:N", title="Scenario")
        layers = [
            base.mark_area(opacity=0.2).encode(
                y=alt.Y("units_p10:Q", title="Packs dispensed per month"), y2="units_p90:Q", color=colour
            ),
            base.mark_line().encode(y="units_p50:Q", color=colour, tooltip=tips),
        ]
    else:
        layers = [
            base.mark_area(opacity=0.35, color="#9ecae1").encode(
                y=alt.Y("units_p10:Q", title="Packs dispensed per month"), y2="units_p90:Q"
            ),
            base.mark_line(color="#08306b").encode(y="units_p50:Q", tooltip=tips),
        ]
    chart = (
        alt.layer(*layers)
        .properties(width=WIDTH, height=150)
        .facet(
            row=alt.Row(
                "drug:N",
                title=None,
                header=alt.Header(labelAngle=0, labelAlign="left", labelFontSize=12, labelFontWeight="bold"),
            ),
        )
        .resolve_scale(y="independent")
    )
    return _finish(
        "drug_demand",
        "How much of each drug is dispensed each month",
        "Median packs dispensed per month across runs, shaded: 10th to 90th percentile",
        "Counts are packs: a box of capsules, a vial, a bottle of tablets (supply.csv gives units per "
        "pack). Demand grows as patients enrol "
        "and falls as they stop treatment; the band shows how much it varies between runs.",
        chart,
        data,
    )


def time_to_target(frame: pl.DataFrame, *, deadline: list[float]) -> Chart:
    """Distribution of months to reach the target across runs (time_to_target.csv, binned)."""
    data = _Data()
    hist = time_to_target_histogram(frame)
    src = data.add(
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
        alt.Tooltip("bin_start:Q", title="from month", format=".2f"),
        alt.Tooltip("bin_end:Q", title="to month", format=".2f"),
        alt.Tooltip("runs:Q", title="runs reaching the target"),
    ]
    if _has_scenarios(frame):
        tips.insert(0, alt.Tooltip("scenario:N"))
        bars = (
            alt.Chart(src)
            .mark_bar(opacity=0.55, binSpacing=0)
            .encode(
                x=alt.X("bin_start:Q", title="Months to reach the target", bin="binned"),
                x2="bin_end:Q",
                y=alt.Y("runs:Q", title="Simulated runs", stack=None, axis=_axis([0, *hist["runs"]])),
                color=alt.Color("scenario:N", title="Scenario"),
                tooltip=tips,
            )
        )
        subtitle = "Runs reaching the target in each interval, per scenario"
    else:
        bars = (
            alt.Chart(src)
            .mark_bar(color="#4292c6", binSpacing=1)
            .encode(
                x=alt.X("bin_start:Q", title="Months to reach the target", bin="binned"),
                x2="bin_end:Q",
                y=alt.Y("runs:Q", title="Simulated runs", axis=_axis([0, *hist["runs"]])),
                tooltip=tips,
            )
        )
        share = reached / n if n else 0.0
        subtitle = f"{reached} of {n} runs ({share:.0%}) reached the target within the simulated horizon"
    chart = alt.layer(bars, *_rule_layers([], deadline)).properties(width=WIDTH, height=260)
    return _finish(
        "time_to_target",
        "How long until the target is reached?",
        subtitle,
        "Each bar counts the simulated runs that reached the target in that interval. Runs to the right of "
        "the dotted deadline line are late; runs that never reached the target are not drawn.",
        chart,
        data,
    )


def screen_failures(frame: pl.DataFrame) -> Chart:
    """Why candidates seen at sites did not enrol (screen_failures.csv)."""
    data = _Data()
    cols = _cols(frame, "stage", "criterion_id", "failures_mean", "failures_p10", "failures_p90", "share")
    ranked = (
        frame.group_by("stage", "criterion_id")
        .agg(pl.col("failures_mean").max())
        .sort(["failures_mean", "criterion_id"], descending=[True, False])
    )
    keep = ranked.head(MAX_CRITERIA).select("stage", "criterion_id")
    shown = frame.join(keep, on=["stage", "criterion_id"], how="semi").select(cols)
    subset = shown.height < frame.height
    src = data.add(
        "screen_failures",
        shown,
        "screen_failures.csv",
        rows="subset" if subset else "all",
        why=f"the {MAX_CRITERIA} most frequent reasons" if subset else None,
    )
    order = ranked.head(MAX_CRITERIA)["criterion_id"].unique(maintain_order=True).to_list()
    tips = [
        alt.Tooltip("criterion_id:N", title="reason"),
        alt.Tooltip("stage:N"),
        alt.Tooltip("failures_mean:Q", title="candidates per run (mean)", format=",.1f"),
    ]
    if "failures_p10" in frame.columns:
        tips += [
            alt.Tooltip("failures_p10:Q", title="10th percentile", format=",.0f"),
            alt.Tooltip("failures_p90:Q", title="90th percentile", format=",.0f"),
        ]
    if "share" in frame.columns:
        tips.append(_pct("share", "share of all losses"))
    base = alt.Chart(src).encode(
        y=alt.Y("criterion_id:N", sort=order, title=None, axis=alt.Axis(labelLimit=220))
    )
    enc: dict[str, Any] = {
        "x": alt.X("failures_mean:Q", title="Candidates lost per run (mean)"),
        "tooltip": tips,
    }
    if _has_scenarios(frame):
        tips.insert(0, alt.Tooltip("scenario:N"))
        enc |= {"color": alt.Color("scenario:N", title="Scenario"), "yOffset": "scenario:N"}
    else:
        enc["color"] = alt.Color("stage:N", title="Lost at", scale=_stage_scale(frame))
    layers = [base.mark_bar().encode(**enc)]
    if "failures_p10" in frame.columns and "failures_p90" in frame.columns:
        eb: dict[str, Any] = {"x": "failures_p10:Q", "x2": "failures_p90:Q"}
        if _has_scenarios(frame):
            eb["yOffset"] = "scenario:N"
        layers.append(base.mark_rule(color="black").encode(**eb))
    chart = alt.layer(*layers).properties(width=WIDTH - 220, height=max(140, 18 * len(order)))
    return _finish(
        "screen_failures",
        "Why candidates seen at the sites did not enrol",
        "Candidates lost per simulated run, by reason (black: 10th to 90th percentile)",
        "Counts are per run of the whole trial. Prescreen losses cost a chart review; screening losses "
        "cost a consent and a screening visit; consent and withdrawal are candidates who were eligible "
        "but did not go on.",
        chart,
        data,
    )


def sites(frame: pl.DataFrame) -> Chart:
    """Enrolment per site with its spread across runs (sites.csv)."""
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
    subset = shown.height < frame.height
    src = data.add(
        "sites",
        shown,
        "sites.csv",
        rows="subset" if subset else "all",
        why=f"the {MAX_SITES} sites enrolling most" if subset else None,
    )
    tips = [
        alt.Tooltip("site:N"),
        alt.Tooltip("region:N"),
        alt.Tooltip("enrolled_mean:Q", title="enrolled (mean)", format=",.1f"),
    ]
    for col, title, fmt in (
        ("enrolled_p10", "10th percentile", ",.0f"),
        ("enrolled_p90", "90th percentile", ",.0f"),
        ("activation_month_mean", "opens at month (mean)", ".1f"),
        ("never_activated_fraction", "never opens", ".0%"),
        ("zero_enrolled_fraction", "enrols no one", ".0%"),
    ):
        if col in frame.columns:
            tips.append(alt.Tooltip(f"{col}:Q", title=title, format=fmt))
    # hospital names run to 40 characters ("Sun Yat-sen University Cancer Center"): shown whole
    base = alt.Chart(src).encode(y=alt.Y("site:N", sort=keep, title=None, axis=alt.Axis(labelLimit=320)))
    enc: dict[str, Any] = {
        "x": alt.X("enrolled_mean:Q", title="Patients enrolled per run (mean)"),
        "color": alt.Color("region:N", title="Region"),
        "tooltip": tips,
    }
    if _has_scenarios(frame):
        tips.insert(0, alt.Tooltip("scenario:N"))
        enc |= {"color": alt.Color("scenario:N", title="Scenario"), "yOffset": "scenario:N"}
    layers = [base.mark_bar().encode(**enc)]
    if "enrolled_p10" in frame.columns and "enrolled_p90" in frame.columns:
        eb: dict[str, Any] = {"x": "enrolled_p10:Q", "x2": "enrolled_p90:Q"}
        if _has_scenarios(frame):
            eb["yOffset"] = "scenario:N"
        layers.append(base.mark_rule(color="black").encode(**eb))
    chart = alt.layer(*layers).properties(width=WIDTH - 200, height=max(60, 20 * len(keep)))
    return _finish(
        "sites",
        "Enrolment per site",
        "Mean patients enrolled per simulated run (black: 10th to 90th percentile)",
        "Sites differ in how fast they recruit and when they open; the spread shows how much a site's "
        "contribution varies from run to run. Hover for how often a site never opens or enrols no one.",
        chart,
        data,
    )


def site_curve(frame: pl.DataFrame, *, probability: float | None) -> Chart:
    """Probability of reaching the target by number of sites (sites command's curve.csv)."""
    data = _Data()
    x_col = "sites" if "sites" in frame.columns else "total_sites"
    src = data.add(
        "site_curve",
        frame.select(_cols(frame, x_col, "probability_of_success", "expected_enrolled", "method")),
        "curve.csv",
    )
    tips = [
        alt.Tooltip(f"{x_col}:Q", title="sites"),
        _pct("probability_of_success", "probability of success"),
    ]
    if "expected_enrolled" in frame.columns:
        tips.append(alt.Tooltip("expected_enrolled:Q", title="expected enrolled", format=",.1f"))
    enc: dict[str, Any] = {
        "x": alt.X(f"{x_col}:Q", title="Number of sites", axis=_axis(frame[x_col].to_list())),
        "y": alt.Y(
            "probability_of_success:Q",
            title="Probability of reaching the target",
            axis=alt.Axis(format="%"),
            scale=alt.Scale(domain=[0, 1]),
        ),
        "tooltip": tips,
    }
    colour_field = "scenario" if _has_scenarios(frame) else ("method" if "method" in frame.columns else None)
    if colour_field:
        enc["color"] = alt.Color(f"{colour_field}:N", title=colour_field.capitalize())
        tips.insert(0, alt.Tooltip(f"{colour_field}:N"))
        if colour_field == "scenario" and "method" in frame.columns:
            enc["strokeDash"] = alt.StrokeDash("method:N", title="Method")
    layers: list[Any] = [alt.Chart(src).mark_line(point=True).encode(**enc)]
    if probability is not None:
        layers.append(
            alt.Chart().mark_rule(color="firebrick", strokeDash=[6, 3]).encode(y=alt.datum(probability))
        )
    chart = alt.layer(*layers).properties(width=WIDTH, height=280)
    how = ("Each point is a site count; the red dashed line is the probability asked for "
           f"({probability:.0%}). The first point above it is the smallest number of sites that meets the "
           "goal under this recruitment model." if probability is not None else
           "Each point is a site count. The first point at the probability you need is the smallest number "
           "of sites that meets the goal under this recruitment model.")
    return _finish(
        "site_curve",
        "How many sites do we need?",
        "Probability of enrolling the target by the deadline, by number of sites",
        how,
        chart,
        data,
    )


def funnel(frame: pl.DataFrame) -> Chart:
    """Candidates remaining after each criterion, in protocol order (funnel.csv)."""
    data = _Data()
    cols = _cols(frame, "step", "criterion_id", "stage", "remaining", "dropped", "remaining_fraction",
                 *CHART_REVIEW_COLUMNS, "screen_fail")
    src = data.add("funnel", frame.select(cols), "funnel.csv")
    review = all(c in frame.columns for c in CHART_REVIEW_COLUMNS) and not _has_scenarios(frame)
    order = frame.sort("step")["criterion_id"].unique(maintain_order=True).to_list()
    tips = [
        alt.Tooltip("criterion_id:N", title="criterion"),
        alt.Tooltip("stage:N"),
        alt.Tooltip("remaining:Q", title="still eligible", format=",.0f"),
        alt.Tooltip("dropped:Q", title="excluded here", format=",.0f"),
    ]
    if "remaining_fraction" in frame.columns:
        tips.append(_pct("remaining_fraction", "share still eligible"))
    y = alt.Y("criterion_id:N", sort=order, title=None, axis=alt.Axis(labelLimit=220))
    height = max(160, 16 * len(order))
    if _has_scenarios(frame):
        tips.insert(0, alt.Tooltip("scenario:N"))
        x_field = "remaining_fraction:Q" if "remaining_fraction" in frame.columns else "remaining:Q"
        chart = (
            alt.Chart(src)
            .mark_line(point=True, interpolate="step-after")
            .encode(
                y=y,
                x=alt.X(x_field, title="Share of candidates still eligible"),
                color=alt.Color("scenario:N", title="Scenario"),
                detail="scenario:N",
                tooltip=tips,
            )
            .properties(width=WIDTH - 220, height=height)
        )
    else:
        chart = (
            alt.Chart(src)
            .mark_bar()
            .encode(
                y=y,
                x=alt.X("remaining:Q", title="Candidates still eligible after this criterion"),
                color=alt.Color("stage:N", title="Checked at", scale=_stage_scale(frame)),
                tooltip=tips,
            )
            .properties(width=(WIDTH - 220) // 2 if review else WIDTH - 220, height=height)
        )
        if review:
            chart = alt.hconcat(chart, _chart_review_panel(src, order, height)).resolve_scale(
                color="independent")
    how = ("Each bar is the number of simulated candidates who pass every criterion down to that row. "
           "Prescreen criteria are checked on the chart before consent; screening criteria need tests "
           "after consent, so a drop there costs a screening visit.")
    if review:
        how += (" Right: at chart review, the candidates still in review at each criterion, judged pass or"
                " fail on the values in the chart, or unknown when a value the criterion reads is not in"
                " the chart yet (they go on to consent, and screening decides).")
    return _finish(
        "funnel",
        "Where candidates drop out",
        "Candidates still eligible after each criterion, applied in protocol order",
        how,
        chart,
        data,
    )


def _chart_review_panel(src: alt.NamedData, order: list[str], height: int) -> alt.Chart:
    """Pass / fail / unknown at chart review of the candidates still in review at each criterion."""
    outcome = {"prescreen_pass": "pass", "prescreen_fail": "fail", "prescreen_unknown": "unknown"}
    return (
        alt.Chart(src)
        .transform_fold(list(CHART_REVIEW_COLUMNS), as_=["column", "candidates"])
        .transform_calculate(outcome=" : ".join(
            f"datum.column == '{c}' ? '{o}'" for c, o in outcome.items()) + " : 'other'")
        .mark_bar()
        .encode(
            y=alt.Y("criterion_id:N", sort=order, title=None, axis=alt.Axis(labels=False, ticks=False)),
            x=alt.X("candidates:Q", stack="zero", title="At chart review (candidates still in review)"),
            color=alt.Color("outcome:N", title="Chart review",
                            scale=alt.Scale(domain=list(CHART_REVIEW_COLOURS),
                                            range=list(CHART_REVIEW_COLOURS.values()))),
            order=alt.Order("column:N"),
            tooltip=[alt.Tooltip("criterion_id:N", title="criterion"), alt.Tooltip("outcome:N"),
                     alt.Tooltip("candidates:Q", format=",.0f")],
        )
        .properties(width=(WIDTH - 220) // 2, height=height)
    )


def cofailure(frame: pl.DataFrame) -> Chart:
    """Heat map of candidates failing both of two criteria (cofailure.csv)."""
    data = _Data()
    involvement = (
        pl.concat(
            [
                frame.select(pl.col("criterion_a").alias("c"), "both_fail"),
                frame.select(pl.col("criterion_b").alias("c"), "both_fail"),
            ]
        )
        .group_by("c")
        .agg(pl.col("both_fail").sum())
        .sort(["both_fail", "c"], descending=[True, False])
    )
    keep = involvement["c"].head(MAX_HEATMAP).to_list()
    shown = frame.filter(pl.col("criterion_a").is_in(keep) & pl.col("criterion_b").is_in(keep))
    shown = shown.select(
        _cols(frame, "criterion_a", "criterion_b", "both_fail", "expected_if_independent", "lift")
    )
    subset = shown.height < frame.height
    src = data.add(
        "cofailure",
        shown,
        "cofailure.csv",
        rows="subset" if subset else "all",
        why=f"pairs among the {MAX_HEATMAP} criteria most involved in co-failure" if subset else None,
    )
    tips = [
        alt.Tooltip("criterion_a:N", title="criterion"),
        alt.Tooltip("criterion_b:N", title="and"),
        alt.Tooltip("both_fail:Q", title="candidates failing both", format=",.0f"),
    ]
    if "expected_if_independent" in frame.columns:
        tips.append(alt.Tooltip("expected_if_independent:Q", title="expected if unrelated", format=",.1f"))
    if "lift" in frame.columns:
        tips.append(alt.Tooltip("lift:Q", title="lift (observed / expected)", format=".2f"))
    side = min(WIDTH - 160, max(240, 26 * len(keep)))
    chart = (
        alt.Chart(src)
        .mark_rect()
        .encode(
            # no label limit: a criterion id cut short ("prior_ici_rt_no_pr…") cannot be read
            x=alt.X("criterion_a:N", sort=keep, title=None,
                    axis=alt.Axis(labelAngle=-45, labelLimit=0, labelAlign="right", labelPadding=4)),
            y=alt.Y("criterion_b:N", sort=keep, title=None, axis=alt.Axis(labelLimit=0)),
            color=alt.Color(
                "both_fail:Q", title="Candidates failing both", scale=alt.Scale(scheme="oranges")
            ),
            tooltip=tips,
        )
        .properties(width=side, height=side)
    )
    return _finish(
        "cofailure",
        "Criteria that exclude the same candidates",
        "Candidates failing both criteria of each pair",
        "Dark cells are pairs of criteria that often fail together: relaxing one of them alone gains little. "
        "Hover for the lift: how many times more often the pair fails together than if the two were "
        "unrelated.",
        chart,
        data,
    )


def relaxation(frame: pl.DataFrame) -> Chart:
    """Eligible share after each step of a relaxation plan (relaxation.csv)."""
    data = _Data()
    src = data.add(
        "relaxation",
        frame.select(_cols(frame, "step", "relaxation", "description", "eligible_fraction", "gain")),
        "relaxation.csv",
    )
    order = frame.sort("step")["relaxation"].unique(maintain_order=True).to_list()
    tips = [alt.Tooltip("step:O"), alt.Tooltip("relaxation:N")]
    if "description" in frame.columns:
        tips.append(alt.Tooltip("description:N"))
    tips.append(_pct("eligible_fraction", "eligible after this step"))
    if "gain" in frame.columns:
        tips.append(_pct("gain", "gain from this step"))
    enc: dict[str, Any] = {
        "y": alt.Y("relaxation:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
        "x": alt.X(
            "eligible_fraction:Q", title="Candidates eligible (cumulative)", axis=alt.Axis(format="%")
        ),
        "tooltip": tips,
    }
    if _has_scenarios(frame):
        enc["color"] = alt.Color("scenario:N", title="Scenario")
        enc["yOffset"] = "scenario:N"
        tips.insert(0, alt.Tooltip("scenario:N"))
    chart = (
        alt.Chart(src)
        .mark_bar(color="#41ab5d")
        .encode(**enc)
        .properties(width=WIDTH - 260, height=max(120, 24 * len(order)))
    )
    return _finish(
        "relaxation",
        "A relaxation plan, step by step",
        "Share eligible after applying each relaxation on top of the ones above it",
        "Relaxations are applied in order, each on top of the previous ones; the bar length is the share of "
        "candidates eligible once that step is taken.",
        chart,
        data,
    )
