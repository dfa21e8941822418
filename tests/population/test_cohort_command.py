"""`hn005-sim cohort`: files, determinism, console output; bad input exits 2 with one line."""

from __future__ import annotations

import json

import polars as pl

from hn005_sim.cli import main

from .conftest import BASELINE


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cohort_writes_files_and_is_reproducible(tmp_path, capsys):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    argv = ["cohort", str(BASELINE), "--patients", "3000", "--seed", "5", "--out"]
    code, out, err = run([*argv, str(a)], capsys)
    assert code == 0, err
    assert "median age" in out and "HBsAg" in out and "hypothyroidism 2 y after RT" in out
    assert {p.name for p in a.iterdir()} == {"cohort.parquet", "summary.json", "manifest.json"}
    frame = pl.read_parquet(a / "cohort.parquet")
    assert frame.height == 3000
    summary = json.loads((a / "summary.json").read_text())
    assert summary["patients"] == 3000 and summary["seed"] == 5
    m = json.loads((a / "manifest.json").read_text())
    assert m["seed"] == 5 and len(m["scenario_sha256"]) == 64
    assert m["resolved_config"]["population"]["demographics"]["age_years"]["mean"] == 46
    assert run(["cohort", str(BASELINE), "--patients", "3000", "--seed", "5", "--out", str(b), "--quiet"],
               capsys)[1] == ""
    assert (a / "cohort.parquet").read_bytes() == (b / "cohort.parquet").read_bytes()
    assert (a / "summary.json").read_text() == (b / "summary.json").read_text()
    run(["cohort", str(BASELINE), "--patients", "3000", "--seed", "6", "--out", str(c), "-q"], capsys)
    assert (a / "cohort.parquet").read_bytes() != (c / "cohort.parquet").read_bytes()


def test_cohort_json_format(tmp_path, capsys):
    code, out, _ = run(["cohort", str(BASELINE), "--patients", "500", "--out", str(tmp_path / "o"),
                        "--format", "json"], capsys)
    assert code == 0 and json.loads(out)["patients"] == 500


def test_cohort_bad_patients_exits_2(tmp_path, capsys):
    code, _, err = run(["cohort", str(BASELINE), "--patients", "0", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--patients" in err
    assert not (tmp_path / "o").exists()


def test_cohort_bad_scenario_exits_2_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "x.toml"
    bad.write_text(f'extends = "{BASELINE}"\nname = "x"\n'
                   '[population.demographics.age_years]\nmean = "forty"\n')
    code, _, err = run(["cohort", str(bad), "--out", str(tmp_path / "o")], capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        f'{bad}: population.demographics.age_years.mean: must be a number, got "forty"']
    assert not (tmp_path / "o").exists()
