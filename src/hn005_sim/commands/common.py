"""Options and helpers shared by the commands."""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from hn005_sim.guards import MAX_JOBS, MAX_REPLICATES

ScenarioArg = Annotated[
    Path, typer.Argument(help="Scenario TOML file, e.g. scenarios/baseline.toml.", show_default=False)
]
SeedOpt = Annotated[
    int,
    typer.Option("--seed", min=0, help="Master random seed (default 20230901, the trial start); same seed, "
                 "same outputs."),
]


NAME_MAX = 255 - 40
"""Longest last component of --out: its staging folder `.NAME.partial-PID-old` must fit in 255 bytes."""


def _path_max() -> int:
    try:
        return os.pathconf("/", "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):
        return 4096


def _store_force(ctx: typer.Context, value: bool) -> bool:
    from hn005_sim.io import FORCE_KEY

    ctx.find_root().meta[FORCE_KEY] = bool(value)
    return value


ForceOpt = Annotated[
    bool,
    typer.Option("--force", is_eager=True, callback=_store_force,
                 help="Replace --out even when it is a non-empty folder holding no manifest.json of "
                 "hn005-sim (its contents are replaced whole)."),
]


def check_out(ctx: typer.Context, value: Path | None) -> Path | None:
    """Refuse an output folder that cannot be one (a file, under a file, not writable, a name too long,
    a non-empty folder of someone else's without --force) before any work."""
    from hn005_sim.io import FORCE_KEY, foreign_folder

    if value is None:
        return None
    path = Path(value)
    text = os.fsencode(path.absolute())
    if len(text) + NAME_MAX // 4 > _path_max():
        raise typer.BadParameter(f"the path is {len(text):,} bytes long; at most about "
                                 f"{_path_max() - NAME_MAX // 4:,} fit")
    longest = max((len(os.fsencode(part)) for part in path.absolute().parts), default=0)
    if longest > NAME_MAX:
        raise typer.BadParameter(f"a folder name is {longest} bytes long; at most {NAME_MAX} are allowed")
    try:
        path.exists()
    except OSError as exc:
        raise typer.BadParameter(f"{_cut(str(path))} cannot be used ({exc.strerror or exc})") from None
    if path.exists() and not path.is_dir():
        raise typer.BadParameter(f"{path} exists and is not a folder")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise typer.BadParameter(f"{path} cannot be created: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise typer.BadParameter(f"{path} cannot be created: {parent} is not writable")
    if foreign_folder(path) and not ctx.find_root().meta.get(FORCE_KEY, False):
        raise typer.BadParameter(f"{path} is not empty and holds no manifest.json of hn005-sim; its contents "
                                 "would be replaced (give --force to replace them)")
    return value


def _cut(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


OutOpt = Annotated[
    Path,
    typer.Option("--out", help="Output folder (created; replaced whole when the command has finished).",
                 callback=check_out),
]
def at_most(bound: int, why: str = ""):
    """Option callback: refuse a count above `bound` at parse time, before any work."""

    def check(ctx: typer.Context, param: typer.CallbackParam, value: int | None) -> int | None:
        if value is not None and value > bound:
            raise typer.BadParameter(f"{value:,} is more than the {bound:,} allowed{why}")
        return value

    return check


ReplicatesOpt = Annotated[int, typer.Option(
    "--replicates", min=1, callback=at_most(MAX_REPLICATES, " (MAX_REPLICATES)"),
    help="Monte Carlo replicates.")]
JobsOpt = Annotated[int, typer.Option(
    "--jobs", min=1, callback=at_most(MAX_JOBS, " (MAX_JOBS)"),
    help="Worker processes; results do not depend on it.")]
ExecutorOpt = Annotated[
    str,
    typer.Option(
        "--executor",
        help="'process' (local pool, default), 'dask-local[:WORKERS]' or 'dask://HOST:PORT'.",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]


class Format(StrEnum):
    table = "table"
    json = "json"


FormatOpt = Annotated[Format, typer.Option("--format", help="Console output: rich table or JSON.")]


def console(quiet: bool = False) -> Console:
    return Console(quiet=quiet, highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 120)


def print_json(obj: Any) -> None:
    from hn005_sim.io import _json_default

    sys.stdout.write(json.dumps(obj, indent=2, default=_json_default) + "\n")
