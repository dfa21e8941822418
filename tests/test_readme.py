"""Every command shown in the README runs and succeeds (STYLE: every example in the docs is executed)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from hn005_sim.cli import main

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- README-COMMANDS.*?```sh\n(.*?)```", text, re.S)
    assert block, "README.md has no README-COMMANDS block"
    return [ln.strip() for ln in block.group(1).splitlines() if ln.strip().startswith("hn005-sim ")]


def test_readme_has_quick_start():
    text = (ROOT / "README.md").read_text()
    assert "make run" in text and "make test" in text


@pytest.mark.slow
@pytest.mark.parametrize("command", readme_commands(), ids=lambda c: c.split()[1])
def test_readme_command_runs(command, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = shlex.split(command)[1:]
    # outputs go to a temporary folder, not the work tree
    args = [str(tmp_path / a) if a.startswith("out/") else a for a in args]
    assert main(args) == 0, command
    if "--out" in args:
        out = Path(args[args.index("--out") + 1])
        assert (out / "manifest.json").is_file()
