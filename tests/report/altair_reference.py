"""The report's charts as altair built them before issue 16: the reference the dict-written specs are
compared with (tests/report/test_chart_specs.py). Copied from src/hn005_sim/report/charts/ as they were
(only the names changed); do not edit them to make a comparison pass.
"""

from __future__ import annotations

import altair as alt
import polars as pl

from hn005_sim.report.charts.common import (
    WIDTH,
    Chart,
    _axis,
    _cols,
    _Data,
    _finish,
    _has_scenarios,
    _pct,
)


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
                    axis=_axis(sub["value"].to_list(), labelFlush=True)),
            y=alt.Y("eligible_fraction:Q", title="Candidates eligible", axis=alt.Axis(format="%")),
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


