"""`validate` accepts planning files (plans/*.toml) and reports their problems one line each."""

from __future__ import annotations

from pathlib import Path

import pytest

from hn005_sim.cli import main

ROOT = Path(__file__).resolve().parents[2]
PLANS = sorted((ROOT / "plans").glob("*.toml"))


@pytest.mark.parametrize("plan", PLANS, ids=[p.name for p in PLANS])
def test_shipped_plans_validate(plan, capsys):
    assert main(["validate", str(plan)]) == 0
    assert "planning file" in capsys.readouterr().out


def test_a_bad_plan_is_one_line_per_problem_exit_2(tmp_path, capsys):
    p = tmp_path / "bad.toml"
    p.write_text('duration_months = 5\ntarget = "x"\nprobability = 0.8\n[[regions]]\nname = "a"\n'
                 "rate_mean = -1\nsites_max = 3\n")
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert any("target" in line and "integer" in line for line in err)
    assert any("rate_mean" in line for line in err)
    assert all(line.startswith(str(p)) or "bad.toml" in line for line in err)
