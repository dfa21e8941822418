"""Supply across a network: site levels follow each site's predicted demand, the depot reorders on the
network's stock, failed dispensings are split into missed and out of stock, and per-presentation totals
add up to the per-drug totals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hn005_sim.supply.aggregate import SupplyAggregate
from hn005_sim.supply.levels import demand_weights, patient_cycle_packs, site_levels
from hn005_sim.supply.model import SiteRow, SupplyModel, cycle_packs
from hn005_sim.supply.simulate import simulate_supply

from .conftest import ROOT, const, deterministic_regimen


def test_demand_weights_are_referral_rates_over_the_busiest():
    from hn005_sim.scenario.load import load_scenario

    sc, _ = load_scenario(ROOT / "scenarios" / "network_south_china.toml")
    w = demand_weights(sc)
    rates = {r.name: r.referral_rate_mean.value for r in sc.recruitment.regions}
    top = max(rates.values())  # the sponsor's site, the busiest
    assert top == rates["sponsor"]
    assert w == {k: v / top for k, v in rates.items()}
    assert w["sponsor"] == 1.0 and 0 < w["guangdong"] < 1 and w["hainan"] == rates["hainan"] / top


def test_site_levels_scale_with_weight_and_keep_one_patients_cycle(base):
    reg, sup = base.regimen, base.supply
    per = cycle_packs(reg, sup)
    floors = np.array([p.site_min_packs for p in sup.presentations])
    one = patient_cycle_packs(reg, sup)
    tier = sup.tiers[0]
    init1, trig1, _ = site_levels(per, floors, one, tier, 1.0)
    # weight 1 is the tier's own levels (the busiest site): max(cycles x packs per cycle, floor)
    hand1 = np.maximum(np.ceil(tier.trigger_cycles * per - 1e-9), floors).astype(int)
    assert trig1.tolist() == hand1.tolist()
    w = 0.1
    init, trig, top = site_levels(per, floors, one, tier, w)
    hand = np.maximum.reduce([np.ceil(w * tier.trigger_cycles * per - 1e-9), np.ceil(w * floors - 1e-9),
                              np.ceil(tier.min_patient_cycles * one - 1e-9)]).astype(int)
    assert trig.tolist() == hand.tolist()
    assert (trig >= tier.min_patient_cycles * one).all() and (trig <= trig1).all() and (trig < trig1).any()
    assert (top >= trig).all() and (init <= init1).all()
    # not scaled: every site holds the busiest site's levels
    flat = tier.model_copy(update={"demand_scaled": False})
    assert site_levels(per, floors, one, flat, w)[1].tolist() == trig1.tolist()


def test_one_patients_cycle_is_the_most_packs_one_visit_dispenses(base):
    """Reference patient, full dose: 14 x 10 mg capsules = 2 boxes of 7; 2 vials; the reduced strength
    (8 mg) is also 2 boxes; capecitabine's largest BSA (1.2 x 1.70) needs the most 150 mg tablets."""
    sup = base.supply
    one = dict(zip((p.id for p in sup.presentations), patient_cycle_packs(base.regimen, sup).tolist(),
                   strict=True))
    assert one["anlotinib_10mg"] == 2 and one["anlotinib_8mg"] == 2 and one["penpulimab_100mg"] == 2
    from hn005_sim.treatment.dosing import drug_units

    cape = base.regimen.drugs["capecitabine"]
    bsa = np.linspace(0.8, 1.2, 400) * sup.reference_bsa_m2
    _, tabs = drug_units(cape, {"bsa_m2": bsa}, 1.0)
    adm = 42  # 21 days x twice daily
    strengths = cape.strengths_mg
    for j, mg in enumerate(strengths):
        pres = next(p for p in sup.presentations if p.strength_mg == mg and p.drug == "capecitabine")
        # full dose is the most tablets of a strength at the largest patients (reductions need fewer)
        assert one[pres.id] >= math.ceil(int(tabs[:, j].max()) * adm / pres.units_per_pack)


