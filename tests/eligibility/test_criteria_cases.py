# ruff: noqa: E501  (tables of protocol sentences and test cases read best one entry per line)
"""Each criterion on hand-made candidates at and around its threshold, including nulls.

A case is (criterion id, columns changed from the healthy candidate, expected pass). The healthy
candidate passes everything, so each case shows exactly what the criterion does with that input.
"""

from __future__ import annotations

import pytest

from hn005_sim.eligibility import compile_criteria

from .conftest import candidates, load_cfg

N = None
ICI = {"prior_ici": "pd1", "prior_ici_types": 1}
ECHO = {"lvef_pct": 65.0}
TSH_HIGH = {"tsh_miu_l": 6.0, "ft3_pmol_l": 5.0, "ft4_pmol_l": 15.0}
HBV = {"hbsag_positive": True}
HCV = {"hcv_ab_positive": True, "hcv_rna_positive": True}

CASES: list[tuple[str, dict, bool]] = [
    ("age_min", {"age_years": 18.0}, True), ("age_min", {"age_years": 17.99}, False),
    ("age_min", {"age_years": N}, False),
    ("age_max", {"age_years": 65.0}, True), ("age_max", {"age_years": 65.99}, True),
    ("age_max", {"age_years": 66.0}, False), ("age_max", {"age_years": N}, False),
    ("ecog", {"ecog": 1}, True), ("ecog", {"ecog": 2}, False), ("ecog", {"ecog": N}, False),
    ("measurable_disease", {"measurable_disease": False}, False), ("measurable_disease", {"measurable_disease": N}, False),
    ("not_de_novo", {"de_novo_metastatic": True}, False), ("not_de_novo", {"de_novo_metastatic": N}, False),
    ("locoregionally_advanced", {"stage_at_diagnosis": "III"}, True),
    ("locoregionally_advanced", {"stage_at_diagnosis": "II"}, False),
    ("locoregionally_advanced", {"stage_at_diagnosis": "IVB", "de_novo_metastatic": True}, True),
    ("locoregionally_advanced", {"stage_at_diagnosis": N}, False),
    ("prior_chemoradiotherapy", {"curative_treatment": "rt_alone"}, False),
    ("prior_chemoradiotherapy", {"curative_treatment": "none", "de_novo_metastatic": True}, True),
    ("prior_chemoradiotherapy", {"curative_treatment": N}, False),
    ("no_prior_systemic_rm", {"prior_systemic_rm": True}, False), ("no_prior_systemic_rm", {"prior_systemic_rm": N}, False),
    ("recurrence_interval", {"recurrence_after_therapy_months": 6.0}, True),
    ("recurrence_interval", {"recurrence_after_therapy_months": 5.99}, False),
    # 10 months after RT but 2 months after the end of adjuvant capecitabine: within the window
    ("recurrence_interval", {"recurrence_interval_months": 10.0, "recurrence_after_therapy_months": 2.0}, False),
    ("recurrence_interval", {"recurrence_after_therapy_months": N}, False),
    ("recurrence_interval", {"recurrence_after_therapy_months": N, "de_novo_metastatic": True}, True),
    ("prior_ici_type", {**ICI, "prior_ici_phase": "adjuvant"}, True),
    ("prior_ici_type", {"prior_ici": "bispecific", "prior_ici_types": 1}, False),
    ("prior_ici_type", {"prior_ici": "penpulimab", "prior_ici_types": 1}, False),
    ("prior_ici_type", {"prior_ici": N}, False),
    ("prior_ici_count", {**ICI, "prior_ici_types": 1}, True), ("prior_ici_count", {**ICI, "prior_ici_types": 2}, False),
    ("prior_ici_count", {**ICI, "prior_ici_types": N}, False),
    ("prior_ici_induction_response", {**ICI, "prior_ici_phase": "induction", "prior_ici_best_response": "PR"}, True),
    ("prior_ici_induction_response", {**ICI, "prior_ici_phase": "induction", "prior_ici_best_response": "SD"}, False),
    ("prior_ici_induction_response", {**ICI, "prior_ici_phase": "induction", "prior_ici_best_response": N}, False),
    ("prior_ici_induction_response", {**ICI, "prior_ici_phase": "adjuvant", "prior_ici_best_response": N}, True),
    ("prior_ici_rt_no_progression", {**ICI, "prior_ici_phase": "concurrent"}, True),
    ("prior_ici_rt_no_progression", {**ICI, "prior_ici_phase": "concurrent", "progression_within_6m_of_rt": True}, False),
    ("prior_ici_rt_no_progression", {**ICI, "prior_ici_phase": "concurrent", "progression_within_6m_of_rt": N}, False),
    ("rt_cannot_benefit", {"rt_can_benefit_target": True}, False), ("rt_cannot_benefit", {"rt_can_benefit_target": N}, False),
    ("no_transfusion_14d", {"transfusion_14d": True}, False), ("no_transfusion_14d", {"transfusion_14d": N}, False),
    ("no_gcsf_14d", {"gcsf_14d": True}, False), ("no_gcsf_14d", {"gcsf_14d": N}, False),
    ("hb", {"hb_g_l": 90.0}, True), ("hb", {"hb_g_l": 89.9}, False), ("hb", {"hb_g_l": N}, False),
    ("wbc", {"wbc_10e9_l": 4.0}, True), ("wbc", {"wbc_10e9_l": 3.99}, False), ("wbc", {"wbc_10e9_l": N}, False),
    ("plt", {"plt_10e9_l": 100.0}, True), ("plt", {"plt_10e9_l": 99.9}, False), ("plt", {"plt_10e9_l": N}, False),
    ("tbil", {"tbil_umol_l": 30.0}, True), ("tbil", {"tbil_umol_l": 30.1}, False), ("tbil", {"tbil_umol_l": N}, False),
    ("tbil", {"tbil_uln_umol_l": N}, False),
    ("alt", {"alt_u_l": 100.0}, True), ("alt", {"alt_u_l": 100.1}, False), ("alt", {"alt_u_l": N}, False),
    ("ast", {"ast_u_l": 100.0}, True), ("ast", {"ast_u_l": 100.1}, False), ("ast", {"ast_u_l": N}, False),
    ("creatinine", {"creatinine_umol_l": 150.0}, True), ("creatinine", {"creatinine_umol_l": 150.1}, False),
    ("creatinine", {"creatinine_umol_l": N}, False),
    ("crcl", {"crcl_ml_min": 60.0}, True), ("crcl", {"crcl_ml_min": 59.99}, False), ("crcl", {"crcl_ml_min": N}, False),
    ("inr", {"inr": 1.79}, True), ("inr", {"inr": 1.81}, False), ("inr", {"inr": N}, False),
    ("aptt", {"aptt_s": 60.0}, True), ("aptt", {"aptt_s": 60.1}, False), ("aptt", {"aptt_s": N}, False),
    ("troponin", {"troponin_ng_l": 14.0}, True), ("troponin", {"troponin_ng_l": 14.1}, False),
    ("troponin", {"troponin_ng_l": 14.1, **ECHO}, True), ("troponin", {"troponin_ng_l": N}, False),
    ("ntprobnp", {"ntprobnp_pg_ml": 125.0}, True), ("ntprobnp", {"ntprobnp_pg_ml": 126.0}, False),
    ("ntprobnp", {"ntprobnp_pg_ml": 126.0, **ECHO}, True), ("ntprobnp", {"ntprobnp_pg_ml": N}, False),
    ("ecg", {"ecg_abnormal": True}, False), ("ecg", {"ecg_abnormal": True, **ECHO}, True),
    ("ecg", {"ecg_abnormal": N}, False),
    ("thyroid_ft3", {"tsh_miu_l": 4.0}, True), ("thyroid_ft3", TSH_HIGH, True),
    ("thyroid_ft3", {**TSH_HIGH, "ft3_pmol_l": 3.0}, False), ("thyroid_ft3", {**TSH_HIGH, "ft3_pmol_l": 6.8}, True),
    ("thyroid_ft3", {**TSH_HIGH, "ft3_pmol_l": 6.9}, False), ("thyroid_ft3", {**TSH_HIGH, "ft3_pmol_l": N}, False),
    ("thyroid_ft3", {"tsh_miu_l": N}, False),
    ("thyroid_ft4", {**TSH_HIGH, "ft4_pmol_l": 11.9}, False), ("thyroid_ft4", {**TSH_HIGH, "ft4_pmol_l": 22.0}, True),
    ("thyroid_ft4", {**TSH_HIGH, "ft4_pmol_l": N}, False),
    ("not_pregnant", {"sex": "F", "childbearing_potential": True, "pregnant": True}, False),
    ("not_pregnant", {"pregnant": N}, False),
    ("contraception_women", {"sex": "F", "childbearing_potential": True, "contraception_refused": True}, False),
    ("contraception_women", {"sex": "F", "childbearing_potential": False, "contraception_refused": True}, True),
    ("contraception_women", {"sex": "F", "childbearing_potential": True, "contraception_refused": N}, False),
    ("contraception_men", {"contraception_refused": True}, False),
    ("contraception_men", {"sex": "F", "contraception_refused": True}, True),
    ("contraception_men", {"contraception_refused": N}, False),
    ("early_progression", {"recurrence_after_therapy_months": 5.99}, False),
    ("early_progression", {"recurrence_after_therapy_months": 6.0}, True),
    ("early_progression", {"recurrence_interval_months": 10.0, "recurrence_after_therapy_months": 2.0}, False),
    ("early_progression", {"recurrence_after_therapy_months": N, "de_novo_metastatic": True}, True),
    ("mri_contraindication", {"mri_contraindication": True}, False), ("mri_contraindication", {"mri_contraindication": N}, False),
    ("systemic_steroids", {"systemic_steroid_14d": True}, False), ("systemic_steroids", {"systemic_steroid_14d": N}, False),
    ("locally_salvageable", {"locally_salvageable": True}, False), ("locally_salvageable", {"locally_salvageable": N}, False),
    ("autoimmune", {"autoimmune_active": True}, False), ("autoimmune", {"hypothyroid_on_replacement": True}, True),
    ("autoimmune", {"autoimmune_active": N}, False),
    ("transplant", {"transplant_history": True}, False), ("transplant", {"transplant_history": N}, False),
    ("severe_infection", {"severe_infection_4w": True}, False), ("severe_infection", {"severe_infection_4w": N}, False),
    ("active_tb", {"active_tb_1y": True}, False), ("active_tb", {"active_tb_1y": N}, False),
    # default reading: judged after one drug, mean effect 9.1/5.5 mmHg (Law, BMJ 2009)
    ("uncontrolled_sbp", {"hypertension": True, "hypertension_history": True, "sbp_mmhg": 159.0}, True),
    ("uncontrolled_sbp", {"hypertension": True, "hypertension_history": True, "sbp_mmhg": 159.1}, False),
    # hypertension found only at screening is not a "history": the criterion does not apply
    ("uncontrolled_sbp", {"hypertension": True, "hypertension_history": False, "sbp_mmhg": 180.0}, True),
    ("uncontrolled_sbp", {"hypertension": False, "sbp_mmhg": 160.0}, True),
    ("uncontrolled_sbp", {"hypertension_history": True, "sbp_mmhg": N}, False),
    ("uncontrolled_dbp", {"hypertension_history": True, "dbp_mmhg": 95.4}, True),
    ("uncontrolled_dbp", {"hypertension_history": True, "dbp_mmhg": 95.5}, False),
    ("uncontrolled_dbp", {"hypertension": True, "hypertension_history": False, "dbp_mmhg": 110.0}, True),
    ("uncontrolled_dbp", {"hypertension_history": True, "dbp_mmhg": N}, False),
    ("ischaemia_bleeding_risk", {"ischaemia_bleeding_risk": True}, False),
    ("ischaemia_bleeding_risk", {"ischaemia_bleeding_risk": N}, False),
    ("proteinuria", {"urine_protein_dipstick": 2, "urine_protein_24h_g": 0.99}, True),
    ("proteinuria", {"urine_protein_dipstick": 2, "urine_protein_24h_g": 1.0}, False),
    ("proteinuria", {"urine_protein_dipstick": 1, "urine_protein_24h_g": 3.0}, True),
    ("proteinuria", {"urine_protein_dipstick": 2, "urine_protein_24h_g": N}, True),
    ("cardiac_ischaemia_mi", {"cardiac_event_6m": True}, False), ("cardiac_ischaemia_mi", {"cardiac_event_6m": N}, False),
    ("arrhythmia", {"arrhythmia_6m": True}, False), ("arrhythmia", {"arrhythmia_6m": N}, False),
    ("qtc", {"qtc_ms": 479.9}, True), ("qtc", {"qtc_ms": 480.0}, False), ("qtc", {"qtc_ms": N}, False),
    ("heart_failure", {"nyha_class": 1}, True), ("heart_failure", {"nyha_class": 2}, False),
    ("heart_failure", {"nyha_class": N}, False),
    ("lvef", {"lvef_pct": 60.0}, True), ("lvef", {"lvef_pct": 59.9}, False), ("lvef", {"lvef_pct": N}, True),
    ("other_malignancy", {"other_malignancy": True}, False), ("other_malignancy", {"other_malignancy": N}, False),
    ("cns_metastasis", {"cns_metastasis": True}, False), ("cns_metastasis", {"cns_metastasis": N}, False),
    ("hiv", {"hiv_positive": True}, False), ("hiv", {"hiv_positive": N}, False),
    ("syphilis", {"tp_positive": True}, False), ("syphilis", {"tp_positive": N}, False),
    ("cirrhosis", {"liver_cirrhosis": True}, False), ("cirrhosis", {"liver_cirrhosis": N}, False),
    ("hepatitis_b", {**HBV, "hbv_dna_copies_ml": 9999.0}, True), ("hepatitis_b", {**HBV, "hbv_dna_copies_ml": 10000.0}, False),
    ("hepatitis_b", {**HBV, "hbv_dna_copies_ml": N}, False), ("hepatitis_b", {"hbv_dna_copies_ml": N}, True),
    ("hepatitis_c", {**HCV}, True), ("hepatitis_c", {**HCV, "alt_u_l": 41.0}, False),
    ("hepatitis_c", {**HCV, "ast_u_l": 41.0}, False), ("hepatitis_c", {"alt_u_l": 41.0, "hcv_rna_positive": N}, True),
    ("hepatitis_c", {**HCV, "hcv_rna_positive": False, "alt_u_l": 41.0}, True),
    ("hbv_hcv_coinfection", {**HBV, "hbv_dna_copies_ml": 100.0, **HCV}, False),
    ("hbv_hcv_coinfection", {**HBV, "hbv_dna_copies_ml": 100.0}, True),
    ("hbv_hcv_coinfection", {"hbsag_positive": True, "hcv_rna_positive": False}, True),
    ("hbv_hcv_coinfection", {**HBV, "hbv_dna_copies_ml": 100.0, "hcv_rna_positive": N}, True),
    ("other_trial", {"other_trial_4w": True}, False), ("other_trial", {"other_trial_4w": N}, False),
    ("live_vaccine", {"live_vaccine_30d": True}, False), ("live_vaccine", {"live_vaccine_30d": N}, False),
    ("ak105_recent", {"ak105_30d": True}, False), ("ak105_recent", {"ak105_30d": N}, False),
    ("mab_hypersensitivity", {"mab_hypersensitivity": True}, False), ("mab_hypersensitivity", {"mab_hypersensitivity": N}, False),
    ("oral_intake", {"oral_intake_problem": True}, False), ("oral_intake", {"oral_intake_problem": N}, False),
    ("psychiatric_substance", {"psychiatric_or_substance": True}, False),
    ("psychiatric_substance", {"psychiatric_or_substance": N}, False),
    ("investigator_judgement", {"investigator_excludes": True}, False),
    ("investigator_judgement", {"investigator_excludes": N}, False),
]

