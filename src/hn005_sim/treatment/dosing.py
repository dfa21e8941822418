"""Doses per administration and units per cycle, from the regimen and the patient's BSA.

Capecitabine rounding rule (`nearest_ties_down_fewest`): the target dose per administration is
dose_mg_m2 x BSA x dose fraction (650 mg/m2 twice daily, protocol Arm 1; reductions to 75% then 50%,
capecitabine SmPC). Among every amount made of whole tablets of the available strengths (150 and 500 mg,
at most `max_tablets_per_administration` tablets) the amount nearest the target is given; when two amounts
are equally near, the lower one (toxicity is dose-related, so a tie rounds down); an amount that several
combinations make is given with the fewest tablets. Example: BSA 1.70 m2 -> 1105 mg -> 1100 mg = 1 x 500
+ 4 x 150.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from hn005_sim.treatment.config import RegimenConfig


@lru_cache(maxsize=32)
def _tablet_table(strengths: tuple[int, ...], max_tablets: int) -> tuple[np.ndarray, np.ndarray]:
    """Every amount (mg) reachable with <= max_tablets tablets, and its fewest-tablet combination.

    Returns (amounts sorted ascending, combos[amount_index, strength_index]) in the order of `strengths`.
    Enumerated by brute force: with 2 strengths and 12 tablets that is 91 combinations.
    """
    best: dict[int, tuple[int, ...]] = {}

    def walk(i: int, left: int, counts: tuple[int, ...]):
        if i == len(strengths):
            amount = sum(c * s for c, s in zip(counts, strengths, strict=True))
            old = best.get(amount)
            # fewest tablets; then more of the larger strengths (counts listed in `strengths` order)
            key = (sum(counts), tuple(-c for c in counts[::-1]))
            if old is None or key < (sum(old), tuple(-c for c in old[::-1])):
                best[amount] = counts
            return
        for c in range(left + 1):
            walk(i + 1, left - c, (*counts, c))

    walk(0, max_tablets, ())
    amounts = np.array(sorted(a for a in best if a > 0), dtype=np.int64)
    combos = np.array([best[int(a)] for a in amounts], dtype=np.int64)
    return amounts, combos


def capecitabine_tablets(
    bsa_m2: np.ndarray | float, fraction: np.ndarray | float, regimen: RegimenConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Capecitabine per administration: (dose_mg, tablets[..., strength]) by the documented rule.

    `bsa_m2` and `fraction` broadcast; tablets are counted per strength in the order of
    `regimen.capecitabine.tablet_strengths_mg`.
    """
    cap = regimen.capecitabine
    strengths = tuple(sorted(cap.tablet_strengths_mg))
    amounts, combos = _tablet_table(strengths, cap.max_tablets_per_administration)
    target = np.asarray(cap.dose_mg_m2 * np.asarray(bsa_m2, dtype=float) * np.asarray(fraction, dtype=float))
    hi = np.clip(np.searchsorted(amounts, target, side="left"), 0, len(amounts) - 1)
    lo = np.clip(hi - 1, 0, len(amounts) - 1)
    # ties go down: take the lower amount unless the upper one is strictly nearer
    take_hi = np.abs(amounts[hi] - target) < np.abs(target - amounts[lo])
    take_hi |= hi == lo
    idx = np.where(take_hi, hi, lo)
    order = [strengths.index(s) for s in cap.tablet_strengths_mg]
    return amounts[idx].astype(float), combos[idx][..., order]


def capecitabine_dose_mg(bsa_m2, fraction, regimen: RegimenConfig) -> np.ndarray:
    """Dose per administration (mg) after rounding to whole tablets."""
    return capecitabine_tablets(bsa_m2, fraction, regimen)[0]


def anlotinib_days(regimen: RegimenConfig) -> int:
    a = regimen.anlotinib
    return a.last_day - a.first_day + 1


def capecitabine_administrations(regimen: RegimenConfig) -> int:
    c = regimen.capecitabine
    return (c.last_day - c.first_day + 1) * c.administrations_per_day


def penpulimab_vials(regimen: RegimenConfig) -> int:
    p = regimen.penpulimab
    return math.ceil(p.dose_mg / p.vial_mg - 1e-9)


def full_cycle_units(bsa_m2: float, regimen: RegimenConfig, *, induction: bool
                     ) -> dict[tuple[str, float], int]:
    """Units one cycle needs at the starting dose: {(drug, strength_mg): capsules, vials or tablets}."""
    out: dict[tuple[str, float], int] = {}
    if induction or not regimen.anlotinib.induction_only:
        out[("anlotinib", float(regimen.anlotinib.dose_levels_mg[0]))] = anlotinib_days(regimen)
    out[("penpulimab", float(regimen.penpulimab.vial_mg))] = penpulimab_vials(regimen)
    _, tabs = capecitabine_tablets(bsa_m2, 1.0, regimen)
    for s, n in zip(regimen.capecitabine.tablet_strengths_mg, np.atleast_1d(tabs).ravel(), strict=True):
        if n:
            out[("capecitabine", float(s))] = int(n) * capecitabine_administrations(regimen)
    return out
