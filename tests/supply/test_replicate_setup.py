"""A replicate's set-up kept across replicates (supply/model.py `cycle_packs`, supply/levels.py
`patient_cycle_packs`, found by the config objects) and the monthly packs summed by one bincount
(`SupplyModel._totals`): the same values as computed afresh."""

from __future__ import annotations

import numpy as np

from hn005_sim.supply import levels, model
from hn005_sim.supply.model import SupplyModel, cycle_packs
from hn005_sim.supply.simulate import _enrolments, _sites

from .test_loop import _network_case


def test_kept_setup_is_the_setup_of_the_objects_given(base):
    reg, sup = base.regimen, base.supply
    first = cycle_packs(reg, sup)
    assert np.array_equal(first, model._cycle_packs(reg, sup))
    first[:] = -1  # a caller's copy: the kept array is not changed
    assert np.array_equal(cycle_packs(reg, sup), model._cycle_packs(reg, sup))
    assert np.array_equal(levels.patient_cycle_packs(reg, sup), levels._patient_cycle_packs(reg, sup))
    # another supply (a copy with another presentation list) gets its own figures, not the kept ones
    pres = [p.model_copy(update={"units_per_pack": p.units_per_pack * 2}) for p in sup.presentations]
    other = sup.model_copy(update={"presentations": pres})
    assert np.allclose(cycle_packs(reg, other) * 2, cycle_packs(reg, sup))
    assert np.array_equal(levels.patient_cycle_packs(reg, other), levels._patient_cycle_packs(reg, other))
    assert np.array_equal(cycle_packs(reg, sup), model._cycle_packs(reg, sup))


def test_monthly_packs_equal_a_sum_visit_by_visit(base, monkeypatch):
    """dispensed_monthly (one bincount) and dispensed (its column sums) equal the packs of every visit
    given, added month by month in a plain loop, and np.add.at's result (the fallback)."""
    reg, sup, sites, enrol = _network_case(base)
    runs = {}
    for kind in ("bincount", "add.at"):
        m = SupplyModel(reg, sup, _sites(sites), _enrolments(enrol), 500.0, np.random.default_rng(1),
                        np.random.default_rng(2), None, {"big": 1.0, "small": 0.3})
        if kind == "add.at":  # a sum above 2^53 takes the np.add.at branch: same figures
            monkeypatch.setattr(model, "_EXACT_FLOAT_SUM", 0)
        m.run()
        monkeypatch.undo()
        runs[kind] = m
    m = runs["bincount"]
    want = np.zeros_like(m.dispensed_monthly)
    plan = m.plan
    for i in range(len(m.enrolments)):
        for k in range(int(m.n_given[i])):
            cell = plan.offset[i] + k
            month = min(int(m.visit_day[cell] // model.DAYS_PER_MONTH), m.n_months - 1)
            for p in range(m.P):
                capped = m.cap_visit[i] >= 0 and k >= m.cap_visit[i] and plan.capped_columns[p]
                if not capped:
                    want[month, p] += plan.packs[cell, p]
    assert want.sum() > 100
    assert np.array_equal(m.dispensed_monthly, want) and m.dispensed_monthly.dtype == np.int64
    assert np.array_equal(m.dispensed, want.sum(axis=0))
    assert np.array_equal(runs["add.at"].dispensed_monthly, want)
