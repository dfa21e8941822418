"""Trial-specific population attributes are data: a scenario declares new ones (population and criteria
columns), the cohort carries them and a criterion judges them with no code change; a criteria column no
attribute generates is refused."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from hn005_sim.cli import main
from hn005_sim.eligibility import CriteriaConfig, compile_criteria
from hn005_sim.population import sample
from hn005_sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]

NEW = f"""extends = "{ROOT / 'scenarios' / 'ak105_304.toml'}"
name = "declared"
[population.disease.conditional_flags.nasal_bleeding_risk]
given = "local_component"
p_given = {{ value = 0.30, source = "test: a declared attribute" }}
p_otherwise = {{ value = 0.05, source = "test: a declared attribute" }}
[population.history]
own_drug_30d = {{ value = 0.10, source = "test: a declared history flag" }}
[criteria]
columns = {{ nasal_bleeding_risk = "bool", own_drug_30d = "bool" }}
"""


def test_declared_attributes_generate_and_screen(tmp_path):
    path = tmp_path / "declared.toml"
    path.write_text(NEW)
    sc, _ = load_scenario(path)
    assert sc.population.declared_attributes()[-1] == "own_drug_30d"
    n = 100_000
    cohort = sample(sc.population, n, np.random.default_rng(4))
    flag = cohort["own_drug_30d"].to_numpy()
    assert abs(flag.mean() - 0.10) < 4 * math.sqrt(0.1 * 0.9 / n)
    local = cohort["recurrence_pattern"].is_in(["local", "locoregional", "locoregional_distant"]).to_numpy()
    risk = cohort["nasal_bleeding_risk"].to_numpy()
    for mask, p in ((local, 0.30), (~local, 0.05)):
        assert abs(risk[mask].mean() - p) < 4 * math.sqrt(p * (1 - p) / mask.sum())
    # a criterion over the declared column compiles against the declared schema and judges the cohort
    crit = CriteriaConfig.model_validate({
        "columns": {"own_drug_30d": "bool"},
        "criterion": [{"id": "own_drug_recent", "kind": "exclusion", "stage": "prescreen",
                       "protocol_text": "test: the trial's own drug within 30 days", "rule": "own_drug_30d",
                       "null": "fail"}]})
    res = compile_criteria(crit).evaluate(cohort)
    assert np.array_equal(np.asarray(res.eligible), ~flag)
    out = tmp_path / "screen"
    assert main(["screen", str(path), "--patients", "2000", "--seed", "1", "--out", str(out), "-q"]) == 0


def test_undeclared_column_refused(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(f'extends = "{ROOT / "scenarios" / "ak105_304.toml"}"\nname = "bad"\n'
                    '[criteria]\ncolumns = { nowhere_flag = "bool" }\n')
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "criteria.columns.nowhere_flag" in err[0] and "population attribute" in err[0]
