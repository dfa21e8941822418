"""Small output folders shaped like docs/outputs.md, made from a fixed seed (no other command needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

CRITERIA = [
    ("age_18_65", "inclusion", "prescreen"),
    ("first_line", "inclusion", "prescreen"),
    ("recurrence_6m", "exclusion", "prescreen"),
    ("ecog_0_1", "inclusion", "prescreen"),
    ("crcl_60", "inclusion", "screening"),
    ("plt_100", "inclusion", "screening"),
    ("hbv_dna", "exclusion", "screening"),
    ("qtc_480", "exclusion", "screening"),
    # the longest id of the shipped criteria: the heat map and bar charts must show it whole
    ("prior_ici_induction_response", "exclusion", "screening"),
]
DRUGS = [("anlotinib", "capsule 10 mg"), ("penpulimab", "vial 100 mg"), ("capecitabine", "tablet 500 mg")]


def screen_folder(folder: Path, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n = 5000
    fail = rng.uniform(0.02, 0.3, len(CRITERIA))
    sole = fail * rng.uniform(0.2, 0.6, len(CRITERIA))
    shap = fail / fail.sum()
    remaining = n
    funnel_rows = []
    for i, (cid, _kind, stage) in enumerate(CRITERIA):
        dropped = int(remaining * fail[i] * 0.6)
        remaining -= dropped
        funnel_rows.append((i + 1, cid, stage, remaining, dropped, remaining / n))
    pl.DataFrame(
        {
            "criterion_id": [c[0] for c in CRITERIA],
            "kind": [c[1] for c in CRITERIA],
            "stage": [c[2] for c in CRITERIA],
            "fail_rate": fail,
            "sole_fail_rate": sole,
            "shapley": shap * 3000,
            "shapley_share": shap,
            "funnel_drop": [r[4] for r in funnel_rows],
            "fail_rate_lo": fail - 0.01,
            "fail_rate_hi": fail + 0.01,
            "sole_fail_rate_lo": sole - 0.005,
            "sole_fail_rate_hi": sole + 0.005,
            "shapley_share_lo": shap * 0.9,
            "shapley_share_hi": shap * 1.1,
        }
    ).write_csv(folder / "criteria.csv")
    pl.DataFrame(
        funnel_rows,
        schema=["step", "criterion_id", "stage", "remaining", "dropped", "remaining_fraction"],
        orient="row",
    ).write_csv(folder / "funnel.csv")
    pairs = [(a[0], b[0]) for a in CRITERIA for b in CRITERIA if a != b]
    both = rng.integers(0, 200, len(pairs))
    expected = rng.uniform(10, 150, len(pairs))
    pl.DataFrame(
        {
            "criterion_a": [p[0] for p in pairs],
            "criterion_b": [p[1] for p in pairs],
            "both_fail": both,
            "expected_if_independent": expected,
            "lift": both / expected,
        }
    ).write_csv(folder / "cofailure.csv")
    sweep_rows = []
    for param, values, current, unit in (
        ("crcl_min_ml_min", [40, 45, 50, 55, 60, 65], 60, "mL/min"),
        ("age_max_years", [60, 65, 70, 75], 65, "years"),
        ("ecog_max", [0, 1, 2], 1, "ECOG PS"),
        ("hbv_dna_max_copies_ml", [500, 2000, 10000, 100000], 2000, "copies/mL"),
        ("tsh_max_uln", [1.0, 1.5, 2.0], 1.0, "x ULN"),
    ):
        for v in values:
            sweep_rows.append(
                (param, float(v), 0.3 + 0.01 * (v - values[0]) * (1 if "age" in param else -1) / max(values),
                 v == current, unit)
            )
    pl.DataFrame(
        sweep_rows, schema=["parameter", "value", "eligible_fraction", "is_current", "unit"], orient="row"
    ).write_csv(folder / "sweeps.csv")
    pl.DataFrame(
        {
            "step": [1, 2],
            "relaxation": ["crcl_50", "age_70"],
            "description": ["CrCl >= 50 mL/min", "age <= 70"],
            "eligible_fraction": [0.33, 0.37],
            "gain": [0.03, 0.04],
        }
    ).write_csv(folder / "relaxation.csv")
    (folder / "summary.json").write_text(
        json.dumps(
            {
                "patients": n,
                "eligible": remaining,
                "eligible_fraction": remaining / n,
                "excluded": n - remaining,
                "prescreen_pass_fraction": 0.55,
                "screen_failure_rate": 0.27,
                "intervals": {"eligible_fraction": [0.28, 0.31]},
            }
        )
    )
    return folder


def run_folder(folder: Path, seed: int = 2, replicates: int = 300, rate: float = 5.0) -> Path:
    """A `run` folder: curves from simulated Poisson recruitment so the numbers hang together."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    target, months = 110, 36
    monthly = rng.poisson(rate * rng.gamma(20, 1 / 20, (replicates, 1)), (replicates, months))
    cum = np.minimum(np.cumsum(monthly, axis=1), target)
    cum = np.hstack([np.zeros((replicates, 1)), cum])
    q = np.quantile(cum, [0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975], axis=0)
    pl.DataFrame(
        {
            "month": np.arange(months + 1, dtype=float),
            "enrolled_mean": cum.mean(0),
            **{k: q[i] for i, k in enumerate(["p025", "p10", "p25", "p50", "p75", "p90", "p975"])},
        }
    ).write_csv(folder / "enrollment_curve.csv")
    reached = cum[:, -1] >= target
    first = np.argmax(cum >= target, axis=1).astype(float) - rng.uniform(0, 1, replicates)
    ttt = np.where(reached, first, np.nan)
    pl.DataFrame({"replicate": np.arange(replicates), "time_to_target_months": ttt}).with_columns(
        pl.col("time_to_target_months").fill_nan(None)
    ).write_csv(folder / "time_to_target.csv")
    rows = []
    for stage, ids in (
        ("prescreen", ["age_18_65", "first_line", "ecog_0_1"]),
        ("screening", ["crcl_60", "plt_100"]),
        ("consent", ["declined"]),
        ("withdrawal", ["withdrew"]),
    ):
        for cid in ids:
            m = rng.uniform(2, 60)
            rows.append((stage, cid, m, m * 0.7, m * 1.3, 0.0))
    sf = pl.DataFrame(
        rows,
        schema=["stage", "criterion_id", "failures_mean", "failures_p10", "failures_p90", "share"],
        orient="row",
    )
    sf.with_columns((pl.col("failures_mean") / pl.col("failures_mean").sum()).alias("share")).write_csv(
        folder / "screen_failures.csv"
    )
    n_sites = 5
    em = rng.uniform(5, 40, n_sites)
    pl.DataFrame(
        {
            # the sponsor's site by its full name, as sites.toml names it: the chart shows it whole
            "site": ["Sun Yat-sen University Cancer Center"] + [f"site_{i + 1}" for i in range(1, n_sites)],
            "region": ["guangdong", "guangdong", "guangxi", "guangxi", "hunan"],
            "activation_month_mean": rng.uniform(0, 6, n_sites),
            "never_activated_fraction": 0.05,
            "enrolled_mean": em,
            "enrolled_p10": em * 0.6,
            "enrolled_p90": em * 1.4,
            "zero_enrolled_fraction": rng.uniform(0, 0.2, n_sites),
        }
    ).write_csv(folder / "sites.csv")
    dd, inv, sup = [], [], []
    for drug, pres in DRUGS:
        scale = {"anlotinib": 14, "penpulimab": 2, "capecitabine": 60}[drug]
        for m in range(months):
            u = scale * q[3, m + 1] * 0.8
            dd.append((float(m), drug, u * 0.8, u, u * 1.2))
            for loc in ("depot", "site_1", "site_2"):
                oh = max(0.0, 500 * scale - 10 * scale * m) if loc == "depot" else 6 * scale
                inv.append(
                    (
                        float(m),
                        loc,
                        drug,
                        oh * 0.7,
                        oh,
                        oh * 1.2,
                        min(1.0, 0.01 * m if loc != "depot" else 0.0),
                    )
                )
        total = sum(r[3] for r in dd if r[1] == drug)
        sup.append(
            (
                drug,
                pres,
                total,
                total * 1.3,
                total * 0.1,
                total * 0.05,
                total * 1.5,
                total * 1.7,
                total * 1.8,
                0.02,
                24.0,
            )
        )
    pl.DataFrame(dd, schema=["month", "drug", "units_p10", "units_p50", "units_p90"], orient="row").write_csv(
        folder / "drug_demand.csv"
    )
    pl.DataFrame(
        inv,
        schema=[
            "month",
            "location",
            "drug",
            "on_hand_p10",
            "on_hand_p50",
            "on_hand_p90",
            "stockout_probability",
        ],
        orient="row",
    ).write_csv(folder / "inventory.csv")
    pl.DataFrame(
        sup,
        schema=[
            "drug",
            "presentation",
            "dispensed_p50",
            "shipped_p50",
            "wasted_expiry_p50",
            "wasted_returns_p50",
            "manufacture_p50",
            "manufacture_p90",
            "manufacture_p95",
            "stockout_probability",
            "shipments_p50",
        ],
        orient="row",
    ).write_csv(folder / "supply.csv")
    t = ttt[~np.isnan(ttt)]
    summary = {
        "replicates": replicates,
        "seed": seed,
        "target_enrolled": target,
        "deadline_months": 30,
        "time_to_target_months": {
            "p10": float(np.quantile(t, 0.1)),
            "p50": float(np.median(t)),
            "p90": float(np.quantile(t, 0.9)),
            "mean": float(t.mean()),
            "reached_fraction": float(reached.mean()),
        },
        "prob_target_by_deadline": float(np.mean(np.nan_to_num(ttt, nan=1e9) <= 30)),
        "enrolled_by_deadline": {
            k: float(np.quantile(cum[:, 30], p)) for k, p in (("p10", 0.1), ("p50", 0.5), ("p90", 0.9))
        },
        "screened": {"p10": 150.0, "p50": 160.0, "p90": 170.0},
        "screen_failure_rate": {"p10": 0.25, "p50": 0.3, "p90": 0.35},
        "sites_zero_enrolled_fraction": 0.1,
        "sites_needed": {"allocation": {"guangdong": 8}, "probability_of_success": 0.86,
                         "expected_enrolled": 76.8, "method": "analytic", "feasible": True,
                         "required_probability": 0.8},
        "supply": {
            d: {
                "units_p50": 1.0,
                "units_p90": 2.0,
                "units_p95": 3.0,
                "stockout_probability": 0.02,
                "waste_p50": 0.5,
            }
            for d, _ in DRUGS
        },
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "manifest.json").write_text(json.dumps(manifest(seed, replicates)))
    return folder


