"""The written page without a browser: offline by construction, data identical to the CSVs, sections."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import polars as pl

from hn005_sim.report import write_report
from hn005_sim.report.charts import time_to_target_histogram
from hn005_sim.report.tables import cohort_figures, parameter_rows

from . import report_checks as rc
from . import report_fixtures as rf

ALL_CHARTS = {
    "enrolment",
    "time_to_target",
    "screen_failures",
    "sites",
    "site_curve",
    "funnel",
    "criteria",
    "cofailure",
    "sweeps",
    "relaxation",
    "drug_demand",
    "inventory",
}


def test_every_chart_is_in_the_page_with_png_and_svg(full_report: Path) -> None:
    specs = rc.specs(full_report / "report.html")
    assert set(specs) == ALL_CHARTS
    for name in specs:
        png = (full_report / "charts" / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert width > 300 and height > 150, (name, width, height)
        root = ET.parse(full_report / "charts" / f"{name}.svg").getroot()
        assert root.tag.endswith("svg")


def test_page_loads_nothing_from_the_network(full_report: Path) -> None:
    page = full_report / "report.html"
    assert rc.external_loads(page) == []
    assert rc.external_links(page) == []
    parsed = rc.parse(page)
    csp = [m["content"] for m in parsed.metas if m.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0] and "connect-src" not in csp[0]


def test_static_check_catches_a_remote_script_and_data_url(tmp_path: Path) -> None:
    """The check above can fail: a CDN script, a web font, and chart data by URL are all reported."""
    page = tmp_path / "bad.html"
    spec = {"data": {"url": "https://example.org/d.csv"}, "mark": "bar"}
    page.write_text(
        '<html><head><script src="https://cdn.example.org/vega.js"></script>'
        "<style>@font-face { src: url(https://fonts.example.org/f.woff2) }</style></head><body>"
        f'<script type="application/json" class="hn005-spec" data-chart="x">{json.dumps(spec)}</script>'
        '<a href="http://example.org">x</a></body></html>'
    )
    bad = rc.external_loads(page)
    assert len(bad) == 3, bad
    assert rc.external_links(page) == ["http://example.org"]


def test_each_chart_draws_exactly_the_csv_beside_it(full_report: Path) -> None:
    specs = rc.specs(full_report / "report.html")
    for name, spec in specs.items():
        assert spec["usermeta"]["hn005"]["sources"], name
        assert rc.data_mismatches(full_report, spec) == [], name


def test_data_check_catches_a_changed_number(full_report: Path, tmp_path: Path) -> None:
    """The comparison can fail: edit one value of the CSV and the enrolment chart no longer matches."""
    folder = tmp_path / "copy"
    shutil.copytree(full_report, folder)
    frame = pl.read_csv(folder / "enrollment_curve.csv")
    bumped = pl.when(pl.col("month") == 5).then(pl.col("p50") + 1).otherwise(pl.col("p50"))
    frame.with_columns(bumped.alias("p50")).write_csv(folder / "enrollment_curve.csv")
    spec = rc.specs(folder / "report.html")["enrolment"]
    problems = rc.data_mismatches(folder, spec)
    assert len(problems) == 1 and "row 5" in problems[0]


def test_time_to_target_bins_count_every_run_that_reached_the_target() -> None:
    t = np.array([0.1, 0.9, 1.0, 2.5, 2.5, 7.99, np.nan])
    frame = pl.DataFrame({"replicate": np.arange(t.size), "time_to_target_months": t}).with_columns(
        pl.col("time_to_target_months").fill_nan(None)
    )
    hist = time_to_target_histogram(frame)
    # span 7.89 months: the first round width giving <= 40 bins is 0.25 months, starting at 0
    assert hist["bin_start"][0] == 0.0 and np.allclose(np.diff(hist["bin_start"].to_numpy()), 0.25)
    by_hand = {0.0: 1, 0.75: 1, 1.0: 1, 2.5: 2, 7.75: 1}
    got = {s: r for s, r in zip(hist["bin_start"], hist["runs"], strict=True) if r}
    assert got == by_hand
    assert hist["runs"].sum() == 6


def test_sections_are_omitted_when_their_files_are_absent(tmp_path: Path) -> None:
    screen = rf.screen_folder(tmp_path / "screen")
    names = write_report(screen, title="screen only", images=False)
    assert set(names) == {"funnel", "criteria", "cofailure", "sweeps", "relaxation"}
    assert set(rc.specs(screen / "report.html")) == set(names)
    html = (screen / "report.html").read_text()
    assert "Recruitment: when will the trial be full?" not in html
    assert "Candidates eligible" in html  # key figures from the screen summary
    empty = tmp_path / "empty"
    empty.mkdir()
    assert write_report(empty, title="nothing yet", images=False) == []
    assert rc.specs(empty / "report.html") == {}


def test_text_from_files_is_escaped(full_report: Path) -> None:
    html = (full_report / "report.html").read_text()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_every_sourced_table_of_the_config_is_listed() -> None:
    cfg = rf.manifest(1, 1)["resolved_config"]
    rows = parameter_rows(cfg)
    assert [r[0] for r in rows] == [
        "trial",
        "population.age_years",
        "population.ecog0",
        "recruitment.regions[guangdong]",
    ]
    assert rows[1][1] == "normal(mean=46, sd=10)"
    assert [r[3] for r in rows] == ["evidence", "evidence", "assumption", "evidence"]


def test_cohort_baseline_figures_match_numpy(tmp_path: Path) -> None:
    folder = rf.cohort_folder(tmp_path / "c", n=301)
    frame = pl.read_parquet(folder / "cohort.parquet")
    figs = cohort_figures(frame)
    age = frame["age_years"].to_numpy()
    assert figs["patients"] == 301
    assert np.isclose(figs["median_age_years"], np.median(age))
    assert np.allclose(figs["age_iqr_years"], np.percentile(age, [25, 75]))
    assert np.isclose(figs["female_fraction"], np.mean(frame["sex"].to_numpy() == "F"))
    assert np.isclose(figs["ecog0_fraction"], np.mean(frame["ecog"].to_numpy() == 0))
