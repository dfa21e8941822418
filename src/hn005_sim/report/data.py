"""Read what a command left in an output folder: the frames and summaries the report charts.

Every file is optional: a folder written by `screen` has no enrolment curve, one written by `run` may
have no co-failure table. `load_folder` returns whatever is there; each report section is drawn only
when its file exists. File names and columns are the contract in docs/outputs.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from hn005_sim.scenario.errors import ConfigError

# The CSV files a report can chart, in the order the page shows them.
CSV_FILES = (
    "funnel.csv",
    "criteria.csv",
    "cofailure.csv",
    "sweeps.csv",
    "relaxation.csv",
    "enrollment_curve.csv",
    "time_to_target.csv",
    "screen_failures.csv",
    "sites.csv",
    "curve.csv",
    "supply.csv",
    "drug_demand.csv",
    "uncertainty.csv",
    "sensitivity.csv",
    "inventory.csv",
)

# Columns a chart cannot do without; a file lacking one is reported, not silently mis-drawn.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "funnel.csv": ("step", "criterion_id", "stage", "remaining", "dropped"),
    "criteria.csv": ("criterion_id", "stage", "fail_rate", "sole_fail_rate", "shapley_share"),
    "cofailure.csv": ("criterion_a", "criterion_b", "both_fail"),
    "sweeps.csv": ("parameter", "value", "eligible_fraction", "is_current"),
    "relaxation.csv": ("step", "relaxation", "eligible_fraction"),
    "enrollment_curve.csv": ("month", "p025", "p10", "p25", "p50", "p75", "p90", "p975"),
    "time_to_target.csv": ("replicate", "time_to_target_months"),
    "screen_failures.csv": ("stage", "criterion_id", "failures_mean"),
    "sites.csv": ("site", "region", "enrolled_mean"),
    "curve.csv": ("probability_of_success",),
    "supply.csv": ("drug",),
    "drug_demand.csv": ("month", "drug", "units_p10", "units_p50", "units_p90"),
    "uncertainty.csv": ("parameter", "value", "low", "high", "distribution", "source"),
    "sensitivity.csv": ("parameter", "output", "method"),
    "inventory.csv": ("month", "location", "drug", "on_hand_p10", "on_hand_p50", "on_hand_p90"),
}

# Text columns that polars might otherwise guess as numbers (a site called "1", a value of "NA").
_TEXT_COLUMNS = (
    "scenario",
    "criterion_id",
    "criterion_a",
    "criterion_b",
    "stage",
    "kind",
    "site",
    "region",
    "drug",
    "location",
    "presentation",
    "parameter",
    "relaxation",
    "description",
    "method",
)


@dataclass(frozen=True)
class OutputFiles:
    """The files found in one or more output folders (first folder wins for each file name)."""

    folders: tuple[Path, ...]
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    cohort: pl.DataFrame | None = None
    cohort_summary: dict[str, Any] = field(default_factory=dict)
    pass_matrix: pl.DataFrame | None = None
    # file name -> the folder it was read from (charts link to the CSV beside them)
    origin: dict[str, Path] = field(default_factory=dict)

    def frame(self, name: str) -> pl.DataFrame | None:
        return self.frames.get(name)


def read_csv(path: Path) -> pl.DataFrame:
    """A contract CSV, with text columns kept as text; a missing column is a one-line error."""
    try:
        header = pl.read_csv(path, n_rows=0).columns
        overrides = {c: pl.Utf8 for c in header if c in _TEXT_COLUMNS}
        frame = pl.read_csv(path, schema_overrides=overrides, infer_schema_length=None)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, OSError) as exc:
        raise ConfigError.one(str(path), "", f"cannot read as CSV: {str(exc).splitlines()[0]}") from None
    missing = [c for c in REQUIRED_COLUMNS.get(path.name, ()) if c not in frame.columns]
    if missing:
        raise ConfigError.one(str(path), "", f"missing column(s) {', '.join(missing)} (see docs/outputs.md)")
    return frame


def read_json(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError.one(str(path), "", f"cannot read as JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ConfigError.one(str(path), "", "expected a JSON object")
    return obj


def load_folder(folders: Path | Sequence[Path]) -> OutputFiles:
    """Everything a report can use from `folders` (a folder, or several merged, first one winning)."""
    folders = (Path(folders),) if isinstance(folders, str | Path) else tuple(Path(f) for f in folders)
    frames: dict[str, pl.DataFrame] = {}
    origin: dict[str, Path] = {}
    summary: dict[str, Any] = {}
    manifest: dict[str, Any] = {}
    cohort = None
    cohort_summary: dict[str, Any] = {}
    pass_matrix = None
    for folder in folders:
        # a pass matrix describes the cohort beside it only (same candidates, same patient_id)
        if (
            pass_matrix is None
            and (folder / "pass_matrix.parquet").is_file()
            and (folder / "cohort.parquet").is_file()
        ):
            pass_matrix = pl.read_parquet(folder / "pass_matrix.parquet")
        for name in CSV_FILES:
            path = folder / name
            if name not in frames and path.is_file():
                frames[name] = read_csv(path)
                origin[name] = folder
        if not manifest and (folder / "manifest.json").is_file():
            manifest = read_json(folder / "manifest.json")
        if (folder / "summary.json").is_file():
            this = read_json(folder / "summary.json")
            if (folder / "cohort.parquet").is_file() and cohort is None:
                cohort = pl.read_parquet(folder / "cohort.parquet")
                cohort_summary = this
            else:
                # several folders: later summaries only add keys the first did not have
                summary = {**this, **summary}
    return OutputFiles(folders, frames, summary, manifest, cohort, cohort_summary, pass_matrix, origin)


def flatten_numbers(obj: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a summary as dotted keys: {"time_to_target_months.p50": 21.3, ...}.

    Booleans and text are left out; lists of numbers become `key[0]`, `key[1]` (e.g. intervals).
    """
    out: dict[str, float] = {}
    if isinstance(obj, bool) or obj is None:
        return out
    if isinstance(obj, int | float):
        if prefix and math.isfinite(float(obj)):
            out[prefix] = float(obj)
        return out
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.update(flatten_numbers(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            out.update(flatten_numbers(value, f"{prefix}[{i}]"))
    return out


def stack_scenarios(frames: Iterable[tuple[str, pl.DataFrame]]) -> pl.DataFrame:
    """One frame with a leading `scenario` column, for overlaid charts (`compare`)."""
    parts = [f.select(pl.lit(name).alias("scenario"), pl.all()) for name, f in frames]
    return pl.concat(parts, how="diagonal_relaxed")
