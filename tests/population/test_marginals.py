"""Each configured marginal is reproduced within Monte Carlo tolerance (5 standard errors)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from hn005_sim.population.config import ICI_PHASES, ICI_TYPES, PATTERNS, RESPONSES

from .conftest import share_ok, within


def col(frame, name):
    return frame.get_column(name).to_numpy()


def test_male_share(cfg, cohort):
    ok, msg = share_ok(col(cohort, "sex") == "M", cfg.demographics.male.value)
    assert ok, msg


def test_age_mean_matches_truncated_normal(cfg, cohort):
    d = cfg.demographics.age_years
    age = col(cohort, "age_years")
    assert age.min() >= d.low and age.max() <= d.high
    assert within(age.mean(), d.mean(), d.sd / math.sqrt(len(age))), (age.mean(), d.mean())


@pytest.mark.parametrize("sex,key", [("M", "male"), ("F", "female")])
def test_height_weight_by_sex(cfg, cohort, sex, key):
    sub = cohort.filter(pl.col("sex") == sex)
    # weight as configured where there was no radiotherapy (de novo); recurrent candidates keep part of
    # the weight lost during radiotherapy
    for name, frame in (("height_cm", sub), ("weight_kg", sub.filter(pl.col("de_novo_metastatic")))):
        d = getattr(getattr(cfg.demographics, name), key)
        x = col(frame, name)
        assert within(x.mean(), d.mean_, d.sd / math.sqrt(len(x))), (name, sex, x.mean(), d.mean_)
        # sd of a normal sample: se ~ sd / sqrt(2n)
        assert within(x.std(), d.sd, d.sd / math.sqrt(2 * len(x))), (name, sex, x.std(), d.sd)
    d = getattr(cfg.demographics.weight_kg, key)
    rec = col(sub.filter(~pl.col("de_novo_metastatic")), "weight_kg")
    expected = d.mean_ * (1 - cfg.demographics.weight_loss_after_rt_fraction.mean())  # loss independent
    assert within(rec.mean(), expected, d.sd / math.sqrt(len(rec))), (sex, rec.mean(), expected)


def test_ecog(cfg, cohort):
    e = col(cohort, "ecog")
    for v, p in zip(cfg.demographics.ecog.values, cfg.demographics.ecog.probs, strict=True):
        ok, msg = share_ok(e == v, p)
        assert ok, (v, msg)


def test_disease_history(cfg, cohort):
    s = cfg.disease
    ok, msg = share_ok(col(cohort, "de_novo_metastatic"), s.de_novo_metastatic.value)
    assert ok, msg
    rec = cohort.filter(~pl.col("de_novo_metastatic"))
    stage = col(rec, "stage_at_diagnosis")
    for v, p in zip(s.stage_at_diagnosis_recurrent.values, s.stage_at_diagnosis_recurrent.probs, strict=True):
        ok, msg = share_ok(stage == v, p)
        assert ok, (v, msg)
    for st in ("II", "III", "IVA"):
        sub = rec.filter(pl.col("stage_at_diagnosis") == st)
        ok, msg = share_ok(col(sub, "curative_treatment") == "crt", getattr(s.crt_by_stage, st).value)
        assert ok, (st, msg)
    pattern = col(rec, "recurrence_pattern")
    for v, p in zip(s.recurrence_pattern.values, s.recurrence_pattern.probs, strict=True):
        ok, msg = share_ok(pattern == v, p)
        assert ok, (v, msg)
    assert set(col(cohort.filter(pl.col("de_novo_metastatic")), "stage_at_diagnosis")) == {"IVB"}


def test_cisplatin_dose(cfg, cohort):
    d = cfg.disease.cisplatin_cumulative_mg_m2
    x = cohort.filter(pl.col("curative_treatment") == "crt")["cisplatin_cumulative_mg_m2"].to_numpy()
    assert x.min() >= d.low and x.max() <= d.high
    assert within(x.mean(), d.mean(), d.sd / math.sqrt(len(x)))


def test_recurrence_interval_median(cfg, cohort):
    d = cfg.disease.recurrence_interval_months
    x = cohort["recurrence_interval_months"].drop_nulls().to_numpy()
    # P(X <= configured median) = 0.5 (the cap at age-18 years only touches the far right tail).
    ok, msg = share_ok(x <= d.median, 0.5)
    assert ok, msg
    mu, sigma = d._mu_sigma()
    ok, msg = share_ok(x <= math.exp(mu + sigma), 0.8413447)
    assert ok, msg


def test_metastatic_sites_and_local_options(cfg, cohort):
    s = cfg.disease
    distant = cohort.filter(pl.col("recurrence_pattern").is_in(["distant", "locoregional_distant"]))
    for name, p in (("liver_metastasis", s.liver_metastasis_given_distant.value),
                    ("cns_metastasis", s.cns_metastasis_given_distant.value)):
        ok, msg = share_ok(col(distant, name), p)
        assert ok, (name, msg)
    lro = cohort.filter(pl.col("recurrence_pattern").is_in(["local", "regional", "locoregional"]))
    ok, msg = share_ok(col(lro, "locally_salvageable"), s.salvageable_given_locoregional_only.value)
    assert ok, msg
    assert not col(distant, "locally_salvageable").any()
    ok, msg = share_ok(col(cohort, "measurable_disease"), s.measurable_disease.value)
    assert ok, msg


def test_prior_immunotherapy(cfg, cohort):
    s = cfg.disease
    rec = cohort.filter(~pl.col("de_novo_metastatic"))
    had = col(rec, "prior_ici") != "none"
    ok, msg = share_ok(had, s.prior_ici_given_curative.value)
    assert ok, msg
    ici = rec.filter(pl.col("prior_ici") != "none")
    for v, p in zip(s.prior_ici_type.values, s.prior_ici_type.probs, strict=True):
        ok, msg = share_ok(col(ici, "prior_ici") == v, p, k=5)
        assert ok, (v, msg)
    for v, p in zip(s.prior_ici_phase.values, s.prior_ici_phase.probs, strict=True):
        ok, msg = share_ok(col(ici, "prior_ici_phase") == v, p)
        assert ok, (v, msg)
    ind = ici.filter(pl.col("prior_ici_phase") == "induction")
    for v, p in zip(s.prior_ici_induction_response.values, s.prior_ici_induction_response.probs, strict=True):
        ok, msg = share_ok(col(ind, "prior_ici_best_response") == v, p)
        assert ok, (v, msg)
    ok, msg = share_ok(col(ici, "prior_ici_types") == 2, s.prior_ici_two_types.value)
    assert ok, msg
    assert set(ICI_TYPES) <= set(map(str, s.prior_ici_type.values))  # the usual types, plus the trial's own
    assert set(map(str, s.prior_ici_type.values)) >= set(col(ici, "prior_ici"))
    assert set(ICI_PHASES) >= set(col(ici, "prior_ici_phase"))
    assert set(RESPONSES) >= set(col(ind, "prior_ici_best_response"))
    assert set(PATTERNS) == set(col(cohort, "recurrence_pattern"))


def test_infections(cfg, cohort):
    f = cfg.infections
    for name in ("hbsag_positive", "hcv_ab_positive", "hiv_positive", "tp_positive", "active_tb_1y"):
        ok, msg = share_ok(col(cohort, name), getattr(f, name).value)
        assert ok, (name, msg)
    hb = cohort.filter(pl.col("hbsag_positive"))
    ok, msg = share_ok(col(hb, "hbv_dna_copies_ml") > 0, f.hbv_dna_detectable_given_hbsag.value)
    assert ok, msg
    hc = cohort.filter(pl.col("hcv_ab_positive"))
    ok, msg = share_ok(col(hc, "hcv_rna_positive").astype(bool), f.hcv_rna_given_ab.value)
    assert ok, msg
    ok, msg = share_ok(col(hb, "liver_cirrhosis"), f.cirrhosis_given_hbsag.value)
    assert ok, msg


def test_history_flags(cfg, cohort):
    assert "ak105_30d" in cfg.history  # ALTER-HN005's own-drug exposure, declared in its config
    for name, p in cfg.history.items():
        ok, msg = share_ok(col(cohort, name), p.value)
        assert ok, (name, msg)
    for name in ("transfusion_14d", "gcsf_14d"):
        ok, msg = share_ok(col(cohort, name), getattr(cfg.labs, name).value)
        assert ok, (name, msg)


def _reference_males(cohort):
    """Men to whom no lab effect applies (baseline marginal holds exactly)."""
    return cohort.filter((pl.col("sex") == "M") & (pl.col("ecog") < 2) & ~pl.col("distant_metastasis")
                         & ~pl.col("liver_metastasis") & ~(pl.col("hbv_dna_copies_ml").fill_null(0) >= 1e4))


@pytest.mark.parametrize("name", ["wbc_10e9_l", "plt_10e9_l", "tbil_umol_l", "alt_u_l", "ast_u_l", "inr"])
def test_lognormal_lab_marginals(cfg, cohort, name):
    mu, sigma = getattr(cfg.labs, name).male._mu_sigma()
    x = np.log(_reference_males(cohort)[name].to_numpy())
    assert within(x.mean(), mu, sigma / math.sqrt(len(x))), (name, x.mean(), mu)
    assert within(x.std(), sigma, sigma / math.sqrt(2 * len(x))), (name, x.std(), sigma)


@pytest.mark.parametrize("name", ["hb_g_l", "aptt_s"])
def test_normal_lab_marginals(cfg, cohort, name):
    d = getattr(cfg.labs, name).female
    x = cohort.filter((pl.col("sex") == "F") & (pl.col("ecog") < 2) & ~pl.col("distant_metastasis"))[name]
    x = x.to_numpy()
    assert within(x.mean(), d.mean_, d.sd / math.sqrt(len(x))), (name, x.mean(), d.mean_)
    assert within(x.std(), d.sd, d.sd / math.sqrt(2 * len(x)))


def test_creatinine_marginal_after_removing_effects(cfg, cohort):
    e = cfg.labs.effects
    men = cohort.filter(pl.col("sex") == "M")
    cis = men["cisplatin_cumulative_mg_m2"].fill_null(0).to_numpy()
    age = men["age_years"].to_numpy()
    resid = (np.log(men["creatinine_umol_l"].to_numpy())
             - cis / 100 * math.log(e.creatinine_multiplier_per_100_mg_m2_cisplatin.value)
             - (age - 45) / 10 * math.log(e.creatinine_multiplier_per_decade_over_45.value))
    mu, sigma = cfg.labs.creatinine_umol_l.male._mu_sigma()
    assert within(resid.mean(), mu, sigma / math.sqrt(len(resid)))
    assert within(resid.std(), sigma, sigma / math.sqrt(2 * len(resid)))


def test_urine(cfg, cohort):
    dip = col(cohort, "urine_protein_dipstick")
    for v, p in zip(cfg.urine.dipstick.values, cfg.urine.dipstick.probs, strict=True):
        ok, msg = share_ok(dip == v, p)
        assert ok, (v, msg)
    g2 = np.log(cohort.filter(pl.col("urine_protein_dipstick") == 2)["urine_protein_24h_g"].to_numpy())
    mu, sigma = cfg.urine.protein_24h_g_grade2._mu_sigma()
    assert within(g2.mean(), mu, sigma / math.sqrt(len(g2)))


def test_cardiac(cfg, cohort):
    c = cfg.cardiac
    men = cohort.filter(pl.col("sex") == "M")
    q = men["qtc_ms"].to_numpy()
    assert within(q.mean(), c.qtc_ms.mean_, c.qtc_ms.sd / math.sqrt(len(q)))
    for name in ("cardiac_event_6m", "arrhythmia_6m"):
        ok, msg = share_ok(col(cohort, name), getattr(c, name).value)
        assert ok, (name, msg)
    nyha = col(cohort, "nyha_class")
    for v, p in zip(c.nyha_class.values, c.nyha_class.probs, strict=True):
        ok, msg = share_ok(nyha == v, p)
        assert ok, (v, msg)
    lvef = cohort["lvef_pct"].drop_nulls().to_numpy()  # echo subset is chosen independently of LVEF
    assert within(lvef.mean(), c.lvef_pct.mean(), c.lvef_pct.sd / math.sqrt(len(lvef)))


def test_blood_pressure_by_age(cfg, cohort):
    b = cfg.blood_pressure
    age, htn = col(cohort, "age_years"), col(cohort, "hypertension")
    p50 = b.hypertension_prevalence_at_50.value
    odds60 = p50 / (1 - p50) * b.hypertension_odds_ratio_per_decade.value
    for centre, p in ((50, p50), (60, odds60 / (1 + odds60))):
        sel = np.abs(age - centre) <= 1.5
        obs, se = htn[sel].mean(), math.sqrt(p * (1 - p) / sel.sum())
        # slack 0.003: the logistic curve is not linear over the +/-1.5-year window
        assert within(obs, p, se, slack=0.003), (centre, obs, p)
    hyp = cohort.filter(pl.col("hypertension"))
    ok, msg = share_ok(col(hyp, "hypertension_history"), b.aware_given_hypertension.value)
    assert ok, msg
    known = cohort.filter(pl.col("hypertension_history"))
    ok, msg = share_ok(col(known, "antihypertensive_drugs") > 0, b.treated_given_aware.value)
    assert ok, msg
    # only known hypertension is treated; a history implies hypertension
    assert (col(cohort.filter(~pl.col("hypertension_history")), "antihypertensive_drugs") == 0).all()
    assert not cohort.filter(~pl.col("hypertension"))["hypertension_history"].any()


def test_sbp_dbp_correlation(cfg, cohort):
    """Among untreated hypertensives (normal marginals, no truncation) the recorded pressures correlate
    as rho * sd_s * sd_d / sqrt((sd_s^2 + e_s^2) (sd_d^2 + e_d^2)), e = reading SD / sqrt(readings); the
    tolerance is 5 standard errors of Fisher's z, 1 / sqrt(n - 3)."""
    b = cfg.blood_pressure
    sub = cohort.filter(pl.col("hypertension") & (pl.col("antihypertensive_drugs") == 0))
    k = b.readings_averaged.value
    ss, sd = b.sbp_hypertensive_untreated_mmhg.sd, b.dbp_hypertensive_untreated_mmhg.sd
    es2, ed2 = b.reading_sd_sbp_mmhg.value ** 2 / k, b.reading_sd_dbp_mmhg.value ** 2 / k
    expected = b.sbp_dbp_correlation.value * ss * sd / math.sqrt((ss**2 + es2) * (sd**2 + ed2))
    r = np.corrcoef(col(sub, "sbp_mmhg"), col(sub, "dbp_mmhg"))[0, 1]
    assert abs(math.atanh(r) - math.atanh(expected)) <= 5 / math.sqrt(sub.height - 3), (r, expected)
    # spread of the recorded pressure: usual SD and the averaged reading error add in quadrature
    x = col(sub, "sbp_mmhg")
    assert within(x.std(), math.sqrt(ss**2 + es2), math.sqrt(ss**2 + es2) / math.sqrt(2 * len(x)))
    assert within(x.mean(), b.sbp_hypertensive_untreated_mmhg.mean_,
                  math.sqrt(ss**2 + es2) / math.sqrt(len(x)))
    y = col(sub, "dbp_mmhg")
    assert within(y.mean(), b.dbp_hypertensive_untreated_mmhg.mean_,
                  math.sqrt(sd**2 + ed2) / math.sqrt(len(y)))


def test_heart_failure_share_fits_middle_age(cohort):
    # NYHA >= II in about 0.5% (Hao, Eur J Heart Fail 2019: 1.3% of Chinese adults 35+); 5 standard errors
    ok, msg = share_ok(col(cohort, "nyha_class") >= 2, 0.005)
    assert ok, msg
