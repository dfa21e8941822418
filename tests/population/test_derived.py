"""Derived values against hand computations; same seed identical cohort, another seed a different one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hn005_sim.population import sample
from hn005_sim.population.labs import cockcroft_gault, mosteller_bsa


def test_mosteller_hand_values():
    # sqrt(180*80/3600) = sqrt(4) = 2; sqrt(160*57.6/3600) = sqrt(2.56) = 1.6
    assert mosteller_bsa(np.array([180.0, 160.0]), np.array([80.0, 57.6])) == pytest.approx([2.0, 1.6])


def test_cockcroft_gault_hand_values():
    # creatinine 88.4 umol/L = 1 mg/dL; man 40 y 70 kg: (140-40)*70/72 = 97.2222; woman x 0.85 = 82.6389
    got = cockcroft_gault(np.array([40.0, 40.0, 70.0]), np.array([70.0, 70.0, 60.0]),
                          np.array([88.4, 88.4, 176.8]), np.array([True, False, True]))
    # man 70 y 60 kg creatinine 2 mg/dL: 70*60/(72*2) = 29.1667
    assert got == pytest.approx([97.2222222, 82.6388889, 29.1666667])


def test_frame_columns_follow_the_formulas(cohort):
    h, w = cohort["height_cm"].to_numpy(), cohort["weight_kg"].to_numpy()
    assert np.allclose(cohort["bsa_m2"].to_numpy(), np.sqrt(h * w / 3600))
    age, scr = cohort["age_years"].to_numpy(), cohort["creatinine_umol_l"].to_numpy() / 88.4
    sexf = np.where(cohort["sex"].to_numpy() == "M", 1.0, 0.85)
    assert np.allclose(cohort["crcl_ml_min"].to_numpy(), (140 - age) * w / (72 * scr) * sexf)
    row = cohort.row(0, named=True)
    by_hand = (140 - row["age_years"]) * row["weight_kg"] / (72 * row["creatinine_umol_l"] / 88.4)
    assert row["crcl_ml_min"] == pytest.approx(by_hand * (1 if row["sex"] == "M" else 0.85))
    assert row["bsa_m2"] == pytest.approx(math.sqrt(row["height_cm"] * row["weight_kg"] / 3600))


def test_uln_columns_follow_sex_and_age(cfg, cohort):
    r = cfg.reference
    men = cohort["sex"].to_numpy() == "M"
    old = cohort["age_years"].to_numpy() >= 60
    assert (cohort["alt_uln_u_l"].to_numpy() == np.where(men, r.alt_uln_u_l.male.value,
                                                         r.alt_uln_u_l.female.value)).all()
    u = r.creatinine_uln_umol_l
    expected = np.where(men, np.where(old, u.male_60_plus.value, u.male_under_60.value),
                        np.where(old, u.female_60_plus.value, u.female_under_60.value))
    assert (cohort["creatinine_uln_umol_l"].to_numpy() == expected).all()


def test_same_seed_same_cohort_other_seed_different(cfg):
    a = sample(cfg, 5000, np.random.default_rng(7))
    b = sample(cfg, 5000, np.random.default_rng(7))
    c = sample(cfg, 5000, np.random.default_rng(8))
    assert a.equals(b, null_equal=True)
    assert not a.equals(c, null_equal=True)
    assert not np.allclose(a["age_years"].to_numpy(), c["age_years"].to_numpy())
