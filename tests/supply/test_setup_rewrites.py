"""The phase-4 rewrites of a replicate's set-up and totals (supply/model.py `SupplyModel.__init__`'s plan
lists, `_visit_items`, `_totals`, `_treatment_counts`; supply/simulate.py's record) against the phase-3
code kept verbatim in tests/supply/reference_setup.py: on random networks and the scenarios' replicates,
the same lists (values and types) and the same totals (values, dtypes, shapes)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hn005_sim.scenario.load import load_scenario
from hn005_sim.supply import model as model_module
from hn005_sim.supply.levels import demand_weights
from hn005_sim.supply.model import SupplyModel
from hn005_sim.supply.search import enrolments_for
from hn005_sim.supply.simulate import _enrolments, _sites

from .conftest import ROOT
from .reference_setup import OldTotals, old_plan_lists
from .test_reference import _random_case

TOTALS = ("n_given", "visit_day", "taken_units", "held_units", "returned_units", "cycles_given",
          "end_reasons", "treatment", "dispensed_monthly", "dispensed", "released", "shipped",
          "shipments_with", "wasted_expiry_depot", "wasted_expiry_sites", "min_dispense_margin", "in_transit")


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype and \
            a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and a != a:
        return isinstance(b, float) and b != b
    return type(a) is type(b) and a == b


def _fork(m):
    """A copy of a model whose lists and arrays are its own (its processes, generators, are shared)."""
    out = object.__new__(type(m))
    own = (list, np.ndarray)
    out.__dict__.update({k: v.copy() if isinstance(v, own) else v for k, v in m.__dict__.items()})
    return out


def _cases(base):
    """Random networks (tests/supply/test_reference.py; every other one with packs of 3 vials of the
    capped drug, so that patients hold some of it at the cap), and two replicates of each scenario."""
    for seed in range(24):
        reg, sup, enrol, sites, horizon, weights = _random_case(base, seed)
        if seed % 2:
            pres = [p.model_copy(update={"units_per_pack": 3}) if p.drug == reg.capped_drug else p
                    for p in sup.presentations]
            sup = sup.model_copy(update={"presentations": pres})
        yield reg, sup, _enrolments(enrol), _sites(sites), horizon, seed, weights
    for name in ("baseline", "network_south_china"):
        sc, _ = load_scenario(ROOT / "scenarios" / f"{name}.toml")
        for r in range(2):
            e, s = enrolments_for(sc, 3, r)
            e, s = _enrolments(e), _sites(s)
            horizon = max(x.day for x in e) + sc.supply.followup_months * model_module.DAYS_PER_MONTH
            yield sc.regimen, sc.supply, e, s, horizon, 50 + r, demand_weights(sc)


@pytest.fixture(scope="module")
def ran(base):
    """Each case's model after its event loop, before its totals (the state `_totals` reads)."""
    out = []
    real = SupplyModel._totals
    SupplyModel._totals = lambda self: None
    try:
        for reg, sup, e, s, horizon, seed, weights in _cases(base):
            m = SupplyModel(reg, sup, s, e, horizon, np.random.default_rng([seed, 1]),
                            np.random.default_rng([seed, 2]), None, weights)
            m.run()
            out.append(m)
    finally:
        SupplyModel._totals = real
    return out


def test_plan_lists_equal_the_phase3_lists(ran):
    """The lists the event loop reads (`_plan_lists`: every key, the values and their Python types, and
    the visit items shared per distinct row) equal those the phase-3 `__init__` built."""
    for m in ran:
        want = old_plan_lists(m)
        assert list(m._plan_lists) == list(want)
        for k, v in want.items():
            assert _same(m._plan_lists[k], v), k


def test_totals_equal_the_phase3_totals(ran):
    """_totals (presentation by cell) and _treatment_counts give every figure the phase-3 methods gave,
    with the same dtypes and shapes; the cases include stock-outs, caps reached and patients on
    treatment at the horizon."""
    capped = still_on = 0
    for m in ran:
        a, b = _fork(m), _fork(m)
        a._totals()
        OldTotals._totals(b)
        bad = [k for k in TOTALS if not _same(getattr(a, k), getattr(b, k))]
        assert not bad, bad
        assert _same(a._treatment_counts(), OldTotals._treatment_counts(b))
        capped += a.treatment["reached_cap"]
        still_on += a.treatment["on_treatment_at_horizon"]
    assert capped > 0 and still_on > 0


def test_totals_without_a_capped_drug_or_cells(base, ran, monkeypatch):
    """No capped presentation (its columns cleared) and a plan with no cells: the same totals."""
    for m in ran[:6]:
        a = _fork(m)
        plan = a.plan
        a.plan = plan.__class__(**{**plan.__dict__, "capped_columns": np.zeros_like(plan.capped_columns)})
        a.cap_visit = np.full_like(a.cap_visit, -1)
        b = _fork(a)
        a._totals()
        OldTotals._totals(b)
        assert all(_same(getattr(a, k), getattr(b, k)) for k in TOTALS)
    reg, sup, _enrol, sites, _h, _seed, weights = next(_cases(base))
    monkeypatch.setattr(SupplyModel, "_totals", lambda self: None)
    m = SupplyModel(reg, sup, sites, [], 400.0, np.random.default_rng(1), np.random.default_rng(2), None,
                    weights)
    m.run()
    monkeypatch.undo()
    assert m.plan.need.shape[0] == 0
    a, b = _fork(m), _fork(m)
    a._totals()
    OldTotals._totals(b)
    assert all(_same(getattr(a, k), getattr(b, k)) for k in TOTALS)


def test_totals_fallback_sum_is_the_same(ran, monkeypatch):
    """The np.add.at branch (sums that floats could not hold exactly) gives the bincount's figures."""
    for m in ran[:8]:
        a, b = _fork(m), _fork(m)
        monkeypatch.setattr(model_module, "_EXACT_FLOAT_SUM", 0)
        a._totals()
        monkeypatch.undo()
        OldTotals._totals(b)
        assert all(_same(getattr(a, k), getattr(b, k)) for k in TOTALS)


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), top=st.sampled_from([1, 2, 3, 9, 60, 2**20]),
       cells=st.integers(0, 400), P=st.integers(1, 6), fortran=st.booleans())
def test_visit_items_equal_the_phase3_items(seed, top, cells, P, fortran):
    """_visit_items (keys marked in a table when it is small, np.unique else, tuples past 2^62) equals the
    phase-3 function on random pack tables (C- or Fortran-ordered, as plans are now), and cells with the
    same packs share one list."""
    g = np.random.default_rng(seed)
    distinct = g.integers(0, top + 1, size=(int(g.integers(1, 12)), P))
    packs = distinct[g.integers(0, len(distinct), cells)]
    packs = np.asfortranarray(packs) if fortran else np.ascontiguousarray(packs)
    got = SupplyModel._visit_items(packs)
    assert got == OldTotals._visit_items(packs)
    ids: dict = {}
    for row, items in zip(packs.tolist(), got, strict=True):
        assert ids.setdefault(tuple(row), id(items)) == id(items)
    assert len(set(ids.values())) == len(ids)
