"""Shared fixtures: the criteria config as shipped, and a hand-made fully eligible candidate."""

from __future__ import annotations

import tomllib
from pathlib import Path

import polars as pl
import pytest

from hn005_sim.eligibility import CriteriaConfig, compile_criteria
from hn005_sim.eligibility.engine import declared_columns

ROOT = Path(__file__).resolve().parents[2]
CRITERIA_TOML = ROOT / "configs" / "alter_hn005" / "criteria.toml"

# A candidate who meets every criterion, with values chosen away from every threshold; tests change
# one or two columns from here. Labs use round reference limits (ULN 40 U/L etc.).
HEALTHY: dict[str, object] = {
    "patient_id": 0, "sex": "M", "age_years": 46.0, "height_cm": 168.0, "weight_kg": 65.0, "bsa_m2": 1.74,
    "ecog": 0, "childbearing_potential": False, "pregnant": False, "contraception_refused": False,
    "stage_at_diagnosis": "IVA", "de_novo_metastatic": False, "curative_treatment": "crt",
    "cisplatin_cumulative_mg_m2": 200.0, "months_since_rt": 20.0, "recurrence_interval_months": 18.0,
    "recurrence_after_therapy_months": 18.0,
    "recurrence_pattern": "distant", "measurable_disease": True, "liver_metastasis": False,
    "cns_metastasis": False, "locally_salvageable": False, "rt_can_benefit_target": False,
    "ischaemia_bleeding_risk": False, "prior_systemic_rm": False, "prior_ici": "none", "prior_ici_types": 0,
    "prior_ici_phase": None, "prior_ici_best_response": None, "progression_within_6m_of_rt": False,
    "hb_g_l": 130.0, "wbc_10e9_l": 6.0, "plt_10e9_l": 220.0, "transfusion_14d": False, "gcsf_14d": False,
    "tbil_umol_l": 10.0, "tbil_uln_umol_l": 20.0, "alt_u_l": 25.0, "alt_uln_u_l": 40.0, "ast_u_l": 25.0,
    "ast_uln_u_l": 40.0, "creatinine_umol_l": 80.0, "creatinine_uln_umol_l": 100.0, "crcl_ml_min": 90.0,
    "inr": 1.0, "inr_uln": 1.2, "aptt_s": 30.0, "aptt_uln_s": 40.0, "tsh_miu_l": 2.0, "tsh_uln_miu_l": 4.0,
    "ft3_pmol_l": None, "ft4_pmol_l": None, "ft3_lln_pmol_l": 3.1, "ft3_uln_pmol_l": 6.8,
    "ft4_lln_pmol_l": 12.0, "ft4_uln_pmol_l": 22.0, "hypothyroid_on_replacement": False,
    "troponin_ng_l": 5.0, "troponin_uln_ng_l": 14.0, "ntprobnp_pg_ml": 60.0, "ntprobnp_uln_pg_ml": 125.0,
    "ecg_abnormal": False, "qtc_ms": 420.0, "lvef_pct": None, "cardiac_event_6m": False,
    "arrhythmia_6m": False, "nyha_class": 1, "hypertension": False, "hypertension_history": False,
    "antihypertensive_drugs": 0,
    "sbp_mmhg": 120.0, "dbp_mmhg": 75.0, "urine_protein_dipstick": 0, "urine_protein_24h_g": None,
    "hbsag_positive": False, "hbv_dna_copies_ml": None, "hcv_ab_positive": False, "hcv_rna_positive": None,
    "hiv_positive": False, "tp_positive": False, "liver_cirrhosis": False, "active_tb_1y": False,
    "severe_infection_4w": False, "autoimmune_active": False, "transplant_history": False,
    "other_malignancy": False, "systemic_steroid_14d": False, "live_vaccine_30d": False, "ak105_30d": False,
    "other_trial_4w": False, "mab_hypersensitivity": False, "oral_intake_problem": False,
    "psychiatric_or_substance": False, "mri_contraindication": False, "investigator_excludes": False,
}


def candidates(*changes: dict[str, object]) -> pl.DataFrame:
    """One row per change set, each the healthy candidate with those columns changed."""
    rows = [{**HEALTHY, **c, "patient_id": i} for i, c in enumerate(changes)]
    # the contract's columns plus those ALTER-HN005's criteria declare ([criteria.columns])
    return pl.DataFrame(rows, schema=declared_columns(load_cfg()))


def load_cfg(changes: dict | None = None) -> CriteriaConfig:
    doc = tomllib.loads(CRITERIA_TOML.read_text())["criteria"]
    doc.update(changes or {})
    return CriteriaConfig.model_validate(doc)


@pytest.fixture(scope="session")
def cfg() -> CriteriaConfig:
    return load_cfg()


@pytest.fixture(scope="session")
def screener(cfg):
    return compile_criteria(cfg)
