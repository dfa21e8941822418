"""`--help` as a new user reads it: an example for each main command, defaults shown, parameter names."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from hn005_sim.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", ["run", "screen", "supply", "sweep", "criteria"])
def test_help_has_an_example_that_names_a_shipped_scenario(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example" in out, out
    line = next(t for t in out.splitlines() if t.strip().startswith(f"hn005-sim {command} "))
    words = shlex.split(line.strip().rstrip("\\"))
    assert (ROOT / words[2]).is_file(), words  # the example's scenario exists
    assert "Usage:" in out  # and the example is a paragraph of its own, not run into the next one


def test_sites_help_shows_what_months_target_and_probability_default_to(capsys):
    assert main(["sites", "--help"]) == 0
    out = re.sub(r"\s+", " ", capsys.readouterr().out)
    assert "--months <float> Deadline in months from the start (overrides the file). [default: (the plan's " \
           "duration_months; a scenario's trial.deadline_months)]" in out, out
    assert "[default: (the plan's target; a scenario's trial.target_enrolled)]" in out
    assert "[default: (the plan's probability; 0.8 for a scenario)]" in out


def test_criteria_lists_the_parameters_each_rule_uses(capsys):
    scenario = str(ROOT / "scenarios" / "relaxed_age70.toml")
    assert main(["criteria", scenario, "--format", "json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["age_max"]["parameters"] == "age_max_years=70"  # the scenario's override, in force
    assert rows["age_min"]["parameters"] == "age_min_years=18"
    assert rows["measurable_disease"]["parameters"] == ""
    assert main(["criteria", scenario]) == 0
    table = capsys.readouterr().out
    assert "parameters" in table and "age_max_years=70" in table
