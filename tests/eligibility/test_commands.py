"""`criteria` and `screen` commands: formats, output files and columns (docs/outputs.md)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from hn005_sim.cli import main

from .conftest import ROOT

BASELINE = str(ROOT / "scenarios" / "baseline.toml")


def test_criteria_json_lists_every_criterion(capsys):
    assert main(["criteria", BASELINE, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) > 60 and {"id", "kind", "stage", "protocol_text", "rule"} <= rows[0].keys()
    assert main(["criteria", BASELINE, "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("id,kind,stage,protocol_text,rule")


@pytest.mark.slow
def test_screen_writes_contract_files(tmp_path):
    out = tmp_path / "s"
    args = ["screen", BASELINE, "--patients", "3000", "--seed", "5", "--out", str(out), "--save-matrix", "-q"]
    assert main(args) == 0
    s = json.loads((out / "summary.json").read_text())
    for key in ("patients", "eligible", "eligible_fraction", "excluded", "prescreen_pass_fraction",
                "prescreen_fail_fraction", "prescreen_unknown_fraction", "site_type",
                "screen_failure_rate", "intervals", "relaxation_plan"):
        assert key in s
    assert s["patients"] == 3000 and s["eligible"] + s["excluded"] == 3000
    cols = {
        "criteria.csv": "criterion_id,kind,stage,fail_rate,sole_fail_rate,shapley,shapley_share,funnel_drop,"
        "fail_rate_lo,fail_rate_hi,sole_fail_rate_lo,sole_fail_rate_hi,shapley_share_lo,shapley_share_hi,"
        "unknown_at_prescreen_rate",
        "funnel.csv": "step,criterion_id,stage,remaining,dropped,remaining_fraction,prescreen_pass,"
        "prescreen_fail,prescreen_unknown,screen_fail",
        "cofailure.csv": "criterion_a,criterion_b,both_fail,expected_if_independent,lift",
        "sweeps.csv": "parameter,value,eligible_fraction,is_current",
        "relaxation.csv": "step,relaxation,description,eligible_fraction,gain",
    }
    for name, header in cols.items():
        assert (out / name).read_text().splitlines()[0] == header, name
    m = pl.read_parquet(out / "pass_matrix.parquet")
    assert m.columns[0] == "patient_id" and m.height == 3000
    assert m.select(pl.all_horizontal(pl.exclude("patient_id"))).to_series().sum() == s["eligible"]
    # same seed, same outputs
    out2 = tmp_path / "s2"
    assert main([*args[:-4], "--out", str(out2), "-q"]) == 0
    assert (out2 / "criteria.csv").read_text() == (out / "criteria.csv").read_text()


def test_screen_bad_scenario_exits_2_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(f'extends = "{BASELINE}"\nname = "bad"\n[criteria.overrides]\ncrcl_min_ml_mn = 50\n')
    out = tmp_path / "o"
    assert main(["screen", str(bad), "--patients", "10", "--seed", "1", "--out", str(out)]) == 2
    assert 'unknown parameter "crcl_min_ml_mn"' in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("name", ["relaxed_crcl50", "relaxed_age70", "relaxed_prior_ici", "relaxed_combined"])
def test_relaxed_scenarios_load(name):
    assert main(["validate", str(ROOT / "scenarios" / f"{name}.toml"), "-q"]) == 0
