"""Doses per administration and units per cycle, from a drug's dose rule and the patient's covariates.

The target dose of one administration is
  flat:   dose (mg)
  per_m2: dose x BSA (m2)
  per_kg: dose x weight (kg)
  auc:    dose x (GFR + 25), GFR = Cockcroft-Gault creatinine clearance capped at `gfr_cap_ml_min`
          (Calvert et al., J Clin Oncol 1989;7:1748; cap of 125 mL/min as in the FDA/CTEP carboplatin
          dosing advice of 2010),
times the dose fraction of the patient's reduction level, capped at `max_dose_mg`. It is then made of
whole units of the drug's strengths by its `rounding` rule:
  nearest:     among every amount of at most `max_units_per_administration` units, the nearest to the
               target; when two are equally near, the lower one (toxicity is dose-related, so a tie rounds
               down); an amount several combinations make is given with the fewest units.
  label_table: as `nearest`, but only amounts of units of the largest strength plus at most
               `max_small_units` units of the smaller ones (the capecitabine label's dose tables: 500 mg
               tablets plus at most two 150 mg tablets; BSA 1.70 m2 at 650 mg/m2 -> 1105 mg -> 1150 mg =
               2 x 500 + 1 x 150).
  cover:       the least amount >= the target (a vial dose is drawn from whole vials), fewest units.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from hn005_sim.treatment.config import Drug, RegimenConfig

COVARIATES = ("bsa_m2", "weight_kg", "crcl_ml_min")
_NEEDS = {"per_m2": "bsa_m2", "per_kg": "weight_kg", "auc": "crcl_ml_min"}


@lru_cache(maxsize=64)
def _unit_table(strengths: tuple[float, ...], max_units: int, max_small: int | None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Every amount (mg) reachable with <= max_units units, and its fewest-unit combination.

    Returns (amounts sorted ascending, combos[amount_index, strength_index]) in the order of `strengths`
    (ascending). With `max_small`, at most that many units of all but the largest strength. Enumerated by
    brute force: with 2 strengths and 12 units that is 91 combinations.
    """
    best: dict[float, tuple[int, ...]] = {}

    def walk(i: int, left: int, counts: tuple[int, ...]):
        if i == len(strengths):
            if max_small is not None and sum(counts[:-1]) > max_small:
                return
            amount = sum(c * s for c, s in zip(counts, strengths, strict=True))
            old = best.get(amount)
            # fewest units; then more of the larger strengths (counts listed in `strengths` order)
            key = (sum(counts), tuple(-c for c in counts[::-1]))
            if old is None or key < (sum(old), tuple(-c for c in old[::-1])):
                best[amount] = counts
            return
        for c in range(left + 1):
            walk(i + 1, left - c, (*counts, c))

    walk(0, max_units, ())
    amounts = np.array(sorted(a for a in best if a > 0), dtype=float)
    combos = np.array([best[a] for a in amounts.tolist()], dtype=np.int64)
    return amounts, combos


def target_mg(drug: Drug, covariates: dict[str, np.ndarray | float], fraction) -> np.ndarray:
    """The dose of one administration before rounding (mg); covariates and fraction broadcast."""
    fr = np.asarray(fraction, dtype=float)
    if drug.dose_rule == "flat":
        out = drug.dose * fr
    else:
        key = _NEEDS[drug.dose_rule]
        if key not in covariates:
            raise ValueError(f"dose rule {drug.dose_rule!r} needs the patient's {key}")
        x = np.asarray(covariates[key], dtype=float)
        if drug.dose_rule == "auc":
            gfr = x if drug.gfr_cap_ml_min is None else np.minimum(x, drug.gfr_cap_ml_min)
            out = drug.dose * (gfr + 25.0) * fr
        else:
            out = drug.dose * x * fr
    out = np.asarray(out, dtype=float)
    if drug.max_dose_mg is not None:
        out = np.minimum(out, drug.max_dose_mg)
    return out


def drug_units(drug: Drug, covariates: dict[str, np.ndarray | float], fraction
               ) -> tuple[np.ndarray, np.ndarray]:
    """One administration: (dose_mg, units[..., strength]) by the drug's rounding rule.

    Covariates and `fraction` broadcast; units are counted per strength in the order of
    `drug.strengths_mg`.
    """
    strengths = tuple(sorted(float(s) for s in drug.strengths_mg))
    max_small = drug.max_small_units if drug.rounding == "label_table" else None
    amounts, combos = _unit_table(strengths, drug.max_units_per_administration, max_small)
    target = target_mg(drug, covariates, fraction)
    # (searchsorted gives 0..len(amounts): clipped to the table by one minimum, the lower neighbour by
    # one maximum - the integers np.clip(..., 0, len(amounts) - 1) gives, at a quarter of its cost here)
    top = len(amounts) - 1
    if drug.rounding == "cover":
        idx = np.minimum(np.searchsorted(amounts, target - 1e-9, side="left"), top)
    else:
        hi = np.minimum(np.searchsorted(amounts, target, side="left"), top)
        lo = np.maximum(hi - 1, 0)
        # ties go down: take the lower amount unless the upper one is strictly nearer
        take_hi = np.abs(amounts[hi] - target) < np.abs(target - amounts[lo])
        take_hi |= hi == lo
        idx = np.where(take_hi, hi, lo)
    order = [strengths.index(float(s)) for s in drug.strengths_mg]
    return amounts[idx].astype(float), combos[idx][..., order]


def level_units(drug: Drug, covariates: dict[str, np.ndarray]) -> np.ndarray:
    """n x levels x strengths: units per administration of n patients at each reduction level."""
    n = len(next(iter(covariates.values()))) if covariates else 1
    cov = {k: np.asarray(v, dtype=float)[:, None] for k, v in covariates.items()}
    fr = np.asarray(drug.dose_fractions, dtype=float)[None, :]
    _, units = drug_units(drug, cov, fr)
    return np.broadcast_to(units, (n, len(drug.dose_fractions), len(drug.strengths_mg))).copy()


def full_cycle_units(covariates: dict[str, float], regimen: RegimenConfig, *, induction: bool
                     ) -> dict[tuple[str, float], int]:
    """Units one cycle needs at the starting dose: {(drug, strength_mg): capsules, vials or tablets}.

    Of a choice group, the alternative with the largest share stands for the group (the first on ties).
    """
    chosen = set()
    for names in regimen.choice_groups().values():
        chosen.add(max(names, key=lambda n: regimen.drugs[n].choice.share))
    out: dict[tuple[str, float], int] = {}
    for name, d in regimen.drugs.items():
        if d.choice is not None and name not in chosen:
            continue
        if (d.phase == "induction" and not induction) or (d.phase == "maintenance" and induction):
            continue
        _, units = drug_units(d, covariates, 1.0)
        for s, n in zip(d.strengths_mg, np.atleast_1d(units).ravel(), strict=True):
            if n:
                out[(name, float(s))] = int(n) * d.administrations
    return out
