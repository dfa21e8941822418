"""The supply figures alone, and a search over site resupply levels.

For each replicate the recruitment DES gives the enrolments (the same ones `run` sees for that seed and
replicate); the supply model runs once with the configured levels and once per candidate policy. Every
candidate sees the same enrolments and the same `treatment` and `supply` streams (common random numbers),
so differences between candidates are the policies', not the dice's.

The search, one tier at a time (other tiers at their configured levels), varies the levers that set a
site's stock. Under predictive resupply: the forecast horizon (`forecast_days`: the trigger covers half
of it, the max all of it, for the patients on treatment) and the safety floors (`site_min_packs` of every
presentation, scaled, rounded up); the trigger/max cycles of reference patients stay as configured, as
with the floors and the forecast they bind only at a site with no patient on treatment. Without
predictive resupply: the trigger cycles (max = twice the trigger) and the floors. Among candidates whose
stock-out probability (share of replicates with any stock-out) is at most the bound, the least expected
waste (expiry + returns, packs summed over presentations) wins; ties go to fewer stock-outs, then lower
floors and shorter forecasts. With several tiers this is one pass of coordinate search: each tier's
best, found with the others as configured, combined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from hn005_sim import rng as rngmod
from hn005_sim.supply.model import tier_levels
from hn005_sim.supply.simulate import SupplyRecord, simulate_supply

FORECAST_GRID = (21.0, 42.0, 63.0)  # days: one, two or three 21-day cycles ahead
FLOOR_SCALE_GRID = (0.5, 1.0, 1.5)  # x each presentation's site_min_packs
TRIGGER_GRID = (2.0, 4.0, 8.0)  # reference patient-cycles, tiers without predictive resupply


@dataclass(frozen=True)
class Candidate:
    tier: int
    trigger_cycles: float
    max_cycles: float
    forecast_days: float
    floor_scale: float


def candidates(scenario, forecasts=FORECAST_GRID, floor_scales=FLOOR_SCALE_GRID,
               triggers=TRIGGER_GRID) -> list[Candidate]:
    out = []
    for t, tier in enumerate(scenario.supply.tiers):
        for k in floor_scales:
            if tier.predictive:
                out += [Candidate(t, tier.trigger_cycles, tier.max_cycles, float(f), float(k))
                        for f in forecasts]
            else:
                out += [Candidate(t, float(a), 2.0 * a, tier.forecast_days, float(k)) for a in triggers]
    return out


def config_for(scenario, cand: Candidate):
    """(supply config, levels) of a candidate: its tier's forecast, and its floors for that tier only."""
    sup = scenario.supply
    tiers = list(sup.tiers)
    tiers[cand.tier] = tiers[cand.tier].model_copy(update={
        "trigger_cycles": cand.trigger_cycles, "max_cycles": cand.max_cycles,
        "forecast_days": cand.forecast_days})
    sup = sup.model_copy(update={"tiers": tiers})
    scaled = sup.model_copy(update={"presentations": [
        p.model_copy(update={"site_min_packs": math.ceil(p.site_min_packs * cand.floor_scale - 1e-9)})
        for p in sup.presentations]})
    levels = tier_levels(scenario.regimen, sup)
    levels[cand.tier] = tier_levels(scenario.regimen, scaled)[cand.tier]
    return sup, levels


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


def waste_packs(rec: SupplyRecord) -> float:
    return float((rec.wasted_expiry + rec.wasted_returns).sum())


def replicate_task(scenario, seed: int, start: int, stop: int, cands: list[Candidate], search_stop: int,
                   source=None):
    """Replicates start..stop-1: (SupplyRecord, [(waste packs, any stock-out, released packs,
    shipments)] per candidate; empty list for replicates >= search_stop)."""
    from hn005_sim.recruitment.candidates import candidate_source

    source = candidate_source(scenario) if source is None else source
    configs = [config_for(scenario, c) for c in cands]
    out = []
    for r in range(start, stop):
        enrol, sites = enrolments_for(scenario, seed, r, source)

        def once(sup, lv, r=r, enrol=enrol, sites=sites):
            return simulate_supply(scenario.regimen, sup, enrol, sites, None,
                                   rngmod.stream(seed, r, "treatment"), rngmod.stream(seed, r, "supply"), lv)

        base = once(scenario.supply, None)
        stats = []
        if r < search_stop:
            for sup, lv in configs:
                rec = once(sup, lv)
                stats.append((waste_packs(rec), bool(rec.stockout_events.sum() > 0), int(rec.released.sum()),
                              rec.shipments))
        out.append((r, base, stats))
    return out


class SearchTally:
    """Per-candidate sums over replicates (order-independent up to float addition of integers/1000)."""

    def __init__(self, cands: list[Candidate]):
        self.cands = cands
        k = len(cands)
        self.n = 0
        self.waste_milli = np.zeros(k, dtype=np.int64)
        self.waste_sq = np.zeros(k)  # for the standard error; rounded inputs keep it reproducible
        self.stockouts = np.zeros(k, dtype=np.int64)
        self.released = np.zeros(k, dtype=np.int64)
        self.shipments = np.zeros(k, dtype=np.int64)

    def add(self, stats) -> None:
        if not stats:
            return
        self.n += 1
        for j, (waste, so, rel, ships) in enumerate(stats):
            w = round(waste * 1000)
            self.waste_milli[j] += w
            self.waste_sq[j] += (w / 1000) ** 2
            self.stockouts[j] += so
            self.released[j] += rel
            self.shipments[j] += ships

    def frame(self, scenario, bound: float) -> pl.DataFrame:
        n = max(self.n, 1)
        mean = self.waste_milli / 1000 / n
        var = np.maximum(self.waste_sq / n - mean**2, 0) * n / max(n - 1, 1)
        p = self.stockouts / n
        feasible = p <= bound
        best = np.zeros(len(self.cands), dtype=bool)
        for t in range(len(scenario.supply.tiers)):
            idx = [j for j, c in enumerate(self.cands) if c.tier == t and feasible[j]]
            if idx:
                # least waste; ties: fewer stock-outs, then the lower levels
                c = self.cands
                j = min(idx, key=lambda j: (mean[j], p[j], c[j].floor_scale, c[j].forecast_days,
                                            c[j].trigger_cycles))
                best[j] = True
        return pl.DataFrame({
            "tier": [scenario.supply.tiers[c.tier].name for c in self.cands],
            "trigger_cycles": [c.trigger_cycles for c in self.cands],
            "max_cycles": [c.max_cycles for c in self.cands],
            "forecast_days": [c.forecast_days for c in self.cands],
            "floor_scale": [c.floor_scale for c in self.cands],
            "waste_mean": mean,
            "waste_se": np.sqrt(var / n),
            "stockout_probability": p,
            "stockout_probability_se": np.sqrt(p * (1 - p) / n),
            "manufacture_mean": self.released / n,
            "shipments_mean": self.shipments / n,
            "replicates": [self.n] * len(self.cands),
            "feasible": feasible,
            "best": best,
        })
