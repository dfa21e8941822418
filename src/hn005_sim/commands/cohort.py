"""`hn005-sim cohort SCENARIO --patients N`: draw the candidate population, write it, show a summary."""

from __future__ import annotations

from typing import Annotated, Any

import polars as pl
import typer
from rich.table import Table

from hn005_sim.commands.common import (
    ForceOpt,
    Format,
    FormatOpt,
    OutOpt,
    QuietOpt,
    ScenarioArg,
    SeedOpt,
    console,
    print_json,
)
from hn005_sim.io import manifest, output_dir
from hn005_sim.rng import stream
from hn005_sim.scenario.errors import ConfigError
from hn005_sim.scenario.load import display, load_scenario

PatientsOpt = Annotated[int, typer.Option("--patients", min=1, help="Candidates to draw.")]

HYPOTHYROID_YEARS = {2: 0.253, 3: 0.394, 5: 0.491, 7: 0.547}
"""Hypothyroidism after NPC RT by years since RT (Peng L, Front Oncol 2020, 10.3389/fonc.2020.551255)."""
HYPOTHYROID_WINDOW_MONTHS = 3.0
"""Candidates within +/- this many months of each time point are compared with the published figure."""

PUBLISHED = {
    "median_age_years": (46.0, "JUPITER-02 (Nat Med 2021) and CONTINUUM: median 46"),
    "male_fraction": ((0.73, 0.83), "JUPITER-02 83%, CONTINUUM 73.6%, PMC8797352"),
    "hbsag_positive_fraction": (0.109, "Cancer 2013 (PMID 24114075): 10.9% of NPC patients"),
}


def _quantiles(s: pl.Series) -> dict[str, float | None]:
    s = s.drop_nulls()
    if s.len() == 0:
        return {"p25": None, "median": None, "p75": None, "n": 0}
    return {"p25": float(s.quantile(0.25, "linear")), "median": float(s.quantile(0.5, "linear")),
            "p75": float(s.quantile(0.75, "linear")), "n": int(s.len())}


def _share(mask: pl.Series) -> float:
    return float(mask.mean()) if mask.len() else float("nan")


def summarise(frame: pl.DataFrame) -> dict[str, Any]:
    """The baseline figures of a cohort (summary.json), including the calibration comparisons."""
    n = frame.height
    continuous = ["age_years", "height_cm", "weight_kg", "bsa_m2", "recurrence_interval_months",
                  "months_since_rt", "cisplatin_cumulative_mg_m2", "hb_g_l", "wbc_10e9_l", "plt_10e9_l",
                  "alt_u_l", "creatinine_umol_l", "crcl_ml_min", "tsh_miu_l", "sbp_mmhg", "qtc_ms"]
    shares = {
        "male": frame["sex"] == "M",
        "age_over_65": frame["age_years"] > 65,
        "ecog_0": frame["ecog"] == 0,
        "ecog_1": frame["ecog"] == 1,
        "ecog_2_plus": frame["ecog"] >= 2,
        "de_novo_metastatic": frame["de_novo_metastatic"],
        "chemoradiotherapy": frame["curative_treatment"] == "crt",
        "recurrence_within_6_months": frame["progression_within_6m_of_rt"],
        "recurrence_within_6_months_of_therapy_end":
            frame["recurrence_after_therapy_months"].fill_null(99.0) < 6,
        "distant_metastasis": frame["distant_metastasis"],
        "liver_metastasis": frame["liver_metastasis"],
        "cns_metastasis": frame["cns_metastasis"],
        "locally_salvageable": frame["locally_salvageable"],
        "prior_systemic_rm": frame["prior_systemic_rm"],
        "prior_ici": frame["prior_ici"] != "none",
        "measurable_disease": frame["measurable_disease"],
        "hbsag_positive": frame["hbsag_positive"],
        "hbv_dna_ge_1e4": frame["hbv_dna_copies_ml"].fill_null(0) >= 1e4,
        "hypertension": frame["hypertension"],
        "hypertension_history": frame["hypertension_history"],
        "nyha_2_or_more": frame["nyha_class"] >= 2,
        "induction_chemotherapy": frame["induction_chemotherapy"],
        "adjuvant_capecitabine": frame["adjuvant_capecitabine"],
        "hbv_antiviral": frame["hbv_antiviral"],
        "hypothyroidism_rt": frame["hypothyroidism_rt"],
        "tsh_above_uln": frame["tsh_miu_l"] > frame["tsh_uln_miu_l"],
        "crcl_below_60": frame["crcl_ml_min"] < 60,
        "hb_below_90": frame["hb_g_l"] < 90,
        "urine_dipstick_2plus": frame["urine_protein_dipstick"] >= 2,
    }
    calibration = [
        _row("median age, years", float(frame["age_years"].median()), *PUBLISHED["median_age_years"]),
        _row("male", _share(shares["male"]), *PUBLISHED["male_fraction"]),
        _row("HBsAg positive", _share(shares["hbsag_positive"]), *PUBLISHED["hbsag_positive_fraction"]),
    ]
    for years, published in HYPOTHYROID_YEARS.items():
        near = frame.filter((frame["months_since_rt"] - 12 * years).abs() <= HYPOTHYROID_WINDOW_MONTHS)
        calibration.append(_row(
            f"hypothyroidism {years} y after RT", _share(near["hypothyroidism_rt"]) if near.height else None,
            published, f"Peng L, Front Oncol 2020 ({near.height} candidates within "
                       f"{HYPOTHYROID_WINDOW_MONTHS:g} months of {years} y)"))
    return {
        "patients": n,
        "continuous": {c: _quantiles(frame[c]) for c in continuous},
        "fractions": {k: _share(v) for k, v in shares.items()},
        "categories": {c: {str(k): float(v) for k, v in frame[c].value_counts(normalize=True).sort(c).rows()}
                       for c in ("stage_at_diagnosis", "curative_treatment", "recurrence_pattern")},
        "calibration": calibration,
    }


