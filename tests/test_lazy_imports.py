"""Start-up cost: a command pays only for the modules it uses (issue 16; times in bench/startup.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hn005_sim.cli import COMMANDS, app


def loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_command_line_imports_no_command_module_until_one_runs():
    mods = loaded_after("import hn005_sim.cli")
    heavy = {"altair", "vl_convert", "scipy.stats", "scipy.optimize", "simpy", "hn005_sim.commands.run",
             "hn005_sim.recruitment.planning", "hn005_sim.report"}
    assert not heavy & mods, heavy & mods


def test_run_imports_no_report_library_before_writing_a_report():
    mods = loaded_after("import hn005_sim.commands.run, hn005_sim.montecarlo")
    assert not {"altair", "vl_convert", "scipy.stats"} & mods


def test_every_command_is_listed_and_builds(capsys):
    import typer.main

    group = typer.main.get_command(app)
    assert group.list_commands(None)[: len(COMMANDS)] == list(COMMANDS)
    for name in COMMANDS:
        cmd = group.get_command(None, name)
        assert cmd is not None and cmd.name == name, name
        assert cmd.callback is not None and cmd.params, name
    assert group.get_command(None, "no-such-command") is None



def test_building_every_chart_of_runs_report_imports_no_altair(tmp_path):
    """Every chart of `run`'s report (and of `screen`, `sites`, `supply`) is written as a Vega-Lite dict
    (issue 16): the chart builders, given every file they draw, load no altair. (The package's
    __init__ is bypassed, so that only the builders are measured; the whole run is the next test.)"""
    from tests.report import report_fixtures as rf

    folder = rf.full_folder(tmp_path / "out")
    mods = loaded_after(
        "import sys, types\n"
        "from pathlib import Path\n"
        "import polars as pl\n"
        "import hn005_sim\n"
        "pkg = types.ModuleType('hn005_sim.report')\n"
        "pkg.__path__ = [str(Path(hn005_sim.__file__).parent / 'report')]\n"
        "sys.modules['hn005_sim.report'] = pkg\n"
        "from hn005_sim.report import charts as ch\n"
        f"d = Path({str(folder)!r})\n"
        "r = lambda name: pl.read_csv(d / name)\n"
        "built = [ch.enrolment_fan(r('enrollment_curve.csv'), target=[110.0], deadline=[24.0]),\n"
        "         ch.time_to_target(r('time_to_target.csv'), deadline=[24.0]),\n"
        "         ch.screen_failures(r('screen_failures.csv')), ch.sites(r('sites.csv')),\n"
        "         ch.site_curve(r('curve.csv'), probability=0.8), ch.funnel(r('funnel.csv')),\n"
        "         ch.criteria(r('criteria.csv')), ch.cofailure(r('cofailure.csv')),\n"
        "         ch.sweeps(r('sweeps.csv')),\n"
        "         ch.relaxation(r('relaxation.csv')), ch.drug_demand(r('drug_demand.csv')),\n"
        "         ch.inventory(r('inventory.csv'))]\n"
        "assert all(c.spec['datasets'] for c in built)")
    assert "hn005_sim.report.charts.supply" in mods and "hn005_sim.report.build" not in mods
    assert not {m for m in mods if m == "altair" or m.startswith("altair.")}


def test_a_whole_run_with_its_report_imports_no_altair(tmp_path):
    """`run`, report included, loads no altair (issue 16: ~0.35 s of import and the building it did); the
    Vega-Lite version comes from charts.common.SCHEMA_URL, which tests/report/test_chart_specs.py keeps
    equal to altair's."""
    out = tmp_path / "run"
    scenario = str(Path(__file__).resolve().parents[1] / "scenarios" / "baseline.toml")
    args = ["run", scenario, "--replicates", "2", "--seed", "1", "--out", str(out), "-q"]
    mods = loaded_after(f"from hn005_sim.cli import main\nassert main({args!r}) == 0")
    assert (out / "report.html").is_file()
    assert "hn005_sim.report.build" in mods
    assert not {m for m in mods if m == "altair" or m.startswith("altair.")}
