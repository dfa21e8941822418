"""The streaming aggregate: exact quantiles, order-independent add and merge."""

from __future__ import annotations

from collections import Counter

import numpy as np
import polars as pl
import pytest

from hn005_sim.supply.aggregate import SupplyAggregate, quantile
from hn005_sim.supply.simulate import simulate_supply


@pytest.mark.parametrize("q", [0.0, 0.1, 0.5, 0.9, 0.95, 1.0])
def test_quantile_matches_numpy(q):
    x = np.random.default_rng(1).integers(0, 40, 101)
    assert quantile(Counter(x.tolist()), q) == pytest.approx(np.quantile(x, q), abs=1e-12)


@pytest.fixture(scope="module")
def records(base):
    g = np.random.default_rng(4)
    out = []
    for r in range(6):
        enrol = [(i, "S0", "r", float(d), float(g.uniform(1.4, 2.0)))
                 for i, d in enumerate(np.sort(g.uniform(0, 200, 8)))]
        out.append(simulate_supply(base.regimen, base.supply, enrol, [("S0", "r", 0.0, 400.0)], 500.0,
                                   np.random.default_rng(r), np.random.default_rng(100 + r)))
    return out


def test_add_order_and_merge_do_not_matter(records):
    a, b, c = SupplyAggregate(), SupplyAggregate(), SupplyAggregate()
    for rec in records:
        a.add(rec)
    for rec in reversed(records):
        b.add(rec)
    c1, c2 = SupplyAggregate(), SupplyAggregate()
    for rec in records[:2]:
        c1.add(rec)
    for rec in records[2:]:
        c2.add(rec)
    c.merge(c2).merge(c1)
    assert a.summary() == b.summary() == c.summary()
    for name in ("supply", "drug_demand", "inventory"):
        assert a.frames()[name].equals(b.frames()[name]) and a.frames()[name].equals(c.frames()[name])


def test_summary_against_direct_computation(records):
    agg = SupplyAggregate()
    for rec in records:
        agg.add(rec)
    s = agg.summary()
    assert set(s) == {"anlotinib", "penpulimab", "capecitabine"}
    for drug in s:
        made = [r.drug_total(r.released, drug) for r in records]
        waste = [r.drug_total(r.wasted_expiry + r.wasted_returns, drug) for r in records]
        assert s[drug]["units_p50"] == pytest.approx(np.quantile(made, 0.5))
        assert s[drug]["units_p95"] == pytest.approx(np.quantile(made, 0.95))
        assert s[drug]["waste_p50"] == pytest.approx(np.quantile(waste, 0.5), abs=1e-3)
        assert s[drug]["stockout_probability"] == np.mean([r.stockout(drug) for r in records])
    sup = agg.frames()["supply"]
    assert sup.columns[:11] == ["drug", "presentation", "dispensed_p50", "shipped_p50", "wasted_expiry_p50",
                                "wasted_returns_p50", "manufacture_p50", "manufacture_p90", "manufacture_p95",
                                "stockout_probability", "shipments_p50"]
    row = sup.filter(sup["presentation"] == "penpulimab_100mg").to_dicts()[0]
    assert row["dispensed_p50"] == np.quantile([r.dispensed[2] for r in records], 0.5)


def test_packs_to_make_come_from_replicates_reaching_the_target(base, records):
    """Replicates short of the target at the horizon treated fewer patients than the trial will: packs
    to make are quantiles over those that reach it (all replicates when none does, flagged)."""
    from types import SimpleNamespace

    g = np.random.default_rng(9)
    short = []
    for r in range(4):  # 5 patients each, below a target of 8
        enrol = [(i, "S0", "r", float(d), float(g.uniform(1.4, 2.0)))
                 for i, d in enumerate(np.sort(g.uniform(0, 200, 5)))]
        short.append(simulate_supply(base.regimen, base.supply, enrol, [("S0", "r", 0.0, 400.0)], 500.0,
                                     np.random.default_rng(50 + r), np.random.default_rng(150 + r)))
    assert all(r.patients == 8 for r in records) and all(r.patients == 5 for r in short)
    agg = SupplyAggregate(SimpleNamespace(trial=SimpleNamespace(target_enrolled=8)))
    for rec in [*short[:2], *records, *short[2:]]:
        agg.add(rec)
    s = agg.summary()
    for drug in s:
        made = [r.drug_total(r.released, drug) for r in records]
        assert s[drug]["units_p50"] == pytest.approx(np.quantile(made, 0.5))
        assert s[drug]["units_p95"] == pytest.approx(np.quantile(made, 0.95))
        assert s[drug]["replicates_reaching_target"] == len(records)
        assert s[drug]["packs_basis"] == "replicates_reaching_target"
    row = agg.frames()["supply"].filter(pl.col("presentation") == "penpulimab_100mg").to_dicts()[0]
    assert row["manufacture_p95"] == pytest.approx(np.quantile([r.released[2] for r in records], 0.95))
    # the short replicates still count in everything else (waste, stock-outs, demand)
    assert agg.replicates == len(records) + len(short)
    none = SupplyAggregate(SimpleNamespace(trial=SimpleNamespace(target_enrolled=100)))
    for rec in records:
        none.add(rec)
    t = none.summary()["penpulimab"]
    assert t["packs_basis"] == "all_replicates_none_reached_target" and t["replicates_reaching_target"] == 0
    assert t["units_p50"] == pytest.approx(np.quantile([r.drug_total(r.released, "penpulimab")
                                                        for r in records], 0.5))


