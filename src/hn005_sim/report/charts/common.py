"""What every chart shares: the `Chart` record, its datasets and their sources, sizes, colours, axes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    import altair as alt

WIDTH = 620  # px: fits a laptop screen beside nothing, and a slide
BAND_COLOURS = {
    "95% of runs": "#c6dbef",
    "80% of runs": "#9ecae1",
    "50% of runs": "#4292c6",
    "median": "#08306b",
}
STAGE_COLOURS = {
    "prescreen": "#6baed6",
    "screening": "#fd8d3c",
    "consent": "#74c476",
    "withdrawal": "#9e9ac8",
    "enrolled": "#31a354",
}
CHART_REVIEW_COLOURS = {"pass": "#74c476", "unknown": "#fdd0a2", "fail": "#de2d26"}
CHART_REVIEW_COLUMNS = ("prescreen_pass", "prescreen_fail", "prescreen_unknown")
MAX_CRITERIA = 25  # rows in the restrictiveness chart; the CSV has all of them
MAX_HEATMAP = 15  # criteria on each axis of the co-failure heat map
MAX_SITES = 60
MAX_LOCATIONS = 6


@dataclass(frozen=True)
class Chart:
    """One chart of the report: a file stem, a heading, how to read it, and its Vega-Lite spec."""

    name: str
    title: str
    how_to_read: str
    spec: dict[str, Any]
    files: tuple[str, ...] = field(default=())


class _Data:
    """The named datasets of one chart and where each came from."""

    def __init__(self) -> None:
        self.values: dict[str, list[dict[str, Any]]] = {}
        self.sources: dict[str, dict[str, Any]] = {}

    def add(
        self,
        name: str,
        frame: pl.DataFrame,
        file: str,
        *,
        rows: str = "all",
        why: str | None = None,
        **extra: Any,
    ) -> alt.NamedData:
        """`put`, and the dataset's name for an altair chart."""
        import altair as alt

        self.put(name, frame, file, rows=rows, why=why, **extra)
        return alt.NamedData(name=name)

    def put(
        self,
        name: str,
        frame: pl.DataFrame,
        file: str,
        *,
        rows: str = "all",
        why: str | None = None,
        **extra: Any,
    ) -> None:
        """Keep `frame`'s rows as dataset `name`, with where they came from (a spec written as a dict
        names its data itself: no altair needed)."""
        self.values[name] = records(frame)
        self.sources[name] = {
            "file": file,
            "columns": list(frame.columns),
            "rows": rows,
            **({"why": why} if why else {}),
            **extra,
        }

    def put_shown(self, name: str, shown: pl.DataFrame, whole: pl.DataFrame, file: str, why: str) -> None:
        """`put` the rows a chart shows of `whole`: marked a subset, with `why`, when some are left out."""
        subset = shown.height < whole.height
        self.put(name, shown, file, rows="subset" if subset else "all", why=why if subset else None)


