"""One patient's treatment course, cycle by cycle.

All randomness of a course is drawn up front (`draw_courses`, vectorised over the replicate's patients,
from the `treatment` stream), so the course a patient follows does not depend on the order in which
events happen in the supply simulation: two supply policies see the same patients with the same
toxicities (common random numbers). Only the calendar moves: a cycle delayed by a stock-out starts the
next cycle later, and progression, death and withdrawal are calendar times from the first dose.

Cycle k (0-based) at its visit day t:
  1. k > 0: with probability `delay_per_cycle` the cycle starts `delay_days` late (toxicity recovery).
  2. The course ends if t >= progression, death, withdrawal or the simulation horizon (the earliest of
     those that have passed is the reason).
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
        passed = [(when, r, reason) for r, (when, reason) in enumerate(ends) if day >= when]
        if passed:  # the earliest of the ends since the last visit (ties: in the order listed)
            when, _, reason = min(passed)
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


@dataclass(frozen=True)
class CoursePlan:
    """Every patient's course cycle by cycle, computed in bulk (numpy) before the supply simulation.

    What a cycle needs depends only on the cycle's index (the toxicity draws are per cycle), except two
    calendar rules: the course ends at progression, death, withdrawal or the horizon, and penpulimab
    stops at `cap_months` from the first dose. Both cut a *prefix* of the planned cycles (penpulimab's
    columns only, for the cap), so the plan is made as if neither applied and the supply simulation
    applies them on the actual visit day: a cycle delayed by a stock-out moves the calendar, never the
    plan.

    Only the cycles a course can reach on the nominal calendar are planned (a stock-out only makes visits
    later, so never more): patient i's cycles are the rows `offset[i]` .. `offset[i] + cycles[i] - 1`
    ("cells") of the per-cycle arrays; P presentations in the supply config's order. Dispensing follows
    `carry_over` (the patient keeps opened packs; units of a presentation the cycle does not use are
    returned) or not (every visit returns the whole balance): `packs` is what the visit dispenses,
    `returned` the units returned at the visit, `balance` the units the patient holds after it.
    """

    offset: np.ndarray  # n: first cell of each patient
    cycles: np.ndarray  # n: cells of each patient, an upper bound on the cycles given
    need: np.ndarray  # cells x P units the cycle needs
    taken: np.ndarray  # cells x P units taken (need minus interrupted days)
    packs: np.ndarray  # cells x P
    returned: np.ndarray  # cells x P
    balance: np.ndarray  # cells x P
    gap_days: np.ndarray  # cells: days from this visit to the next (cycle length + toxicity delay)
    other_on: np.ndarray  # cells: anlotinib or capecitabine given (penpulimab aside)
    rate_changed: np.ndarray  # cells: the visit needs other units than the one before (true at k = 0)
    toxicity_end: np.ndarray  # n: first cycle with no drug left (number of drawn cycles if none)
    end_offset_days: np.ndarray  # n: progression, death or withdrawal, days from the first dose
    end_reason: np.ndarray  # n: index into END_REASONS of that end
    pen_cap_offset_days: np.ndarray  # n: penpulimab stops this long after the first dose (inf: continues)
    pen_columns: np.ndarray  # P bools: the presentations of penpulimab


def _levels(u_stop: np.ndarray, u_red: np.ndarray, p_stop: float, p_red: float, n_levels: int):
    """(dose level, still on the drug) per cycle from per-cycle stop/reduce uniforms (cycle 0: none).

    The drug stops at the first stop draw, or when a reduction passes the last level; a stop draw wins
    over a reduction in the same cycle (PatientCourse.visit, step 3). Levels keep counting after the
    drug stopped, which is harmless: a stopped drug is never given again.
    """
    stop = u_stop < p_stop
    red = ~stop & (u_red < p_red)
    stop[:, 0] = red[:, 0] = False
    level = np.cumsum(red, axis=1)
    on = (np.cumsum(stop, axis=1) == 0) & (level < n_levels)
    return level, on


def _dispensing(need: np.ndarray, taken: np.ndarray, first: np.ndarray, upp: np.ndarray, carry_over: bool):
    """(packs, returned units, balance units) per cell (cells x P; `first`: a patient's first cycle).

    return_each_visit: each visit returns the whole balance and dispenses ceil(need / units per pack).
    carry_over: a presentation is used over runs of consecutive cycles; a cycle without it (or a new
    patient) returns the balance and starts a new run. Within a run, with C_k the units taken before
    visit k, the units dispensed up to visit k are D_k = max_{j<=k} upp * ceil((need_j + C_j) / upp):
    whole packs are given only when what the patient holds falls short of the cycle (by induction on k,
    D_{k-1} being a multiple of upp). An offset per run keeps the running maximum from crossing runs.
    """
    used = need > 0
    fresh = first[:, None]
    if not carry_over:
        packs = -(-need // upp)
        balance = packs * upp - taken
    else:
        tk = taken * used
        cum = np.cumsum(tk, axis=0)
        start = ~used | fresh
        run = np.cumsum(start, axis=0)
        base = np.maximum.accumulate((cum - tk) * start, axis=0)  # units taken before the run
        before = cum - tk - base  # C_k
        x = -(-(need + before) // upp) * upp * used
        big = int(x.max(initial=0)) + 1
        dispensed = np.maximum.accumulate(x + run * big, axis=0) - run * big  # D_k
        prev = np.zeros_like(dispensed)
        prev[1:] = dispensed[:-1] * (run[1:] == run[:-1])
        packs = (dispensed - prev) // upp
        balance = (dispensed - before - tk) * used
    returned = np.zeros_like(balance)
    returned[1:] = balance[:-1]
    returned *= ~fresh
    if carry_over:
        returned *= ~used
    return packs, returned, balance


def plan_courses(regimen: RegimenConfig, draws: CourseDraws, cap_tablets: np.ndarray,
                 keys: list[tuple[str, float]], units_per_pack: np.ndarray, carry_over: bool) -> CoursePlan:
    """The plan of n courses (see `CoursePlan`), equal cycle by cycle to `PatientCourse.visit`.

    cap_tablets: n x dose levels x strengths, capecitabine tablets per administration (dosing.py).
    keys: (drug, strength_mg) of each presentation; a dose the regimen can give must have one.
    """
    tox = regimen.toxicity
    u = draws.uniforms
    n, K = u.shape[:2]
    P = len(keys)
    col = {k: p for p, k in enumerate(keys)}

    def column(drug: str, strength: float) -> int:
        if (drug, float(strength)) not in col:
            raise ValueError(f"no presentation of {drug} {strength:g} mg in supply.presentations, "
                             "but the regimen can give that dose")
        return col[(drug, float(strength))]

    anl_level, anl_on = _levels(u[..., _ANL_STOP], u[..., _ANL_RED], tox.anlotinib.stop_per_cycle,
                                tox.anlotinib.reduce_per_cycle, len(regimen.anlotinib.dose_levels_mg))
    cap_level, cap_on = _levels(u[..., _CAP_STOP], u[..., _CAP_RED], tox.capecitabine.stop_per_cycle,
                                tox.capecitabine.reduce_per_cycle, len(regimen.capecitabine.dose_fractions))
    pen_stop = u[..., _PEN_STOP] < tox.penpulimab.stop_per_cycle
    pen_stop[:, 0] = False
    pen_on = np.cumsum(pen_stop, axis=1) == 0
    in_induction = np.arange(K)[None, :] < draws.induction_cycles[:, None]
    give_anl = anl_on & (in_induction | (not regimen.anlotinib.induction_only))
    other_on = give_anl | cap_on
    nothing = ~(other_on | pen_on)
    toxicity_end = np.where(nothing.any(axis=1), nothing.argmax(axis=1), K)

    # the cycles a course can reach on the nominal calendar
    delay = np.where(u[..., _DELAY] < tox.delay_per_cycle, draws.delay_days, 0)
    gap = np.full((n, K), regimen.cycle_days, dtype=np.int64)
    gap[:, :-1] += delay[:, 1:]  # the delay drawn for cycle k+1 comes after visit k
    end = np.minimum(np.minimum(draws.progression_days, draws.death_days), draws.withdrawal_days)
    reason = np.select([end == draws.progression_days, end == draws.death_days], [0, 1], 2)
    start = np.zeros((n, K))
    np.cumsum(gap[:, :-1], axis=1, out=start[:, 1:])
    cycles = np.minimum((start < end[:, None]).sum(axis=1), toxicity_end)
    offset = np.zeros(n, dtype=np.int64)
    np.cumsum(cycles[:-1], out=offset[1:])
    pi = np.repeat(np.arange(n), cycles)  # the cells: patient and cycle
    ck = np.arange(pi.size) - offset[pi]
    N = pi.size

    need = np.zeros((N, P), dtype=np.int64)
    taken = np.zeros((N, P), dtype=np.int64)
    anl_days = anlotinib_days(regimen)
    anl = give_anl[pi, ck]
    anl_missed = np.where(u[pi, ck, _ANL_INT] < tox.anlotinib.interrupt_per_cycle,
                          np.minimum(draws.anlotinib_missed_days[pi, ck], anl_days), 0)
    lv = anl_level[pi, ck]
    for level, mg in enumerate(regimen.anlotinib.dose_levels_mg):
        at = anl & (lv == level)
        if at.any():
            p = column("anlotinib", mg)
            need[at, p] = anl_days
            taken[at, p] = anl_days - anl_missed[at]
    p_pen = column("penpulimab", regimen.penpulimab.vial_mg)
    need[:, p_pen] = taken[:, p_pen] = pen_on[pi, ck] * penpulimab_vials(regimen)
    c = regimen.capecitabine
    cap_days = c.last_day - c.first_day + 1
    missed_frac = np.where(u[pi, ck, _CAP_INT] < tox.capecitabine.interrupt_per_cycle,
                           np.minimum(draws.capecitabine_missed_days[pi, ck], cap_days), 0) / cap_days
    adm = capecitabine_administrations(regimen)
    level = np.minimum(cap_level[pi, ck], cap_tablets.shape[1] - 1)
    cap = cap_on[pi, ck]
    for j, strength in enumerate(c.tablet_strengths_mg):
        units = cap_tablets[pi, level, j] * adm * cap
        if units.any():
            p = column("capecitabine", strength)
            need[:, p] = units
            taken[:, p] = units - np.floor(units * missed_frac + 1e-9).astype(np.int64)

    first = ck == 0
    packs, returned, balance = _dispensing(need, taken, first, np.asarray(units_per_pack, dtype=np.int64),
                                           carry_over)
    cont = np.asarray(draws.continue_after_cap, dtype=bool)
    pen_cap = np.where(cont, np.inf, regimen.penpulimab.cap_months * DAYS_PER_MONTH)
    pen_cols = np.zeros(P, dtype=bool)
    pen_cols[p_pen] = True
    changed = first.copy()
    changed[1:] |= (need[1:] != need[:-1]).any(axis=1)
    return CoursePlan(offset, cycles, need, taken, packs, returned, balance, gap[pi, ck], other_on[pi, ck],
                      changed, toxicity_end, end, reason, pen_cap, pen_cols)
