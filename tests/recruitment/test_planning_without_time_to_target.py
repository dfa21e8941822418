"""`plan_sites(..., time_to_target=False)` (what `run`'s report asks for, issue 16): the same answer but
for the analytic time-to-target quantiles, whose root finding is what imports scipy.optimize."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hn005_sim.recruitment import planning as P
from hn005_sim.scenario.load import load_scenario

from .test_planning import SMALL, write

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("method", ["analytic", "both"])
def test_the_answer_is_the_full_one_less_the_time_to_target(tmp_path, method):
    plan = P.load_plan(write(tmp_path, SMALL))
    full = P.plan_sites(plan, method, seed=3, replicates=500)
    lean = P.plan_sites(plan, method, seed=3, replicates=500, time_to_target=False)
    assert "time_to_target_months" in full.summary and "time_to_target_months" not in lean.summary
    assert lean.summary == {k: v for k, v in full.summary.items() if k != "time_to_target_months"}
    assert lean.curve == full.curve and lean.curve_columns == full.curve_columns


def test_the_scenario_answer_run_shows_is_unchanged():
    """The baseline scenario's plan, as `run` derives it: every figure `run` keeps is the full answer's."""
    sc, _ = load_scenario(ROOT / "scenarios" / "baseline.toml")
    plan = P.plan_from_scenario(sc, 20230901, 0.8)
    full = P.plan_sites(plan, "analytic", 20230901, 0)
    lean = P.plan_sites(plan, "analytic", 20230901, 0, time_to_target=False)
    assert full.summary["time_to_target_months"]["p50"] is not None  # the full answer computes them
    assert lean.curve == full.curve
    for key in ("allocation", "probability_of_success", "expected_enrolled", "method", "feasible",
                "required_probability"):
        assert lean.summary[key] == full.summary[key], key


def test_without_the_time_to_target_no_scipy_optimize_is_imported():
    """The baseline's plan (start-up in days, no continuous law needing scipy.stats): only the root
    finding of the time to target imports scipy.optimize (~0.25 s, in `run`'s analyses before)."""
    code = (
        "import sys\n"
        "from hn005_sim.recruitment import planning as P\n"
        "from hn005_sim.scenario.load import load_scenario\n"
        f"sc, _ = load_scenario({str(ROOT / 'scenarios' / 'baseline.toml')!r})\n"
        "plan = P.plan_from_scenario(sc, 1, 0.8)\n"
        "P.plan_sites(plan, 'analytic', 1, 0, time_to_target=False)\n"
        "print('scipy.optimize' in sys.modules)\n"
        "P.plan_sites(plan, 'analytic', 1, 0)\n"
        "print('scipy.optimize' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
