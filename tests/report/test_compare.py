"""`hn005-sim compare`: comparison.csv against the summaries, overlaid charts against the stacked CSVs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from hn005_sim.cli import main

from . import report_checks as rc
from . import report_fixtures as rf


def _folders(tmp_path: Path) -> tuple[Path, Path]:
    a = rf.run_folder(tmp_path / "a", seed=2, rate=5.0)
    b = rf.run_folder(tmp_path / "b", seed=3, rate=7.0)
    # two folders of one scenario name: the second column becomes "baseline#2"
    return a, b


@pytest.mark.slow
def test_compare_output_folders(tmp_path: Path) -> None:
    a, b = _folders(tmp_path)
    out = tmp_path / "cmp"
    # different seeds (2 and 3): not paired, refused unless --allow-unpaired
    assert main(["compare", str(a), str(b), "--out", str(out), "--quiet"]) == 2
    assert not out.exists()
    assert main(["compare", str(a), str(b), "--out", str(out), "--quiet", "--allow-unpaired"]) == 0
    with (out / "comparison.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["metric", "baseline", "baseline#2", "difference_vs_first", "difference_low",
                       "difference_high", "within_noise", "difference_method"]
    table = {r[0]: r[1:] for r in rows[1:]}
    # folders carry no per-replicate figures: a plain difference, no interval
    p = table["prob_target_by_deadline"]
    assert float(p[2]) == pytest.approx(float(p[1]) - float(p[0]), abs=1e-6) and p[3] == p[4] == p[5] == ""
    assert "no interval" in p[6]
    sa, sb = (json.loads((f / "summary.json").read_text()) for f in (a, b))
    # every number in each summary, by its dotted key, and nothing else
    assert float(table["prob_target_by_deadline"][0]) == sa["prob_target_by_deadline"]
    assert float(table["time_to_target_months.p50"][1]) == sb["time_to_target_months"]["p50"]
    assert float(table["supply.penpulimab.units_p90"][0]) == sa["supply"]["penpulimab"]["units_p90"]
    n_numbers = sum(1 for _ in _leaves(sa))
    assert len(table) == n_numbers
    # overlaid curves: each scenario's rows of the stacked CSV are that scenario's own CSV
    with (out / "enrollment_curve.csv").open() as fh:
        stacked = list(csv.DictReader(fh))
    for name, folder in (("baseline", a), ("baseline#2", b)):
        mine = [{k: v for k, v in r.items() if k != "scenario"} for r in stacked if r["scenario"] == name]
        assert mine == rc.read_rows(folder / "enrollment_curve.csv")
    specs = rc.specs(out / "report.html")
    assert {"enrolment", "time_to_target", "drug_demand", "screen_failures"} <= set(specs)
    for name, spec in specs.items():
        assert rc.data_mismatches(out, spec) == [], name
    assert rc.external_loads(out / "report.html") == []


def _leaves(obj):
    if isinstance(obj, bool) or obj is None:
        return
    if isinstance(obj, int | float):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _leaves(v)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["only_one"], "two or more"),
        (["missing_a", "missing_b"], "no such file or folder"),
    ],
)
def test_compare_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, capsys, args, message) -> None:
    out = tmp_path / "cmp"
    assert main(["compare", *(str(tmp_path / a) for a in args), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()


def test_compare_refuses_a_folder_without_summary(tmp_path: Path, capsys) -> None:
    a, _ = _folders(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["compare", str(a), str(empty), "--out", str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err
    assert "not an output folder" in err and "empty" in err


def test_compare_cells_read_as_the_report_does():
    from hn005_sim.commands.compare import _fmt, replicate_mismatch

    assert _fmt(0.015, "prob_target_by_deadline") == "1.5%"
    ttt = {"time_to_target_months": {"p90": None}}
    assert _fmt(None, "time_to_target_months.p90", ttt) == "not reached"
    assert _fmt(None, "time_to_target_months.p90", {}) == ""  # this input has no such figure
    assert _fmt(None, "supply.anlotinib.x") == ""
    assert _fmt(61.7, "enrolled_by_deadline.p50") == "62"
    assert _fmt(0.123456, "some.other.number") == "0.1235"
    assert replicate_mismatch({"a": {"replicates": 200}, "b": {"replicates": 200}}) is None
    warning = replicate_mismatch({"a": {"replicates": 200}, "b": {"replicates": 20}, "c": {}})
    assert warning is not None and "a: 200" in warning and "b: 20" in warning


def test_compare_says_when_the_inputs_ask_different_questions():
    """P(target by the deadline) of a 12-month baseline beside a 24-month network is not one question."""
    from hn005_sim.commands.compare import question_mismatch

    same = {"target_enrolled": 110, "deadline_months": 12}
    assert question_mismatch({"a": same, "b": dict(same)}) is None
    warning = question_mismatch({"a": same, "b": {"target_enrolled": 110, "deadline_months": 24}})
    assert warning is not None and "deadline (months): a 12, b 24" in warning
    assert not warning.startswith("inputs differ in target")
    both = question_mismatch({"a": same, "b": {"target_enrolled": 120, "deadline_months": 24}})
    assert both is not None and "target: a 110, b 120" in both and "deadline" in both


def test_sites_needed_row_says_when_no_allocation_reaches_the_probability():
    from hn005_sim.report.tables import key_figures

    need = {"allocation": {"sponsor": 1}, "probability_of_success": 0.028, "feasible": False}
    row = key_figures({"sites_needed": need})[-1]
    assert row[1].startswith("not reachable") and "1 × sponsor" in row[1] and "2.8%" in row[1]
    row = key_figures({"sites_needed": {**need, "feasible": True, "probability_of_success": 0.86}})[-1]
    assert row[1] == "1 × sponsor: P = 86.0%"