# Readings: the same candidates under the other reading of an ambiguity.
READING_CASES: list[tuple[dict, str, dict, bool]] = [
    ({"prior_ici": "never"}, "prior_ici_type", ICI, False),
    ({"prior_ici": "any_curative_phase"}, "prior_ici_type", {"prior_ici": "bispecific", "prior_ici_types": 2}, True),
    ({"prior_ici": "any_curative_phase"}, "prior_ici_count", {**ICI, "prior_ici_types": 3}, True),
    ({"plt_typo": "more_than_100"}, "plt", {"plt_10e9_l": 100.0}, False),
    ({"plt_typo": "more_than_100"}, "plt", {"plt_10e9_l": 100.1}, True),
    ({"renal": "cr_or_ccr"}, "creatinine", {"creatinine_umol_l": 160.0}, True),
    ({"renal": "cr_or_ccr"}, "creatinine", {"creatinine_umol_l": 160.0, "crcl_ml_min": 59.0}, False),
    ({"renal": "cr_or_ccr"}, "crcl", {"crcl_ml_min": 40.0}, True),
    ({"renal": "ccr_only"}, "creatinine", {"creatinine_umol_l": 300.0}, True),
    ({"prior_curative_therapy": "any_curative"}, "locoregionally_advanced", {"stage_at_diagnosis": "I"}, True),
    ({"prior_curative_therapy": "any_curative"}, "prior_chemoradiotherapy", {"curative_treatment": "rt_alone"}, True),
    ({"cardiac_workup": "normal_required"}, "troponin", {"troponin_ng_l": 20.0, **ECHO}, False),
    ({"cardiac_workup": "normal_required"}, "ecg", {"ecg_abnormal": True, **ECHO}, False),
    ({"hypertension_control": "as_measured"}, "uncontrolled_sbp", {"hypertension_history": True, "sbp_mmhg": 149.9}, True),
    ({"hypertension_control": "as_measured"}, "uncontrolled_sbp", {"hypertension_history": True, "sbp_mmhg": 150.0}, False),
    ({"hypertension_control": "as_measured"}, "uncontrolled_dbp", {"hypertension_history": True, "dbp_mmhg": 89.9}, True),
    ({"hypertension_control": "as_measured"}, "uncontrolled_dbp", {"hypertension_history": True, "dbp_mmhg": 90.0}, False),
]


