"""Attributes depend on each other in the direction and by the size configured."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from .conftest import share_ok, within


def _ols(y: np.ndarray, *xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares coefficients and their standard errors (intercept first)."""
    x = np.column_stack([np.ones_like(y), *xs])
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    s2 = resid @ resid / (len(y) - x.shape[1])
    se = np.sqrt(np.diag(s2 * np.linalg.inv(x.T @ x)))
    return beta, se


def test_creatinine_rises_with_cisplatin_and_age(cfg, cohort):
    e = cfg.labs.effects
    men = cohort.filter(pl.col("sex") == "M")
    beta, se = _ols(np.log(men["creatinine_umol_l"].to_numpy()),
                    men["cisplatin_cumulative_mg_m2"].fill_null(0).to_numpy() / 100,
                    (men["age_years"].to_numpy() - 45) / 10)
    assert within(beta[1], math.log(e.creatinine_multiplier_per_100_mg_m2_cisplatin.value), se[1]), beta
    assert within(beta[2], math.log(e.creatinine_multiplier_per_decade_over_45.value), se[2]), beta


def test_clearance_falls_with_age_and_cisplatin(cohort):
    men = cohort.filter(pl.col("sex") == "M")
    crcl = men["crcl_ml_min"].to_numpy()
    assert np.corrcoef(crcl, men["age_years"].to_numpy())[0, 1] < -0.3
    crt = men["curative_treatment"].to_numpy() == "crt"
    assert np.median(crcl[crt]) < np.median(crcl[~crt])


@pytest.mark.parametrize("lab,effect", [("alt_u_l", "alt_multiplier_liver_metastasis"),
                                        ("ast_u_l", "ast_multiplier_liver_metastasis"),
                                        ("tbil_umol_l", "tbil_multiplier_liver_metastasis")])
def test_liver_metastases_raise_liver_tests(cfg, cohort, lab, effect):
    base = cohort.filter((pl.col("sex") == "M") & pl.col("distant_metastasis")
                         & ~(pl.col("hbv_dna_copies_ml").fill_null(0) >= 1e4))
    liver = np.log(base.filter(pl.col("liver_metastasis"))[lab].to_numpy())
    other = np.log(base.filter(~pl.col("liver_metastasis"))[lab].to_numpy())
    sigma = getattr(cfg.labs, lab).male._mu_sigma()[1]
    se = sigma * math.sqrt(1 / len(liver) + 1 / len(other))
    expected = math.log(getattr(cfg.labs.effects, effect).value)
    assert within(liver.mean() - other.mean(), expected, se), (lab, liver.mean() - other.mean(), expected)


def test_active_hbv_raises_alt(cfg, cohort):
    base = cohort.filter((pl.col("sex") == "M") & ~pl.col("liver_metastasis"))
    threshold = cfg.infections.hbv_active_threshold_copies_ml.value
    active = base["hbv_dna_copies_ml"].fill_null(0).to_numpy() >= threshold
    alt = np.log(base["alt_u_l"].to_numpy())
    sigma = cfg.labs.alt_u_l.male._mu_sigma()[1]
    se = sigma * math.sqrt(1 / active.sum() + 1 / (~active).sum())
    assert within(alt[active].mean() - alt[~active].mean(),
                  math.log(cfg.labs.effects.alt_multiplier_hbv_active.value), se)


def test_hb_shifts_with_ecog_and_distant_disease(cfg, cohort):
    e = cfg.labs.effects
    men = cohort.filter((pl.col("sex") == "M") & ~pl.col("distant_metastasis"))
    poor = men["ecog"].to_numpy() >= 2
    hb = men["hb_g_l"].to_numpy()
    sd = cfg.labs.hb_g_l.male.sd
    se = sd * math.sqrt(1 / poor.sum() + 1 / (~poor).sum())
    assert within(hb[poor].mean() - hb[~poor].mean(), e.hb_shift_ecog_2plus_g_l.value, se)
    # sex drives Hb: difference of the configured means (within the reference group)
    women = cohort.filter((pl.col("sex") == "F") & ~pl.col("distant_metastasis") & (pl.col("ecog") < 2))
    diff = hb[~poor].mean() - women["hb_g_l"].to_numpy().mean()
    expected = cfg.labs.hb_g_l.male.mean_ - cfg.labs.hb_g_l.female.mean_
    assert within(diff, expected, sd * math.sqrt(1 / (~poor).sum() + 1 / women.height))


