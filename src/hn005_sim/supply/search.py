"""The supply figures alone, and a search over site resupply levels.

For each replicate the recruitment DES gives the enrolments (the same ones `run` sees for that seed and
replicate); the supply model runs once with the configured levels and once per candidate policy. Every
candidate sees the same enrolments and the same `treatment` and `supply` streams (common random numbers),
so differences between candidates are the policies', not the dice's.

The search, one tier at a time (other tiers at their configured levels), varies what binds at a small
site, whose levels follow its predicted demand (supply/levels.py). Under predictive resupply: the seeding
at activation (`initial_cycles` x 0.5/1/1.5), the minimum of one patient's cycle (`min_patient_cycles`
1/2) and the lead-time cover (`safety_patient_cycles` 1/2/3: patients' cycles above the active patients'
forecast, so visits while a shipment is on its way are served); trigger/max cycles, forecast and floors
stay as configured. Without predictive resupply: the trigger cycles (max = twice the trigger) and the
one-patient minimum. Among candidates whose stock-out probability (share of replicates with any failed
dispensing of any drug) is at most the bound, the least expected waste (expiry + returns, packs summed
over presentations) wins, taken among the *confirmed* ones (the 95% Wilson upper bound of the
probability also within the bound) when there are any; ties go to fewer stock-outs, then the lower
levels. With several tiers this is
one pass of coordinate search: each tier's best, found with the others as configured, combined.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from hn005_sim import rng as rngmod
from hn005_sim.supply.levels import demand_weights
from hn005_sim.supply.simulate import SupplyRecord, simulate_supply

INITIAL_SCALE_GRID = (0.5, 1.0, 1.5)  # x the tier's initial_cycles: seeding at activation
MIN_PATIENT_GRID = (1.0, 2.0)  # levels never below this many of one patient's cycle
SAFETY_GRID = (1.0, 2.0, 3.0)  # lead-time cover: patients' cycles above the predictive forecast
TRIGGER_GRID = (2.0, 4.0, 8.0)  # reference patient-cycles, tiers without predictive resupply


@dataclass(frozen=True)
class Candidate:
    tier: int
    trigger_cycles: float
    max_cycles: float
    forecast_days: float
    floor_scale: float
    initial_cycles: float
    min_patient_cycles: float
    safety_patient_cycles: float


def candidates(scenario, initial_scales=INITIAL_SCALE_GRID, min_patients=MIN_PATIENT_GRID,
               safeties=SAFETY_GRID, triggers=TRIGGER_GRID) -> list[Candidate]:
    """Per tier: predictive tiers vary the seeding, the one-patient minimum and the lead-time cover
    (trigger/max cycles, forecast and floors as configured); other tiers vary the trigger (max twice it)
    and the one-patient minimum."""
    out = []
    for t, tier in enumerate(scenario.supply.tiers):
        for m in min_patients:
            if tier.predictive:
                out += [Candidate(t, tier.trigger_cycles, tier.max_cycles, tier.forecast_days,
                                  tier.floor_scale, tier.initial_cycles * float(k), float(m), float(a))
                        for k in initial_scales for a in safeties]
            else:
                out += [Candidate(t, float(a), 2.0 * a, tier.forecast_days, tier.floor_scale,
                                  max(tier.initial_cycles, 2.0 * a), float(m), tier.safety_patient_cycles)
                        for a in triggers]
    return out


def config_for(scenario, cand: Candidate):
    """The supply config of a candidate: its tier's levers set, the other tiers as configured."""
    sup = scenario.supply
    tiers = list(sup.tiers)
    tiers[cand.tier] = tiers[cand.tier].model_copy(update={
        "trigger_cycles": cand.trigger_cycles, "max_cycles": cand.max_cycles,
        "forecast_days": cand.forecast_days, "floor_scale": cand.floor_scale,
        "initial_cycles": cand.initial_cycles, "min_patient_cycles": cand.min_patient_cycles,
        "safety_patient_cycles": cand.safety_patient_cycles})
    return sup.model_copy(update={"tiers": tiers})


def enrolments_for(scenario, seed: int, replicate: int, source=None):
    """(enrolments frame, sites frame) of one replicate of the recruitment DES."""
    from hn005_sim.recruitment.candidates import candidate_source
    from hn005_sim.recruitment.des import simulate_recruitment

    source = candidate_source(scenario) if source is None else source
    rec, sites = simulate_recruitment(scenario, source, seed, replicate)
    enrol = pl.DataFrame({
        "patient_id": np.arange(rec.enrolled, dtype=np.int64),
        "site": [sites[i].name for i in rec.enrol_site],
        "region": [sites[i].region for i in rec.enrol_site],
        "day": np.asarray(rec.enrol_day, dtype=float),
        "bsa_m2": np.asarray(rec.enrol_bsa_m2, dtype=float),
        **{k: np.asarray(v, dtype=float) for k, v in rec.enrol_covariates.items()},
    })
    site_frame = pl.DataFrame({
        "site": [s.name for s in sites], "region": [s.region for s in sites],
        "activation_day": [s.activation_day for s in sites], "close_day": [s.close_day for s in sites],
    }, schema={"site": pl.String, "region": pl.String, "activation_day": pl.Float64, "close_day": pl.Float64})
    return enrol, site_frame


def drugs_of(scenario) -> list[str]:
    """The scenario's drugs, in the order of their first presentation."""
    return list(dict.fromkeys(p.drug for p in scenario.supply.presentations))


