"""AK105-304 (configs/ak105_304/, scenarios/ak105_304.toml) end to end: a second trial written as data
runs through validate, screen, run, supply and sites with no code of its own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hn005_sim.cli import main
from hn005_sim.scenario.load import load_scenario
from hn005_sim.treatment.course import patient_units

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "ak105_304.toml"


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(SCENARIO)[0]


def test_regimen_doses_by_hand(scenario):
    """BSA 1.70 m2, CrCl 80 mL/min: gemcitabine 1700 mg -> 1 x 1 g + 4 x 200 mg on days 1 and 8;
    cisplatin 136 mg -> 2 x 50 + 4 x 10 mg; carboplatin AUC 5 x (80 + 25) = 525 -> 450 + 50 + 50 = 550 mg
    (the least amount of whole vials >= 525); penpulimab 2 x 100 mg."""
    reg = scenario.regimen
    assert reg.drug_names == ("penpulimab", "gemcitabine", "cisplatin", "carboplatin")
    units = patient_units(reg, {"bsa_m2": np.array([1.70]), "crcl_ml_min": np.array([80.0])})
    assert units["gemcitabine"][0, 0].tolist() == [4, 1]  # strengths [200, 1000]
    assert units["cisplatin"][0, 0].tolist() == [4, 2]  # strengths [10, 50]
    assert units["carboplatin"][0, 0] @ np.array([50, 150, 450]) == 550
    assert units["penpulimab"][0, 0].tolist() == [2]
    assert reg.drugs["gemcitabine"].administrations == 2
    assert reg.choice_groups() == {"platinum": ["cisplatin", "carboplatin"]}


def test_commands_end_to_end(tmp_path, scenario):
    assert main(["validate", str(SCENARIO)]) == 0
    out = tmp_path / "screen"
    assert main(["screen", str(SCENARIO), "--patients", "2000", "--seed", "1", "--out", str(out), "-q"]) == 0
    screen = json.loads((out / "summary.json").read_text())
    assert 0.2 < screen["eligible_fraction"] < 0.8

    out = tmp_path / "run"
    assert main(["run", str(SCENARIO), "--replicates", "2", "--seed", "3", "--out", str(out), "-q"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["supply"]) == {"penpulimab", "gemcitabine", "cisplatin", "carboplatin"}
    t = summary["treatment"]
    assert t["patients"] > 0 and 0 < t["progression_free_12m"] < 1 and t["months_on_treatment_mean"] > 0
    html = (out / "report.html").read_text()
    assert "<title>AK105-304 feasibility: ak105_304</title>" in html

    out = tmp_path / "supply"
    assert main(["supply", str(SCENARIO), "--replicates", "2", "--seed", "3", "--search-replicates", "2",
                 "--out", str(out), "-q"]) == 0
    sup = (out / "supply.csv").read_text()
    for pid in ("gemcitabine_1g", "cisplatin_50mg", "carboplatin_450mg", "penpulimab_100mg"):
        assert pid in sup

    out = tmp_path / "sites"
    assert main(["sites", str(SCENARIO), "--out", str(out), "-q"]) == 0
    assert json.loads((out / "summary.json").read_text())
