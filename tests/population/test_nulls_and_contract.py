"""Every contract column is present with its dtype; conditional tests are null exactly when they should be."""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from hn005_sim.population import sample

from .conftest import ROOT

DTYPES = {"Int64": pl.Int64, "Float64": pl.Float64, "Boolean": pl.Boolean, "Utf8": pl.String}


def contract_columns() -> dict[str, pl.DataType]:
    """Parse docs/columns_contract.md: `| a, b | dtype | ... |` rows."""
    out = {}
    for line in (ROOT / "docs" / "columns_contract.md").read_text().splitlines():
        m = re.match(r"\|\s*([a-z0-9_, ]+?)\s*\|\s*(Int64|Float64|Boolean|Utf8)\b", line)
        if m:
            for name in m.group(1).split(","):
                out[name.strip()] = DTYPES[m.group(2)]
    return out


def test_every_contract_column_with_its_dtype(cohort):
    cols = contract_columns()
    assert len(cols) > 80
    for name, dtype in cols.items():
        assert name in cohort.columns, name
        assert cohort.schema[name] == dtype, (name, cohort.schema[name], dtype)


def test_every_column_is_in_the_data_dictionary(cohort):
    text = (ROOT / "docs" / "data_dictionary.md").read_text()
    missing = [c for c in cohort.columns if f"`{c}`" not in text]
    assert not missing, missing


def test_no_nulls_outside_the_conditional_columns(cohort):
    conditional = {"cisplatin_cumulative_mg_m2", "months_since_rt", "recurrence_interval_months",
                   "prior_ici_phase", "prior_ici_best_response", "ft3_pmol_l", "ft4_pmol_l", "lvef_pct",
                   "urine_protein_24h_g", "hbv_dna_copies_ml", "hcv_rna_positive",
                   "adjuvant_months", "recurrence_after_therapy_months"}
    for name in cohort.columns:
        if name not in conditional:
            assert cohort[name].null_count() == 0, name
        if cohort.schema[name] == pl.Float64:
            assert not cohort[name].is_nan().any(), name


def _same(null: pl.Series, condition: pl.Series) -> bool:
    return bool((null == condition).all()) and condition.any() and (~condition).any()


def test_conditional_nulls(cohort):
    c = cohort
    assert _same(c["ft3_pmol_l"].is_null(), c["tsh_miu_l"] <= c["tsh_uln_miu_l"])
    assert _same(c["ft4_pmol_l"].is_null(), c["tsh_miu_l"] <= c["tsh_uln_miu_l"])
    assert _same(c["urine_protein_24h_g"].is_null(), c["urine_protein_dipstick"] < 2)
    echo = ((c["troponin_ng_l"] > c["troponin_uln_ng_l"]) | (c["ntprobnp_pg_ml"] > c["ntprobnp_uln_pg_ml"])
            | c["ecg_abnormal"])
    assert _same(c["lvef_pct"].is_null(), ~echo)
    assert _same(c["hbv_dna_copies_ml"].is_null(), ~c["hbsag_positive"])
    assert _same(c["hcv_rna_positive"].is_null(), ~c["hcv_ab_positive"])
    assert _same(c["cisplatin_cumulative_mg_m2"].is_null(), c["curative_treatment"] != "crt")
    assert _same(c["months_since_rt"].is_null(), c["curative_treatment"] == "none")
    assert _same(c["recurrence_interval_months"].is_null(), c["de_novo_metastatic"])
    assert _same(c["prior_ici_phase"].is_null(), c["prior_ici"] == "none")
    assert _same(c["prior_ici_best_response"].is_null(), c["prior_ici_phase"].fill_null("") != "induction")
    assert ((c["prior_ici_types"] == 0) == (c["prior_ici"] == "none")).all()
    assert ((c["curative_treatment"] == "none") == c["de_novo_metastatic"]).all()


def test_ecg_abnormal_includes_long_qtc(cohort):
    assert cohort.filter(pl.col("qtc_ms") >= 480)["ecg_abnormal"].all()


def test_value_sets(cohort):
    assert set(cohort["sex"].unique()) == {"M", "F"}
    assert set(cohort["ecog"].unique()) == {0, 1, 2, 3}
    assert set(cohort["stage_at_diagnosis"].unique()) == {"I", "II", "III", "IVA", "IVB"}
    assert set(cohort["curative_treatment"].unique()) == {"crt", "rt_alone", "none"}
    assert set(cohort["urine_protein_dipstick"].unique()) <= {0, 1, 2, 3, 4}
    assert set(cohort["nyha_class"].unique()) <= {1, 2, 3, 4}
    assert cohort["patient_id"].to_list() == list(range(cohort.height))


def test_zero_and_tiny_cohorts(cfg):
    empty = sample(cfg, 0, np.random.default_rng(1))
    assert empty.height == 0 and set(contract_columns()) <= set(empty.columns)
    assert sample(cfg, 3, np.random.default_rng(1)).height == 3
