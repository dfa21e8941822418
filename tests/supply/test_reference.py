"""The supply model (supply/model.py) against its phase-2 version kept verbatim as the reference
(tests/supply/reference_model.py): on random networks, partial-pack rules, levels, lot sizes, lead
times and seeds, and on the scenarios' own replicates, every field of the record, each patient's visit
days, cycles given and end reason, and the supply stream's state after the run (the same random draws,
in the same order) are identical."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from hn005_sim import rng
from hn005_sim.scenario.load import load_scenario
from hn005_sim.supply import simulate
from hn005_sim.supply.levels import demand_weights
from hn005_sim.supply.model import SupplyModel
from hn005_sim.supply.search import enrolments_for
from hn005_sim.supply.trace import trace_supply

from . import reference_model
from .conftest import ROOT, const


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    return type(a) is type(b) and a == b


def _run(cls, reg, sup, enrol, sites, horizon, seed, weights):
    """(record, model, supply stream's next draws) of one replicate with model class `cls`."""
    made = []

    class Model(cls):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    g_sup = np.random.default_rng([seed, 2])
    orig = simulate.SupplyModel
    simulate.SupplyModel = Model
    try:
        rec = simulate.simulate_supply(reg, sup, enrol, sites, horizon, np.random.default_rng([seed, 1]),
                                       g_sup, weights=weights)
    finally:
        simulate.SupplyModel = orig
    return rec, made[0], g_sup.random(4).tolist()


def _compare(reg, sup, enrol, sites, horizon, seed, weights):
    a, ma, ra = _run(SupplyModel, reg, sup, enrol, sites, horizon, seed, weights)
    b, mb, rb = _run(reference_model.SupplyModel, reg, sup, enrol, sites, horizon, seed, weights)
    bad = [f.name for f in fields(a) if not _same(getattr(a, f.name), getattr(b, f.name))]
    assert not bad, f"record fields differ from the reference: {bad}"
    assert _same(ma.visit_day, mb.visit_day) and _same(ma.n_given, mb.n_given)
    assert ma.reason == mb.reason and _same(ma.cap_visit, mb.cap_visit)
    assert ra == rb  # the supply stream drew the same numbers
    assert ma.lot_seq == mb.lot_seq and ma.now == mb.now
    return a


def _random_case(base, seed: int):
    """A random network: 1-6 sites of two regions opening and closing at random, random lot sizes, depot
    reorder points, site levels, lead times, partial-pack rule, predictive or fixed levels, echelon or
    depot-only reordering, review interval and shelf life (some stock-outs and expiry write-offs)."""
    g = np.random.default_rng(seed)
    sup = base.supply
    pres = [p.model_copy(update={
        "lot_size_packs": int(g.integers(5, 80)), "depot_reorder_packs": int(g.integers(0, 40)),
        "shelf_life_months": float(g.choice([6.0, 12.0, 36.0])), "initial_lots": int(g.integers(0, 3))})
        for p in sup.presentations]
    tiers = [t.model_copy(update={
        "predictive": bool(g.random() < 0.6), "trigger_cycles": float(g.uniform(0.5, 3)),
        "max_cycles": float(g.uniform(3, 8)), "initial_cycles": float(g.uniform(1, 6))})
        for t in sup.tiers]
    sup = sup.model_copy(update={
        "presentations": pres, "tiers": tiers,
        "partial_packs": str(g.choice(["carry_over", "return_each_visit"])),
        "review_days": float(g.choice([3.0, 7.0, 14.0])),
        "depot": sup.depot.model_copy(update={"network_reorder": bool(g.random() < 0.7),
                                              "release_lead_days": float(g.choice([10.0, 30.0, 60.0]))}),
        "shipping": sup.shipping.model_copy(update={"lead_days": const(float(g.integers(1, 8))),
                                                    "emergency_lead_days": const(float(g.integers(1, 3)))})})
    n_sites = int(g.integers(1, 7))
    sites, enrol, k = [], [], 0
    for j in range(n_sites):
        act = None if g.random() < 0.1 else float(g.choice([0.0, g.uniform(0, 200)]))
        close = None if g.random() < 0.5 else float(g.uniform(150, 500))
        region = "big" if j % 2 == 0 else "small"
        sites.append((f"S{j}", region, act, close))
        if act is None:
            continue
        end = 450.0 if close is None else max(close, act + 1)
        for d in np.sort(g.uniform(act, end, int(g.integers(0, 15)))):
            enrol.append((k, f"S{j}", region, float(d), float(g.uniform(1.3, 2.2))))
            k += 1
    horizon = float(g.choice([400.0, 700.0, 1200.0]))
    weights = {"big": 1.0, "small": float(g.uniform(0.2, 1.0))}
    return base.regimen, sup, enrol, sites, horizon, weights


@pytest.mark.parametrize("seed", range(40))
def test_random_networks_match_the_reference(base, seed):
    reg, sup, enrol, sites, horizon, weights = _random_case(base, seed)
    _compare(reg, sup, enrol, sites, horizon, seed, weights)


def test_random_networks_exercise_every_path(base):
    """The random cases above reach stock-outs, emergency shipments, expiry waste at sites and depot,
    the cap and lot releases (so the comparisons cover those paths)."""
    tot = {"stockout": 0, "emergency": 0, "waste_sites": 0, "waste_depot": 0, "released": 0, "cap": 0}
    for seed in range(40):
        reg, sup, enrol, sites, horizon, weights = _random_case(base, seed)
        rec, _m, _ = _run(SupplyModel, reg, sup, enrol, sites, horizon, seed, weights)
        tot["stockout"] += int(rec.stockout_events.sum())
        tot["emergency"] += rec.emergency_shipments
        tot["waste_sites"] += int((rec.wasted_expiry - rec.wasted_expiry_depot).sum())
        tot["waste_depot"] += int(rec.wasted_expiry_depot.sum())
        tot["released"] += int(rec.released.sum())
        tot["cap"] += rec.treatment["reached_cap"]
    assert all(v > 0 for v in tot.values()), tot


@pytest.mark.parametrize(("scenario", "replicates"), [("baseline", 3), ("network_south_china", 2)])
def test_scenario_replicates_match_the_reference(scenario, replicates):
    sc, _ = load_scenario(ROOT / "scenarios" / f"{scenario}.toml")
    for r in range(replicates):
        e, s = enrolments_for(sc, 7, r)
        _compare(sc.regimen, sc.supply, e, s, None, 100 + r, demand_weights(sc))


def test_the_trace_replays_the_models_events(base):
    """bench/supply.py's bare replay replays every event of the model: the traced model's record is the
    model's, and the replay's stock arithmetic ends at the model's stock."""
    from hn005_sim.supply.trace import replay

    sc, _ = load_scenario(ROOT / "scenarios" / "baseline.toml")
    e, s = enrolments_for(sc, 7, 0)
    rec, tr = trace_supply(sc.regimen, sc.supply, e, s, None, rng.stream(7, 0, "treatment"),
                           rng.stream(7, 0, "supply"), weights=demand_weights(sc))
    plain = simulate.simulate_supply(sc.regimen, sc.supply, e, s, None, rng.stream(7, 0, "treatment"),
                                     rng.stream(7, 0, "supply"), weights=demand_weights(sc))
    assert all(_same(getattr(rec, f.name), getattr(plain, f.name)) for f in fields(rec))
    totals, handled = replay(tr)
    assert handled == tr.events > 2000
    assert totals[0] == rec.on_hand_depot.tolist()
    assert [sum(x) for x in zip(*totals[1:], strict=True)] == rec.on_hand_sites.tolist()


@pytest.mark.parametrize("seed", range(6))
def test_visit_items_match_the_reference(seed):
    """Each planned visit's (presentation, packs) pairs, one shared list per distinct row: random pack
    tables (few distinct rows, as plans have), an empty one, and ones whose keys fall back to tuples
    (negative packs, keys past 2^62)."""
    g = np.random.default_rng(seed)
    distinct = g.integers(0, 4, size=(int(g.integers(1, 9)), 5))
    tables = [distinct[g.integers(0, len(distinct), 300)], np.zeros((0, 5), dtype=np.int64),
              np.array([[1, -1, 0], [1, -1, 0], [0, 2, 2]]), np.array([[2**40, 1], [3, 2**40], [2**40, 1]])]
    for packs in tables:
        packs = np.asarray(packs, dtype=np.int64)
        got = SupplyModel._visit_items(packs)
        assert got == reference_model.SupplyModel._visit_items(packs)
        # rows with the same packs share one list; different rows do not
        ids = {}
        for row, items in zip(packs.tolist(), got, strict=True):
            assert ids.setdefault(tuple(row), id(items)) == id(items)
        assert len(set(ids.values())) == len(ids)