def _network(base, n_small: int, per_site: int, network: bool, lot: int | None = None):
    reg = deterministic_regimen(base.regimen, induction=4)
    pres = base.supply.presentations
    if lot is not None:  # small lots and a reorder point of half a lot: a depot set up for one site
        pres = [p.model_copy(update={"lot_size_packs": lot, "depot_reorder_packs": lot // 2}) for p in pres]
    sup = base.supply.model_copy(update={
        "presentations": pres,
        "depot": base.supply.depot.model_copy(update={"network_reorder": network}),
        "shipping": base.supply.shipping.model_copy(update={"lead_days": const(3.0)})})
    sites = [("S0", "big", 0.0, None)] + [(f"T{i}", "small", 0.0, None) for i in range(n_small)]
    g = np.random.default_rng(3)
    enrol, k = [], 0
    for name, region, _, _ in sites:
        for d in np.sort(g.uniform(0, 200, per_site)):
            enrol.append((k, name, region, float(d), 1.7))
            k += 1
    return reg, sup, sites, enrol


def test_echelon_reorder_keeps_the_depot_supplied(base):
    """Twelve small sites each filling to their levels drain a depot whose reorder point was set for one
    site: the network reorder (the depot orders for the sites' levels too) leaves far fewer dispensings
    with nothing upstream. Every site opens on day 0 with one 40-pack lot at the depot, so the first 45
    days (the release lead time) and the refill after them are short either way; later the depot without
    the network reorder keeps running dry."""
    oos, late = {}, {}
    for network in (False, True):
        reg, sup, sites, enrol = _network(base, 12, 3, network, lot=40)
        rec = simulate_supply(reg, sup, enrol, sites, 400.0, np.random.default_rng(1),
                              np.random.default_rng(2), weights={"big": 1.0, "small": 0.2})
        assert np.array_equal(rec.missed_events + rec.out_of_stock_events, rec.stockout_events)
        oos[network] = int(rec.out_of_stock_events.sum())
        late[network] = int(rec.stockouts_monthly[5:].sum())  # once the start-up lots are in
    # without the network reorder the depot keeps running dry (27 late stock-outs on this stream); with it
    # a single late one remains (a penpulimab visit since the regimen-as-data merge)
    assert late[False] > 0 and late[True] <= late[False] / 10, late
    assert oos[True] < oos[False] / 2, oos


def test_missed_is_stock_upstream_out_of_stock_is_none(base):
    """A visit short at the site while the depot holds stock is missed; with the depot empty too it is
    out of stock. Checked against the depot's and the shipments' stock at the moment of each failure."""
    reg, sup, sites, enrol = _network(base, 6, 4, False, lot=40)
    seen = []
    orig = SupplyModel._wait

    def wait(self, cell, s, items, short, capped):
        st = self.stock[s]
        for p in short:
            need = dict(items)[p] - st.totals[p]
            seen.append(self.depot.totals[p] + self.transit[s][p] >= need)
        yield from orig(self, cell, s, items, short, capped)

    SupplyModel._wait = wait
    try:
        rec = simulate_supply(reg, sup, enrol, sites, 400.0, np.random.default_rng(1),
                              np.random.default_rng(2), weights={"big": 1.0, "small": 0.2})
    finally:
        SupplyModel._wait = orig
    assert len(seen) == rec.stockout_events.sum() > 0
    # the depot is purged before the check in the model; stock entering its window is not upstream
    assert rec.missed_events.sum() <= sum(seen)
    assert rec.out_of_stock_events.sum() >= len(seen) - sum(seen)


def test_per_presentation_means_add_up_to_the_drug_totals(base):
    reg, sup, sites, enrol = _network(base, 4, 3, True)
    agg = SupplyAggregate()
    recs = []
    for seed in range(6):
        rec = simulate_supply(reg, sup, enrol, sites, 400.0, np.random.default_rng(seed),
                              np.random.default_rng(seed + 100), weights={"big": 1.0, "small": 0.3})
        agg.add(rec)
        recs.append(rec)
    summary = agg.summary()
    frame = agg.frames()["supply"]
    for drug, s in summary.items():
        rows = frame.filter(frame["drug"] == drug)
        assert rows["manufacture_packs_mean"].sum() == pytest.approx(s["manufacture_packs_mean"])
        assert rows["dispensed_packs_mean"].sum() == pytest.approx(s["dispensed_packs_mean"])
        # waste is kept in thousandths of a pack per presentation and per drug
        assert rows["waste_packs_mean"].sum() == pytest.approx(s["waste_packs_mean"], abs=1e-3 * rows.height)
        made = [r.drug_total(r.released, drug) for r in recs]
        assert s["manufacture_packs_mean"] == pytest.approx(np.mean(made))
        assert s["stockout_probability"] >= max(s["missed_dispensing_probability"],
                                                s["out_of_stock_probability"])
        assert s["stockout_probability"] <= (s["missed_dispensing_probability"]
                                             + s["out_of_stock_probability"])
    for row in frame.to_dicts():
        assert row["failed_dispensings_mean"] == pytest.approx(row["missed_dispensings_mean"]
                                                               + row["out_of_stock_dispensings_mean"])


def test_site_row_weights_default_to_one(base):
    """No weights (a caller that does not know the regions): every site holds the busiest site's levels."""
    reg, sup, sites, enrol = _network(base, 2, 1, True)
    rows = [SiteRow(*s) for s in sites]
    from hn005_sim.supply.simulate import _enrolments

    m = SupplyModel(reg, sup, rows, _enrolments(enrol), 100.0, np.random.default_rng(0),
                    np.random.default_rng(1))
    assert m.base_levels[0] == m.base_levels[1] == m.base_levels[2]
    m2 = SupplyModel(reg, sup, rows, _enrolments(enrol), 100.0, np.random.default_rng(0),
                     np.random.default_rng(1), weights={"big": 1.0, "small": 0.1})
    assert m2.base_levels[1] == m2.base_levels[2] != m2.base_levels[0]
