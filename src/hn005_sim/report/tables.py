"""The report's tables: key figures, the simulated cohort beside published trials, parameters and sources.

Tables are plain rows (lists of strings) so html.py can render them and tests can read them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl


@dataclass(frozen=True)
class PublishedTrial:
    """Baseline figures of a published first-line R/M NPC trial; None where not gathered."""

    trial: str
    regimen: str
    patients: int
    screened: int | None
    median_age_years: float | None
    age_iqr_years: tuple[float, float] | None
    female_fraction: float | None
    sites: int | None
    source: str


# The comparator trials are data: `[[trial.comparators]]` in configs/<trial>/comparators.toml.
PUBLISHED: tuple[PublishedTrial, ...] = ()


def published_trials(comparators) -> tuple[PublishedTrial, ...]:
    """The scenario's `trial.comparators` as table columns."""
    return tuple(PublishedTrial(c.trial, c.regimen, c.patients, c.screened, c.median_age_years,
                                None if c.age_iqr_years is None else tuple(c.age_iqr_years),
                                c.female_fraction, c.sites, c.source) for c in comparators)


def format_figure(value: Any, kind: str = "num") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if kind == "pct":
        return f"{100 * float(value):.1f}%"
    if kind == "int":
        return f"{round(float(value)):,}"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


# ------------------------------------------------------------------------------------------------
# Key figures

KEY_FIGURES: tuple[tuple[str, str, str], ...] = (
    # (dotted summary key, what it means in users' words, format)
    ("prob_target_by_deadline", "Probability of reaching the target by the deadline", "pct"),
    ("time_to_target_months.p50", "Months to reach the target (median run)", "num"),
    ("time_to_target_months.p10", "Months to reach the target (10th percentile)", "num"),
    ("time_to_target_months.p90", "Months to reach the target (90th percentile)", "num"),
    ("time_to_target_months.reached_fraction", "Runs that reached the target at all", "pct"),
    ("enrolled_by_deadline.p50", "Patients enrolled by the deadline (median)", "int"),
    ("enrolled_by_deadline.p10", "Patients enrolled by the deadline (10th percentile)", "int"),
    ("screened.p50", "Candidates screened (median)", "int"),
    ("screen_failure_rate.p50", "Screen failure rate (median)", "pct"),
    ("sites_zero_enrolled_fraction", "Sites enrolling no one", "pct"),
    ("patients", "Candidates simulated", "int"),
    ("eligible_fraction", "Candidates eligible", "pct"),
    ("prescreen_pass_fraction", "Candidates passing prescreen (chart review)", "pct"),
    ("prescreen_unknown_fraction", "Candidates going to consent with a criterion their chart left undecided",
     "pct"),
    ("screen_failure_rate", "Screen failure rate (fail screening after passing prescreen)", "pct"),
    ("probability_of_success", "Probability of reaching the target (site plan)", "pct"),
    ("expected_enrolled", "Expected patients enrolled (site plan)", "num"),
    ("expected_cost", "Expected cost (site plan)", "int"),
)


def lookup(summary: dict[str, Any], dotted: str, missing: Any = None) -> Any:
    """The value at a dotted key; `missing` when a part of the key is absent (a null value is None)."""
    node: Any = summary
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return missing
        node = node[part]
    return node


