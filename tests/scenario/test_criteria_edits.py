"""Criteria edits from a scenario (`[criteria.edit.ID]`, `[[criteria.add]]`) and shared lists (`include`).

Each edit is checked against the file a user would otherwise have had to write by hand: a copy of the
shipped criteria file changed as the edit says, built here from the file's text.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from hn005_sim.cli import main
from hn005_sim.eligibility import compile_criteria
from hn005_sim.population import sample
from hn005_sim.rng import stream
from hn005_sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "scenarios" / "baseline.toml"
CONFIGS = ROOT / "configs" / "alter_hn005"
MOVED = ("ecog", "not_de_novo", "autoimmune", "cns_metastasis")
BLOCK = "[[criteria.criterion]]"


def _blocks(text: str) -> tuple[str, list[str]]:
    """The criteria file as (everything before the first criterion, one text block per criterion)."""
    head, *blocks = text.split(BLOCK)
    return head, blocks


def _id(block: str) -> str:
    return re.search(r'^id = "([a-z0-9_]+)"', block, re.M).group(1)  # type: ignore[union-attr]


def _copy_trial(tmp_path: Path, edit_block) -> Path:
    """configs/alter_hn005 and the baseline scenario copied under tmp_path, each criterion block passed
    through `edit_block(id, text) -> text or None (removed)`; returns the copied baseline scenario."""
    cfg = tmp_path / "configs" / "alter_hn005"
    shutil.copytree(CONFIGS, cfg)
    head, blocks = _blocks((CONFIGS / "criteria.toml").read_text())
    kept = [b for b in (edit_block(_id(b), b) for b in blocks) if b is not None]
    (cfg / "criteria.toml").write_text(head + "".join(BLOCK + b for b in kept))
    (tmp_path / "scenarios").mkdir()
    shutil.copy(BASELINE, tmp_path / "scenarios" / "baseline.toml")
    return tmp_path / "scenarios" / "baseline.toml"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _screen_files(scenario: Path, out: Path) -> dict[str, str]:
    args = ["screen", str(scenario), "--patients", "3000", "--seed", "11", "--out", str(out), "-q"]
    assert main(args) == 0
    return {p.name: p.read_text() for p in sorted(out.iterdir()) if p.name != "manifest.json"}


@pytest.mark.slow
def test_moving_four_criteria_from_a_short_scenario_equals_the_copied_file(tmp_path):
    edits = "".join(f'[criteria.edit.{cid}]\nstage = "screening"\n' for cid in MOVED)
    short = _write(tmp_path / "edit" / "moved.toml",
                   f'extends = "{BASELINE}"\nname = "moved"\ncriteria.bootstrap_replicates = 20\n{edits}')
    assert len(short.read_text().splitlines()) == 11

    def move(cid: str, block: str) -> str:
        if cid not in MOVED:
            return block
        assert 'stage = "prescreen"' in block
        return block.replace('stage = "prescreen"', 'stage = "screening"', 1)

    copied_base = _copy_trial(tmp_path / "copy", move)
    copied_file = tmp_path / "copy" / "configs" / "alter_hn005" / "criteria.toml"
    assert len(copied_file.read_text().splitlines()) > 400
    copied = _write(copied_base.parent / "moved.toml",
                    'extends = "baseline.toml"\nname = "moved"\ncriteria.bootstrap_replicates = 20\n')
    by_edit = _screen_files(short, tmp_path / "out_edit")
    by_copy = _screen_files(copied, tmp_path / "out_copy")
    assert by_edit.keys() == by_copy.keys() and "funnel.csv" in by_edit
    for name in by_edit:
        assert by_edit[name] == by_copy[name], name
    # and the edit did something: the four criteria now sit in the screening stage
    rows = [line.split(",") for line in by_edit["criteria.csv"].splitlines()[1:]]
    assert {r[0]: r[2] for r in rows if r[0] in MOVED} == dict.fromkeys(MOVED, "screening")
    base = json.loads(_screen_files(BASELINE, tmp_path / "out_base")["summary.json"])
    moved = json.loads(by_edit["summary.json"])
    assert moved["prescreen_pass_fraction"] > base["prescreen_pass_fraction"]
    assert moved["eligible"] == base["eligible"]  # same candidates, same criteria: only the stage moved


def _frame(sc, n=4000):
    return sample(sc.population, n, stream(7, 0, "population"))


@pytest.mark.parametrize("cid", ["hiv", "age_max"])
def test_enabled_false_equals_removing_the_criterion(tmp_path, cid):
    edited = _write(tmp_path / "e.toml", f'extends = "{BASELINE}"\nname = "x"\n'
                                         f"[criteria.edit.{cid}]\nenabled = false\n")
    sc_edit, _ = load_scenario(edited)
    if cid == "age_max":
        # its parameter age_max_years is used by no other rule, and the relaxations age_70 and age_75
        # change only that parameter: the hand-made copy has to drop them too to validate
        copy_base = _copy_trial(tmp_path / "copy", lambda i, b: None if i == cid else b)
        crit = copy_base.parents[1] / "configs" / "alter_hn005" / "criteria.toml"
        text = crit.read_text()
        text = re.sub(r"\[criteria\.parameters\.age_max_years\].*?(?=\n\[)", "", text, flags=re.S)
        text = re.sub(r"\[\[criteria\.relaxations\]\]\nid = \"age_7[05]\".*?(?=\n\[)", "", text, flags=re.S)
        crit.write_text(text)
    else:
        copy_base = _copy_trial(tmp_path / "copy", lambda i, b: None if i == cid else b)
    copied = _write(copy_base.parent / "x.toml", 'extends = "baseline.toml"\nname = "x"\n')
    sc_copy, _ = load_scenario(copied)
    assert cid not in [c.id for c in sc_edit.criteria.criterion]
    assert sc_edit.criteria == sc_copy.criteria
    sc_base, _ = load_scenario(BASELINE)
    assert len(sc_edit.criteria.criterion) == len(sc_base.criteria.criterion) - 1
    frame = _frame(sc_base)
    a = compile_criteria(sc_edit.criteria, frame.schema).evaluate(frame)
    b = compile_criteria(sc_copy.criteria, frame.schema).evaluate(frame)
    np.testing.assert_array_equal(a.passes, b.passes)
    np.testing.assert_array_equal(a.eligible, b.eligible)


def test_added_criterion_is_evaluated(tmp_path):
    path = _write(tmp_path / "a.toml", f'extends = "{BASELINE}"\nname = "older"\n'
                  '[[criteria.add]]\nid = "age_over_60"\nkind = "exclusion"\nstage = "prescreen"\n'
                  'protocol_text = "Aged over 60 (another trial)"\nrule = "age_years > 60"\nnull = "fail"\n')
    sc, _ = load_scenario(path)
    base, _ = load_scenario(BASELINE)
    assert [c.id for c in sc.criteria.criterion] == [*(c.id for c in base.criteria.criterion), "age_over_60"]
    frame = _frame(base)
    with_new = compile_criteria(sc.criteria, frame.schema).evaluate(frame)
    without = compile_criteria(base.criteria, frame.schema).evaluate(frame)
    age = frame["age_years"].to_numpy()
    assert (age > 60).any() and (age <= 60).any()
    np.testing.assert_array_equal(with_new.passes[:, -1], age <= 60)
    np.testing.assert_array_equal(with_new.eligible, without.eligible & (age <= 60))


def test_edited_rule_and_null_are_used(tmp_path):
    path = _write(tmp_path / "r.toml", f'extends = "{BASELINE}"\nname = "r"\n'
                  '[criteria.edit.age_max]\nrule = "age_years <= 60"\n'
                  '[criteria.edit.prior_ici_type]\nnull = "fail"\n')
    sc, _ = load_scenario(path)
    by_id = {c.id: c for c in sc.criteria.criterion}
    assert by_id["age_max"].rule == "age_years <= 60" and by_id["prior_ici_type"].null == "fail"
    assert "age_max_years" not in sc.criteria.parameters  # no rule uses it any more
    frame = _frame(sc)
    s = compile_criteria(sc.criteria, frame.schema)
    col = [c.crit.id for c in s.compiled].index("age_max")
    np.testing.assert_array_equal(s.evaluate(frame).passes[:, col], frame["age_years"].to_numpy() <= 60)


SHARED = '''description = "criteria shared by first-line R/M NPC trials"
include = ["hiv.toml"]

[parameters.life_expectancy_min_months]
value = 3
unit = "months"
source = "assumption: a common inclusion threshold"

[[criterion]]
id = "adult_weight"
kind = "inclusion"
stage = "prescreen"
protocol_text = "Body weight at least {weight_min_kg} kg"
rule = "weight_kg >= {life_expectancy_min_months} * 10"
null = "fail"
'''

HIV = '''[[criterion]]
id = "hiv_shared"
kind = "exclusion"
stage = "screening"
protocol_text = "HIV positive (shared list)"
rule = "hiv_positive"
null = "fail"
'''


def test_include_shared_lists_read_once(tmp_path):
    _write(tmp_path / "shared" / "common.toml", SHARED)
    _write(tmp_path / "shared" / "hiv.toml", HIV)
    # the scenario includes common.toml (which includes hiv.toml) and hiv.toml again: read once
    path = _write(tmp_path / "s" / "inc.toml", f'extends = "{BASELINE}"\nname = "inc"\n'
                  '[criteria]\ninclude = ["../shared/common.toml", "../shared/hiv.toml"]\n')
    sc, raw = load_scenario(path)
    base, _ = load_scenario(BASELINE)
    ids = [c.id for c in sc.criteria.criterion]
    assert ids == [*(c.id for c in base.criteria.criterion), "hiv_shared", "adult_weight"]
    assert sc.criteria.parameters["life_expectancy_min_months"].value == 3
    assert sum(p.name == "hiv.toml" for p in raw.files) == 1
    frame = _frame(base)
    res = compile_criteria(sc.criteria, frame.schema).evaluate(frame)
    weight = frame["weight_kg"].to_numpy()
    np.testing.assert_array_equal(res.passes[:, ids.index("adult_weight")], weight >= 30)
    # a criteria file with its own list: the shared criteria come first
    own = _write(tmp_path / "s" / "own.toml", f'extends = "{BASELINE}"\nname = "own"\n'
                 '[criteria]\ninclude = "../shared/hiv.toml"\n'
                 '[[criteria.criterion]]\nid = "age_min"\nkind = "inclusion"\nstage = "prescreen"\n'
                 'protocol_text = "Aged 18 or over"\nrule = "age_years >= 18"\nnull = "fail"\n'
                 '[criteria.parameters]\n[criteria.readings]\n[criteria.overrides]\n')
    data = json.loads(json.dumps(load_raw_criteria(own)))
    assert [c["id"] for c in data] == ["hiv_shared", "age_min"]


def load_raw_criteria(path: Path):
    from hn005_sim.scenario.load import read_raw

    return read_raw(path).data["criteria"]["criterion"]


BAD = [
    ('[criteria.edit.not_de_nov]\nstage = "screening"\n', 'criteria.edit.not_de_nov: unknown criterion '
     '"not_de_nov" (did you mean "not_de_novo"?)'),
    ('[criteria.edit.zzzz]\nstage = "screening"\n', "criteria.edit.zzzz: unknown criterion \"zzzz\"; "
     "known ids: age_min, age_max, ecog,"),
    ('[criteria.edit.ecog]\nstage = "later"\n', "criteria.edit.ecog.stage: must be one of"),
    ('[criteria.edit.ecog]\nrule = "ecgo <= 1"\n', 'criteria.edit.ecog.rule: unknown column "ecgo" '
     '(did you mean "ecog"?)'),
    ('[criteria.edit.ecog]\nrule = "ecog <= {ecog_mx}"\n', "criteria.edit.ecog.rule: unknown parameter"),
    ('[criteria.edit.ecog]\nenabled = false\nstage = "screening"\n', "criteria.edit.ecog: enabled = false "
     "removes the criterion"),
    ("[criteria.edit.ecog]\n", "criteria.edit.ecog: give at least one of stage, rule, null"),
    ('[criteria.edit.ecog]\ncolour = "red"\n', "criteria.edit.ecog.colour: unknown key"),
    ('[[criteria.add]]\nid = "ecog"\nkind = "inclusion"\nstage = "prescreen"\nprotocol_text = "again"\n'
     'rule = "ecog <= 1"\nnull = "fail"\n', 'criteria.add[0].id: duplicate id "ecog"'),
    ('[[criteria.add]]\nid = "new_one"\nkind = "inclusion"\nstage = "prescreen"\nprotocol_text = "x y z"\n'
     'null = "fail"\n', "criteria.add[0]: give either `rule`"),
    ('[[criteria.add]]\nid = "new_one"\nkind = "inclusion"\nstage = "prescreen"\nprotocol_text = "x y z"\n'
     'rule = "age_years"\nnull = "fail"\n',
     "criteria.add[0].rule (new_one): must be a true/false expression"),
    ('[criteria]\ninclude = "missing.toml"\n', "criteria.include: file not found"),
]


@pytest.mark.parametrize(("snippet", "message"), BAD)
def test_bad_edit_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, snippet, message):
    path = _write(tmp_path / "bad.toml", f'extends = "{BASELINE}"\nname = "bad"\n{snippet}')
    out = tmp_path / "out"
    assert main(["screen", str(path), "--patients", "50", "--seed", "1", "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"{tmp_path.name}/bad.toml: ") or err.startswith(f"{path}: "), err
    assert message in err, err
    assert not out.exists()


def test_include_cycle_and_bad_shared_list_are_one_line(tmp_path, capsys):
    _write(tmp_path / "a.toml", 'include = ["b.toml"]\n')
    _write(tmp_path / "b.toml", 'include = ["a.toml"]\n')
    path = _write(tmp_path / "s.toml",
                  f'extends = "{BASELINE}"\nname = "c"\n[criteria]\ninclude = "a.toml"\n')
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "include cycle:" in err, err
    assert re.search(r"s\.toml -> \S*a\.toml -> \S*b\.toml -> \S*a\.toml$", err.strip()), err
    _write(tmp_path / "a.toml", '[[criterion]]\nid = "x"\nkind = "inclusion"\nstage = "soon"\n'
           'protocol_text = "x y z"\nrule = "ecog <= 1"\nnull = "fail"\n')
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a.toml: criterion[0].stage: must be one of" in err, err


def _readme_scenario() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- README-CRITERIA-EDITS.*?```toml\n(.*?)```", text, re.S)
    assert block, "README.md has no README-CRITERIA-EDITS block"
    return block.group(1)


def test_readme_criteria_edit_example_validates_and_does_what_it_says(tmp_path, capsys):
    text = _readme_scenario().replace('extends = "baseline.toml"', f'extends = "{BASELINE}"')
    sc, _ = load_scenario(_write(tmp_path / "my_criteria.toml", text))
    base, _ = load_scenario(BASELINE)
    by_id = {c.id: c for c in sc.criteria.criterion}
    assert by_id["ecog"].stage == by_id["cns_metastasis"].stage == "screening"
    assert "other_trial" not in by_id and by_id["hbsag_negative"].rule == "NOT hbsag_positive"
    assert len(by_id) == len(base.criteria.criterion)  # one removed, one added
    assert "age_max_years" not in sc.criteria.parameters
    assert {r.id for r in base.criteria.relaxations} - {r.id for r in sc.criteria.relaxations} == {
        "age_70", "age_75"}
    # the messages the README quotes
    bad = text.replace("[criteria.edit.cns_metastasis]", "[criteria.edit.cns_metastases]").replace(
        "age_years < 70", "age_yrs < 70")
    assert main(["validate", str(_write(tmp_path / "bad.toml", bad))]) == 2
    err = capsys.readouterr().err
    assert 'criteria.edit.cns_metastases: unknown criterion "cns_metastases" (did you mean ' \
           '"cns_metastasis"?)' in err, err
    assert 'criteria.edit.age_max.rule: unknown column "age_yrs" (did you mean "age_years"?)' in err, err


def test_edits_through_set_and_a_sweep_grid():
    from hn005_sim.scenario.overrides import load_grid, load_with_overrides

    sc, _ = load_with_overrides(BASELINE, ["criteria.edit.ecog.stage=screening"])
    assert {c.id: c.stage for c in sc.criteria.criterion}["ecog"] == "screening"
    points = load_grid(BASELINE, ["criteria.edit.hiv.enabled=true,false"])
    assert [("hiv" in {c.id for c in p.scenario.criteria.criterion}) for p in points] == [True, False]
    with pytest.raises(Exception, match=r'^--set: criteria\.edit\.not_de_nov: unknown criterion'):
        load_with_overrides(BASELINE, ["criteria.edit.not_de_nov.stage=screening"])
