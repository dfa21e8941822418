"""Charts of eligibility (`screen`): funnel and chart review, restrictiveness, co-failure, sweeps, relaxation.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from hn005_sim.report.charts.common import (
    CHART_REVIEW_COLOURS,
    CHART_REVIEW_COLUMNS,
    MAX_CRITERIA,
    MAX_HEATMAP,
    WIDTH,
    Chart,
    _axis_dict,
    _cols,
    _copy_shared,
    _Data,
    _datum_equals,
    _finish_spec,
    _has_scenarios,
    _stage_scale_dict,
    _title,
    _tooltip,
)

# --------------------------------------------------------------------------------------------------
# Eligibility (screen)


def funnel(frame: pl.DataFrame) -> Chart:
    """Candidates remaining after each criterion, in protocol order (funnel.csv).

    Written as the dict altair builds (`_finish_spec`; ~13 ms through altair's hconcat)."""
    data = _Data()
    cols = _cols(frame, "step", "criterion_id", "stage", "remaining", "dropped", "remaining_fraction",
                 *CHART_REVIEW_COLUMNS, "screen_fail")
    data.put("funnel", frame.select(cols), "funnel.csv")
    review = all(c in frame.columns for c in CHART_REVIEW_COLUMNS) and not _has_scenarios(frame)
    order = frame.sort("step")["criterion_id"].unique(maintain_order=True).to_list()
    tips = [
        _tooltip("criterion_id", "nominal", "criterion"),
        _tooltip("stage", "nominal"),
        _tooltip("remaining", "quantitative", "still eligible", ",.0f"),
        _tooltip("dropped", "quantitative", "excluded here", ",.0f"),
    ]
    if "remaining_fraction" in frame.columns:
        tips.append(_tooltip("remaining_fraction", "quantitative", "share still eligible", ".1%"))
    y = {"axis": {"labelLimit": 220}, "field": "criterion_id", "sort": order, "title": None,
         "type": "nominal"}
    height = max(160, 16 * len(order))
    title = "Where candidates drop out"
    heading = _title(title, "Candidates still eligible after each criterion, applied in protocol order")
    if _has_scenarios(frame):
        tips.insert(0, _tooltip("scenario", "nominal"))
        x_field = "remaining_fraction" if "remaining_fraction" in frame.columns else "remaining"
        body: dict[str, Any] = {
            "data": {"name": "funnel"},
            "mark": {"type": "line", "interpolate": "step-after", "point": True},
            "encoding": {"color": {"field": "scenario", "title": "Scenario", "type": "nominal"},
                         "detail": {"field": "scenario", "type": "nominal"}, "tooltip": tips,
                         "x": {"field": x_field, "title": "Share of candidates still eligible",
                               "type": "quantitative"},
                         "y": y},
            "height": height, "title": heading, "width": WIDTH - 220}
    else:
        bars = {
            "mark": {"type": "bar"},
            "encoding": {"color": {"field": "stage", "scale": _stage_scale_dict(frame),
                                   "title": "Checked at", "type": "nominal"},
                         "tooltip": tips,
                         "x": {"field": "remaining",
                               "title": "Candidates still eligible after this criterion",
                               "type": "quantitative"},
                         "y": y},
            "height": height, "width": (WIDTH - 220) // 2 if review else WIDTH - 220}
        if review:
            body = {"hconcat": [bars, _chart_review_panel(order, height)], "data": {"name": "funnel"},
                    "resolve": {"scale": {"color": "independent"}}, "title": heading}
        else:
            body = {"data": {"name": "funnel"}, **bars, "title": heading}
            body = {k: body[k] for k in ("data", "mark", "encoding", "height", "title", "width")}
    how = ("Each bar is the number of simulated candidates who pass every criterion down to that row. "
           "Prescreen criteria are checked on the chart before consent; screening criteria need tests "
           "after consent, so a drop there costs a screening visit.")
    if review:
        how += (" Right: at chart review, the candidates still in review at each criterion, judged pass or"
                " fail on the values in the chart, or unknown when a value the criterion reads is not in"
                " the chart yet (they go on to consent, and screening decides).")
    return _finish_spec("funnel", title, how, _copy_shared(body), data)


def _chart_review_panel(order: list[str], height: int) -> dict[str, Any]:
    """Pass / fail / unknown at chart review of the candidates still in review at each criterion (the
    panel's dict as altair wrote it; its data are the funnel chart's)."""
    outcome = {"prescreen_pass": "pass", "prescreen_fail": "fail", "prescreen_unknown": "unknown"}
    return {
        "mark": {"type": "bar"},
        "encoding": {
            "color": {"field": "outcome",
                      "scale": {"domain": list(CHART_REVIEW_COLOURS),
                                "range": list(CHART_REVIEW_COLOURS.values())},
                      "title": "Chart review", "type": "nominal"},
            "order": {"field": "column", "type": "nominal"},
            "tooltip": [_tooltip("criterion_id", "nominal", "criterion"), _tooltip("outcome", "nominal"),
                        _tooltip("candidates", "quantitative", fmt=",.0f")],
            "x": {"field": "candidates", "stack": "zero",
                  "title": "At chart review (candidates still in review)", "type": "quantitative"},
            "y": {"axis": {"labels": False, "ticks": False}, "field": "criterion_id", "sort": order,
                  "title": None, "type": "nominal"},
        },
        "height": height,
        "transform": [
            {"fold": list(CHART_REVIEW_COLUMNS), "as": ["column", "candidates"]},
            {"calculate": " : ".join(f"datum.column == '{c}' ? '{o}'" for c, o in outcome.items())
             + " : 'other'", "as": "outcome"},
        ],
        "width": (WIDTH - 220) // 2,
    }


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
    data.put_shown("criteria", shown, frame, "criteria.csv",
                   f"the {MAX_CRITERIA} criteria with the largest Shapley share")
    # written as the dict altair builds (`_finish_spec`; ~0.1-0.35 s through altair's layer and hconcat)
    many = _has_scenarios(frame)
    y = {"axis": {"labelLimit": 200}, "field": "criterion_id", "sort": keep, "title": None, "type": "nominal"}
    tips = [
        _tooltip("criterion_id", "nominal", "criterion"),
        _tooltip("stage", "nominal"),
        _tooltip("shapley_share", "quantitative", "share of exclusions (Shapley)", ".1%"),
        _tooltip("fail_rate", "quantitative", "fail rate", ".1%"),
        _tooltip("sole_fail_rate", "quantitative", "sole-fail rate", ".1%"),
    ]
    if many:
        tips.insert(0, _tooltip("scenario", "nominal"))
    colour = (
        {"field": "scenario", "title": "Scenario", "type": "nominal"}
        if many
        else {"field": "stage", "scale": _stage_scale_dict(frame), "title": "Checked at",
              "type": "nominal"}
    )
    offset = {"yOffset": {"field": "scenario", "type": "nominal"}} if many else {}
    height = max(160, 16 * len(keep))
    panel_w = (WIDTH - 200) // 3 + 20

    def panel(measure: str, title: str, axis_title: str) -> dict[str, Any]:
        x = {"axis": {"format": "%"}, "field": measure, "title": axis_title, "type": "quantitative"}
        layers: list[dict[str, Any]] = [{"mark": {"type": "bar", "opacity": 0.85},
                                         "encoding": {"color": colour, "tooltip": tips, "x": x, "y": y,
                                                      **offset}}]
        if f"{measure}_lo" in frame.columns and f"{measure}_hi" in frame.columns:
            layers.append({"mark": {"type": "rule", "color": "black", "strokeWidth": 1.5},
                           "encoding": {"x": {"field": f"{measure}_lo", "type": "quantitative"},
                                        "x2": {"field": f"{measure}_hi"}, "y": y, **offset}})
        return {"layer": layers, "height": height, "title": title, "width": panel_w}

    title = "Which criteria exclude the most candidates"
    body = {
        "hconcat": [
            panel("shapley_share", "Share of all exclusions", "Shapley share"),
            panel("fail_rate", "Fail it", "Candidates failing"),
            panel("sole_fail_rate", "Fail only it", "Failing this and nothing else"),
        ],
        "data": {"name": "criteria"},
        "resolve": {"scale": {"y": "shared"}},
        "spacing": 8,
        "title": _title(title, "Shapley share of exclusions (95% interval), fail rate and sole-fail rate per "
                               "criterion"),
    }
    return _finish_spec(
        "criteria",
        title,
        "Shapley share splits each excluded candidate equally between the criteria they fail, so the shares "
        "add up to all exclusions. Fail rate counts everyone failing a criterion, even those another "
        "criterion would exclude anyway; sole-fail rate is the pool gained by dropping that criterion alone. "
        "Black lines are 95% intervals.",
        _copy_shared(body),
        data,
    )


def cofailure(frame: pl.DataFrame) -> Chart:
    """Heat map of candidates failing both of two criteria (cofailure.csv).

    Written as the dict altair builds (`_finish_spec`; ~6 ms through altair)."""
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
    data.put_shown("cofailure", shown, frame, "cofailure.csv",
                   f"pairs among the {MAX_HEATMAP} criteria most involved in co-failure")
    tips = [
        _tooltip("criterion_a", "nominal", "criterion"),
        _tooltip("criterion_b", "nominal", "and"),
        _tooltip("both_fail", "quantitative", "candidates failing both", ",.0f"),
    ]
    if "expected_if_independent" in frame.columns:
        tips.append(_tooltip("expected_if_independent", "quantitative", "expected if unrelated", ",.1f"))
    if "lift" in frame.columns:
        tips.append(_tooltip("lift", "quantitative", "lift (observed / expected)", ".2f"))
    side = min(WIDTH - 160, max(240, 26 * len(keep)))
    title = "Criteria that exclude the same candidates"
    body = {
        "data": {"name": "cofailure"},
        "mark": {"type": "rect"},
        "encoding": {
            "color": {"field": "both_fail", "scale": {"scheme": "oranges"},
                      "title": "Candidates failing both", "type": "quantitative"},
            "tooltip": tips,
            # no label limit: a criterion id cut short ("prior_ici_rt_no_pr…") cannot be read
            "x": {"axis": {"labelAlign": "right", "labelAngle": -45, "labelLimit": 0, "labelPadding": 4},
                  "field": "criterion_a", "sort": keep, "title": None, "type": "nominal"},
            "y": {"axis": {"labelLimit": 0}, "field": "criterion_b", "sort": keep, "title": None,
                  "type": "nominal"},
        },
        "height": side,
        "title": _title(title, "Candidates failing both criteria of each pair"),
        "width": side,
    }
    return _finish_spec(
        "cofailure",
        title,
        "Dark cells are pairs of criteria that often fail together: relaxing one of them alone gains little. "
        "Hover for the lift: how many times more often the pair fails together than if the two were "
        "unrelated.",
        _copy_shared(body),
        data,
    )


def sweeps(frame: pl.DataFrame) -> Chart:
    """Eligible share as each threshold moves (sweeps.csv): one panel per threshold, its axis in the
    threshold's unit (the `unit` column) with whole-number ticks when the threshold takes whole values.

    Written as the dict altair builds (`_finish_spec`): one panel per threshold (28 for ALTER-HN005)
    cost ~0.9 s through altair's layer and concat; the same spec costs milliseconds.

    Both axes' labels are numbers (whole values, ~s or %) far shorter than Vega's default label limit
    (180 px), so `labelLimit: 0` draws the same labels without Vega measuring each one against the limit
    when it lays out and again when it writes the SVG: ~300 labels, each text measurement an SVG text
    layout in vl-convert; 25% of this chart's drawing time, the same SVG bytes (issue 16, phase 4)."""
    data = _Data()
    data.put(
        "sweeps",
        frame.select(_cols(frame, "parameter", "value", "eligible_fraction", "is_current", "unit")),
        "sweeps.csv",
    )
    many = _has_scenarios(frame)
    params = frame["parameter"].unique(maintain_order=True).to_list()
    columns = 2 if len(params) > 1 else 1
    y = {"axis": {"format": "%", "labelLimit": 0}, "field": "eligible_fraction",
         "title": "Candidates eligible", "type": "quantitative"}
    panels = []
    for name in params:
        sub = frame.filter(pl.col("parameter") == name)
        units = sub["unit"].drop_nulls().unique().to_list() if "unit" in sub.columns else []
        unit = units[0] if len(units) == 1 and units[0] else ""
        tips = [
            _tooltip("parameter", "nominal", "threshold"),
            _tooltip("value", "quantitative", f"value ({unit})" if unit else "value"),
            _tooltip("eligible_fraction", "quantitative", "eligible", ".1%"),
        ]
        if many:
            tips.insert(0, _tooltip("scenario", "nominal"))
        x = {"axis": _axis_dict(sub["value"].to_list(), labelFlush=True, labelLimit=0), "field": "value",
             "scale": {"zero": False}, "title": f"{name} ({unit})" if unit else name, "type": "quantitative"}
        where = {"filter": _datum_equals("parameter", name)}  # altair's own rendering of the expression
        if many:
            line = {"mark": {"type": "line", "point": True},
                    "encoding": {"color": {"field": "scenario", "title": "Scenario", "type": "nominal"},
                                 "tooltip": tips, "x": x, "y": y}}
        else:
            line = {"mark": {"type": "line", "color": "#4292c6", "point": True},
                    "encoding": {"tooltip": tips, "x": x, "y": y}}
        line["transform"] = [where]
        current = {"mark": {"type": "point", "color": "firebrick", "filled": True, "shape": "diamond",
                            "size": 140},
                   "encoding": {"tooltip": tips, "x": x, "y": y},
                   "transform": [where, {"filter": "datum.is_current"}]}
        panels.append({"layer": [line, current], "height": 170, "width": (WIDTH - 80) // columns})
    title = "How much relaxing a threshold buys"
    body = {"concat": panels, "columns": columns, "data": {"name": "sweeps"}, "spacing": 24,
            "title": _title(title, "Share of candidates eligible as one threshold moves, all others as "
                                   "written (red: protocol value)")}
    return _finish_spec(
        "sweeps",
        title,
        "Each panel moves one threshold (its name and unit under the axis) and keeps every other criterion "
        "as in the scenario. A flat line means the threshold barely matters; a steep one means it decides "
        "eligibility for many candidates.",
        _copy_shared(body),
        data,
    )


def relaxation(frame: pl.DataFrame) -> Chart:
    """Eligible share after each step of a relaxation plan (relaxation.csv).

    Written as the dict altair builds (`_finish_spec`; ~5 ms through altair)."""
    data = _Data()
    data.put(
        "relaxation",
        frame.select(_cols(frame, "step", "relaxation", "description", "eligible_fraction", "gain")),
        "relaxation.csv",
    )
    order = frame.sort("step")["relaxation"].unique(maintain_order=True).to_list()
    tips = [_tooltip("step", "ordinal"), _tooltip("relaxation", "nominal")]
    if "description" in frame.columns:
        tips.append(_tooltip("description", "nominal"))
    tips.append(_tooltip("eligible_fraction", "quantitative", "eligible after this step", ".1%"))
    if "gain" in frame.columns:
        tips.append(_tooltip("gain", "quantitative", "gain from this step", ".1%"))
    enc: dict[str, Any] = {
        "tooltip": tips,
        "x": {"axis": {"format": "%"}, "field": "eligible_fraction",
              "title": "Candidates eligible (cumulative)", "type": "quantitative"},
        "y": {"axis": {"labelLimit": 260}, "field": "relaxation", "sort": order, "title": None,
              "type": "nominal"},
    }
    if _has_scenarios(frame):
        enc = {"color": {"field": "scenario", "title": "Scenario", "type": "nominal"}, **enc,
               "yOffset": {"field": "scenario", "type": "nominal"}}
        tips.insert(0, _tooltip("scenario", "nominal"))
    title = "A relaxation plan, step by step"
    body = {
        "data": {"name": "relaxation"},
        "mark": {"type": "bar", "color": "#41ab5d"},
        "encoding": enc,
        "height": max(120, 24 * len(order)),
        "title": _title(title, "Share eligible after applying each relaxation on top of the ones above it"),
        "width": WIDTH - 260,
    }
    return _finish_spec(
        "relaxation",
        title,
        "Relaxations are applied in order, each on top of the previous ones; the bar length is the share of "
        "candidates eligible once that step is taken.",
        _copy_shared(body),
        data,
    )