def records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts; NaN and infinities become null (JSON has no NaN)."""
    out = frame.to_dicts()
    for row in out:
        for key, value in row.items():
            if isinstance(value, float) and not math.isfinite(value):
                row[key] = None
    return out


def _finish(
    name: str, title: str, subtitle: str, how_to_read: str, chart: alt.TopLevelMixin, data: _Data
) -> Chart:
    import altair as alt

    chart = chart.properties(title=alt.TitleParams(title, subtitle=subtitle, anchor="start", fontSize=15))
    spec = (
        chart.configure_axis(labelFontSize=11, titleFontSize=12)
        # numbers: a tick label that would touch its neighbour is left out (no overlapping labels);
        # category labels (criterion ids, sites) are all kept
        .configure_axisQuantitative(labelOverlap="greedy", labelSeparation=4)
        .configure_legend(
            labelFontSize=11, titleFontSize=12, orient="bottom", direction="horizontal", columns=4
        )
        .configure_view(stroke=None)
        .to_dict(validate=False)  # the same dict; the schema check is tests/report/test_images.py's
    )
    spec["datasets"] = {**spec.get("datasets", {}), **data.values}
    spec["usermeta"] = {"hn005": {"chart": name, "sources": data.sources}}
    files = tuple(dict.fromkeys(s["file"] for s in data.sources.values()))
    return Chart(name, title, how_to_read, spec, files)


def _has_scenarios(frame: pl.DataFrame) -> bool:
    return "scenario" in frame.columns


def _cols(frame: pl.DataFrame, *names: str) -> list[str]:
    """The wanted columns that exist, scenario first when present."""
    lead = ["scenario"] if _has_scenarios(frame) else []
    return lead + [n for n in names if n in frame.columns and n != "scenario"]


def _stage_scale(frame: pl.DataFrame) -> alt.Scale:
    """Fixed colours per stage, listing only the stages present (legend without empty entries)."""
    import altair as alt

    present = set(frame["stage"].drop_nulls().unique().to_list())
    domain = [s for s in STAGE_COLOURS if s in present] + sorted(present - set(STAGE_COLOURS))
    palette = ["#bdbdbd", "#969696", "#737373", "#525252"]
    return alt.Scale(
        domain=domain, range=[STAGE_COLOURS.get(s) or palette[i % 4] for i, s in enumerate(domain)]
    )


def _stage_scale_dict(frame: pl.DataFrame) -> dict[str, Any]:
    """`_stage_scale(frame).to_dict()` without building the altair object."""
    present = set(frame["stage"].drop_nulls().unique().to_list())
    domain = [s for s in STAGE_COLOURS if s in present] + sorted(present - set(STAGE_COLOURS))
    palette = ["#bdbdbd", "#969696", "#737373", "#525252"]
    return {"domain": domain, "range": [STAGE_COLOURS.get(s) or palette[i % 4] for i, s in enumerate(domain)]}


def _pct(field_: str, title: str) -> alt.Tooltip:
    import altair as alt

    return alt.Tooltip(f"{field_}:Q", title=title, format=".1%")


def integer_ticks(values: Any, most: int = 8) -> list[int] | None:
    """Whole-number tick values covering `values` (at most `most`, evenly stepped), or None when a value
    is not a whole number. Counts of sites, years and ECOG grades read 1 / 2 / 3, never 0.5 / 1.0 / 1.5."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals or any(not v.is_integer() for v in vals):
        return None
    lo, hi = int(min(vals)), int(max(vals))
    step = next(s for s in (1, 2, 5, 10, 20, 25, 50, 100) if (hi - lo) / s <= max(most - 1, 1)) \
        if hi - lo <= 100 * max(most - 1, 1) else None
    if step is None:
        return None
    first = lo + (-lo % step)  # the first multiple of the step
    return list(range(first, hi + 1, step))


def _axis(values: Any, **kw: Any) -> alt.Axis:
    """Whole-number ticks when every value is whole (1, 2, 5, 10... apart), else a few ticks that do not
    overlap, large numbers in SI form (100k)."""
    import altair as alt

    ticks = integer_ticks(values)
    if ticks is not None:
        return alt.Axis(values=ticks, format="d", **kw)
    vals = [abs(float(v)) for v in values if v is not None]
    fmt = "~s" if vals and max(vals) >= 10_000 else None
    return alt.Axis(tickCount=4, labelOverlap="greedy", **({"format": fmt} if fmt else {}), **kw)




# --------------------------------------------------------------------------------------------------
# Specs written as dicts (issue 16): altair copies a whole chart at every method call and again when it
# layers or concatenates charts, which cost ~0.9 s for the 28 panels of the sweeps chart. Every chart
# of charts/ is written as the dict altair would produce (key order included, so the page's JSON is the
# same bytes); tests/report/test_chart_specs.py compares each with its altair build and checks the
# Vega-Lite schema.

CONFIG: dict[str, Any] = {
    "view": {"continuousWidth": 300, "continuousHeight": 300, "stroke": None},
    "axis": {"labelFontSize": 11, "titleFontSize": 12},
    "axisQuantitative": {"labelOverlap": "greedy", "labelSeparation": 4},
    "legend": {"columns": 4, "direction": "horizontal", "labelFontSize": 11, "orient": "bottom",
               "titleFontSize": 12},
}
"""`_finish`'s configure_* calls, as altair writes them."""

