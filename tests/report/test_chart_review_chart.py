"""The funnel chart shows pass / fail / unknown at chart review when funnel.csv has those columns."""

from __future__ import annotations

import numpy as np
import polars as pl
import vl_convert as vlc

from hn005_sim.report import charts
from hn005_sim.report.images import vl_version


def _funnel(with_review: bool) -> pl.DataFrame:
    ids = ["age", "ecog", "imaging", "consent_only"]
    frame = pl.DataFrame({
        "step": np.arange(1, 5), "criterion_id": ids, "stage": ["prescreen"] * 3 + ["screening"],
        "remaining": [100, 90, 60, 55], "dropped": [0, 10, 30, 5],
        "remaining_fraction": [1.0, 0.9, 0.6, 0.55]})
    if with_review:
        frame = frame.with_columns(
            prescreen_pass=pl.Series([100, 80, 20, 0]), prescreen_fail=pl.Series([0, 8, 6, 0]),
            prescreen_unknown=pl.Series([0, 12, 66, 86]), screen_fail=pl.Series([0, 2, 24, 5]))
    return frame


def test_funnel_chart_draws_chart_review_outcomes():
    chart = charts.funnel(_funnel(True))
    spec = chart.spec
    assert "hconcat" in spec and len(spec["hconcat"]) == 2
    review = spec["hconcat"][1]
    fold = next(t for t in review["transform"] if "fold" in t)
    assert fold["fold"] == ["prescreen_pass", "prescreen_fail", "prescreen_unknown"]
    data = spec["datasets"]["funnel"]
    assert [r["prescreen_unknown"] for r in data] == [0, 12, 66, 86]
    assert "unknown" in chart.how_to_read
    assert vlc.vegalite_to_svg(spec, vl_version=vl_version()).startswith("<svg")


def test_funnel_chart_without_chart_review_columns_is_one_panel():
    spec = charts.funnel(_funnel(False)).spec
    assert "hconcat" not in spec
