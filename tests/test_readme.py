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


def readme_inline_commands() -> list[str]:
    """`hn005-sim ...` commands quoted in the README's text (outside the command block)."""
    text = (ROOT / "README.md").read_text()
    text = re.sub(r"<!-- README-COMMANDS.*?<!-- /README-COMMANDS -->", "", text, flags=re.S)
    return sorted(set(re.findall(r"`(hn005-sim [^`]+)`", text)))


def readme_scenario_example() -> tuple[str, str]:
    """The README's example scenario: its path (from the comment) and its TOML."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```toml\n# (\S+\.toml)[^\n]*\n(.*?)```", text, re.S)
    assert block, "README.md has no example scenario"
    return block.group(1), block.group(2)


def test_readme_quotes_commands_inline():
    assert readme_inline_commands(), "README.md quotes no command in its text"


@pytest.mark.parametrize("command", readme_inline_commands(), ids=lambda c: c.split()[1])
def test_readme_inline_command_runs(command, tmp_path, monkeypatch, capsys):
    """Inline commands run from a project-like folder that also holds the README's example scenario, so the
    example is checked as a new user would write it (its `extends` relative to its own folder)."""
    for name in ("configs", "plans"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "scenarios").mkdir()
    for f in (ROOT / "scenarios").glob("*.toml"):
        (tmp_path / "scenarios" / f.name).symlink_to(f)
    path, toml_text = readme_scenario_example()
    (tmp_path / path).write_text(toml_text)
    monkeypatch.chdir(tmp_path)
    assert main(shlex.split(command)[1:]) == 0, command
    assert capsys.readouterr().out.strip()