def _row(figure: str, simulated: float | None, published, source: str) -> dict[str, Any]:
    return {"figure": figure, "simulated": simulated,
            "published": list(published) if isinstance(published, tuple) else published, "source": source}


def _fmt(v, pct: bool) -> str:
    if v is None:
        return "-"
    if isinstance(v, list):
        return "-".join(_fmt(x, pct) for x in v)
    return f"{100 * v:.1f}%" if pct else f"{v:.1f}"


def _table(summary: dict[str, Any]) -> Table:
    t = Table(title=f"Candidate population ({summary['patients']:,} candidates)", show_lines=False)
    t.add_column("attribute")
    t.add_column("simulated", justify="right")
    t.add_column("published", justify="right")
    t.add_column("source")
    for row in summary["calibration"]:
        pct = not row["figure"].startswith("median")
        t.add_row(row["figure"], _fmt(row["simulated"], pct), _fmt(row["published"], pct), row["source"])
    t.add_section()
    labels = {"age_years": "age, years", "bsa_m2": "BSA (Mosteller), m2", "crcl_ml_min": "CrCl (C-G), mL/min",
              "recurrence_interval_months": "recurrence interval, months", "hb_g_l": "Hb, g/L"}
    for key, label in labels.items():
        q = summary["continuous"][key]
        if q["median"] is not None:
            d = 2 if key == "bsa_m2" else 1
            t.add_row(label, f"{q['median']:.{d}f} ({q['p25']:.{d}f}-{q['p75']:.{d}f})", "", "median (IQR)")
    for key in ("ecog_2_plus", "age_over_65", "de_novo_metastatic", "recurrence_within_6_months",
                "locally_salvageable", "prior_systemic_rm", "liver_metastasis", "crcl_below_60"):
        t.add_row(key.replace("_", " "), f"{100 * summary['fractions'][key]:.1f}%", "", "")
    return t


def cohort(
    scenario: ScenarioArg,
    patients: PatientsOpt = 10_000,
    seed: SeedOpt = 20230901,
    out: OutOpt = ...,  # type: ignore[assignment]
    quiet: QuietOpt = False,
    force: ForceOpt = False,
    format: FormatOpt = Format.table,
) -> None:
    """Draw the synthetic R/M NPC candidate population of a scenario.

    Writes cohort.parquet (one row per candidate; columns in docs/data_dictionary.md), summary.json
    (baseline figures and the calibration comparison) and manifest.json into --out, and prints a
    baseline table beside the published figures it was calibrated to. Example:

        hn005-sim cohort scenarios/baseline.toml --patients 10000 --seed 1 --out out/cohort
    """
    from hn005_sim.guards import check_memory, measure_bytes_per_row
    from hn005_sim.population import sample

    sc, raw = load_scenario(scenario)
    if sc.population is None:
        raise ConfigError.one(display(raw.path), "population", "required key is missing (cohort needs it)")
    per_row = measure_bytes_per_row(lambda n: sample(sc.population, n, stream(seed, 0, "population")))
    check_memory(patients, per_row,
                 f"cohort --patients {patients}", unit="patients")
    with output_dir(out, force=force) as od:
        frame = sample(sc.population, patients, stream(seed, 0, "population"))
        summary = summarise(frame)
        od.write_parquet("cohort.parquet", frame)
        od.write_json("summary.json", {"seed": seed, **summary})
        od.write_json("manifest.json", manifest(
            "cohort", scenario_path=display(raw.path), scenario_sha256=raw.sha256(),
            resolved_config=sc.model_dump(mode="json", by_alias=True), seed=seed,
            wall_time_s=od.elapsed(), extra={"patients": patients}))
    if quiet:
        return
    if format == Format.json:
        print_json({"seed": seed, **summary})
    else:
        c = console(quiet)
        c.print(_table(summary))
        c.print(f"wrote {display(out)}/cohort.parquet, summary.json, manifest.json")