def _check(screener, cases):
    frame = candidates(*[c[-2] for c in cases])
    res = screener.evaluate(frame)
    col = {cid: j for j, cid in enumerate(screener.ids)}
    wrong = [(c[-3], c[-2], c[-1]) for i, c in enumerate(cases) if res.passes[i, col[c[-3]]] != c[-1]]
    assert not wrong, f"criteria giving the wrong answer: {wrong}"


def test_healthy_candidate_passes_everything(screener):
    res = screener.evaluate(candidates({}))
    assert res.passes.all() and res.eligible.tolist() == [True] and res.first_failure.tolist() == [-1]


def test_each_criterion_at_and_around_its_threshold(screener):
    _check(screener, CASES)


@pytest.mark.parametrize("readings", sorted({tuple(r[0].items()) for r in READING_CASES}))
def test_readings(readings):
    screener = compile_criteria(load_cfg({"readings": {**load_cfg().readings, **dict(readings)}}))
    _check(screener, [c for c in READING_CASES if tuple(c[0].items()) == readings])


def test_every_criterion_has_a_failing_case_and_a_null_case(cfg):
    failing = {c[0] for c in CASES if not c[2]}
    with_null = {c[0] for c in CASES if any(v is None for v in c[1].values())}
    ids = [c.id for c in cfg.criterion]
    assert [i for i in ids if i not in failing] == []
    assert [i for i in ids if i not in with_null] == []


def test_overriding_a_threshold_moves_the_boundary():
    screener = compile_criteria(load_cfg({"overrides": {"crcl_min_ml_min": 50.0, "age_max_years": 70}}))
    frame = candidates({"crcl_ml_min": 50.0}, {"crcl_ml_min": 49.9}, {"age_years": 70.5}, {"age_years": 71.0})
    res = screener.evaluate(frame)
    assert res.eligible.tolist() == [True, False, True, False]