def waste_packs(rec: SupplyRecord) -> float:
    return float((rec.wasted_expiry + rec.wasted_returns).sum())


def replicate_task(scenario, seed: int, start: int, stop: int, cands: list[Candidate], search_stop: int,
                   source=None):
    """Replicates start..stop-1: (SupplyRecord, [(waste packs, any stock-out, released packs,
    shipments)] per candidate; empty list for replicates >= search_stop)."""
    from hn005_sim.recruitment.candidates import candidate_source

    source = candidate_source(scenario) if source is None else source
    configs = [config_for(scenario, c) for c in cands]
    weights = demand_weights(scenario)
    out = []
    for r in range(start, stop):
        enrol, sites = enrolments_for(scenario, seed, r, source)

        def once(sup, r=r, enrol=enrol, sites=sites):
            return simulate_supply(scenario.regimen, sup, enrol, sites, None,
                                   rngmod.stream(seed, r, "treatment"), rngmod.stream(seed, r, "supply"),
                                   weights=weights)

        base = once(scenario.supply)
        stats = []
        if r < search_stop:
            for sup in configs:
                rec = once(sup)
                stats.append((waste_packs(rec), bool(rec.stockout_events.sum() > 0), int(rec.released.sum()),
                              rec.shipments, tuple(bool(rec.stockout(d)) for d in drugs_of(scenario))))
        out.append((r, base, stats))
    return out


def wilson_upper(k: np.ndarray, n: int, z: float = 1.959964) -> np.ndarray:
    """Upper end of the 95% Wilson score interval of k successes in n (Wilson, JASA 1927;22:209)."""
    k = np.asarray(k, dtype=float)
    if n <= 0:
        return np.ones_like(k)
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return np.minimum((centre + half) / (1 + z * z / n), 1.0)


class SearchTally:
    """Per-candidate sums over replicates (order-independent up to float addition of integers/1000)."""

    def __init__(self, cands: list[Candidate], drugs: list[str] | None = None):
        self.cands = cands
        self.drugs = list(drugs or [])
        k = len(cands)
        self.n = 0
        self.waste_milli = np.zeros(k, dtype=np.int64)
        self.waste_sq = np.zeros(k)  # for the standard error; rounded inputs keep it reproducible
        self.stockouts = np.zeros(k, dtype=np.int64)
        self.drug_stockouts = np.zeros((k, len(self.drugs)), dtype=np.int64)
        self.released = np.zeros(k, dtype=np.int64)
        self.shipments = np.zeros(k, dtype=np.int64)

    def add(self, stats) -> None:
        if not stats:
            return
        self.n += 1
        for j, (waste, so, rel, ships, by_drug) in enumerate(stats):
            w = round(waste * 1000)
            self.waste_milli[j] += w
            self.waste_sq[j] += (w / 1000) ** 2
            self.stockouts[j] += so
            self.drug_stockouts[j] += np.asarray(by_drug, dtype=np.int64)[: len(self.drugs)]
            self.released[j] += rel
            self.shipments[j] += ships

    def frame(self, scenario, bound: float) -> pl.DataFrame:
        n = max(self.n, 1)
        mean = self.waste_milli / 1000 / n
        var = np.maximum(self.waste_sq / n - mean**2, 0) * n / max(n - 1, 1)
        p = self.stockouts / n
        feasible = p <= bound
        upper = wilson_upper(self.stockouts, self.n)
        confirmed = feasible & (upper <= bound)
        best = np.zeros(len(self.cands), dtype=bool)
        for t in range(len(scenario.supply.tiers)):
            # confirmed candidates (upper bound within the bound) first; else any whose estimate is
            idx = [j for j, c in enumerate(self.cands) if c.tier == t and confirmed[j]] or \
                [j for j, c in enumerate(self.cands) if c.tier == t and feasible[j]]
            if idx:
                # least waste; ties: fewer stock-outs, then the lower levels
                c = self.cands
                j = min(idx, key=lambda j: (mean[j], p[j], c[j].safety_patient_cycles,
                                            c[j].min_patient_cycles, c[j].initial_cycles,
                                            c[j].trigger_cycles))
                best[j] = True
        cols = {
            "tier": [scenario.supply.tiers[c.tier].name for c in self.cands],
            "trigger_cycles": [c.trigger_cycles for c in self.cands],
            "max_cycles": [c.max_cycles for c in self.cands],
            "forecast_days": [c.forecast_days for c in self.cands],
            "floor_scale": [c.floor_scale for c in self.cands],
            "initial_cycles": [c.initial_cycles for c in self.cands],
            "min_patient_cycles": [c.min_patient_cycles for c in self.cands],
            "safety_patient_cycles": [c.safety_patient_cycles for c in self.cands],
            "waste_packs_mean": mean,
            "waste_packs_se": np.sqrt(var / n),
            "stockout_probability": p,
            "stockout_probability_se": np.sqrt(p * (1 - p) / n),
            "stockout_probability_upper": upper,
        }
        for i, d in enumerate(self.drugs):
            cols[f"{d}_stockout_probability"] = self.drug_stockouts[:, i] / n
        cols.update({
            "manufacture_packs_mean": self.released / n,
            "shipments_mean": self.shipments / n,
            "replicates": [self.n] * len(self.cands),
            "feasible": feasible,
            "confirmed": confirmed,
            "best": best,
        })
        return pl.DataFrame(cols)
