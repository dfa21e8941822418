"""The resupply search: each candidate is the supply model run with its levers, and the levers bind."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from hn005_sim import rng as rngmod
from hn005_sim.recruitment.candidates import FunnelSource
from hn005_sim.recruitment.config import Funnel
from hn005_sim.supply.levels import demand_weights
from hn005_sim.supply.model import tier_levels
from hn005_sim.supply.search import (
    SearchTally,
    candidates,
    config_for,
    drugs_of,
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


def test_candidate_sets_only_its_tiers_levers(base):
    cands = candidates(base)
    assert {(c.min_patient_cycles, c.safety_patient_cycles) for c in cands} == {
        (m, a) for m in (1.0, 2.0) for a in (1.0, 2.0, 3.0)}
    tier = base.supply.tiers[0]
    assert {c.initial_cycles for c in cands} == {tier.initial_cycles * k for k in (0.5, 1.0, 1.5)}
    cand = next(c for c in cands if c.initial_cycles != tier.initial_cycles and c.safety_patient_cycles == 3)
    sup = config_for(base, cand)
    t = sup.tiers[cand.tier]
    assert (t.initial_cycles, t.min_patient_cycles, t.safety_patient_cycles) == (
        cand.initial_cycles, cand.min_patient_cycles, cand.safety_patient_cycles)
    assert sup.presentations == base.supply.presentations and sup.depot == base.supply.depot


def with_small_sites(sc):
    """The sponsor plus three sites referring a tenth as many candidates (demand weight 0.1)."""
    big = sc.recruitment.regions[0]
    small = big.model_copy(update={
        "name": "small", "sites": 3, "max_sites": None, "site_names": None,
        "referral_rate_mean": big.referral_rate_mean.model_copy(
            update={"value": big.referral_rate_mean.value / 10}),
        "referral_rate_variance": big.referral_rate_variance.model_copy(
            update={"value": big.referral_rate_variance.value / 100})})
    rec = sc.recruitment.model_copy(update={"regions": [big, small]})
    return sc.model_copy(update={"recruitment": rec})


def test_each_candidate_is_the_supply_model_with_its_config(base):
    sc = with_small_sites(funnel_scenario(base))
    assert demand_weights(sc) == {"sponsor": 1.0, "small": pytest.approx(0.1)}
    source = FunnelSource(sc.recruitment.funnel)
    cands = candidates(sc)
    seed = 11
    [(_, _, stats)] = replicate_task(sc, seed, 0, 1, cands, 1, source)
    enrol, sites = enrolments_for(sc, seed, 0, source)
    for cand, (waste, stockout, released, shipments, by_drug) in zip(cands, stats, strict=True):
        rec = simulate_supply(sc.regimen, config_for(sc, cand), enrol, sites, None,
                              rngmod.stream(seed, 0, "treatment"), rngmod.stream(seed, 0, "supply"),
                              weights=demand_weights(sc))
        assert waste == waste_packs(rec) and released == int(rec.released.sum())
        assert stockout == bool(rec.stockout_events.sum() > 0) and shipments == rec.shipments
        assert by_drug == tuple(rec.stockout(d) for d in drugs_of(sc))
    # the levers bind at the small sites: each lever changes the shipments
    tally = SearchTally(cands, drugs_of(sc))
    tally.add(stats)
    frame = tally.frame(sc, 1.0)
    for lever in ("safety_patient_cycles", "min_patient_cycles", "initial_cycles"):
        by = frame.group_by(lever).agg(pl.col("shipments_mean").mean())
        assert by["shipments_mean"].n_unique() > 1, lever
    assert frame["best"].sum() == 1
    assert {f"{d}_stockout_probability" for d in drugs_of(sc)} <= set(frame.columns)


def test_tiers_without_predictive_resupply_search_their_trigger_levels(base):
    tiers = [t.model_copy(update={"predictive": False}) for t in base.supply.tiers]
    sc = base.model_copy(update={"supply": base.supply.model_copy(update={"tiers": tiers})})
    cands = candidates(sc)
    assert {(c.trigger_cycles, c.max_cycles) for c in cands} == {(2.0, 4.0), (4.0, 8.0), (8.0, 16.0)}
    assert {c.forecast_days for c in cands} == {tiers[0].forecast_days}
    levels = {c: tier_levels(sc.regimen, config_for(sc, c))[c.tier][1].tolist() for c in cands}
    assert len({tuple(v) for v in levels.values()}) > 1  # the triggers bind above the floors


def test_wilson_upper_bound_against_its_closed_form():
    from hn005_sim.supply.search import wilson_upper

    # 0 of 30: (z^2 / n) / (1 + z^2 / n) with z = 1.96: 0.1135; 1 of 30 from the formula by hand
    z = 1.959964
    assert wilson_upper(np.array([0]), 30)[0] == pytest.approx((z * z / 30) / (1 + z * z / 30))
    p, n = 1 / 30, 30
    hand = (p + z * z / (2 * n) + z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)
    assert wilson_upper(np.array([1]), 30)[0] == pytest.approx(hand)
    assert wilson_upper(np.array([200]), 200)[0] == pytest.approx(1.0)


def test_the_winner_is_confirmed_below_the_bound_when_any_candidate_is(base):
    """Two candidates over 100 replicates: A wastes less with 3 stock-outs (3% <= 5%, but its upper
    bound 8.5% is not), B wastes more with none (upper bound 3.7%): B wins; without B, A wins."""
    cands = [c for c in candidates(base) if c.initial_cycles == base.supply.tiers[0].initial_cycles][:2]
    drugs = drugs_of(base)
    tally = SearchTally(cands, drugs)
    for r in range(100):
        a_out = r < 3
        tally.add([(100.0, a_out, 10, 5, tuple(a_out for _ in drugs)), (120.0, False, 10, 5,
                                                                         tuple(False for _ in drugs))])
    frame = tally.frame(base, 0.05)
    assert frame["feasible"].to_list() == [True, True] and frame["confirmed"].to_list() == [False, True]
    assert frame["best"].to_list() == [False, True]
    only_a = SearchTally(cands[:1], drugs)
    for r in range(100):
        only_a.add([(100.0, r < 3, 10, 5, tuple(r < 3 for _ in drugs))])
    assert only_a.frame(base, 0.05)["best"].to_list() == [True]
