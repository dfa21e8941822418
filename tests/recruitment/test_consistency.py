"""One eligible fraction whichever command shows it, and the enrolled-by-deadline figure capped at the target
(runs stop there), said on the console (issue 14, point 7)."""

from __future__ import annotations

import json
from pathlib import Path

from hn005_sim.cli import main

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "scenarios" / "baseline.toml"


def test_run_and_screen_give_the_same_eligible_fraction_and_say_why(tmp_path, capsys):
    out_run, out_screen = tmp_path / "run", tmp_path / "screen"
    assert main(["run", str(BASELINE), "--replicates", "3", "--seed", "5", "--screen-patients", "4000",
                 "--out", str(out_run)]) == 0
    console = capsys.readouterr().out
    run = json.loads((out_run / "summary.json").read_text())
    basis = run["eligible_fraction_basis"]
    assert basis["candidates_judged"] == 4000 and basis["seed"] == 5
    assert "runs stop there" in console and "as `screen`" in console
    assert main(["screen", str(BASELINE), "--patients", "4000", "--seed", "5", "--out", str(out_screen),
                 "--quiet"]) == 0
    screen = json.loads((out_screen / "summary.json").read_text())
    assert screen["eligible_fraction"] == run["eligible_fraction"]
    # enrolled by the deadline never exceeds the target: runs stop there
    assert max(v for v in run["enrolled_by_deadline"].values() if v is not None) <= run["target_enrolled"]