SCHEMA_URL = "https://vega.github.io/schema/vega-lite/v6.4.1.json"
"""`altair.SCHEMA_URL` of the altair version the specs are written for (a test compares them), kept here
so that building a chart does not import altair (~0.35 s)."""


def _title(title: str, subtitle: str) -> dict[str, Any]:
    """The chart title `_finish` sets, as altair writes it."""
    return {"text": title, "anchor": "start", "fontSize": 15, "subtitle": subtitle}


def _finish_spec(name: str, title: str, how_to_read: str, body: dict[str, Any], data: _Data) -> Chart:
    """`_finish` for a spec written as a dict: `body` is the chart's own keys (mark, encoding, layer,
    concat, data..., and `_title(title, subtitle)`) in altair's order; configuration, schema, datasets
    and sources as `_finish` adds them."""
    import copy

    spec: dict[str, Any] = {"config": copy.deepcopy(CONFIG), **body, "$schema": SCHEMA_URL}
    spec["datasets"] = dict(data.values)
    spec["usermeta"] = {"hn005": {"chart": name, "sources": data.sources}}
    files = tuple(dict.fromkeys(s["file"] for s in data.sources.values()))
    return Chart(name, title, how_to_read, spec, files)


def _axis_dict(values: Any, **kw: Any) -> dict[str, Any]:
    """`_axis(values, **kw).to_dict()` without building the altair object (keys sorted, as altair does)."""
    ticks = integer_ticks(values)
    if ticks is not None:
        out: dict[str, Any] = {"values": ticks, "format": "d", **kw}
    else:
        vals = [abs(float(v)) for v in values if v is not None]
        fmt = "~s" if vals and max(vals) >= 10_000 else None
        out = {"tickCount": 4, "labelOverlap": "greedy", **({"format": fmt} if fmt else {}), **kw}
    return dict(sorted(out.items()))


def _tooltip(field_: str, type_: str, title: str | None = None, fmt: str | None = None) -> dict[str, Any]:
    """`alt.Tooltip("field:T", title=..., format=...).to_dict()`."""
    out: dict[str, Any] = {"field": field_}
    if fmt is not None:
        out["format"] = fmt
    if title is not None:
        out["title"] = title
    out["type"] = type_
    return out


def _copy_shared(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with no dict or list shared between two places (a spec written as a dict reuses one
    encoding in several layers; altair's specs share nothing, and a caller may edit one place)."""
    import json

    return json.loads(json.dumps(body))


def _datum_equals(field_: str, value: Any) -> str:
    """`repr(alt.datum[field_] == value)`: the filter expression altair writes, `(datum.f === 'v')` (its
    `_js_repr`: true / false / null for Python's, a numpy scalar as its Python value's repr)."""
    import numpy as np

    if value is True or value is False or value is None:
        rhs = {True: "true", False: "false", None: "null"}[value]
    elif isinstance(value, np.generic):
        rhs = repr(value.item())
    else:
        rhs = repr(value)
    return f"(datum.{field_} === {rhs})"


def _bars_with_spread(frame: pl.DataFrame, y: dict[str, Any], tips: list[dict[str, Any]],
                      colour: dict[str, Any], value: tuple[str, str], spread: tuple[str, str]) -> list[dict]:
    """Layers of a horizontal bar chart: bars of `value` (field, axis title) coloured by `colour` (by
    scenario, with a scenario tooltip first and bars offset, when the frame holds several), and a black
    rule over `spread` (the 10th and 90th percentile fields) when the frame has both."""
    offset = {}
    if _has_scenarios(frame):
        offset = {"yOffset": {"field": "scenario", "type": "nominal"}}
        tips.insert(0, _tooltip("scenario", "nominal"))
        colour = {"field": "scenario", "title": "Scenario", "type": "nominal"}
    layers = [{"mark": {"type": "bar"},
               "encoding": {"color": colour, "tooltip": tips,
                            "x": {"field": value[0], "title": value[1], "type": "quantitative"},
                            "y": y, **offset}}]
    lo, hi = spread
    if lo in frame.columns and hi in frame.columns:
        layers.append({"mark": {"type": "rule", "color": "black"},
                       "encoding": {"x": {"field": lo, "type": "quantitative"},
                                    "x2": {"field": hi}, "y": y, **offset}})
    return layers
