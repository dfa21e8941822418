"""`hn005-sim new-trial NAME`: the scaffold validates and screens as written, every figure has a source,
and bad or existing names are refused in one line with nothing written."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

# the walker of tests/test_sources.py (tests/ is on sys.path: pytest's rootdir-based import)
from test_sources import figures_without_source

from hn005_sim.cli import main

FILES = ("base.toml", "criteria.toml", "regimen.toml", "supply.toml", "comparators.toml")


def test_scaffold_validates_and_screens(tmp_path, capsys):
    assert main(["new-trial", "my_trial", "--root", str(tmp_path), "--title", "MY-TRIAL", "-q"]) == 0
    cfg = tmp_path / "configs" / "my_trial"
    assert sorted(p.name for p in cfg.iterdir()) == sorted(FILES)
    scenario = tmp_path / "scenarios" / "my_trial.toml"
    for path in (*(cfg / f for f in FILES), scenario):
        text = path.read_text()
        assert "$" not in text, path.name  # every placeholder filled
        assert not list(figures_without_source(tomllib.loads(text))), path.name
    assert main(["validate", str(scenario)]) == 0
    out = tmp_path / "out"
    assert main(["screen", str(scenario), "--patients", "1500", "--seed", "2", "--out", str(out), "-q"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert 0 < summary["eligible_fraction"] < 1
    # the example regimen and supply run too (one small replicate)
    run = tmp_path / "run"
    assert main(["run", str(scenario), "--replicates", "1", "--seed", "2", "--out", str(run), "-q"]) == 0
    s = json.loads((run / "summary.json").read_text())
    assert set(s["supply"]) == {"study_drug", "chemo"}
    assert "<title>MY-TRIAL feasibility: my_trial</title>" in (run / "report.html").read_text()


@pytest.mark.parametrize("name", ["My_Trial", "../x", "a", "1trial", "trial-x", "x" * 41])
def test_bad_names_refused(tmp_path, capsys, name):
    assert main(["new-trial", name, "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "NAME" in err
    assert not (tmp_path / "configs").exists() and not (tmp_path / "scenarios").exists()


@pytest.mark.parametrize("existing", ["configs", "scenarios"])
def test_existing_name_refused(tmp_path, capsys, existing):
    if existing == "configs":
        (tmp_path / "configs" / "taken").mkdir(parents=True)
    else:
        (tmp_path / "scenarios").mkdir()
        (tmp_path / "scenarios" / "taken.toml").write_text("")
    assert main(["new-trial", "taken", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already exists" in err
    assert not (tmp_path / "configs" / "taken" / "base.toml").exists()


def test_shipped_trials_are_refused(capsys):
    root = Path(__file__).resolve().parents[1]
    for name in ("alter_hn005", "ak105_304"):
        assert main(["new-trial", name, "--root", str(root)]) == 2
    assert "already exists" in capsys.readouterr().err
