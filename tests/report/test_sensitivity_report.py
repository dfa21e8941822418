"""The sensitivity report and the run report with --uncertainty and --sensitivity: files, tornado data."""

from __future__ import annotations

import csv
import json

import pytest

from hn005_sim.cli import main

from . import report_checks as rc


@pytest.mark.slow
def test_command_line_writes_the_files_and_the_run_report_shows_the_tornado(tmp_path):
    sens = tmp_path / "sens"
    assert main(["sensitivity", "scenarios/baseline.toml", "--method", "morris", "--samples", "2",
                 "--replicates", "1", "--seed", "3", "--out", str(sens), "--quiet"]) == 0
    assert {p.name for p in sens.iterdir()} >= {"sensitivity.csv", "summary.json", "manifest.json",
                                                 "report.html", "charts"}
    rows = list(csv.DictReader((sens / "sensitivity.csv").open()))
    summary = json.loads((sens / "summary.json").read_text())
    figures = summary["uncertain_figures"]
    outputs = {r["output"] for r in rows}
    assert outputs >= {"prob_target_by_deadline", "time_to_target_p50", "screen_failure_rate",
                       "packs_p95_anlotinib", "packs_p95_penpulimab", "packs_p95_capecitabine"}
    assert len(rows) == figures * len(outputs)
    assert {"parameter", "output", "mu_star", "mu_star_ci_low", "mu_star_ci_high"} <= rows[0].keys()
    specs = rc.specs(sens / "report.html")
    assert "tornado" in specs and rc.data_mismatches(sens, specs["tornado"]) == []

    run = tmp_path / "run"
    assert main(["run", "scenarios/baseline.toml", "--replicates", "4", "--seed", "3", "--uncertainty",
                 "--sensitivity", str(sens), "--screen-patients", "1000", "--out", str(run), "--quiet"]) == 0
    s = json.loads((run / "summary.json").read_text())
    assert s["uncertainty"]["enabled"] is True and s["uncertainty"]["uncertain_figures"] == figures
    sets = list(csv.DictReader((run / "parameter_sets.csv").open()))
    assert len(sets) == 4 and len(sets[0]) == figures + 1
    page = (run / "report.html").read_text()
    assert "include the uncertainty of" in page
    specs = rc.specs(run / "report.html")
    assert "tornado" in specs and rc.data_mismatches(run, specs["tornado"]) == []
