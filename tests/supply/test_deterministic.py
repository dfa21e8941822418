"""A deterministic scenario (fixed cycles, no toxicity, no progression) reproduces totals worked by hand.

One site open from day 0, three patients (BSA 1.70) starting on days 10, 20 and 30, horizon day 200:
cycles on days 10, 31, ..., 199 (10 cycles), 20, ..., 188 (9) and 30, ..., 198 (9): 28 cycles.
Per cycle: anlotinib 14 x 10 mg (induction, 4 cycles), penpulimab 2 vials, capecitabine 1150 mg bid
= 2 x 500 + 1 x 150 mg per administration (the label-table rounding of 1105 mg) x 42 administrations.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hn005_sim.supply.simulate import simulate_supply

from .conftest import deterministic_regimen, generous_supply

SITES = [("S1", "r1", 0.0, None)]
ENROL = [(0, "S1", "r1", 10.0, 1.70), (1, "S1", "r1", 20.0, 1.70), (2, "S1", "r1", 30.0, 1.70)]
CYCLES = [10, 9, 9]


def run(base, mode):
    reg = deterministic_regimen(base.regimen, induction=4)
    sup = generous_supply(base.supply, partial_packs=mode)
    return simulate_supply(reg, sup, ENROL, SITES, 200.0, np.random.default_rng(1), np.random.default_rng(2))


def by_id(rec, values):
    return dict(zip(rec.presentations, (int(v) for v in values), strict=True))


def test_carry_over_totals(base):
    rec = run(base, "carry_over")
    assert rec.cycles_given == 28 and rec.stockout_events.sum() == 0
    # carry-over: cumulative packs after k cycles = ceil(k x units per cycle / units per pack)
    cap150 = sum(math.ceil(k * 42 / 60) for k in CYCLES)  # 7 + 7 + 7 = 21
    cap500 = sum(math.ceil(k * 84 / 120) for k in CYCLES)  # 7 + 7 + 7 = 21
    assert by_id(rec, rec.dispensed) == {"anlotinib_10mg": 3 * 4 * 2, "anlotinib_8mg": 0,
                                         "penpulimab_100mg": 28 * 2, "capecitabine_150mg": cap150,
                                         "capecitabine_500mg": cap500}
    assert (cap150, cap500) == (21, 21)
    assert by_id(rec, rec.taken_units) == {"anlotinib_10mg": 168, "anlotinib_8mg": 0, "penpulimab_100mg": 56,
                                           "capecitabine_150mg": 28 * 42, "capecitabine_500mg": 28 * 84}
    # still on treatment at the horizon: what they hold is neither returned nor wasted
    assert by_id(rec, rec.held_units)["capecitabine_150mg"] == 21 * 60 - 28 * 42  # 84
    assert by_id(rec, rec.held_units)["capecitabine_500mg"] == 21 * 120 - 28 * 84  # 168
    assert rec.returned_units.sum() == 0 and rec.wasted_expiry.sum() == 0
    assert rec.patient_days_without == {"anlotinib": 0.0, "penpulimab": 0.0, "capecitabine": 0.0}
    assert rec.end_reasons == {"horizon": 3}


def test_return_each_visit_totals(base):
    rec = run(base, "return_each_visit")
    d = by_id(rec, rec.dispensed)
    assert d["capecitabine_150mg"] == 28 * 1 and d["capecitabine_500mg"] == 28 * 1
    r = by_id(rec, rec.returned_units)
    # each visit after the first returns the previous cycle's leftover: 60 - 42 and 120 - 84
    assert r["capecitabine_150mg"] == 18 * (28 - 3) and r["capecitabine_500mg"] == 36 * (28 - 3)
    assert by_id(rec, rec.held_units)["capecitabine_150mg"] == 18 * 3
    assert r["anlotinib_10mg"] == 0 and r["penpulimab_100mg"] == 0


@pytest.mark.parametrize("mode", ["carry_over", "return_each_visit"])
def test_conservation(base, mode):
    rec = run(base, mode)
    assert np.array_equal(rec.released, rec.dispensed + rec.wasted_expiry + rec.on_hand_depot
                          + rec.on_hand_sites + rec.in_transit)
    assert np.array_equal(rec.dispensed * rec.units_per_pack,
                          rec.taken_units + rec.returned_units + rec.held_units)
    assert rec.dispensed_monthly.sum(axis=0).tolist() == rec.dispensed.tolist()
