"""Back-test: `run` on the shipped trials with a fixed seed reproduces stored outputs byte for byte.

The stored files (tests/data/backtest/<scenario>/) were written after the PFS curve and capecitabine
rounding changes of issue 12 (docs/validation.md), so any later refactor that is meant to leave the
outputs alone is checked against them. A change that is meant to move them (a figure in configs/, a model
change) regenerates them deliberately:

    hn005-sim run scenarios/<scenario>.toml --replicates 3 --seed 7 --screen-patients 3000 --no-report \\
        --out /tmp/bt && cp /tmp/bt/*.csv /tmp/bt/summary.json tests/data/backtest/<scenario>/
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hn005_sim.cli import main

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "backtest"


@pytest.mark.parametrize("scenario", ["baseline", "ak105_304"])
def test_run_reproduces_stored_outputs(tmp_path, scenario):
    out = tmp_path / scenario
    args = ["run", str(ROOT / "scenarios" / f"{scenario}.toml"), "--replicates", "3", "--seed", "7",
            "--screen-patients", "3000", "--no-report", "--out", str(out), "-q"]
    assert main(args) == 0
    stored = sorted(p.name for p in (DATA / scenario).iterdir())
    assert "summary.json" in stored and "supply.csv" in stored
    written = {p.name for p in out.iterdir()}
    assert set(stored) <= written, set(stored) - written
    changed = [name for name in stored if (out / name).read_bytes() != (DATA / scenario / name).read_bytes()]
    assert not changed, f"{scenario}: outputs differ from tests/data/backtest/{scenario}/: {changed}"
