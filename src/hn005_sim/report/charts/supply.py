"""Charts of drug supply (`run`, `supply`): demand and inventory."""

from __future__ import annotations

from typing import Any

import polars as pl

from hn005_sim.report.charts.common import (
    MAX_LOCATIONS,
    WIDTH,
    Chart,
    _cols,
    _copy_shared,
    _Data,
    _datum_equals,
    _finish_spec,
    _has_scenarios,
    _title,
    _tooltip,
)

# --------------------------------------------------------------------------------------------------
# Supply (run)


def drug_demand(frame: pl.DataFrame) -> Chart:
    """Units dispensed per month per drug, median with 10th-90th percentile band (drug_demand.csv).

    Written as the dict altair builds (`_finish_spec`; ~25 ms through altair's layer and facet)."""
    data = _Data()
    data.put(
        "drug_demand",
        frame.select(_cols(frame, "month", "drug", "units_p10", "units_p50", "units_p90")),
        "drug_demand.csv",
    )
    tips = [
        _tooltip("drug", "nominal"),
        _tooltip("month", "quantitative", fmt=".1f"),
        _tooltip("units_p50", "quantitative", "median packs", ",.0f"),
        _tooltip("units_p10", "quantitative", "10th percentile", ",.0f"),
        _tooltip("units_p90", "quantitative", "90th percentile", ",.0f"),
    ]
    x = {"field": "month", "title": "Months since the trial opened", "type": "quantitative"}
    band_y = {"field": "units_p10", "title": "Packs dispensed per month", "type": "quantitative"}
    median_y = {"field": "units_p50", "type": "quantitative"}
    if _has_scenarios(frame):
        tips.insert(0, _tooltip("scenario", "nominal"))
        colour = {"field": "scenario", "title": "Scenario", "type": "nominal"}
        layers = [
            {"mark": {"type": "area", "opacity": 0.2},
             "encoding": {"color": colour, "x": x, "y": band_y, "y2": {"field": "units_p90"}}},
            {"mark": {"type": "line"}, "encoding": {"color": colour, "tooltip": tips, "x": x, "y": median_y}},
        ]
    else:
        layers = [
            {"mark": {"type": "area", "color": "#9ecae1", "opacity": 0.35},
             "encoding": {"x": x, "y": band_y, "y2": {"field": "units_p90"}}},
            {"mark": {"type": "line", "color": "#08306b"},
             "encoding": {"tooltip": tips, "x": x, "y": median_y}},
        ]
    title = "How much of each drug is dispensed each month"
    body = {
        "data": {"name": "drug_demand"},
        "facet": {"row": {"field": "drug",
                          "header": {"labelAlign": "left", "labelAngle": 0, "labelFontSize": 12,
                                     "labelFontWeight": "bold"},
                          "title": None, "type": "nominal"}},
        "spec": {"layer": layers, "height": 150, "width": WIDTH},
        "resolve": {"scale": {"y": "independent"}},
        "title": _title(title, "Median packs dispensed per month across runs, shaded: 10th to 90th "
                               "percentile"),
    }
    return _finish_spec(
        "drug_demand",
        title,
        "Counts are packs: a box of capsules, a vial, a bottle of tablets (supply.csv gives units per "
        "pack). Demand grows as patients enrol "
        "and falls as they stop treatment; the band shows how much it varies between runs.",
        _copy_shared(body),
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
    data.put_shown("inventory", shown, frame, "inventory.csv",
                   f"the depot and the {MAX_LOCATIONS} locations most at risk")
    # written as the dict altair builds (`_finish_spec`, ~0.13-0.25 s through altair's layer and concat)
    tips = [
        _tooltip("location", "nominal"),
        _tooltip("drug", "nominal"),
        _tooltip("month", "quantitative", fmt=".1f"),
        _tooltip("on_hand_p50", "quantitative", "median on hand", ",.0f"),
        _tooltip("on_hand_p10", "quantitative", "10th percentile", ",.0f"),
        _tooltip("on_hand_p90", "quantitative", "90th percentile", ",.0f"),
    ]
    if "stockout_probability" in frame.columns:
        tips.append(_tooltip("stockout_probability", "quantitative", "chance of a stock-out", ".1%"))
    colour = {"field": "location", "title": "Location", "type": "nominal"}
    x = {"field": "month", "title": "Months since the trial opened", "type": "quantitative"}
    width = (WIDTH - 80) // 2

    def panels(where: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{
            "layer": [
                {"mark": {"type": "area", "opacity": 0.15},
                 "encoding": {"color": colour, "x": x,
                              "y": {"field": "on_hand_p10", "title": "Packs on hand", "type": "quantitative"},
                              "y2": {"field": "on_hand_p90"}}},
                {"mark": {"type": "line"},
                 "encoding": {"color": colour, "tooltip": tips, "x": x,
                              "y": {"field": "on_hand_p50", "type": "quantitative"}}},
            ],
            "height": 150, "transform": [where], "width": width}]
        if "stockout_probability" in frame.columns:
            out.append({
                "mark": {"type": "line", "interpolate": "step-after"},
                "encoding": {"color": colour, "tooltip": tips, "x": x,
                             "y": {"axis": {"format": "%"}, "field": "stockout_probability",
                                   "scale": {"domain": [0, 1]}, "title": "Chance of a stock-out",
                                   "type": "quantitative"}},
                "height": 150, "transform": [where], "width": width})
        return out

    # one row per drug (packs differ between drugs), stock beside stock-out risk
    rows = [{"hconcat": panels({"filter": _datum_equals("drug", d)}),
             "title": {"text": d, "anchor": "start", "fontSize": 13}}
            for d in shown["drug"].unique(maintain_order=True).to_list()]
    title = "Stock on hand and the risk of running out"
    body = {"vconcat": rows, "data": {"name": "inventory"},
            "title": _title(title, "Median packs on hand (shaded: 10th to 90th percentile) and the share of "
                                   "runs out of stock, by month")}
    return _finish_spec(
        "inventory",
        title,
        "Left: stock at each location; right: the share of simulated runs in which that location has run out "
        "that month. A site running out means a patient's dose is late.",
        _copy_shared(body),
        data,
    )
