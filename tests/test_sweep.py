"""`--set` overrides and `hn005-sim sweep`: parsing, the grid, validation before work, common random
numbers, identical results on every executor, and the files written."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from hn005_sim.cli import main
from hn005_sim.scenario.errors import ConfigError
from hn005_sim.scenario.load import load_scenario, read_raw
from hn005_sim.scenario.overrides import (
    ALIASES,
    MAX_GRID_POINTS,
    apply,
    format_value,
    grid,
    load_grid,
    load_with_overrides,
    parse_key,
    parse_set,
    parse_sets,
    parse_values,
)

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.toml"
BASE_DIR = ROOT / "configs" / "alter_hn005"


# ---------------------------------------------------------------- parsing --set


@pytest.mark.parametrize(("text", "values"), [
    ("5,10,20", (5, 10, 20)),
    ("0.5, 0.75", (0.5, 0.75)),
    ("true,false", (True, False)),
    ("2024-01-01,2024-06-30", (dt.date(2024, 1, 1), dt.date(2024, 6, 30))),
    ('"a,b",c', ("a,b", "c")),
    ("analytic,des", ("analytic", "des")),
    ('{dist = "constant", value = 3},[1, 2]', ({"dist": "constant", "value": 3}, [1, 2])),
    ("'literal', 7", ("literal", 7)),
    ("nan", (pytest.approx(float("nan"), nan_ok=True),)),
])
def test_values_are_toml_literals(text, values):
    assert parse_values("k", text) == values


@pytest.mark.parametrize("text", ["__import__('os').system('true')", "1,,2", "", "(1)", "a b", "1\n2"])
def test_values_never_evaluated(text):
    """Anything not a TOML literal or a bare word is refused with one line naming --set and the key."""
    with pytest.raises(ConfigError) as exc:
        parse_values("trial.target_enrolled", text)
    [problem] = exc.value.problems
    assert problem.file == "--set" and problem.path == "trial.target_enrolled"
    assert "\n" not in str(problem)


def test_keys_and_aliases():
    assert parse_key("recruitment.regions[1].sites") == ("recruitment", "regions", 1, "sites")
    assert parse_key("a.b[0][2].c") == ("a", "b", 0, 2, "c")
    assert parse_key("sites.count") == parse_key(ALIASES["sites.count"].real)
    for bad in ("a..b", ".a", "a.", "a[x]", "a b", "a.[0]"):
        with pytest.raises(ConfigError):
            parse_key(bad)


@pytest.mark.parametrize("text", ["novalue", "=1", " = 1"])
def test_set_needs_key_equals_values(text):
    with pytest.raises(ConfigError) as exc:
        parse_set(text)
    assert "expected KEY=VALUE" in str(exc.value)


def test_same_key_twice_refused():
    with pytest.raises(ConfigError, match="given twice"):
        parse_sets(["trial.target_enrolled=1", "trial.target_enrolled=2"])
    with pytest.raises(ConfigError, match="given twice"):  # an alias and its real key are the same key
        parse_sets(["sites.count=1", f"{ALIASES['sites.count'].real}=2"])


# ---------------------------------------------------------------- the grid


def test_grid_is_the_cartesian_product_last_key_fastest():
    sets = ["a=1,2,3", "b=x,y", "c=true,false"]
    points = grid(parse_sets(sets))
    expected = [{"a": a, "b": b, "c": c} for a in (1, 2, 3) for b in ("x", "y") for c in (True, False)]
    assert points == expected
    assert len(points) == 3 * 2 * 2


def test_absurd_grid_refused_before_work():
    n = int(MAX_GRID_POINTS ** 0.5) + 1
    values = ",".join(str(i) for i in range(1, n + 1))
    with pytest.raises(ConfigError, match="the grid has"):
        grid(parse_sets([f"a={values}", f"b={values}"]))


def test_apply_sets_values_and_marks_origin():
    raw = read_raw(BASELINE)
    path = parse_key("trial.target_enrolled")
    new = apply(raw, [("trial.target_enrolled", path, 77)])
    assert new.data["trial"]["target_enrolled"] == 77
    assert raw.data["trial"]["target_enrolled"] != 77  # the original is untouched
    assert new.origins[("trial", "target_enrolled")] == "--set"


def test_override_equals_the_same_change_written_in_a_file(tmp_path):
    """`--set` and an overlay file that extends the scenario give the same validated scenario."""
    overlay = tmp_path / "overlay.toml"
    overlay.write_text(f'extends = "{BASELINE}"\n[trial]\ntarget_enrolled = 77\ndeadline_months = 24.5\n')
    by_file, _ = load_scenario(overlay)
    by_set, _ = load_with_overrides(BASELINE, ["trial.target_enrolled=77", "trial.deadline_months=24.5"])
    assert by_set == by_file


@pytest.mark.parametrize(("sets", "expected"), [
    (["trial.target_enrolld=1,2"], "--set: trial.target_enrolld: unknown key"),
    (["nowhere.x=1"], "--set: nowhere: unknown key"),
    (["trial.target_enrolled=0,5"], "--set: trial.target_enrolled: must be > 0, got 0"),
    (["trial.target_enrolled=ten"], '--set: trial.target_enrolled: must be an integer, got "ten"'),
    (["trial.deadline_months=nan"], "--set: trial.deadline_months: must be a finite number, got nan"),
    (["trial.name.first=1"], "--set: trial.name.first: trial.name is not a table"),
    (["recruitment.regions[9].sites=1"], "--set: recruitment.regions[9].sites: recruitment.regions has"),
])
def test_bad_overrides_are_one_line_naming_set_and_key(sets, expected):
    with pytest.raises(ConfigError) as exc:
        load_grid(BASELINE, sets)
    lines = [str(p) for p in exc.value.problems]
    assert any(line.startswith(expected) for line in lines), lines


def test_bad_criteria_threshold_is_one_problem_naming_set():
    """A threshold of the wrong type is one problem, not one more per rule that uses it."""
    with pytest.raises(ConfigError) as exc:
        load_grid(BASELINE, ["criteria.crcl_min_ml_min=fifty"])
    lines = [str(p) for p in exc.value.problems]
    assert lines == ['--set: criteria.overrides.crcl_min_ml_min: must be like the parameter\'s value 60.0, '
                     'got "fifty"'], lines


def test_every_point_validated_and_each_problem_reported_once():
    with pytest.raises(ConfigError) as exc:
        load_grid(BASELINE, ["trial.target_enrolled=10,0,-3", "trial.deadline_months=12,24"])
    lines = [str(p) for p in exc.value.problems]
    assert lines == ["--set: trial.target_enrolled: must be > 0, got 0",
                     "--set: trial.target_enrolled: must be > 0, got -3"]


def test_sites_count_alias():
    points = load_grid(BASELINE, ["sites.count=1,3"])
    assert [p.scenario.recruitment.regions[0].sites for p in points] == [1, 3]
    assert [len(p.scenario.recruitment.regions[0].names()) for p in points] == [1, 3]


def test_criteria_threshold_shortcut():
    raw = read_raw(BASELINE).data
    if "criteria" not in raw:
        pytest.fail("the baseline scenario has no [criteria] section")
    points = load_grid(BASELINE, ["criteria.crcl_min_ml_min=50,60"])
    assert [p.scenario.criteria.values()["crcl_min_ml_min"] for p in points] == [50, 60]


def test_format_value():
    assert [format_value(v) for v in (5, 0.5, True, "des", dt.date(2024, 1, 2), [1, 2], {"a": 1})] == [
        "5", "0.5", "true", "des", "2024-01-02", "[1,2]", '{"a":1}']


# ---------------------------------------------------------------- the command


def _toml_scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dt.date):
        return v.isoformat()
    return repr(v)


@pytest.fixture(scope="module")
def fast_scenario(tmp_path_factory) -> Path:
    """The baseline's trial, population, criteria and sites without the supply chain (which dominates
    run time), judged by fixed funnel probabilities, with a small target: a replicate takes milliseconds."""
    folder = tmp_path_factory.mktemp("sweep")
    base = tomllib.loads((BASE_DIR / "base.toml").read_text())
    extends = [str(BASE_DIR / e) for e in base["extends"] if e not in ("supply.toml", "regimen.toml")]
    trial = {**base["trial"], "target_enrolled": 12, "deadline_months": 12}
    lines = [f"extends = {json.dumps(extends)}", 'name = "sweep_test"', "[trial]"]
    lines += [f"{k} = {_toml_scalar(v)}" for k, v in trial.items()]
    lines += [
        "[recruitment.funnel]",
        'prescreen_pass = { value = 0.5, source = "assumption: test" }',
        'screen_pass = { value = 0.6, source = "assumption: test" }',
        'bsa_m2 = { dist = "constant", value = 1.7, source = "assumption: test" }',
    ]
    path = folder / "fast.toml"
    path.write_text("\n".join(lines) + "\n")
    sc, _ = load_scenario(path)
    assert sc.recruitment is not None and getattr(sc, "supply", None) is None
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def sweep(args: list[str], capsys) -> tuple[int, str]:
    code = main(["sweep", *args, "--quiet"])
    return code, capsys.readouterr().err


SETS = ["--set", "trial.target_enrolled=8,12", "--set", "recruitment.funnel.screen_pass.value=0.5,0.7"]


def test_sweep_rows_equal_runs_of_each_scenario(fast_scenario, tmp_path, capsys):
    """Each sweep row is what `run` gives for that scenario written as a file, with the same seed:
    the overrides are applied as a file would, and every grid point uses the same seed."""
    out = tmp_path / "sweep"
    args = [str(fast_scenario), *SETS, "--replicates", "12", "--seed", "7", "--out", str(out)]
    assert sweep(args, capsys)[0] == 0
    rows = read_csv(out / "sweep.csv")
    assert [(r["trial.target_enrolled"], r["recruitment.funnel.screen_pass.value"]) for r in rows] == list(
        itertools.product(["8", "12"], ["0.5", "0.7"]))
    grid_json = json.loads((out / "grid.json").read_text())
    for row, point in zip(rows, grid_json, strict=True):
        overlay = tmp_path / f"point{point['point']}.toml"
        overlay.write_text(
            f'extends = "{fast_scenario}"\n[trial]\ntarget_enrolled = {row["trial.target_enrolled"]}\n'
            f'[recruitment.funnel.screen_pass]\nvalue = {row["recruitment.funnel.screen_pass.value"]}\n')
        run_out = tmp_path / f"run{point['point']}"
        assert main(["run", str(overlay), "--replicates", "12", "--seed", "7", "--out", str(run_out),
                     "--quiet"]) == 0
        summary = json.loads((run_out / "summary.json").read_text())
        for key in ("prob_target_by_deadline", "time_to_target_months", "enrolled_by_deadline", "screened",
                    "screen_failure_rate", "sites_zero_enrolled_fraction", "funnel_mean"):
            assert point["summary"][key] == summary[key], key
        p50 = summary["time_to_target_months"]["p50"]
        assert row["time_to_target_p50"] == ("" if p50 is None else str(p50))
        assert float(row["prob_target_by_deadline"]) == summary["prob_target_by_deadline"]
        assert row["eligible_fraction"] == ""  # a funnel scenario does not use the criteria


def test_common_random_numbers_make_time_to_target_monotone(fast_scenario, tmp_path, capsys):
    """With the same seeds, replicate r of target n+k re-lives replicate r of target n and goes on, so
    every quantile of the time to target rises with the target. Independent seeds per point would
    break this often with 10 replicates."""
    out = tmp_path / "crn"
    targets = "4,5,6,7,8,9,10,11,12"
    assert sweep([str(fast_scenario), "--set", f"trial.target_enrolled={targets}", "--replicates", "10",
                  "--seed", "3", "--out", str(out)], capsys)[0] == 0
    grid_json = json.loads((out / "grid.json").read_text())
    for q in ("p10", "p50", "p90"):
        series = [p["summary"]["time_to_target_months"][q] for p in grid_json]
        assert all(a is not None for a in series)
        assert series == sorted(series), (q, series)


@pytest.mark.slow
def test_sweep_identical_for_jobs_1_and_2(fast_scenario, tmp_path, capsys):
    args = [str(fast_scenario), *SETS, "--replicates", "16", "--seed", "11"]
    assert sweep([*args, "--jobs", "1", "--out", str(tmp_path / "j1")], capsys)[0] == 0
    assert sweep([*args, "--jobs", "2", "--out", str(tmp_path / "j2")], capsys)[0] == 0
    assert (tmp_path / "j1" / "sweep.csv").read_bytes() == (tmp_path / "j2" / "sweep.csv").read_bytes()
    assert (tmp_path / "j1" / "grid.json").read_bytes() == (tmp_path / "j2" / "grid.json").read_bytes()


@pytest.mark.slow
def test_sweep_identical_on_dask(fast_scenario, tmp_path, capsys):
    """A Dask cluster reached by address (as a remote one would be) and dask-local give the local result."""
    from distributed import LocalCluster

    args = [str(fast_scenario), *SETS, "--replicates", "16", "--seed", "11"]
    assert sweep([*args, "--out", str(tmp_path / "local")], capsys)[0] == 0
    assert sweep([*args, "--executor", "dask-local:2", "--out", str(tmp_path / "dl")], capsys)[0] == 0
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      scheduler_port=0, silence_logs=50) as cluster:
        address = cluster.scheduler_address.removeprefix("tcp://")
        assert sweep([*args, "--executor", f"dask://{address}", "--out", str(tmp_path / "remote")],
                     capsys)[0] == 0
    expected = (tmp_path / "local" / "sweep.csv").read_bytes()
    assert (tmp_path / "dl" / "sweep.csv").read_bytes() == expected
    assert (tmp_path / "remote" / "sweep.csv").read_bytes() == expected
    assert json.loads((tmp_path / "remote" / "manifest.json").read_text())["executor"] == f"dask://{address}"


def test_sweep_files_and_report(fast_scenario, tmp_path, capsys):
    out = tmp_path / "files"
    args = [str(fast_scenario), *SETS, "--replicates", "4", "--seed", "1", "--out", str(out)]
    assert sweep(args, capsys)[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["charts", "grid.json", "manifest.json", "report.html",
                                                      "sweep.csv"]
    header = (out / "sweep.csv").read_text().splitlines()[0].split(",")
    assert header[:7] == ["trial.target_enrolled", "recruitment.funnel.screen_pass.value",
                          "prob_target_by_deadline", "time_to_target_p50", "enrolled_by_deadline_p50",
                          "screen_failure_rate_p50", "eligible_fraction"]
    man = json.loads((out / "manifest.json").read_text())
    assert man["command"] == "sweep" and man["seed"] == 1 and man["replicates"] == 4
    assert man["grid_points"] == 4 and man["set"] == [SETS[1], SETS[3]]
    page = (out / "report.html").read_text()
    assert "<script src" not in page and "<link" not in page  # self-contained: Vega is inlined
    start = page.index('data-chart="sweep">') + len('data-chart="sweep">')
    spec = json.loads(page[start:page.index("</script>", start)])
    drawn = spec["datasets"]["sweep"]
    rows = read_csv(out / "sweep.csv")
    assert [(d["k0"], d["k1"]) for d in drawn] == [(float(r[header[0]]), r[header[1]]) for r in rows]
    probs = [float(r["prob_target_by_deadline"]) for r in rows]
    assert [d["prob_target_by_deadline"] for d in drawn] == probs
    assert (out / "charts" / "sweep.png").stat().st_size > 1000


def test_sweep_bad_key_refused_before_any_work(fast_scenario, tmp_path, capsys, monkeypatch):
    import hn005_sim.montecarlo as mc

    def no_work(*a, **k):
        raise AssertionError("a simulation started although a grid point is invalid")

    monkeypatch.setattr(mc, "run_scenario", no_work)
    out = tmp_path / "never"
    code, err = sweep([str(fast_scenario), "--set", "trial.target_enrolled=5,6",
                       "--set", "recruitment.funnel.screen_pass.value=0.5,1.5", "--out", str(out)], capsys)
    assert code == 2
    assert err.splitlines() == ["--set: recruitment.funnel.screen_pass.value: must be <= 1, got 1.5"]
    assert not out.exists() and not list(tmp_path.glob(".never.partial-*"))


def test_sweep_too_big_for_memory_refused_before_any_work(fast_scenario, tmp_path, capsys, monkeypatch):
    """A grid point with a target of 10^12 would need hundreds of TB: refused with the estimate before
    the first point runs (not after the others have)."""
    import hn005_sim.montecarlo as mc

    def no_work(*a, **k):
        raise AssertionError("a simulation started although a grid point cannot fit in memory")

    monkeypatch.setattr(mc, "run_scenario", no_work)
    out = tmp_path / "never"
    code, err = sweep([str(fast_scenario), "--set", f"trial.target_enrolled=5,{10**12}", "--out", str(out)],
                      capsys)
    assert code == 2
    [line] = err.splitlines()
    assert line.startswith(f"hn005-sim: sweep point 2 (trial.target_enrolled={10**12}; 200 replicates) "
                           "would need about "), line
    assert "of memory; this machine has" in line and "trial.target_enrolled up to about" in line, line
    assert not out.exists() and not list(tmp_path.glob(".never.partial-*"))


@pytest.mark.parametrize(("args", "needle"), [
    ([], "sweep needs at least one --set"),
    (["--set", "trial.target_enrolled=5", "--executor", "ray"], "--executor 'ray'"),
    (["--set", "trial.typo=5"], "--set: trial.typo: unknown key"),
])
def test_sweep_bad_command_line(fast_scenario, tmp_path, capsys, args, needle):
    code, err = sweep([str(fast_scenario), *args, "--out", str(tmp_path / "x")], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "x").exists()


def scale_doc_commands() -> list[str]:
    text = (ROOT / "docs" / "scale.md").read_text()
    block = re.search(r"<!-- SCALE-COMMANDS.*?```sh\n(.*?)```", text, re.S)
    assert block, "docs/scale.md has no SCALE-COMMANDS block"
    return [ln.strip() for ln in block.group(1).splitlines() if ln.strip().startswith("hn005-sim ")]


@pytest.mark.slow
@pytest.mark.parametrize("command", scale_doc_commands())
def test_docs_scale_commands_run(command, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = [str(tmp_path / a) if a.startswith("out/") else a for a in shlex.split(command)[1:]]
    assert main([*args, "--quiet"]) == 0, command
    out = Path(args[args.index("--out") + 1])
    rows = read_csv(out / "sweep.csv")
    assert len(rows) == 4 and all(r["eligible_fraction"] for r in rows)
    # a lower CrCl threshold can only admit more candidates (same candidates at every point)
    by_crcl = {r["criteria.crcl_min_ml_min"]: float(r["eligible_fraction"]) for r in rows}
    assert by_crcl["50"] >= by_crcl["60"]


@pytest.mark.slow  # the client waits 10 s for the scheduler
def test_unreachable_dask_scheduler_is_one_line(fast_scenario, tmp_path, capsys):
    code, err = sweep([str(fast_scenario), "--set", "trial.target_enrolled=5", "--executor",
                       "dask://127.0.0.1:9", "--out", str(tmp_path / "x")], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and "cannot reach the Dask scheduler" in err, err


def test_sweep_paired_differences_and_supply_figures(tmp_path, capsys):
    """sweep.csv: supply figures per drug, and each figure's difference from the first point with its
    paired interval; a point equal to the first differs by exactly 0 with a zero-width interval, and
    the interval of a changed point is numpy's on the per-replicate figures (grid.json has none, so
    they are rebuilt here from `run` folders with the same seed)."""
    import numpy as np
    from scipy import stats

    scen = tmp_path / "s.toml"
    base = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.toml"
    scen.write_text(
        f'extends = "{base}"\nname = "s"\n[trial]\ntarget_enrolled = 12\n'
        '[recruitment.funnel]\nprescreen_pass = { value = 0.5, source = "test: fixed funnel" }\n'
        'screen_pass = { value = 0.7, source = "test: fixed funnel" }\n'
        'bsa_m2 = { dist = "constant", value = 1.7, source = "test: fixed funnel" }\n')
    out = tmp_path / "sw"
    args = [str(scen), "--set", "trial.deadline_months=24,24,1", "--replicates", "10", "--seed", "5",
            "--out", str(out)]
    assert sweep(args, capsys)[0] == 0
    rows = read_csv(out / "sweep.csv")
    assert {"anlotinib_stockout_probability", "penpulimab_units_p95",
            "capecitabine_out_of_stock_probability"} <= set(rows[0])
    m = "prob_target_by_deadline"
    for r in rows[:2]:  # the first point and its copy
        assert float(r[f"difference_vs_first.{m}"]) == 0.0
        assert float(r[f"difference_low.{m}"]) == float(r[f"difference_high.{m}"]) == 0.0
        assert r[f"within_noise.{m}"] == "true"
        assert float(r["difference_vs_first.penpulimab_units_p95"]) == 0.0
    # a one-month deadline: per replicate, reached by the deadline or not, from run's time_to_target.csv
    per = []
    for months in (24, 1):
        o = tmp_path / f"run{months}"
        overlay = tmp_path / f"d{months}.toml"
        overlay.write_text(f'extends = "{scen}"\n[trial]\ndeadline_months = {months}\n')
        assert main(["run", str(overlay), "--replicates", "10", "--seed", "5", "--out", str(o),
                     "--quiet"]) == 0
        ttt = read_csv(o / "time_to_target.csv")
        per.append(np.array([t["time_to_target_months"] != "" and float(t["time_to_target_months"]) <= months
                             for t in ttt], dtype=float))
    d = per[1] - per[0]
    half = stats.norm.ppf(0.975) * d.std(ddof=1) / np.sqrt(d.size)
    r = rows[2]
    assert float(r[f"difference_vs_first.{m}"]) == pytest.approx(d.mean(), abs=1e-6)
    assert float(r[f"difference_low.{m}"]) == pytest.approx(d.mean() - half, abs=1e-6)
    assert float(r[f"difference_high.{m}"]) == pytest.approx(d.mean() + half, abs=1e-6)
