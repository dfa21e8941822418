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


def _site_setup_afresh(reg, sup, region: str, weight: float):
    """A site's set-up as SupplyModel.__init__ computed it before `_site_setup` kept it per process."""
    t = sup.tier_of(region)
    tier = sup.tiers[t]
    one = levels.patient_cycle_packs(reg, sup)
    floors = np.array([p.site_min_packs for p in sup.presentations])
    base = tuple(lv.tolist() for lv in levels.site_levels(model._cycle_packs(reg, sup), floors, one, tier,
                                                           weight))
    ship = sup.shipping
    cover = sup.review_days + tier.expiry_cover_lead_times * ship.lead_days_by_region.get(
        region, ship.lead_days).mean()
    safety = [int(np.ceil(tier.safety_patient_cycles * x - 1e-9)) for x in one]
    return base, tier.predictive, tier.forecast_days / reg.cycle_days, safety, cover


def test_kept_site_setup_is_each_sites_own(base):
    """Every site's levels, predictive settings, safety packs and expiry cover from the per-process
    `_site_setup` equal those computed afresh for its region and weight, on the South China network
    (several tiers and regions); each site holds its own lists, so a change at one site (or in one
    replicate) reaches no other."""
    from hn005_sim.scenario.load import load_scenario
    from hn005_sim.supply.levels import demand_weights, weight_of

    from .conftest import ROOT, const

    sc, _ = load_scenario(ROOT / "scenarios" / "network_south_china.toml")
    reg, weights = sc.regimen, demand_weights(sc)
    # a second tier (other settings) for two regions, and a lead time of its own for one of them
    t0 = sc.supply.tiers[0]
    remote = t0.model_copy(update={"name": "remote", "regions": ["guangdong", "hainan"], "predictive": False,
                                   "forecast_days": 30.0, "safety_patient_cycles": 2.0,
                                   "expiry_cover_lead_times": 3.0, "initial_cycles": t0.initial_cycles + 1})
    ship = sc.supply.shipping.model_copy(update={"lead_days_by_region": {"hainan": const(9.0)}})
    sup = sc.supply.model_copy(update={"tiers": [remote, t0], "shipping": ship})
    regions = [r.name for r in sc.recruitment.regions]
    sites = [model.SiteRow(f"s{i}", region, 0.0, None) for i, region in enumerate(regions * 2)]
    tiers = {sup.tier_of(r) for r in regions}
    assert len(tiers) > 1 and len(set(weights.values())) > 1  # the case covers tiers and weights
    runs = [SupplyModel(reg, sup, sites, [], 400.0, np.random.default_rng(1), np.random.default_rng(2),
                        None, weights) for _ in range(2)]
    for m in runs:
        for s, x in enumerate(sites):
            want = _site_setup_afresh(reg, sup, x.region, weight_of(weights, x.region))
            assert m.base_levels[s] == want[0]
            assert (m.predictive[s], m.forecast_cycles[s], m.safety[s], m.cover_days[s]) == want[1:]
    a, b = runs
    a.base_levels[0][1][0] += 1000
    a.safety[0][0] += 1000
    n = len(regions)
    assert b.base_levels[0] == a.base_levels[n] == _site_setup_afresh(
        reg, sup, regions[0], weight_of(weights, regions[0]))[0]
    assert b.safety[0] == a.safety[n]
    # explicit levels (the search's) still override the kept ones, the same at every site
    explicit = model.tier_levels(reg, sup)
    m = SupplyModel(reg, sup, sites, [], 400.0, np.random.default_rng(1), np.random.default_rng(2),
                    explicit, weights)
    assert all(m.base_levels[s] == tuple(lv.tolist() for lv in explicit[m.tier[s]])
               for s in range(len(sites)))


def test_column_sums_equal_numpys_sum_over_rows():
    """_col_sums (`_totals`' sums along the long axis) equals a.sum(axis=0), dtype included."""
    g = np.random.default_rng(3)
    for shape in ((0, 4), (1, 1), (7, 5), (2500, 5), (3, 40)):
        a = g.integers(-10**12, 10**12, shape)
        got = model._col_sums(a)
        assert got.dtype == a.sum(axis=0).dtype and np.array_equal(got, a.sum(axis=0))
        assert np.array_equal(model._col_sums(a[::2]), a[::2].sum(axis=0))  # a strided view too