def sites_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    s = np.arange(1, 16)
    prob = 1 - np.exp(-0.25 * s)
    pl.DataFrame(
        {
            "sites": np.concatenate([s, s]),
            "probability_of_success": np.concatenate([prob, prob * 0.95]),
            "expected_enrolled": np.concatenate([s * 9.6, s * 9.4]),
            "method": ["analytic"] * len(s) + ["des"] * len(s),
        }
    ).write_csv(folder / "curve.csv")
    (folder / "summary.json").write_text(
        json.dumps(
            {
                "allocation": {"guangdong": 8},
                "expected_enrolled": 76.8,
                "variance_enrolled": 120.0,
                "probability_of_success": 0.86,
                "expected_cost": 1.2e6,
                "method": "analytic",
                "required_probability": 0.8,
            }
        )
    )
    return folder


def cohort_folder(folder: Path, n: int = 400, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(
        {
            "patient_id": np.arange(n),
            "sex": rng.choice(["M", "F"], n, p=[0.78, 0.22]),
            "age_years": rng.normal(47, 10, n),
            "ecog": rng.choice([0, 1, 2], n, p=[0.5, 0.4, 0.1]),
            "de_novo_metastatic": rng.uniform(size=n) < 0.3,
            "liver_metastasis": rng.uniform(size=n) < 0.25,
            "hbsag_positive": rng.uniform(size=n) < 0.11,
        }
    ).write_parquet(folder / "cohort.parquet")
    (folder / "summary.json").write_text(json.dumps({"patients": n}))
    return folder


def manifest(seed: int, replicates: int) -> dict:
    return {
        "tool": "hn005-sim",
        "tool_version": "0.1.0",
        "command": "run",
        "argv": ["run", "x.toml"],
        "scenario_path": "scenarios/baseline.toml",
        "scenario_sha256": "0" * 64,
        "seed": seed,
        "replicates": replicates,
        "wall_time_s": 1.5,
        "package_versions": {"python": "3.11"},
        "resolved_config": {
            "name": "baseline",
            "trial": {
                "target_enrolled": 110,
                "deadline_months": 30,
                "source": "NCT05807880 (target 110); deadline_months is an assumption",
            },
            "population": {
                "age_years": {
                    "dist": "normal",
                    "mean": 46.0,
                    "sd": 10.0,
                    "source": "JUPITER-02 median age 46",
                },
                "ecog0": {"value": 0.5, "source": "assumption: not found <script>alert(1)</script>"},
            },
            "recruitment": {
                "regions": [{"name": "guangdong", "rate_mean": 0.8, "source": "PLoS One 2022;17:e0271819"}]
            },
        },
    }


def full_folder(folder: Path) -> Path:
    """Everything a report can draw, in one folder."""
    screen_folder(folder)
    sites_folder(folder / "_sites")
    (folder / "curve.csv").write_bytes((folder / "_sites" / "curve.csv").read_bytes())
    run_folder(folder)  # last: its summary.json and manifest.json are the folder's
    return folder
