"""The page in headless Chromium with networking off: every chart drawn, no console errors, no requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from . import report_checks as rc
from .report_browser import open_page

pytestmark = pytest.mark.slow


def test_report_renders_offline_in_chromium(full_report: Path, artifacts: Path) -> None:
    result = open_page(full_report / "report.html")
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
