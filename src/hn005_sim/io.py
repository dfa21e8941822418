"""Output directories written atomically, and the run manifest.

Files are written into a hidden staging folder beside DIR; only when the command has finished are they
moved into DIR (each by an atomic rename). An error or Ctrl-C removes the staging folder, so DIR never
holds a half-written set of outputs.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

import hn005_sim

PACKAGES = ("numpy", "scipy", "simpy", "polars", "pydantic", "altair", "vl-convert-python", "typer")


class OutputDir:
    """A staging folder whose files land in `final` on commit."""

    def __init__(self, final: Path, staging: Path):
        self.final = final
        self.path = staging
        self.started = time.perf_counter()

    def file(self, name: str) -> Path:
        p = self.path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_json(self, name: str, obj: Any) -> Path:
        p = self.file(name)
        p.write_text(json.dumps(obj, indent=2, default=_json_default, allow_nan=False) + "\n")
        return p

    def write_csv(self, name: str, frame: pl.DataFrame) -> Path:
        p = self.file(name)
        frame.write_csv(p)
        return p

    def write_rows(self, name: str, header: list[str], rows: list[list[Any]]) -> Path:
        p = self.file(name)
        with p.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)
        return p

    def write_parquet(self, name: str, frame: pl.DataFrame) -> Path:
        p = self.file(name)
        frame.write_parquet(p)
        return p

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def _json_default(o: Any) -> Any:
    if isinstance(o, dt.date | dt.datetime):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


class OutputError(Exception):
    """The output folder cannot be written (one line, exit 2)."""


def _cannot_write(final: Path, exc: OSError) -> OutputError:
    return OutputError(f"--out {final}: cannot write there ({exc.strerror or exc})")


@contextmanager
def output_dir(final: str | Path) -> Iterator[OutputDir]:
    final = Path(final)
    staging = final.parent / f".{final.name}.partial-{os.getpid()}"
    try:
        if final.exists() and not final.is_dir():
            raise NotADirectoryError(20, "exists and is not a folder")
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    except OSError as exc:
        raise _cannot_write(final, exc) from None
    out = OutputDir(final, staging)
    try:
        yield out
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        final.mkdir(parents=True, exist_ok=True)
        for src in sorted(staging.rglob("*")):
            if src.is_file():
                dst = final / src.relative_to(staging)
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
    except OSError as exc:
        raise _cannot_write(final, exc) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def manifest(
    command: str,
    *,
    scenario_path: str | Path | None = None,
    scenario_sha256: str | None = None,
    resolved_config: dict[str, Any] | None = None,
    seed: int | None = None,
    replicates: int | None = None,
    wall_time_s: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What produced an output folder; same inputs give the same manifest except wall time."""
    return {
        "tool": "hn005-sim",
        "tool_version": hn005_sim.__version__,
        "command": command,
        "argv": sys.argv[1:],
        "scenario_path": str(scenario_path) if scenario_path is not None else None,
        "scenario_sha256": scenario_sha256,
        "seed": seed,
        "replicates": replicates,
        "wall_time_s": None if wall_time_s is None else round(wall_time_s, 3),
        "package_versions": package_versions(),
        "resolved_config": resolved_config,
        **(extra or {}),
    }
