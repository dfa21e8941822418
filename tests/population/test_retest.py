"""Re-testing labs: within-subject variation of the configured size, distributions kept, rules re-applied."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from hn005_sim.population import retest_labs
from hn005_sim.population.config import RETEST_LABS

from .conftest import within


@pytest.fixture(scope="module")
def pair(cfg, cohort):
    return cohort, retest_labs(cfg, cohort, np.random.default_rng(11))


def test_only_labs_change(pair):
    before, after = pair
    assert after.columns == before.columns and after.schema == before.schema
    changed = {"crcl_ml_min", "urine_protein_dipstick", "urine_protein_24h_g", *RETEST_LABS}
    for name in before.columns:
        if name not in changed:
            assert after[name].equals(before[name], check_names=True), name
    for name in ("hb_g_l", "alt_u_l", "creatinine_umol_l", "tsh_miu_l"):
        assert not np.allclose(after[name].to_numpy(), before[name].to_numpy()), name


@pytest.mark.parametrize("name", ["alt_u_l", "tbil_umol_l", "creatinine_umol_l", "wbc_10e9_l", "inr"])
def test_log_differences_match_the_within_subject_cv(cfg, pair, name):
    """log(v2/v1) = w2 - w1, two independent within-subject deviations: sd = sqrt(2 ln(1 + CVI^2))."""
    before, after = pair
    d = np.log(after[name].to_numpy() / before[name].to_numpy())
    sd = math.sqrt(2 * math.log1p(getattr(cfg.retest.cv_within_subject, name).value ** 2))
    assert within(d.mean(), 0.0, sd / math.sqrt(len(d)))
    assert within(d.std(), sd, sd / math.sqrt(2 * len(d))), (name, d.std(), sd)


def test_hb_differences_match_the_cv(cfg, pair):
    before, after = pair
    women = before["sex"].to_numpy() == "F"
    d = after["hb_g_l"].to_numpy()[women] - before["hb_g_l"].to_numpy()[women]
    sd = math.sqrt(2) * cfg.retest.cv_within_subject.hb_g_l.value * cfg.labs.hb_g_l.female.mean_
    assert within(d.std(), sd, sd / math.sqrt(2 * len(d)))


def test_population_distribution_is_kept(cfg, pair):
    before, after = pair
    for name in ("alt_u_l", "tbil_umol_l", "plt_10e9_l"):
        a, b = np.log(before[name].to_numpy()), np.log(after[name].to_numpy())
        sigma = a.std()
        # the two means share most of their variance; 5 se of an independent sample is conservative
        assert within(b.mean(), a.mean(), sigma / math.sqrt(len(a))), name
        assert within(b.std(), a.std(), sigma / math.sqrt(len(a))), name


def test_test_retest_correlation(cfg, pair):
    """corr(log v1, log v2) in a reference group = 1 - sigma_w^2 / sigma^2 (set point shared)."""
    before, after = pair
    ref = (before["sex"] == "M") & ~before["liver_metastasis"]
    a = np.log(before.filter(ref)["tbil_umol_l"].to_numpy())
    b = np.log(after.filter(ref)["tbil_umol_l"].to_numpy())
    sigma = cfg.labs.tbil_umol_l.male._mu_sigma()[1]
    r = 1 - math.log1p(cfg.retest.cv_within_subject.tbil_umol_l.value ** 2) / sigma**2
    assert within(np.corrcoef(a, b)[0, 1], r, (1 - r**2) / math.sqrt(len(a)))


def test_derived_columns_recomputed(pair):
    _, c = pair
    w, age = c["weight_kg"].to_numpy(), c["age_years"].to_numpy()
    scr = c["creatinine_umol_l"].to_numpy() / 88.4
    sexf = np.where(c["sex"].to_numpy() == "M", 1.0, 0.85)
    assert np.allclose(c["crcl_ml_min"].to_numpy(), (140 - age) * w / (72 * scr) * sexf)
    assert (c["ft3_pmol_l"].is_null() == (c["tsh_miu_l"] <= c["tsh_uln_miu_l"])).all()
    assert (c["ft4_pmol_l"].is_null() == (c["tsh_miu_l"] <= c["tsh_uln_miu_l"])).all()
    assert (c["urine_protein_24h_g"].is_null() == (c["urine_protein_dipstick"] < 2)).all()
    untreated = c.filter(pl.col("hypothyroidism_rt") & ~pl.col("hypothyroid_on_replacement"))
    assert (untreated["tsh_miu_l"] > untreated["tsh_uln_miu_l"]).all()


def test_dipstick_changes_at_the_configured_rate(cfg, pair):
    before, after = pair
    a, b = before["urine_protein_dipstick"].to_numpy(), after["urine_protein_dipstick"].to_numpy()
    assert np.abs(b - a).max() <= 1
    p = cfg.retest.dipstick_change.value
    # a move below 0 or above 4 is clipped: half the moves from the end grades are lost
    expected = p * (1 - 0.5 * np.mean(a == 0) - 0.5 * np.mean(a == 4))
    assert within(np.mean(a != b), expected, math.sqrt(expected * (1 - expected) / len(a)))


def test_retest_is_reproducible(cfg, cohort):
    small = cohort.head(2000)
    x = retest_labs(cfg, small, np.random.default_rng(3))
    y = retest_labs(cfg, small, np.random.default_rng(3))
    assert x.equals(y, null_equal=True)