def _monthly_state(agg: SupplyAggregate):
    agg._flush_monthly()
    return ({k: dict(c) for k, c in agg.monthly.items()}, dict(agg.month_n), dict(agg.month_stockout))


def test_dense_monthly_histograms_hold_what_the_counters_hold(records):
    """The dense monthly histograms (`_add_monthly_dense`, the parent's fold in a run) against the
    Counters incremented record by record: the same keys (zero stock-out counts included), counts and
    frames; with records of different lengths, and one too large for a dense row (it goes to the
    Counters, mixed with the dense counts)."""
    from dataclasses import replace

    big = records[1].on_hand_depot_monthly.copy()
    big[3, 0] = SupplyAggregate.DENSE_MAX_VALUE + 5
    short = records[2]
    months = short.dispensed_monthly.shape[0] // 2
    short = replace(short, **{k: getattr(short, k)[:months] for k in (
        "dispensed_monthly", "on_hand_depot_monthly", "on_hand_sites_monthly", "stockouts_monthly")})
    recs = [*records, replace(records[1], on_hand_depot_monthly=big), short]
    dense, counters = SupplyAggregate(), SupplyAggregate()
    counters.dense_monthly = False
    for rec in recs:
        dense.add(rec)
        counters.add(rec)
    assert dense._dense_drugs is not None  # the dense path was taken
    assert _monthly_state(dense) == _monthly_state(counters)
    for name in ("supply", "drug_demand", "inventory"):
        assert dense.frames()[name].equals(counters.frames()[name])
    # and against numpy on the records themselves: month 2's units dispensed of each drug
    demand = dense.frames()["drug_demand"].filter(pl.col("month") == 2)
    for row in demand.iter_rows(named=True):
        ps = [p for p, d in enumerate(recs[0].drugs) if d == row["drug"]]
        x = [int(r.dispensed_monthly[2, ps].sum()) for r in recs]
        assert row["units_p50"] == pytest.approx(np.quantile(x, 0.5))
        assert row["units_p90"] == pytest.approx(np.quantile(x, 0.9))


def test_dense_counts_survive_merge_and_a_second_flush(records):
    a, b, whole = SupplyAggregate(), SupplyAggregate(), SupplyAggregate()
    for rec in records[:3]:
        a.add(rec)
    for rec in records[3:]:
        b.add(rec)
    for rec in records:
        whole.add(rec)
    a.merge(b)
    a.add(records[0])  # dense again after the merge's flush
    whole.add(records[0])
    assert _monthly_state(a) == _monthly_state(whole)
    assert _monthly_state(a) == _monthly_state(whole)  # flushing twice adds nothing


def test_monthly_frames_from_the_dense_histograms_equal_the_counters(records):
    """`frames` reads drug_demand and inventory straight from the dense histograms when every record
    went there (`_monthly_frames_dense`): the same frames, byte for byte, as moving them into the
    Counters first (`dense_frames = False`), with records of different lengths, one record alone, and
    a drug order that is not the sorted one; and once a record is in the Counters, the Counters' loop."""
    from dataclasses import replace

    short = records[2]
    months = short.dispensed_monthly.shape[0] // 2
    short = replace(short, **{k: getattr(short, k)[:months] for k in (
        "dispensed_monthly", "on_hand_depot_monthly", "on_hand_sites_monthly", "stockouts_monthly")})
    assert list(records[0].drugs) != sorted(records[0].drugs) or len(set(records[0].drugs)) == 1
    for recs in ([*records, short], [short, *records], records[:1]):
        dense, counters = SupplyAggregate(), SupplyAggregate()
        counters.dense_frames = False
        for rec in recs:
            dense.add(rec)
            counters.add(rec)
        assert dense._only_dense_monthly()
        for name in ("supply", "drug_demand", "inventory"):
            got, want = dense.frames()[name], counters.frames()[name]
            assert got.schema == want.schema and got.write_csv() == want.write_csv()
        assert dense._only_dense_monthly()  # frames did not move them: a second call gives the same
        assert dense.frames()["inventory"].write_csv() == counters.frames()["inventory"].write_csv()
    # by hand: month 1's units dispensed of the first drug, p50 over the records
    agg = SupplyAggregate()
    for rec in records:
        agg.add(rec)
    d = agg._drugs()[0]
    ps = [p for p, x in enumerate(records[0].drugs) if x == d]
    demand = agg.frames()["drug_demand"]
    row = demand.filter((pl.col("month") == 1) & (pl.col("drug") == d)).row(0, named=True)
    assert row["units_p50"] == np.quantile([int(r.dispensed_monthly[1, ps].sum()) for r in records], 0.5)
    big = records[1].on_hand_depot_monthly.copy()
    big[3, 0] = SupplyAggregate.DENSE_MAX_VALUE + 5
    agg.add(replace(records[1], on_hand_depot_monthly=big))
    assert not agg._only_dense_monthly()
