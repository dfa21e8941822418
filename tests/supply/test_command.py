"""`hn005-sim supply`: outputs, identical for any --jobs, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hn005_sim.cli import main

ROOT = Path(__file__).resolve().parents[2]

FUNNEL = f"""extends = "{ROOT / 'scenarios' / 'baseline.toml'}"
name = "supply-test"
[recruitment.funnel]
prescreen_pass = {{ value = 0.5, source = "test: fixed funnel" }}
screen_pass = {{ value = 0.7, source = "test: fixed funnel" }}
bsa_m2 = {{ dist = "normal", mean = 1.7, sd = 0.15, source = "test: fixed funnel" }}
"""


@pytest.fixture
def scenario(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(FUNNEL)
    return p


@pytest.mark.slow
def test_supply_command_jobs_invariant(scenario, tmp_path):
    outs = []
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}"
        args = ["supply", str(scenario), "--replicates", "4", "--seed", "9", "--jobs", str(jobs),
                "--search-replicates", "2", "--out", str(out), "--quiet"]
        assert main(args) == 0
        outs.append(out)
    for name in ("supply.csv", "drug_demand.csv", "inventory.csv", "resupply_search.csv", "summary.json"):
        assert (outs[0] / name).read_text() == (outs[1] / name).read_text(), name
    summary = json.loads((outs[0] / "summary.json").read_text())
    assert set(summary["supply"]["penpulimab"]) >= {"units_p50", "units_p90", "units_p95",
                                                    "stockout_probability", "waste_p50"}
    assert (outs[0] / "manifest.json").is_file()


def test_missing_section_is_one_line_exit_2(tmp_path, capsys):
    p = tmp_path / "bad.toml"
    p.write_text('name = "x"\n[trial]\ntarget_enrolled = 5\nstart_date = 2023-09-01\ndeadline_months = 12\n'
                 'source = "test: minimal trial"\n')
    out = tmp_path / "out"
    assert main(["supply", str(p), "--out", str(out), "--replicates", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "recruitment" in err[0]
    assert not out.exists()


def test_bad_config_value_names_key(scenario, tmp_path, capsys):
    p = tmp_path / "bad2.toml"
    p.write_text(scenario.read_text() + "[supply.depot]\ndo_not_dispense_days = -3\n")
    assert main(["supply", str(p), "--out", str(tmp_path / "o"), "--replicates", "2"]) == 2
    err = capsys.readouterr().err
    assert "supply.depot.do_not_dispense_days" in err and "Traceback" not in err
