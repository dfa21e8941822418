"""Capecitabine doses by the documented rounding rule, checked by hand and by brute force."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hn005_sim.scenario.load import load_scenario
from hn005_sim.treatment.dosing import drug_units, full_cycle_units

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def regimen():
    return load_scenario(ROOT / "scenarios" / "baseline.toml")[0].regimen


def capecitabine_tablets(bsa, fraction, regimen):
    return drug_units(regimen.drugs["capecitabine"], {"bsa_m2": bsa}, fraction)


# (BSA m2, dose fraction, dose mg, 150 mg tablets, 500 mg tablets), worked by hand:
HAND = [
    (1.70, 1.00, 1100, 4, 1),  # 1105 mg: 1100 (-5) beats 1150 (+45)
    (1.50, 1.00, 950, 3, 1),  # 975 mg: 950 and 1000 equally near; ties go down
    (2.00, 1.00, 1300, 2, 2),  # 1300 mg exactly
    (1.80, 1.00, 1150, 1, 2),  # 1170 mg: 1150 (-20) beats 1200 (+30)
    (1500 / 650, 1.00, 1500, 0, 3),  # 1500 mg: 3 x 500 (3 tablets) rather than 10 x 150
    (1.70, 0.75, 800, 2, 1),  # 828.75 mg: 800 (-28.75) beats 900 (+71.25); 850 is not reachable
    (1.70, 0.50, 600, 4, 0),  # 552.5 mg: 600 (+47.5) beats 500 (-52.5)
    (1.20, 0.50, 450, 3, 0),  # 390 mg: 450 (+60) beats 300 (-90)
]


@pytest.mark.parametrize(("bsa", "fraction", "dose", "n150", "n500"), HAND)
def test_capecitabine_by_hand(regimen, bsa, fraction, dose, n150, n500):
    got_dose, tabs = capecitabine_tablets(bsa, fraction, regimen)
    assert float(got_dose) == dose
    assert list(tabs) == [n150, n500]  # config order: [150, 500]
    assert n150 * 150 + n500 * 500 == dose


def brute(target: float) -> tuple[int, int, int]:
    best = None
    for a in range(13):
        for b in range(13 - a):
            amount = 150 * a + 500 * b
            if amount == 0:
                continue
            key = (abs(amount - target), amount, a + b)
            if best is None or key < best[0]:
                best = (key, amount, a, b)
    return best[1], best[2], best[3]


def test_capecitabine_matches_brute_force(regimen):
    rng = np.random.default_rng(7)
    bsa = rng.uniform(1.2, 2.4, 300)
    fr = rng.choice([1.0, 0.75, 0.5], 300)
    dose, tabs = capecitabine_tablets(bsa, fr, regimen)
    for i in range(300):
        amount, a, b = brute(650 * bsa[i] * fr[i])
        assert (dose[i], tabs[i, 0], tabs[i, 1]) == (amount, a, b)


def test_units_per_cycle(regimen):
    assert regimen.drugs["anlotinib"].administrations == 14
    assert regimen.drugs["capecitabine"].administrations == 42
    assert list(drug_units(regimen.drugs["penpulimab"], {}, 1.0)[1]) == [2]
    units = full_cycle_units({"bsa_m2": 1.70}, regimen, induction=True)
    assert units == {("anlotinib", 10.0): 14, ("penpulimab", 100.0): 2,
                     ("capecitabine", 150.0): 4 * 42, ("capecitabine", 500.0): 1 * 42}
    assert ("anlotinib", 10.0) not in full_cycle_units({"bsa_m2": 1.70}, regimen, induction=False)
