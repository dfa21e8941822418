"""SupplyAggregate.add's per-drug and per-presentation figures (issue 16, phase 5: summed from lists, the
drugs' presentations and Counters found once per set of presentations) against the loop it replaced
(kept here as it was at b36d348: `SupplyRecord.drug_total` and `stockout` per drug), on records with
stock-outs, expiry write-offs, fractional waste, and targets reached and not."""

from __future__ import annotations

from collections import Counter

import numpy as np

from hn005_sim.supply.aggregate import MILLI, SupplyAggregate, waste_of
from hn005_sim.supply.simulate import simulate_supply

from .test_reference import _random_case


def old_figures(records, target):
    """The Counters b36d348's `SupplyAggregate.add` made, per drug and per presentation."""
    drug, pres = {}, {}
    flags = {k: Counter() for k in ("pres_stockout", "pres_missed", "pres_oos", "drug_stockout",
                                    "drug_missed", "drug_oos")}

    def c(table, key):
        return table.setdefault(key, Counter())

    for rec in records:
        reached = target is None or rec.patients >= target
        waste = waste_of(rec)
        released = rec.released.tolist()
        for p, pid in enumerate(rec.presentations):
            flags["pres_stockout"][pid] += int(rec.stockout_events[p] > 0)
            if reached:
                c(pres, ("released_at_target", pid))[int(released[p])] += 1
            flags["pres_missed"][pid] += int(rec.missed_events[p] > 0)
            flags["pres_oos"][pid] += int(rec.out_of_stock_events[p] > 0)
            c(pres, ("waste_milli", pid))[round(float(waste[p]) * MILLI)] += 1
        for d in dict.fromkeys(rec.drugs):
            c(drug, ("manufacture", d))[int(rec.drug_total(rec.released, d))] += 1
            if reached:
                c(drug, ("manufacture_at_target", d))[int(rec.drug_total(rec.released, d))] += 1
            c(drug, ("dispensed", d))[int(rec.drug_total(rec.dispensed, d))] += 1
            c(drug, ("waste_milli", d))[round(rec.drug_total(waste, d) * MILLI)] += 1
            c(drug, ("days_without_milli", d))[round(rec.patient_days_without[d] * MILLI)] += 1
            flags["drug_stockout"][d] += int(rec.stockout(d))
            flags["drug_missed"][d] += int(rec.stockout(d, rec.missed_events))
            flags["drug_oos"][d] += int(rec.stockout(d, rec.out_of_stock_events))
    return drug, pres, flags


def _records(base):
    out = []
    for seed in range(16):
        reg, sup, enrol, sites, horizon, weights = _random_case(base, seed)
        if seed % 3 == 0:  # packs of 3 vials of the capped drug: fractional returns in pack equivalents
            pres = [p.model_copy(update={"units_per_pack": 3}) if p.drug == reg.capped_drug else p
                    for p in sup.presentations]
            sup = sup.model_copy(update={"presentations": pres})
        out.append(simulate_supply(reg, sup, enrol, sites, horizon, np.random.default_rng([seed, 1]),
                                   np.random.default_rng([seed, 2]), None, weights))
    return out


def test_fold_equals_the_record_methods(base):
    records = _records(base)
    flags = [r.stockout(d) for r in records for d in set(r.drugs)]
    assert any(flags) and not all(flags)
    assert any(r.wasted_expiry.sum() for r in records)
    assert any(float(w) != int(w) for r in records for w in waste_of(r))
    patients = sorted(r.patients for r in records)
    for target in (None, patients[len(patients) // 2], 10**6):  # every, some, no replicate reaches it
        agg = SupplyAggregate()
        agg.target = target
        for rec in records:
            agg.add(rec)
        drug, pres, flags = old_figures(records, target)
        assert {k: v for k, v in agg.drug.items() if v} == drug
        for k, v in pres.items():
            assert agg.pres[k] == v, k
        if target == 10**6:
            assert not any(k[0] == "manufacture_at_target" for k in agg.drug)
        for name, want in flags.items():
            assert getattr(agg, name) == want, name
        assert agg.summary().keys() == {d for r in records for d in r.drugs}
