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

ScenarioArg = Annotated[
    Path, typer.Argument(help="Scenario TOML file, e.g. scenarios/baseline.toml.", show_default=False)
]
SeedOpt = Annotated[
    int,
    typer.Option("--seed", min=0, help="Master random seed (default 20230901, the trial start); same seed, "
                 "same outputs."),
]


def check_out(value: Path | None) -> Path | None:
    """Refuse an output folder that cannot be one (a file, under a file, not writable) before any work."""
    if value is None:
        return None
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise typer.BadParameter(f"{path} exists and is not a folder")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise typer.BadParameter(f"{path} cannot be created: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise typer.BadParameter(f"{path} cannot be created: {parent} is not writable")
    return value


OutOpt = Annotated[
    Path,
    typer.Option("--out", help="Output folder (created; files replaced atomically).", callback=check_out),
]
ReplicatesOpt = Annotated[int, typer.Option("--replicates", min=1, help="Monte Carlo replicates.")]
JobsOpt = Annotated[int, typer.Option("--jobs", min=1, help="Worker processes; results do not depend on it.")]
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
