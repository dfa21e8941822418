"""The resupply search: each candidate is the supply model run with its levels, and the levers bind."""

from __future__ import annotations

import numpy as np

from hn005_sim import rng as rngmod
from hn005_sim.recruitment.candidates import FunnelSource
from hn005_sim.recruitment.config import Funnel
from hn005_sim.supply.model import tier_levels
from hn005_sim.supply.search import (
    SearchTally,
    candidates,
    config_for,
    enrolments_for,
    replicate_task,
    waste_packs,
)
from hn005_sim.supply.simulate import simulate_supply

from .conftest import const

SRC = {"source": "test: fixed funnel"}


def funnel_scenario(base):
    funnel = Funnel.model_validate({"prescreen_pass": {"value": 0.5, **SRC},
                                    "screen_pass": {"value": 0.7, **SRC}, "bsa_m2": const(1.7)})
    return base.model_copy(update={"recruitment": base.recruitment.model_copy(update={"funnel": funnel})})


def test_candidate_levels_scale_only_the_floors_of_its_tier(base):
    cand = candidates(base)[0]
    sup, levels = config_for(base, cand)
    assert sup.tiers[cand.tier].forecast_days == cand.forecast_days
    floors = np.array([p.site_min_packs for p in base.supply.presentations])
    _, trig, top = levels[cand.tier]
    configured = tier_levels(base.regimen, base.supply)[cand.tier][1]
    # with floor x 0.5 the trigger falls to max(half the floor, the cycles' packs), never above configured
    assert np.all(trig <= configured) and np.any(trig < configured)
    assert np.all(trig >= np.ceil(floors * cand.floor_scale))  # half a floor of 1 is still 1
    assert np.all(top >= trig)


def test_each_candidate_is_the_supply_model_with_its_config(base):
    sc = funnel_scenario(base)
    source = FunnelSource(sc.recruitment.funnel)
    cands = candidates(sc)
    seed = 11
    [(_, _, stats)] = replicate_task(sc, seed, 0, 1, cands, 1, source)
    enrol, sites = enrolments_for(sc, seed, 0, source)
    for cand, (waste, stockout, released, shipments) in zip(cands, stats, strict=True):
        sup, lv = config_for(sc, cand)
        rec = simulate_supply(sc.regimen, sup, enrol, sites, None, rngmod.stream(seed, 0, "treatment"),
                              rngmod.stream(seed, 0, "supply"), lv)
        assert waste == waste_packs(rec) and released == int(rec.released.sum())
        assert stockout == bool(rec.stockout_events.sum() > 0) and shipments == rec.shipments
    # the levers bind: shorter forecasts ship more often, and candidates differ in waste
    tally = SearchTally(cands)
    tally.add(stats)
    frame = tally.frame(sc, 1.0)
    ships = {f: frame.filter(frame["forecast_days"] == f)["shipments_mean"].mean() for f in (21.0, 63.0)}
    assert ships[21.0] > ships[63.0]
    assert frame["waste_mean"].n_unique() > 1
    assert frame["best"].sum() == 1


def test_tiers_without_predictive_resupply_search_their_trigger_levels(base):
    tiers = [t.model_copy(update={"predictive": False}) for t in base.supply.tiers]
    sc = base.model_copy(update={"supply": base.supply.model_copy(update={"tiers": tiers})})
    cands = candidates(sc)
    assert {(c.trigger_cycles, c.max_cycles) for c in cands} == {(2.0, 4.0), (4.0, 8.0), (8.0, 16.0)}
    assert {c.forecast_days for c in cands} == {tiers[0].forecast_days}
    levels = {c: config_for(sc, c)[1][c.tier][1].tolist() for c in cands if c.floor_scale == 0.5}
    assert len({tuple(v) for v in levels.values()}) > 1  # the triggers bind above half floors