def key_figures(summary: dict[str, Any]) -> list[list[str]]:
    """[label, value] rows for the figures present in `summary` (numbers only)."""
    rows = []
    for key, label, kind in KEY_FIGURES:
        value = lookup(summary, key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            rows.append([label, format_figure(value, kind)])
    target = summary.get("target_enrolled")
    deadline = summary.get("deadline_months")
    if isinstance(lookup(summary, "enrolled_by_deadline.p50"), int | float) and target is not None:
        rows.append(["Patients enrolled by the deadline: at most the target",
                     f"runs stop recruiting at {format_figure(target, 'int')}, so these figures never "
                     "exceed it"])
    if target is not None and deadline is not None:
        rows.insert(0, ["Target",
                        f"{format_figure(target, 'int')} patients in {format_figure(deadline)} months"])
    need = summary.get("sites_needed")
    if isinstance(need, dict) and isinstance(need.get("allocation"), dict) and need["allocation"]:
        alloc = " + ".join(f"{n} × {region}" for region, n in need["allocation"].items() if n)
        p = format_figure(need.get("probability_of_success"), "pct")
        if need.get("feasible", True):
            rows.append(["Sites needed for an 80% chance by the deadline (sites like the region's; analytic: "
                         "`hn005-sim sites SCENARIO` searches with the full simulation)",
                         f"{alloc or 'none'}: P = {p}"])
        else:
            rows.append(["Sites needed for an 80% chance by the deadline (analytic; the regions' max_sites "
                         "allow no more: add regions, as scenarios/network_*.toml do)",
                         f"not reachable: at most {alloc} (P = {p})"])
    return rows


def supply_rows(frame: pl.DataFrame) -> tuple[list[str], list[list[str]]]:
    """How much of each drug to make: supply.csv as a table, columns in users' words (counts are packs)."""
    columns = list(frame.columns)
    rows = [
        [format_figure(v, "pct" if c.endswith("_probability") else "num")
         for c, v in zip(columns, r, strict=True)]
        for r in frame.iter_rows()
    ]
    return [SUPPLY_LABELS.get(c, c) for c in columns], rows


SUPPLY_LABELS = {
    "drug": "drug",
    "presentation": "presentation",
    "dispensed_p50": "packs dispensed (median)",
    "shipped_p50": "packs shipped to sites (median)",
    "wasted_expiry_p50": "packs expired (median)",
    "wasted_returns_p50": "packs' worth returned part-used (median)",
    "manufacture_p50": "packs to make, P50",
    "manufacture_p90": "packs to make, P90",
    "manufacture_p95": "packs to make, P95",
    "stockout_probability": "runs with a stock-out (any failed dispensing)",
    "shipments_p50": "shipments (median)",
    "units_per_pack": "units per pack",
    "missed_dispensing_probability": "runs with a dispensing missed at a site (stock upstream)",
    "out_of_stock_probability": "runs out of stock (none upstream)",
    "failed_dispensings_mean": "failed dispensings per run (mean, visits)",
    "missed_dispensings_mean": "missed dispensings per run (mean, visits)",
    "out_of_stock_dispensings_mean": "out-of-stock dispensings per run (mean, visits)",
    "manufacture_packs_mean": "packs to make (mean)",
    "dispensed_packs_mean": "packs dispensed (mean)",
    "waste_packs_mean": "packs wasted: expired + returned (mean)",
}


# ------------------------------------------------------------------------------------------------
# Baseline: the simulated cohort beside published trials


def cohort_figures(frame: pl.DataFrame) -> dict[str, Any]:
    """Baseline figures of a simulated cohort (polars frame with the contract columns)."""
    out: dict[str, Any] = {"patients": frame.height}
    if frame.height == 0:
        return out
    if "age_years" in frame.columns:
        age = frame["age_years"].drop_nulls()
        out["median_age_years"] = float(age.median())
        out["age_iqr_years"] = (float(age.quantile(0.25, "linear")), float(age.quantile(0.75, "linear")))
    if "sex" in frame.columns:
        out["female_fraction"] = float((frame["sex"] == "F").mean())
    for col, key in (("ecog", "ecog0_fraction"),):
        if col in frame.columns:
            out[key] = float((frame[col] == 0).mean())
    for col in ("de_novo_metastatic", "liver_metastasis", "hbsag_positive"):
        if col in frame.columns:
            out[f"{col}_fraction"] = float(frame[col].cast(pl.Float64).mean())
    return out


BASELINE_ROWS: tuple[tuple[str, str], ...] = (
    ("patients", "Patients"),
    ("screened", "Screened"),
    ("median_age_years", "Median age, years (IQR)"),
    ("female_fraction", "Female"),
    ("ecog0_fraction", "ECOG 0"),
    ("de_novo_metastatic_fraction", "Metastatic at diagnosis"),
    ("liver_metastasis_fraction", "Liver metastases"),
    ("hbsag_positive_fraction", "HBsAg positive"),
    ("sites", "Sites"),
)


def _cell(figs: dict[str, Any], key: str) -> str:
    value = figs.get(key)
    if key == "median_age_years" and value is not None:
        iqr = figs.get("age_iqr_years")
        return f"{value:.0f}" + (f" ({iqr[0]:.0f}–{iqr[1]:.0f})" if iqr else "")
    if key.endswith("_fraction"):
        return format_figure(value, "pct")
    return format_figure(value, "int") if value is not None else "—"


def baseline_table(
    simulated: dict[str, dict[str, Any]], published: tuple[PublishedTrial, ...] = PUBLISHED
) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, rows and source notes: simulated cohort column(s) then one column per published trial."""
    pub = [
        {
            "patients": p.patients,
            "screened": p.screened,
            "median_age_years": p.median_age_years,
            "age_iqr_years": p.age_iqr_years,
            "female_fraction": p.female_fraction,
            "sites": p.sites,
        }
        for p in published
    ]
    header = ["", *simulated.keys(), *(p.trial for p in published)]
    rows = []
    for key, label in BASELINE_ROWS:
        cells = [_cell(f, key) for f in simulated.values()] + [_cell(f, key) for f in pub]
        if any(c != "—" for c in cells):
            rows.append([label, *cells])
    notes = [f"{p.trial} ({p.regimen}): {p.source}" for p in published]
    return header, rows, notes


# ------------------------------------------------------------------------------------------------
# Parameters with their sources


def _describe(table: dict[str, Any]) -> str:
    """A one-line value for a config table: `normal(mean=46, sd=10)` or `value=110 unit=patients`."""
    scalars = {
        k: v
        for k, v in table.items()
        if k not in ("source", "dist", "description") and not isinstance(v, dict | list)
    }
    lists = {
        k: v for k, v in table.items() if isinstance(v, list) and all(not isinstance(x, dict) for x in v)
    }

    def show(v: Any) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    parts = [f"{k}={show(v)}" for k, v in scalars.items()]
    parts += [
        f"{k}=[{', '.join(show(x) for x in v[:8])}{', …' if len(v) > 8 else ''}]" for k, v in lists.items()
    ]
    body = ", ".join(parts)
    return f"{table['dist']}({body})" if "dist" in table else body


def walk_sources(config: Any, path: str = "") -> Iterator[tuple[str, str, str]]:
    """(dotted path, value, source) for every table in a resolved config that has a `source` key."""
    if isinstance(config, dict):
        if "source" in config and isinstance(config["source"], str):
            yield path or "(scenario)", _describe(config), config["source"]
        for key, value in config.items():
            if isinstance(value, dict | list):
                yield from walk_sources(value, f"{path}.{key}" if path else str(key))
    elif isinstance(config, list):
        for i, value in enumerate(config):
            name = value.get("name") or value.get("id") if isinstance(value, dict) else None
            yield from walk_sources(value, f"{path}[{name if isinstance(name, str) else i}]")


def parameter_rows(
    config: dict[str, Any] | None, extra: list[dict[str, Any]] | None = None
) -> list[list[str]]:
    """[parameter, value, source, evidence|assumption] rows for the parameter table."""
    rows = []
    for path, value, source in walk_sources(config or {}):
        rows.append(
            [
                path,
                value,
                source,
                "assumption" if source.strip().lower().startswith("assumption") else "evidence",
            ]
        )
    for item in extra or []:
        source = str(item.get("source", ""))
        rows.append(
            [
                str(item.get("parameter", item.get("name", ""))),
                str(item.get("value", "")),
                source,
                "assumption" if source.lower().startswith("assumption") else "evidence",
            ]
        )
    return rows


def manifest_rows(manifest: dict[str, Any]) -> list[list[str]]:
    """[field, value] rows of the manifest, leaving the resolved config to its own block."""
    rows = []
    for key, value in manifest.items():
        if key == "resolved_config":
            continue
        if key == "package_versions" and isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, list):
            value = " ".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        rows.append([key, "—" if value is None else str(value)])
    return rows
