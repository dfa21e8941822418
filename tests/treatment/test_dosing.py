"""Doses by the documented rounding rules (capecitabine label table, nearest, vials) and Calvert, by hand and
by brute force."""

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


# (BSA m2, dose fraction, dose mg, 150 mg tablets, 500 mg tablets), worked by hand for the label-table rule
# (500 mg tablets plus at most two 150 mg: reachable 150, 300, 500, 650, 800, 1000, 1150, 1300, 1500, ...):
HAND = [
    (1.70, 1.00, 1150, 1, 2),  # 1105 mg: 1150 (+45) beats 1000 (-105): the label's 2 x 500 + 1 x 150
    (1.60, 1.00, 1000, 0, 2),  # 1040 mg: 1000 (-40) beats 1150 (+110); 'nearest' gave 7 x 150 = 1050
    (1.50, 1.00, 1000, 0, 2),  # 975 mg: 1000 (+25) beats 800 (-175)
    (2.00, 1.00, 1300, 2, 2),  # 1300 mg exactly
    (1.80, 1.00, 1150, 1, 2),  # 1170 mg: 1150 (-20) beats 1300 (+130)
    (1500 / 650, 1.00, 1500, 0, 3),  # 1500 mg: 3 x 500
    (1.70, 0.75, 800, 2, 1),  # 828.75 mg: 800 (-28.75) beats 1000 (+171.25)
    (1.70, 0.50, 500, 0, 1),  # 552.5 mg: 500 (-52.5) beats 650 (+97.5)
    (1.20, 0.50, 300, 2, 0),  # 390 mg: 300 (-90) beats 500 (+110)
]


@pytest.mark.parametrize(("bsa", "fraction", "dose", "n150", "n500"), HAND)
def test_capecitabine_by_hand(regimen, bsa, fraction, dose, n150, n500):
    got_dose, tabs = capecitabine_tablets(bsa, fraction, regimen)
    assert float(got_dose) == dose
    assert list(tabs) == [n150, n500]  # config order: [150, 500]
    assert n150 * 150 + n500 * 500 == dose


def brute(target: float, max_small: int | None) -> tuple[int, int, int]:
    best = None
    for a in range(13 if max_small is None else max_small + 1):
        for b in range(13 - a):
            amount = 150 * a + 500 * b
            if amount == 0:
                continue
            key = (abs(amount - target), amount, a + b)
            if best is None or key < best[0]:
                best = (key, amount, a, b)
    return best[1], best[2], best[3]


@pytest.mark.parametrize("rounding", ["label_table", "nearest"])
def test_capecitabine_matches_brute_force(regimen, rounding):
    drug = regimen.drugs["capecitabine"].model_copy(update={"rounding": rounding})
    rng = np.random.default_rng(7)
    bsa = rng.uniform(1.2, 2.4, 300)
    fr = rng.choice([1.0, 0.75, 0.5], 300)
    dose, tabs = drug_units(drug, {"bsa_m2": bsa}, fr)
    for i in range(300):
        amount, a, b = brute(650 * bsa[i] * fr[i], 2 if rounding == "label_table" else None)
        assert (dose[i], tabs[i, 0], tabs[i, 1]) == (amount, a, b)
    if rounding == "label_table":
        assert tabs[:, 0].max() <= 2


def test_vials_cover_the_dose(regimen):
    """'cover': the least amount of whole vials >= the dose (gemcitabine 1000 mg/m2, 200 mg and 1 g vials)."""
    pen = regimen.drugs["penpulimab"]
    gem = pen.model_copy(update={"dose_rule": "per_m2", "dose": 1000.0, "strengths_mg": [200.0, 1000.0],
                                 "cap_months": None, "continue_after_cap": None})
    dose, vials = drug_units(gem, {"bsa_m2": np.array([1.70, 1.60, 2.00])}, 1.0)
    assert dose.tolist() == [1800.0, 1600.0, 2000.0]  # 1700 -> 1000 + 4 x 200; 1600 exactly; 2000 = 2 x 1 g
    assert vials.tolist() == [[4, 1], [3, 1], [0, 2]]


def test_calvert_auc_dose(regimen):
    """Carboplatin AUC 5 by Calvert, GFR = CrCl capped at 125 mL/min: 5 x (80 + 25) = 525 mg; at CrCl 160
    the cap gives 5 x 150 = 750 mg; 50 and 150 mg vials cover it (550 = 150 x 3 + 50 x 2)."""
    pen = regimen.drugs["penpulimab"]
    carbo = pen.model_copy(update={"dose_rule": "auc", "dose": 5.0, "gfr_cap_ml_min": 125.0,
                                   "strengths_mg": [50.0, 150.0], "cap_months": None,
                                   "continue_after_cap": None})
    dose, vials = drug_units(carbo, {"crcl_ml_min": np.array([80.0, 160.0])}, 1.0)
    assert dose.tolist() == [550.0, 750.0]
    assert (vials @ np.array([50, 150])).tolist() == [550, 750]
    with pytest.raises(ValueError, match="crcl_ml_min"):
        drug_units(carbo, {"bsa_m2": 1.7}, 1.0)


def test_units_per_cycle(regimen):
    assert regimen.drugs["anlotinib"].administrations == 14
    assert regimen.drugs["capecitabine"].administrations == 42
    assert list(drug_units(regimen.drugs["penpulimab"], {}, 1.0)[1]) == [2]
    units = full_cycle_units({"bsa_m2": 1.70}, regimen, induction=True)
    assert units == {("anlotinib", 10.0): 14, ("penpulimab", 100.0): 2,
                     ("capecitabine", 150.0): 1 * 42, ("capecitabine", 500.0): 2 * 42}
    assert ("anlotinib", 10.0) not in full_cycle_units({"bsa_m2": 1.70}, regimen, induction=False)


@pytest.mark.parametrize("rounding", ["label_table", "nearest", "cover"])
def test_doses_at_the_ends_of_the_table(regimen, rounding):
    """Targets from nothing to past the largest amount the units reach (12 x 500 mg): the lowest amount,
    the largest, and every amount exactly (drug_units' bounds on the table, issue 16 phase 5)."""
    drug = regimen.drugs["capecitabine"].model_copy(update={"rounding": rounding})
    max_small = 2 if rounding == "label_table" else None
    amounts = sorted({150 * a + 500 * b for a in range(13 if max_small is None else max_small + 1)
                      for b in range(13 - a)} - {0})
    targets = np.array([0.0, 1.0, 149.0, 150.0, 151.0, *amounts, amounts[-1] + 1.0, 7000.0, 1e6])
    dose, tabs = drug_units(drug, {"bsa_m2": targets / 650}, 1.0)
    for t, got, (a, b) in zip(targets.tolist(), dose.tolist(), tabs.tolist(), strict=True):
        if rounding == "cover":
            amount = next((x for x in amounts if x >= t - 1e-9), amounts[-1])
        else:
            amount = brute(t, max_small)[0]
        assert got == amount and 150 * a + 500 * b == amount, (t, got, amount)