@pytest.mark.parametrize("a,b,log_a,log_b", [("alt_u_l", "ast_u_l", True, True),
                                             ("wbc_10e9_l", "plt_10e9_l", True, True),
                                             ("inr", "aptt_s", True, False)])
def test_copula_correlation(cfg, cohort, a, b, log_a, log_b):
    """For normal/lognormal marginals the Pearson correlation of the (log) values IS the copula's."""
    ref = cohort.filter((pl.col("sex") == "M") & ~pl.col("liver_metastasis")
                        & ~(pl.col("hbv_dna_copies_ml").fill_null(0) >= 1e4))
    xa, xb = ref[a].to_numpy(), ref[b].to_numpy()
    r = np.corrcoef(np.log(xa) if log_a else xa, np.log(xb) if log_b else xb)[0, 1]
    c = cfg.labs.correlation
    rho = c.matrix[c.labs.index(a)][c.labs.index(b)]
    assert within(r, rho, (1 - rho**2) / math.sqrt(len(xa))), (a, b, r, rho)


def test_height_weight_correlation(cfg, cohort):
    men = cohort.filter((pl.col("sex") == "M") & pl.col("de_novo_metastatic"))  # no weight lost after RT
    r = np.corrcoef(men["height_cm"].to_numpy(), men["weight_kg"].to_numpy())[0, 1]
    rho = cfg.demographics.height_weight_correlation.value
    assert within(r, rho, (1 - rho**2) / math.sqrt(men.height))


def test_hypothyroidism_rises_with_months_since_rt(cfg, cohort):
    rec = cohort.filter(~pl.col("de_novo_metastatic"))
    t = rec["months_since_rt"].to_numpy()
    hypo = rec["hypothyroidism_rt"].to_numpy()
    shares = []
    for lo, hi in ((0, 12), (12, 24), (24, 48), (48, 120)):
        sel = (t >= lo) & (t < hi)
        expected = cfg.thyroid.hypothyroidism_after_rt.cumulative(t[sel]).mean()
        obs = hypo[sel].mean()
        se = math.sqrt(expected * (1 - expected) / sel.sum())
        assert within(obs, expected, se), (lo, hi, obs, expected)
        shares.append(obs)
    assert shares == sorted(shares)
    assert not cohort.filter(pl.col("de_novo_metastatic"))["hypothyroidism_rt"].any()


def test_tsh_above_uln_goes_with_untreated_hypothyroidism(cohort):
    untreated = cohort.filter(pl.col("hypothyroidism_rt") & ~pl.col("hypothyroid_on_replacement"))
    assert (untreated["tsh_miu_l"] > untreated["tsh_uln_miu_l"]).all()
    overt = cohort.filter(pl.col("overt_hypothyroidism"))
    assert overt["ft4_pmol_l"].median() < overt["ft4_lln_pmol_l"][0]


def test_troponin_and_qtc_effects(cfg, cohort):
    c = cfg.cardiac
    beta, se = _ols(np.log(cohort["troponin_ng_l"].to_numpy()), (cohort["age_years"].to_numpy() - 45) / 10)
    assert within(beta[1], math.log(c.troponin_multiplier_per_decade_over_45.value), se[1])
    q = cohort["qtc_ms"].to_numpy()
    female = cohort["sex"].to_numpy() == "F"
    se = c.qtc_ms.sd * math.sqrt(1 / female.sum() + 1 / (~female).sum())
    assert within(q[female].mean() - q[~female].mean(), c.qtc_shift_female_ms.value, se)


