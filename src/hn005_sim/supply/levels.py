"""Site stock levels that follow each site's own predicted demand.

A tier's levels (`initial_cycles`, `trigger_cycles`, `max_cycles` of a reference patient, and the
presentations' `site_min_packs` floors) are the levels of the busiest site of the scenario. With
`demand_scaled` every other site's levels are those times its *demand weight*: its region's configured
referral rate (`referral_rate_mean`, the planner's prediction, not the rate a replicate draws) over the
busiest region's. Every site shares the funnel, so expected enrolments, and hence expected dispensing,
are proportional to the referral rate. A weight-scaled level never falls below `min_patient_cycles` of
*one patient's cycle* of the presentation: the most packs one visit dispenses (`patient_cycle_packs`),
so a small site can always serve the next visit of any patient, including a reduced dose or a
large patient's BSA-based dose.

Nothing here names a drug: presentations, dose levels and packs come from the configs.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from hn005_sim.supply.config import SupplyConfig, Tier
from hn005_sim.treatment.config import RegimenConfig

SYNTHETIC_PATIENTS = 400
SYNTHETIC_CYCLES = 40
SYNTHETIC_SEED = 20230901  # a fixed stream of its own: no replicate's random numbers are used
BSA_SPREAD = 0.2  # synthetic patients' BSA: reference x 0.8 ... 1.2 (assumption: about +-2 sd of adult BSA)


def demand_weights(scenario) -> dict[str, float]:
    """{region: referral rate / the busiest region's} from the scenario's recruitment regions."""
    rec = getattr(scenario, "recruitment", None)
    if rec is None or not rec.regions:
        return {}
    rates = {r.name: float(r.referral_rate_mean.value) for r in rec.regions}
    top = max(rates.values())
    return {name: rate / top for name, rate in rates.items()}


def _patient_cycle_packs(regimen: RegimenConfig, supply: SupplyConfig) -> np.ndarray:
    from hn005_sim.treatment.course import draw_courses, patient_units, plan_courses

    pres = supply.presentations
    n = SYNTHETIC_PATIENTS
    draws = draw_courses(regimen, n, SYNTHETIC_CYCLES, np.random.default_rng(SYNTHETIC_SEED))
    # every dosing covariate of the reference patient (BSA, and weight / CrCl where configured) spread
    # x 0.8 ... 1.2 together, so per-m2, per-kg and AUC doses all reach their large-patient tablets
    spread = np.linspace(1 - BSA_SPREAD, 1 + BSA_SPREAD, n)
    covariates = {k: v * spread for k, v in supply.reference_covariates().items()}
    upp = np.array([p.units_per_pack for p in pres], dtype=np.int64)
    plan = plan_courses(regimen, draws, patient_units(regimen, covariates),
                        [(p.drug, float(p.strength_mg)) for p in pres], upp,
                        supply.partial_packs == "carry_over")
    return plan.packs.max(axis=0, initial=0).astype(np.int64)


@lru_cache(maxsize=16)
def _cached(regimen_json: str, supply_json: str) -> tuple[int, ...]:
    regimen = RegimenConfig.model_validate_json(regimen_json)
    supply = SupplyConfig.model_validate_json(supply_json)
    return tuple(int(x) for x in _patient_cycle_packs(regimen, supply))


# the same, found by the config objects before their JSON (dumping them cost more than the rest of a
# replicate's set-up): a run's replicates share the objects
_BY_OBJECT: dict[tuple[int, int], tuple[RegimenConfig, SupplyConfig, tuple[int, ...]]] = {}


def patient_cycle_packs(regimen: RegimenConfig, supply: SupplyConfig) -> np.ndarray:
    """Packs per presentation of one patient's cycle: the most packs one visit dispenses, over the
    courses of SYNTHETIC_PATIENTS patients of BSA reference x 0.8 ... 1.2 planned from a fixed stream
    (every dose level the regimen reaches: a reduced strength gets the packs of its first reduced
    visit; a large patient's BSA-based dose needs more tablets)."""
    key = (id(regimen), id(supply))  # (frozen configs, held while cached: ids not reused)
    got = _BY_OBJECT.get(key)
    if got is None or got[0] is not regimen or got[1] is not supply:
        if len(_BY_OBJECT) >= 16:
            _BY_OBJECT.clear()
        packs = _cached(regimen.model_dump_json(), supply.model_dump_json())
        got = _BY_OBJECT[key] = (regimen, supply, packs)
    return np.array(got[2], dtype=np.int64)


def site_levels(per_cycle: np.ndarray, floors: np.ndarray, one_patient: np.ndarray, tier: Tier,
                weight: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(initial, trigger, max) packs per presentation at a site of `tier` with demand `weight`.

    per_cycle: packs of one reference patient-cycle (fractional); floors: site_min_packs.
    Weight 1 (the busiest site, or `demand_scaled = false`) gives the tier's own levels.
    """
    w = weight if tier.demand_scaled else 1.0
    floor = np.ceil(w * tier.floor_scale * np.asarray(floors, dtype=float) - 1e-9).astype(np.int64)
    least = np.ceil(tier.min_patient_cycles * np.asarray(one_patient, dtype=float) - 1e-9).astype(np.int64)
    least = np.maximum(floor, least)

    def packs(cycles: float) -> np.ndarray:
        return np.maximum(np.ceil(w * cycles * per_cycle - 1e-9).astype(np.int64), least)

    trig = packs(tier.trigger_cycles)
    # a presentation held at its floor gets half a floor above the trigger, so it is not shipped a pack or
    # two after every dispensing (assumption: usual min/max spread of IRT kit levels)
    top = np.maximum(packs(tier.max_cycles), trig + (floor + 1) // 2)
    return packs(tier.initial_cycles), trig, top


def weight_of(weights: dict[str, float] | None, region: str) -> float:
    if not weights:
        return 1.0
    w = weights.get(region)
    return 1.0 if w is None or not math.isfinite(w) else float(w)
