"""Start-up cost: a command pays only for the modules it uses (issue 16; times in bench/startup.py)."""

from __future__ import annotations

import subprocess
import sys

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