def test_childbearing_potential_follows_sex_and_age(cohort):
    men = cohort.filter(pl.col("sex") == "M")
    assert not men["childbearing_potential"].any() and not men["pregnant"].any()
    women = cohort.filter(pl.col("sex") == "F")
    young = women.filter(pl.col("age_years") < 40)["childbearing_potential"].mean()
    old = women.filter(pl.col("age_years") > 60)["childbearing_potential"].mean()
    assert young > 0.7 and old < 0.01
    assert cohort.filter(pl.col("pregnant"))["childbearing_potential"].all()


def test_recurrence_within_6_months_flag(cohort):
    rec = cohort.filter(~pl.col("de_novo_metastatic"))
    assert (rec["progression_within_6m_of_rt"] == (rec["recurrence_interval_months"] < 6)).all()
    assert not cohort.filter(pl.col("de_novo_metastatic"))["progression_within_6m_of_rt"].any()


def test_curative_phase_chemotherapy(cfg, cohort):
    """Induction chemotherapy only before CRT of stage III-IVA (always with an induction-phase ICI);
    adjuvant capecitabine only after CRT, taken until the planned end or the recurrence; the protocol's
    6-month window runs from the end of it: after_therapy = interval - adjuvant_months, exactly."""
    ind = cohort.filter(pl.col("induction_chemotherapy"))
    assert (ind["curative_treatment"] == "crt").all()
    assert ind["stage_at_diagnosis"].is_in(["III", "IVA"]).all()
    ici_ind = cohort.filter((pl.col("prior_ici_phase") == "induction")
                            & (pl.col("curative_treatment") == "crt")
                            & pl.col("stage_at_diagnosis").is_in(["III", "IVA"]))
    assert ici_ind["induction_chemotherapy"].all()
    adj = cohort.filter(pl.col("adjuvant_capecitabine"))
    assert (adj["curative_treatment"] == "crt").all()
    assert (adj["prior_capecitabine"]).all() and not cohort.filter(~pl.col("adjuvant_capecitabine"))[
        "prior_capecitabine"].any()
    d = cfg.disease.adjuvant_planned_months
    months, interval = adj["adjuvant_months"].to_numpy(), adj["recurrence_interval_months"].to_numpy()
    assert (months <= interval + 1e-12).all() and (months <= d.high).all()
    rec = cohort.filter(~pl.col("de_novo_metastatic"))
    after = rec["recurrence_after_therapy_months"].to_numpy()
    expected = rec["recurrence_interval_months"].to_numpy() - rec["adjuvant_months"].fill_null(0.0).to_numpy()
    assert np.allclose(after, expected, rtol=0, atol=1e-12)
    crt = cohort.filter(pl.col("curative_treatment") == "crt")
    p = cfg.disease.adjuvant_capecitabine_given_crt.value
    ok, msg = share_ok(crt["adjuvant_capecitabine"].to_numpy(), p)
    assert ok, msg


def test_hbv_dna_on_antiviral(cfg, cohort):
    """Antivirals only for HBsAg carriers; their viral load is lower, so fewer are >= 10^4 copies/mL."""
    assert not cohort.filter(~pl.col("hbsag_positive"))["hbv_antiviral"].any()
    hb = cohort.filter(pl.col("hbsag_positive"))
    ok, msg = share_ok(hb["hbv_antiviral"].to_numpy(), cfg.infections.hbv_antiviral_given_hbsag.value)
    assert ok, msg
    thr = cfg.infections.hbv_active_threshold_copies_ml.value
    on = (hb.filter(pl.col("hbv_antiviral"))["hbv_dna_copies_ml"] >= thr).mean()
    off = (hb.filter(~pl.col("hbv_antiviral"))["hbv_dna_copies_ml"] >= thr).mean()
    assert on < off / 2, (on, off)
