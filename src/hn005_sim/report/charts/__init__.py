"""Chart builders: one function per chart, each from one output file (docs/outputs.md).

Every builder writes its Vega-Lite spec as the plain dict altair built for it before issue 16 (the same
JSON bytes, tested against those altair builders in tests/report/altair_reference.py), so building the
report's charts imports no altair. The altair helpers left in charts/common.py (`_Data.add`, `_finish`,
`_axis`, ...) and charts/recruitment.py (`_rule_layers`) import it when called, for the charts still built
with altair (forecast, sensitivity).

Each builder returns a `Chart`: a Vega-Lite spec (dict) whose data sit in the spec's top-level
`datasets`, and whose `usermeta.hn005.sources` says, for each dataset, which CSV it came from and how
(`rows`: "all" = the CSV's rows and the listed columns, in order; "subset" = some of those rows, `why`
says which; "histogram" = counts of a column in the listed bins). The page embeds exactly this spec, so a
test can check each chart's data against the CSV beside the report.

When a frame has a leading `scenario` column (written by `compare`), the chart overlays the scenarios.
Chart data are kept small: files with one row per replicate are binned before charting.

The builders live by stage: charts/eligibility.py, charts/recruitment.py, charts/supply.py, with what
they share in charts/common.py; this package re-exports them all (`charts.funnel`, `charts.Chart`).
"""

from __future__ import annotations

from hn005_sim.report.charts.common import (
    BAND_COLOURS,
    CHART_REVIEW_COLOURS,
    CHART_REVIEW_COLUMNS,
    MAX_CRITERIA,
    MAX_HEATMAP,
    MAX_LOCATIONS,
    MAX_SITES,
    STAGE_COLOURS,
    WIDTH,
    Chart,
    _axis,
    _cols,
    _Data,
    _finish,
    _has_scenarios,
    _pct,
    _stage_scale,
    integer_ticks,
    records,
)
from hn005_sim.report.charts.eligibility import (
    _chart_review_panel,
    cofailure,
    criteria,
    funnel,
    relaxation,
    sweeps,
)
from hn005_sim.report.charts.recruitment import (
    _bin_width,
    _rule_layers,
    enrolment_fan,
    screen_failures,
    site_curve,
    sites,
    time_to_target,
    time_to_target_histogram,
)
from hn005_sim.report.charts.supply import (
    drug_demand,
    inventory,
)

__all__ = [
    "BAND_COLOURS",
    "CHART_REVIEW_COLOURS",
    "CHART_REVIEW_COLUMNS",
    "MAX_CRITERIA",
    "MAX_HEATMAP",
    "MAX_LOCATIONS",
    "MAX_SITES",
    "STAGE_COLOURS",
    "WIDTH",
    "Chart",
    "_Data",
    "_axis",
    "_bin_width",
    "_chart_review_panel",
    "_cols",
    "_finish",
    "_has_scenarios",
    "_pct",
    "_rule_layers",
    "_stage_scale",
    "cofailure",
    "criteria",
    "drug_demand",
    "enrolment_fan",
    "funnel",
    "integer_ticks",
    "inventory",
    "records",
    "relaxation",
    "screen_failures",
    "site_curve",
    "sites",
    "sweeps",
    "time_to_target",
    "time_to_target_histogram",
]
