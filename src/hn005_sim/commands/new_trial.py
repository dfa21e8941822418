"""`hn005-sim new-trial NAME`: scaffold configs/NAME/ and scenarios/NAME.toml from the commented template."""

from __future__ import annotations

import os
import re
import string
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from hn005_sim.commands.common import QuietOpt, console

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
CONFIG_FILES = ("base.toml", "criteria.toml", "regimen.toml", "supply.toml", "comparators.toml")
SHIPPED = Path(__file__).resolve().parents[3] / "configs" / "alter_hn005"
"""The shared R/M NPC candidate population and sponsor site a new trial starts from."""


def _relative(target: Path, start: Path, root: Path) -> str:
    """`target` relative to the folder `start` when both are inside `root` (POSIX separators), else
    absolute: a trial scaffolded outside the project extends the shipped files by their full path."""
    target = target.resolve()
    if not target.is_relative_to(root.resolve()):
        return target.as_posix()
    return Path(os.path.relpath(target, start.resolve())).as_posix()


def scaffold(name: str, root: Path, title: str | None = None, base: Path = SHIPPED) -> list[Path]:
    """Write configs/NAME/*.toml and scenarios/NAME.toml under `root`; return the files written.

    Refuses (typer.BadParameter, one line) a bad name, an existing trial or scenario, or a missing
    population/sites source, before writing anything.
    """
    if not NAME_PATTERN.match(name):
        raise typer.BadParameter(f"{name!r}: expected 2-40 characters, lower-case letters, digits and _, "
                                 "starting with a letter", param_hint="NAME")
    cfg, scn = root / "configs" / name, root / "scenarios" / f"{name}.toml"
    for path in (cfg, scn):
        if path.exists():
            raise typer.BadParameter(f"{path} already exists; choose another name", param_hint="NAME")
    population, sites, chart = base / "population.toml", base / "sites.toml", base / "chart_review.toml"
    for path in (population, sites, chart):
        if not path.is_file():
            raise typer.BadParameter(f"{path} not found: the population, sites and chart review a new trial "
                                     "extends", param_hint="--from")
    values = {"name": name, "title": title or name.upper().replace("_", "-"),
              "population": _relative(population, cfg, root), "sites": _relative(sites, cfg, root),
              "chart_review": _relative(chart, cfg, root),
              "base": f"../configs/{name}/base.toml"}
    template = resources.files("hn005_sim") / "trial_template"

    def fill(file: str) -> str:
        return string.Template(template.joinpath(file).read_text()).substitute(values)

    texts = {cfg / f: fill(f) for f in CONFIG_FILES}
    texts[scn] = fill("scenario.toml")
    cfg.mkdir(parents=True)
    scn.parent.mkdir(parents=True, exist_ok=True)
    for path, text in texts.items():
        path.write_text(text)
    return list(texts)


def new_trial(
    name: Annotated[str, typer.Argument(
        help="Trial folder name: lower-case letters, digits, _ (e.g. my_trial).", show_default=False)],
    root: Annotated[Path, typer.Option(
        "--root", help="Project folder holding configs/ and scenarios/.")] = Path("."),
    title: Annotated[str | None, typer.Option(
        "--title", help="The trial's title (default: NAME upper-cased, _ as -).")] = None,
    base: Annotated[Path, typer.Option("--from", help="Folder whose population.toml and sites.toml the trial "
                                       "extends.", show_default="configs/alter_hn005")] = SHIPPED,
    quiet: QuietOpt = False,
) -> None:
    """Scaffold configs/NAME/ (base, criteria, regimen, supply, comparators) and scenarios/NAME.toml from a
    commented template that validates as written.

    Then fill in criteria.toml and regimen.toml from the protocol and check them, e.g.
    `hn005-sim new-trial my_trial`, `hn005-sim validate scenarios/my_trial.toml`,
    `hn005-sim screen scenarios/my_trial.toml --out out/my_trial`. Refuses an existing name.
    """
    written = scaffold(name, root, title, base)
    con = console(quiet)
    con.print(f"wrote {', '.join(str(p) for p in written)}")
    con.print(f"next: hn005-sim validate {written[-1]}")
