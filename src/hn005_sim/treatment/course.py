"""One patient's treatment course, cycle by cycle.

All randomness of a course is drawn up front (`draw_courses`, vectorised over the replicate's patients,
from the `treatment` stream), so the course a patient follows does not depend on the order in which
events happen in the supply simulation: two supply policies see the same patients with the same
toxicities (common random numbers). Only the calendar moves: a cycle delayed by a stock-out starts the
next cycle later, and progression, death and withdrawal are calendar times from the first dose.

Cycle k (0-based) at its visit day t:
  1. k > 0: with probability `delay_per_cycle` the cycle starts `delay_days` late (toxicity recovery).
  2. The course ends if t >= progression, death, withdrawal or the simulation horizon.
  3. k > 0: each drug still given may be stopped for toxicity (`stop_per_cycle`) or reduced one dose
     level (`reduce_per_cycle`); a reduction below the last level stops the drug (anlotinib label:
     "if 8 mg is not tolerated, stop permanently").
  4. Anlotinib only in induction cycles (k < induction cycles); penpulimab stops at `cap_months` from
     the first dose unless the patient continues past the cap.
  5. No drug left: the course ends (intolerance). Otherwise oral drugs may be interrupted for some days
     (units dispensed but not taken come back as returns).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hn005_sim.treatment.config import RegimenConfig
from hn005_sim.treatment.dosing import (
    anlotinib_days,
    capecitabine_administrations,
    capecitabine_tablets,
    penpulimab_vials,
)

DAYS_PER_MONTH = 30.4375

# columns of the per-cycle uniform draws
_DELAY, _ANL_STOP, _ANL_RED, _ANL_INT, _PEN_STOP, _CAP_STOP, _CAP_RED, _CAP_INT = range(8)
END_REASONS = ("progression", "death", "withdrawal", "toxicity", "horizon")


@dataclass(frozen=True)
class CourseDraws:
    """Everything random about n patients' courses (arrays of length n, or n x max_cycles)."""

    induction_cycles: np.ndarray
    progression_days: np.ndarray
    death_days: np.ndarray
    withdrawal_days: np.ndarray
    continue_after_cap: np.ndarray
    uniforms: np.ndarray  # n x max_cycles x 8
    delay_days: np.ndarray  # n x max_cycles
    anlotinib_missed_days: np.ndarray  # n x max_cycles
    capecitabine_missed_days: np.ndarray  # n x max_cycles


def draw_courses(regimen: RegimenConfig, n: int, max_cycles: int, rng: np.random.Generator) -> CourseDraws:
    """Draw n courses in a fixed order from `rng` (the replicate's `treatment` stream)."""
    c, tox = regimen.course, regimen.toxicity
    induction = np.rint(c.induction_cycles.sample(rng, n)).astype(np.int64)
    prog = c.progression_months.sample(rng, n) * DAYS_PER_MONTH
    death = c.death_months.sample(rng, n) * DAYS_PER_MONTH
    withdraw = c.withdrawal_months.sample(rng, n) * DAYS_PER_MONTH
    cont = regimen.penpulimab.continue_after_cap.sample(rng, n) > 0.5
    shape = (n, max_cycles)
    u = rng.random((*shape, 8))
    delay = np.maximum(np.rint(tox.delay_days.sample(rng, n * max_cycles)), 0).astype(np.int64).reshape(shape)
    missed = np.maximum(np.rint(tox.interrupted_days.sample(rng, 2 * n * max_cycles)), 0).astype(np.int64)
    missed = missed.reshape((2, *shape))
    return CourseDraws(induction, prog, death, withdraw, cont, u, delay, missed[0], missed[1])


@dataclass(frozen=True)
class CycleOrder:
    """What one cycle needs: units per (drug, strength_mg), and how many of them are taken."""

    cycle: int
    day: float
    needed: dict[tuple[str, float], int]
    taken: dict[tuple[str, float], int]


