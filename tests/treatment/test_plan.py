"""The bulk course plan (`plan_courses`) against the cycle-by-cycle reference (`PatientCourse.visit`) and a
scalar dispensing recurrence written out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hn005_sim.treatment.course import PatientCourse, draw_courses, patient_units, plan_courses

from .conftest import random_dispensing_plans, with_drug

KEYS = [("anlotinib", 10.0), ("anlotinib", 8.0), ("penpulimab", 100.0), ("capecitabine", 150.0),
        ("capecitabine", 500.0)]
UPP = np.array([7, 7, 1, 60, 120])


def busy_regimen(regimen):
    """Frequent toxicity so reductions, stops, interruptions and delays all happen in a few patients."""
    regimen = with_drug(regimen, "anlotinib", toxicity={"reduce_per_cycle": 0.3, "stop_per_cycle": 0.05,
                                                       "interrupt_per_cycle": 0.3})
    regimen = with_drug(regimen, "penpulimab", toxicity={"stop_per_cycle": 0.03})
    regimen = with_drug(regimen, "capecitabine", toxicity={"reduce_per_cycle": 0.15, "stop_per_cycle": 0.03,
                                                          "interrupt_per_cycle": 0.3})
    tox = regimen.toxicity.model_copy(update={"delay_per_cycle": 0.3})
    return regimen.model_copy(update={"toxicity": tox})


def scalar_dispensing(orders, carry_over):
    """Packs, returns and balances visit by visit, the way a pharmacist would count them."""
    bal = [0] * len(KEYS)
    out = []
    for order in orders:
        need = [order.needed.get(k, 0) for k in KEYS]
        take = [order.taken.get(k, 0) for k in KEYS]
        ret = [b if (not carry_over or n == 0) else 0 for b, n in zip(bal, need, strict=True)]
        bal = [b - r for b, r in zip(bal, ret, strict=True)]
        packs = [max(0, math.ceil((n - b) / u)) if n else 0 for n, b, u in zip(need, bal, UPP, strict=True)]
        bal = [b + p * u - t for b, p, u, t in zip(bal, packs, UPP, take, strict=True)]
        out.append((need, take, packs, ret, list(bal)))
    return out


@pytest.mark.parametrize("carry_over", [True, False])
def test_plan_matches_patient_course(base, carry_over):
    reg = busy_regimen(base.regimen)
    n, horizon = 60, 4000.0
    K = int(horizon // reg.cycle_days) + 2
    draws = draw_courses(reg, n, K, np.random.default_rng(11))
    bsa = np.random.default_rng(12).uniform(1.3, 2.2, n)
    plan = plan_courses(reg, draws, patient_units(reg, {"bsa_m2": bsa}), KEYS, UPP, carry_over)
    reasons = ("progression", "death", "withdrawal")
    seen_reduction = seen_stop = False
    for i in range(n):
        c = PatientCourse(reg, draws, i, 0.0, {"bsa_m2": float(bsa[i])}, horizon)
        orders, day = [], 0.0
        while (o := c.visit(day)) is not None:
            orders.append(o)
            day += reg.cycle_days + c.delay_before()
        # penpulimab continues here only if the draw says so; the plan leaves the cap to the simulation
        cap_day = plan.cap_offset_days[i]
        pen_cut = next((k for k, o in enumerate(orders) if o.day >= cap_day), None)
        if pen_cut is None and c.end_reason == "toxicity" and c.end_day >= cap_day:
            pen_cut = len(orders)  # the course ended at the cap: nothing but penpulimab was left
        off, m = plan.offset[i], plan.cycles[i]
        assert plan.cell_patient[off:off + m].tolist() == [i] * m
        assert plan.cell_cycle[off:off + m].tolist() == list(range(m))
        if pen_cut is None:
            assert len(orders) == m or c.end_reason == "horizon"
            got = orders
        else:  # the reference stopped penpulimab at the cap: compare the cycles before it
            got = orders[:pen_cut]
        ref = scalar_dispensing(got, carry_over)
        for k, (need, take, packs, ret, bal) in enumerate(ref):
            assert plan.need[off + k].tolist() == need, (i, k)
            assert plan.taken[off + k].tolist() == take, (i, k)
            assert plan.packs[off + k].tolist() == packs, (i, k)
            assert plan.returned[off + k].tolist() == ret, (i, k)
            assert plan.balance[off + k].tolist() == bal, (i, k)
            if k + 1 < len(got):
                assert plan.gap_days[off + k] == got[k + 1].day - got[k].day
        if c.end_reason in reasons and pen_cut is None:
            assert reasons[plan.end_reason[i]] == c.end_reason
            assert c.end_day == pytest.approx(plan.end_offset_days[i])
        if c.end_reason == "toxicity" and pen_cut is None:
            assert plan.toxicity_end[i] == len(orders) == m
        seen_reduction |= any(k == ("anlotinib", 8.0) for o in orders for k in o.needed)
        seen_stop |= c.end_reason == "toxicity"
    assert seen_reduction and seen_stop  # the comparison covered dose changes and toxicity ends


def test_kept_columns_are_the_regimens_own(base):
    """`columns` kept per regimen object equals the columns computed afresh, and another regimen (a copy
    with one more dose level) gets its own, not the kept ones."""
    from hn005_sim.treatment import course

    reg = base.regimen
    assert course.columns(reg) == course._columns(reg) and course.columns(reg) is course.columns(reg)
    name = next(n for n, d in reg.drugs.items() if len(d.dose_fractions) == 1)
    drugs = dict(reg.drugs)
    drugs[name] = drugs[name].model_copy(update={"dose_fractions": [1.0, 0.5]})
    other = reg.model_copy(update={"drugs": drugs})
    assert course.columns(other) == course._columns(other)
    assert course.columns(other).width == course.columns(reg).width + 1
    assert course.columns(reg) == course._columns(reg)


def _dispensing_by_rows(need, taken, first, upp, carry_over):
    """course._dispensing as it was before it ran presentation by cycle (cells x P, axis 0)."""
    used = need > 0
    fresh = first[:, None]
    if not carry_over:
        packs = -(-need // upp)
        balance = packs * upp - taken
    else:
        tk = taken * used
        cum = np.cumsum(tk, axis=0)
        start = ~used | fresh
        run = np.cumsum(start, axis=0)
        base = np.maximum.accumulate((cum - tk) * start, axis=0)
        before = cum - tk - base
        x = -(-(need + before) // upp) * upp * used
        big = int(x.max(initial=0)) + 1
        dispensed = np.maximum.accumulate(x + run * big, axis=0) - run * big
        prev = np.zeros_like(dispensed)
        prev[1:] = dispensed[:-1] * (run[1:] == run[:-1])
        packs = (dispensed - prev) // upp
        balance = (dispensed - before - tk) * used
    returned = np.zeros_like(balance)
    returned[1:] = balance[:-1]
    returned *= ~fresh
    if carry_over:
        returned *= ~used
    return packs, returned, balance


@pytest.mark.parametrize("carry_over", [True, False])
def test_dispensing_equals_the_row_by_row_version(carry_over):
    """_dispensing (presentation by cycle) gives the integers, dtype and C order of the cells x P version
    it replaced, on random plans: gaps in a presentation, new patients, interruptions, empty plans."""
    from hn005_sim.treatment.course import _dispensing

    for trial, need, taken, first, upp in random_dispensing_plans(5):
        got = _dispensing(need, taken, first, upp, carry_over)
        want = _dispensing_by_rows(need, taken, first, upp, carry_over)
        for a, b in zip(got, want, strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape and a.flags.c_contiguous
            assert np.array_equal(a, b), trial


def test_kept_flat_dose_units_equal_units_computed_per_patient(base):
    """patient_units with a flat-dose drug's units kept per drug object equals drug_units on every
    patient's covariates (the path it replaced), for each drug of the regimen and an empty cohort."""
    from hn005_sim.treatment import course
    from hn005_sim.treatment.dosing import drug_units

    reg = base.regimen
    assert any(d.dose_rule == "flat" for d in reg.drugs.values())
    assert any(d.dose_rule != "flat" for d in reg.drugs.values())
    for n in (0, 1, 37):
        bsa = np.linspace(1.2, 2.4, n)
        got = course.patient_units(reg, {"bsa_m2": bsa})
        for name, d in reg.drugs.items():
            fr = np.asarray(d.dose_fractions, dtype=float)[None, :]
            _, units = drug_units(d, {"bsa_m2": bsa[:, None]}, fr)
            want = np.broadcast_to(units, (n, len(d.dose_fractions), len(d.strengths_mg)))
            assert got[name].dtype == want.dtype and np.array_equal(got[name], want), (name, n)
    # another drug object (another flat dose) gets its own units, not the kept ones
    name = next(k for k, d in reg.drugs.items() if d.dose_rule == "flat")
    half = reg.drugs[name].model_copy(update={"dose": reg.drugs[name].dose / 2})
    _, want = drug_units(half, {}, np.asarray(half.dose_fractions, dtype=float)[None, :])
    assert np.array_equal(course._flat_units(half), want)
    assert not np.array_equal(course._flat_units(half), course._flat_units(reg.drugs[name]))
