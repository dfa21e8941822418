"""`hn005-sim validate` on bad population sections: exit 2, one line per problem naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hn005_sim.cli import main

BASELINE = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.toml"

CASES = [
    ('[population.demographics.age_years]\nmean = "forty"\n',
     'population.demographics.age_years.mean: must be a number, got "forty"'),
    ("[population.infections.hbsag_positive]\nvalue = 1.5\n",
     "population.infections.hbsag_positive.value: must be <= 1, got 1.5"),
    ("[population.demographics]\nheight_cm = 170\n",
     "population.demographics.height_cm: must be a table, got 170"),
    ("[population.infections]\nhbsag = { value = 0.1, source = \"x source\" }\n",
     "population.infections.hbsag: unknown key"),
    ('[population.labs.alt_u_l]\nmale = { dist = "gamma", mean = 20, sd = 5, source = "a test case" }\n',
     "population.labs.alt_u_l.male: unknown distribution \"gamma\""),
    ("[population.labs.correlation]\nmatrix = [[1,0.99,0.99,0,0,0,0,0,0],[0.99,1,0,0,0,0,0,0,0],"
     "[0.99,0,1,0,0,0,0,0,0],[0,0,0,1,0,0,0,0,0],[0,0,0,0,1,0,0,0,0],[0,0,0,0,0,1,0,0,0],"
     "[0,0,0,0,0,0,1,0,0],[0,0,0,0,0,0,0,1,0],[0,0,0,0,0,0,0,0,1]]\n",
     "population.labs.correlation: matrix must be positive definite"),
    ("[population.labs.correlation]\nmatrix = [[1, 0.5], [0.5, 1]]\n",
     "population.labs.correlation: matrix must be 9 x 9"),
    ("[population.retest.cv_within_subject.creatinine_umol_l]\nvalue = 0.5\n",
     "retest.cv_within_subject.creatinine_umol_l: within-subject variation"),
    ('[population.disease.recurrence_pattern]\nvalues = ["local", "distant"]\nprobs = [0.5, 0.5]\n',
     "population.disease.recurrence_pattern: values must be exactly"),
    ("[population.thyroid.hypothyroidism_after_rt]\nsource = \"\"\n",
     "population.thyroid.hypothyroidism_after_rt.source: String should have at least 3 characters"),
]


@pytest.mark.parametrize("body,expected", CASES, ids=[c[1].split(":")[0] for c in CASES])
def test_bad_population_input(tmp_path, capsys, body, expected):
    path = tmp_path / "x.toml"
    path.write_text(f'extends = "{BASELINE}"\nname = "x"\n{body}')
    code = main(["validate", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith(f"{path}: ") and expected in err[0], err[0]
    assert "Traceback" not in err[0]


def test_every_problem_reported_at_once(tmp_path, capsys):
    path = tmp_path / "x.toml"
    path.write_text(f'extends = "{BASELINE}"\nname = "x"\n'
                    '[population.demographics.age_years]\nmean = "forty"\n'
                    '[population.infections.hiv_positive]\nvalue = -1\n')
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and any("age_years.mean" in e for e in err) and any("hiv_positive" in e for e in err)


def test_baseline_population_is_valid(capsys):
    assert main(["validate", str(BASELINE)]) == 0
