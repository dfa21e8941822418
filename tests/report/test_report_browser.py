"""The page in headless Chromium with networking off: every chart drawn, no console errors, no requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from . import report_checks as rc
from .report_browser import open_page

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def page(full_report: Path):
    return open_page(full_report / "report.html")


def test_report_renders_offline_in_chromium(full_report: Path, artifacts: Path, page) -> None:
    result = page
    (artifacts / "report.png").write_bytes(result.screenshot_png)
    (artifacts / "report-console.json").write_text(json.dumps(result.console, indent=2))
    specs = rc.specs(full_report / "report.html")
    assert result.status.get("done"), result.status
    assert result.status["failed"] == []
    assert sorted(result.status["rendered"]) == sorted(specs)
    assert {c["name"] for c in result.charts} == set(specs)
    for chart in result.charts:
        assert chart["svg"] and chart["marks"] > 0, chart
        assert 200 < chart["width"] <= 1040, chart  # fits the page column on a laptop screen
    assert result.errors == []
    assert result.network_requests == []
    assert result.screenshot_png[:8] == b"\x89PNG\r\n\x1a\n"


def test_browser_checks_see_requests_and_errors(tmp_path: Path) -> None:
    """The checks above can fail: a page that fetches and logs an error is caught on both counts."""
    page = tmp_path / "noisy.html"
    page.write_text(
        "<!doctype html><html><body>"
        '<img src="http://example.invalid/pixel.png">'
        "<script>fetch('https://example.invalid/data.json').catch(function () {});"
        "console.error('something broke');"
        "window.__hn005 = {done: true, rendered: [], failed: []};</script>"
        "</body></html>"
    )
    result = open_page(page)
    assert any("example.invalid/pixel.png" in u for u in result.network_requests), result.requests
    assert any("example.invalid/data.json" in u for u in result.network_requests), result.requests
    assert any("something broke" in m["text"] for m in result.errors), result.console


def _chart(page, name: str) -> dict:
    return next(c for c in page.charts if c["name"] == name)


def _axis(chart: dict, title: str) -> dict:
    found = [a for a in chart["axes"] if a["title"] == title]
    assert len(found) == 1, (title, [a["title"] for a in chart["axes"]])
    return found[0]


def _texts(axis: dict) -> list[str]:
    return [lab["text"] for lab in axis["labels"]]


def _overlapping(labels: list[dict]) -> list[tuple[str, str]]:
    out = []
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            (al, at, ar, ab), (bl, bt, br, bb) = a["box"], b["box"]
            if al < br and bl < ar and at < bb and bt < ab:
                out.append((a["text"], b["text"]))
    return out


def test_site_chart_draws_the_target_line_it_promises_on_a_whole_number_axis(page) -> None:
    chart = _chart(page, "site_curve")
    assert "firebrick" in chart["rule_strokes"], chart["rule_strokes"]  # the red line the caption names
    ticks = _texts(_axis(chart, "Number of sites"))
    assert ticks and all(t.isdigit() for t in ticks), ticks


def test_threshold_sweeps_have_units_whole_ticks_and_labels_apart(page) -> None:
    chart = _chart(page, "sweeps")
    titles = sorted(a["title"] for a in chart["axes"] if a["title"] != "Candidates eligible")
    assert titles == sorted(["age_max_years (years)", "crcl_min_ml_min (mL/min)", "ecog_max (ECOG PS)",
                             "hbv_dna_max_copies_ml (copies/mL)", "tsh_max_uln (x ULN)"]), titles
    for title in ("age_max_years (years)", "crcl_min_ml_min (mL/min)", "ecog_max (ECOG PS)"):
        ticks = _texts(_axis(chart, title))
        assert ticks and all(t.isdigit() for t in ticks), (title, ticks)
    assert _texts(_axis(chart, "ecog_max (ECOG PS)")) == ["0", "1", "2"]
    for axis in chart["axes"]:
        assert _overlapping(axis["labels"]) == [], axis["title"]


def test_axis_labels_are_whole_and_inside_their_chart(page) -> None:
    for chart in page.charts:
        for axis in chart["axes"]:
            for lab in axis["labels"]:
                left, top, right, bottom = lab["box"]
                inside = left >= 0 and top >= 0 and right <= chart["width"] + 0.5
                inside = inside and bottom <= chart["height"] + 0.5
                assert inside, (chart["name"], axis["aria"], lab)
                assert not lab["text"].endswith("…"), (chart["name"], lab["text"])  # cut by a label limit
            if not axis["rotated"]:
                assert _overlapping(axis["labels"]) == [], (chart["name"], axis["aria"])
    # the heat map shows every criterion id on both axes (none hidden, none cut)
    heat = _chart(page, "cofailure")
    x, y = heat["axes"]
    assert len(x["labels"]) == len(y["labels"]) > 5, ([t["text"] for t in x["labels"]], len(y["labels"]))
