"""Loading scenarios: extends, deep merge, and problems reported with the file and key that caused them."""

from __future__ import annotations

from pathlib import Path

import pytest

from hn005_sim.cli import main
from hn005_sim.scenario.errors import ConfigError
from hn005_sim.scenario.load import read_raw

BASE = """
name = "base"
[trial]
target_enrolled = 110
start_date = 2023-09-01
deadline_months = 24
[extra]
list = [1, 2, 3]
nested = { a = 1, b = 2 }
"""


def write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_deep_merge_tables_merge_and_lists_are_replaced(tmp_path):
    write(tmp_path, "base.toml", BASE)
    child = write(
        tmp_path, "s/child.toml",
        'extends = "../base.toml"\nname = "child"\n[extra]\nlist = [9]\nnested = { b = 5 }\n',
    )
    raw = read_raw(child)
    assert raw.data["name"] == "child"
    assert raw.data["extra"]["list"] == [9]
    assert raw.data["extra"]["nested"] == {"a": 1, "b": 5}
    assert raw.data["trial"]["target_enrolled"] == 110
    # each key remembers the file that set it
    assert raw.origins[("extra", "nested", "b")].endswith("child.toml")
    assert raw.origins[("extra", "nested", "a")].endswith("base.toml")


def test_extends_list_merges_left_to_right(tmp_path):
    write(tmp_path, "a.toml", "[x]\nv = 1\nw = 1\n")
    write(tmp_path, "b.toml", "[x]\nv = 2\n")
    top = write(tmp_path, "top.toml", 'extends = ["a.toml", "b.toml"]\n')
    assert read_raw(top).data["x"] == {"v": 2, "w": 1}


def test_extends_cycle_is_reported(tmp_path):
    write(tmp_path, "a.toml", 'extends = "b.toml"\n')
    b = write(tmp_path, "b.toml", 'extends = "a.toml"\n')
    with pytest.raises(ConfigError, match="extends cycle"):
        read_raw(b)


def test_missing_extends_names_the_file_and_key(tmp_path):
    a = write(tmp_path, "a.toml", 'extends = "nope.toml"\n')
    with pytest.raises(ConfigError) as info:
        read_raw(a)
    (problem,) = info.value.problems
    assert problem.path == "extends" and "file not found" in problem.message


def run_validate(path: Path, capsys) -> tuple[int, str]:
    code = main(["validate", str(path)])
    return code, capsys.readouterr().err


def test_validate_reports_every_problem_with_file_and_path(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "base.toml", BASE.replace("[extra]\nlist = [1, 2, 3]\nnested = { a = 1, b = 2 }\n", ""))
    write(
        tmp_path, "scenarios/x.toml",
        'extends = "../base.toml"\nname = "x"\n[trial]\ntarget_enrolled = "forty"\ndeadline_months = -3\n'
        "colour = 1\n",
    )
    code, err = run_validate(Path("scenarios/x.toml"), capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert 'scenarios/x.toml: trial.target_enrolled: must be an integer, got "forty"' in lines
    assert "scenarios/x.toml: trial.deadline_months: must be > 0, got -3" in lines
    assert "scenarios/x.toml: trial.colour: unknown key" in lines
    assert "Traceback" not in err


def test_broken_toml_is_one_line(tmp_path, capsys):
    bad = write(tmp_path, "bad.toml", "name = \n")
    code, err = run_validate(bad, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "invalid TOML" in err