class PatientCourse:
    """The state of one patient's course; `visit(day)` returns the cycle given that day, or None."""

    __slots__ = (
        "_anl_days",
        "_cap_adm",
        "_cap_cache",
        "_pen_vials",
        "anl_level",
        "bsa_m2",
        "cap_level",
        "cycle",
        "draws",
        "end_day",
        "end_reason",
        "first_day",
        "horizon_day",
        "i",
        "on_anl",
        "on_cap",
        "on_pen",
        "regimen",
    )

    def __init__(self, regimen: RegimenConfig, draws: CourseDraws, i: int, first_day: float, bsa_m2: float,
                 horizon_day: float):
        self.regimen = regimen
        self.draws = draws
        self.i = i
        self.first_day = float(first_day)
        self.bsa_m2 = float(bsa_m2)
        self.horizon_day = float(horizon_day)
        self.cycle = 0
        self.anl_level = 0
        self.cap_level = 0
        self.on_anl = True
        self.on_pen = True
        self.on_cap = True
        self.end_reason: str | None = None
        self.end_day: float | None = None
        self._anl_days = anlotinib_days(regimen)
        self._cap_adm = capecitabine_administrations(regimen)
        self._pen_vials = penpulimab_vials(regimen)
        self._cap_cache: dict[int, list[tuple[float, int]]] = {}

    def preset_capecitabine(self, tablets: np.ndarray) -> None:
        """Tablets per administration at each dose level (levels x strengths), computed in bulk."""
        strengths = self.regimen.capecitabine.tablet_strengths_mg
        for level, row in enumerate(tablets):
            self._cap_cache[level] = [(float(s), int(n) * self._cap_adm)
                                      for s, n in zip(strengths, row, strict=True) if n]

    def delay_before(self) -> int:
        """Days the next cycle starts late for toxicity (0 for the first cycle or no delay)."""
        k = self.cycle
        if k == 0 or k >= self.draws.delay_days.shape[1]:
            return 0
        if self.draws.uniforms[self.i, k, _DELAY] < self.regimen.toxicity.delay_per_cycle:
            return int(self.draws.delay_days[self.i, k])
        return 0

    def _end(self, day: float, reason: str) -> None:
        self.end_reason, self.end_day = reason, day

    def _cap_units(self) -> list[tuple[float, int]]:
        got = self._cap_cache.get(self.cap_level)
        if got is None:
            fr = self.regimen.capecitabine.dose_fractions[self.cap_level]
            _, tabs = capecitabine_tablets(self.bsa_m2, fr, self.regimen)
            got = [(float(s), int(n) * self._cap_adm)
                   for s, n in zip(self.regimen.capecitabine.tablet_strengths_mg, tabs, strict=True) if n]
            self._cap_cache[self.cap_level] = got
        return got

    def visit(self, day: float) -> CycleOrder | None:
        """The cycle that starts on `day` (days from trial start), or None when the course has ended."""
        if self.end_reason is not None:
            return None
        d, i, k, reg = self.draws, self.i, self.cycle, self.regimen
        tox = reg.toxicity
        ends = (
            (d.progression_days[i] + self.first_day, "progression"),
            (d.death_days[i] + self.first_day, "death"),
            (d.withdrawal_days[i] + self.first_day, "withdrawal"),
            (self.horizon_day, "horizon"),
        )
        for when, reason in ends:
            if day >= when:
                self._end(when, reason)
                return None
        if k >= d.uniforms.shape[1]:
            self._end(day, "horizon")
            return None
        u = d.uniforms[i, k]
        if k > 0:
            if self.on_anl:
                if u[_ANL_STOP] < tox.anlotinib.stop_per_cycle:
                    self.on_anl = False
                elif u[_ANL_RED] < tox.anlotinib.reduce_per_cycle:
                    self.anl_level += 1
                    self.on_anl = self.anl_level < len(reg.anlotinib.dose_levels_mg)
            if self.on_pen and u[_PEN_STOP] < tox.penpulimab.stop_per_cycle:
                self.on_pen = False
            if self.on_cap:
                if u[_CAP_STOP] < tox.capecitabine.stop_per_cycle:
                    self.on_cap = False
                elif u[_CAP_RED] < tox.capecitabine.reduce_per_cycle:
                    self.cap_level += 1
                    self.on_cap = self.cap_level < len(reg.capecitabine.dose_fractions)
        in_induction = k < d.induction_cycles[i]
        give_anl = self.on_anl and (in_induction or not reg.anlotinib.induction_only)
        if self.on_pen and day - self.first_day >= reg.penpulimab.cap_months * DAYS_PER_MONTH \
                and not d.continue_after_cap[i]:
            self.on_pen = False
        if self.on_anl and reg.anlotinib.induction_only and not in_induction:
            self.on_anl = False
        if not (give_anl or self.on_pen or self.on_cap):
            self._end(day, "toxicity")
            return None
        needed: dict[tuple[str, float], int] = {}
        taken: dict[tuple[str, float], int] = {}
        if give_anl:
            key = ("anlotinib", float(reg.anlotinib.dose_levels_mg[self.anl_level]))
            missed = 0
            if u[_ANL_INT] < tox.anlotinib.interrupt_per_cycle:
                missed = min(int(d.anlotinib_missed_days[i, k]), self._anl_days)
            needed[key] = self._anl_days
            taken[key] = self._anl_days - missed
        if self.on_pen:
            key = ("penpulimab", float(reg.penpulimab.vial_mg))
            needed[key] = taken[key] = self._pen_vials
        if self.on_cap:
            missed_frac = 0.0
            if u[_CAP_INT] < tox.capecitabine.interrupt_per_cycle:
                c = reg.capecitabine
                days = c.last_day - c.first_day + 1
                missed_frac = min(int(d.capecitabine_missed_days[i, k]), days) / days
            for s, n in self._cap_units():
                key = ("capecitabine", s)
                needed[key] = n
                taken[key] = n - math.floor(n * missed_frac + 1e-9)
        self.cycle += 1
        return CycleOrder(k, day, needed, taken)
