"""One patient's treatment course, cycle by cycle, for any regimen written as data (treatment/config.py).

All randomness of a course is drawn up front (`draw_courses`, vectorised over the replicate's patients,
from the `treatment` stream), so the course a patient follows does not depend on the order in which
events happen in the supply simulation: two supply policies see the same patients with the same
toxicities (common random numbers). Only the calendar moves: a cycle delayed by a stock-out starts the
next cycle later, and progression, death and withdrawal are calendar times from the first dose.

Cycle k (0-based) at its visit day t:
  1. k > 0: with probability `delay_per_cycle` the cycle starts `delay_days` late (toxicity recovery).
  2. The course ends if t >= progression, death, withdrawal or the simulation horizon (the earliest of
     those that have passed is the reason).
  3. k > 0: each drug still given (in the regimen's order) may be stopped for toxicity
     (`stop_per_cycle`) or reduced one dose level (`reduce_per_cycle`); a reduction below the last level
     stops the drug (e.g. anlotinib label: "if 8 mg is not tolerated, stop permanently").
  4. A drug of the induction phase only in induction cycles (k < induction cycles), of the maintenance
     phase only after them; the capped drug stops at `cap_months` from the first dose unless the
     patient continues past the cap. Of a choice group, only the patient's alternative is ever given.
  5. No drug left: the course ends (intolerance). Otherwise oral drugs may be interrupted for some days
     (units dispensed but not taken come back as returns).

Random draws, in this order: induction cycles, progression, death, withdrawal (n each); continuation past
the cap (n, when a drug has a cap); per-cycle uniforms (n x cycles x columns: the delay, then per drug
its stop, its reduction when it has more than one dose level, its interruption when oral); delay days;
interrupted days (one n x cycles block per oral drug); one uniform per patient per choice group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hn005_sim.scenario.dists import Categorical
from hn005_sim.treatment.config import RegimenConfig
from hn005_sim.treatment.dosing import drug_units

DAYS_PER_MONTH = 30.4375
END_REASONS = ("progression", "death", "withdrawal", "toxicity", "horizon")


@dataclass(frozen=True)
class Columns:
    """Where each drug's per-cycle uniforms are (column 0 is the cycle delay); None: not drawn."""

    stop: dict[str, int]
    reduce: dict[str, int | None]
    interrupt: dict[str, int | None]
    width: int


_COLUMNS: dict[int, tuple[RegimenConfig, Columns]] = {}


def columns(regimen: RegimenConfig) -> Columns:
    """The regimen's uniform columns, kept per regimen object (configs are frozen; the object is held, so
    its id is not reused): a run's replicates share them (read only)."""
    got = _COLUMNS.get(id(regimen))
    if got is None or got[0] is not regimen:
        if len(_COLUMNS) >= 16:
            _COLUMNS.clear()
        got = _COLUMNS[id(regimen)] = (regimen, _columns(regimen))
    return got[1]


def _columns(regimen: RegimenConfig) -> Columns:
    stop: dict[str, int] = {}
    red: dict[str, int | None] = {}
    intr: dict[str, int | None] = {}
    c = 1
    for name, d in regimen.drugs.items():
        stop[name], c = c, c + 1
        red[name] = None
        if len(d.dose_fractions) > 1:
            red[name], c = c, c + 1
        intr[name] = None
        if d.oral:
            intr[name], c = c, c + 1
    return Columns(stop, red, intr, c)


@dataclass(frozen=True)
class CourseDraws:
    """Everything random about n patients' courses (arrays of length n, or n x max_cycles)."""

    induction_cycles: np.ndarray
    progression_days: np.ndarray
    death_days: np.ndarray
    withdrawal_days: np.ndarray
    continue_after_cap: np.ndarray
    uniforms: np.ndarray  # n x max_cycles x columns
    delay_days: np.ndarray  # n x max_cycles
    missed_days: dict[str, np.ndarray]  # oral drug -> n x max_cycles
    given: dict[str, np.ndarray]  # drug of a choice group -> n bools: the patient's alternative


def draw_courses(regimen: RegimenConfig, n: int, max_cycles: int, rng: np.random.Generator) -> CourseDraws:
    """Draw n courses in a fixed order from `rng` (the replicate's `treatment` stream)."""
    c, tox = regimen.course, regimen.toxicity
    induction = np.rint(c.induction_cycles.sample(rng, n)).astype(np.int64)
    prog = c.progression_months.sample(rng, n) * DAYS_PER_MONTH
    death = c.death_months.sample(rng, n) * DAYS_PER_MONTH
    withdraw = c.withdrawal_months.sample(rng, n) * DAYS_PER_MONTH
    capped = regimen.capped_drug
    if capped is not None:
        cont = regimen.drugs[capped].continue_after_cap.sample(rng, n) > 0.5
    else:
        cont = np.zeros(n, dtype=bool)
    shape = (n, max_cycles)
    u = rng.random((*shape, columns(regimen).width))
    delay = _whole_days(tox.delay_days, rng, n * max_cycles).reshape(shape)
    oral = [name for name, d in regimen.drugs.items() if d.oral]
    missed = _whole_days(tox.interrupted_days, rng, len(oral) * n * max_cycles).reshape((len(oral), *shape))
    given: dict[str, np.ndarray] = {}
    for names in regimen.choice_groups().values():
        x = rng.random(n)
        cum = np.cumsum([regimen.drugs[m].choice.share for m in names])
        pick = np.minimum(np.searchsorted(cum, x * cum[-1], side="right"), len(names) - 1)
        for j, m in enumerate(names):
            given[m] = pick == j
    return CourseDraws(induction, prog, death, withdraw, cont, u, delay,
                       {name: missed[j] for j, name in enumerate(oral)}, given)


def _whole_days(dist, rng: np.random.Generator, size: int) -> np.ndarray:
    """`size` draws of `dist` as whole days, at least 0: np.maximum(np.rint(dist.sample(rng, size)), 0)
    as int64, from the same random numbers.

    A numeric categorical (the cycle delays: a few values) draws as `Categorical.sample` does (one
    uniform per draw, times the sum of the probabilities), counts the cumulative probabilities at or
    below it (what `np.searchsorted(..., side="right")` returns: they are sorted) and picks the value,
    rounded once beforehand (rounding commutes with picking): ~3x faster on a replicate's n x K draws.
    """
    if not isinstance(dist, Categorical) or isinstance(dist.values[0], str) or len(dist.values) > 4:
        return np.maximum(np.rint(dist.sample(rng, size)), 0).astype(np.int64)
    x = rng.random(size) * sum(dist.probs)
    idx = np.zeros(size, dtype=np.intp)
    for c in np.cumsum(dist.probs).tolist():
        idx += x >= c
    days = np.maximum(np.rint(np.asarray(dist.values, dtype=float)), 0).astype(np.int64)
    return np.append(days, days[-1])[idx]  # (past the last cumulative probability: the last value)


_FLAT_UNITS: dict[int, tuple[object, np.ndarray]] = {}


def _flat_units(d) -> np.ndarray:
    """1 x levels x strengths units of a flat-dose drug (no covariate enters its dose), kept per drug
    object (frozen, held while kept): a run's replicates share them (read only)."""
    got = _FLAT_UNITS.get(id(d))
    if got is None or got[0] is not d:
        if len(_FLAT_UNITS) >= 64:
            _FLAT_UNITS.clear()
        _, units = drug_units(d, {}, np.asarray(d.dose_fractions, dtype=float)[None, :])
        units.setflags(write=False)
        got = _FLAT_UNITS[id(d)] = (d, units)
    return got[1]


def patient_units(regimen: RegimenConfig, covariates: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """drug -> n x levels x strengths: units per administration of each patient at each dose level."""
    out = {}
    cov = {k: np.asarray(v, dtype=float)[:, None] for k, v in covariates.items()}
    n = len(next(iter(covariates.values()))) if covariates else 0
    for name, d in regimen.drugs.items():
        if d.dose_rule == "flat":
            units = _flat_units(d)
        else:
            _, units = drug_units(d, cov, np.asarray(d.dose_fractions, dtype=float)[None, :])
        out[name] = np.broadcast_to(units, (n, len(d.dose_fractions), len(d.strengths_mg)))
    return out


@dataclass(frozen=True)
class CycleOrder:
    """What one cycle needs: units per (drug, strength_mg), and how many of them are taken."""

    cycle: int
    day: float
    needed: dict[tuple[str, float], int]
    taken: dict[tuple[str, float], int]


class PatientCourse:
    """The state of one patient's course; `visit(day)` returns the cycle given that day, or None.

    The cycle-by-cycle reference the bulk plan (`plan_courses`) is tested against.
    """

    __slots__ = ("_units", "cols", "cycle", "draws", "end_day", "end_reason", "first_day", "horizon_day",
                 "i", "level", "on", "regimen")

    def __init__(self, regimen: RegimenConfig, draws: CourseDraws, i: int, first_day: float,
                 covariates: dict[str, float], horizon_day: float):
        self.regimen = regimen
        self.draws = draws
        self.i = i
        self.first_day = float(first_day)
        self.horizon_day = float(horizon_day)
        self.cycle = 0
        self.cols = columns(regimen)
        self.level = dict.fromkeys(regimen.drugs, 0)
        self.on = {name: bool(draws.given[name][i]) if name in draws.given else True
                   for name in regimen.drugs}
        self.end_reason: str | None = None
        self.end_day: float | None = None
        self._units: dict[str, list[list[tuple[float, int]]]] = {}
        for name, d in regimen.drugs.items():
            rows = []
            for fr in d.dose_fractions:
                _, units = drug_units(d, covariates, fr)
                rows.append([(float(s), int(n) * d.administrations)
                             for s, n in zip(d.strengths_mg, np.atleast_1d(units).ravel(), strict=True) if n])
            self._units[name] = rows

    def delay_before(self) -> int:
        """Days the next cycle starts late for toxicity (0 for the first cycle or no delay)."""
        k = self.cycle
        if k == 0 or k >= self.draws.delay_days.shape[1]:
            return 0
        if self.draws.uniforms[self.i, k, 0] < self.regimen.toxicity.delay_per_cycle:
            return int(self.draws.delay_days[self.i, k])
        return 0

    def _end(self, day: float, reason: str) -> None:
        self.end_reason, self.end_day = reason, day

    def visit(self, day: float) -> CycleOrder | None:
        """The cycle that starts on `day` (days from trial start), or None when the course has ended."""
        if self.end_reason is not None:
            return None
        d, i, k, reg, cols = self.draws, self.i, self.cycle, self.regimen, self.cols
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
            for name, drug in reg.drugs.items():
                if not self.on[name]:
                    continue
                red = cols.reduce[name]
                if u[cols.stop[name]] < drug.toxicity.stop_per_cycle:
                    self.on[name] = False
                elif red is not None and u[red] < drug.toxicity.reduce_per_cycle:
                    self.level[name] += 1
                    self.on[name] = self.level[name] < len(drug.dose_fractions)
        in_induction = k < d.induction_cycles[i]
        give = {}
        for name, drug in reg.drugs.items():
            if self.on[name] and drug.cap_months is not None and not d.continue_after_cap[i] \
                    and day - self.first_day >= drug.cap_months * DAYS_PER_MONTH:
                self.on[name] = False
            phase_ok = {"all": True, "induction": in_induction, "maintenance": not in_induction}[drug.phase]
            give[name] = self.on[name] and phase_ok
            if drug.phase == "induction" and not in_induction:
                self.on[name] = False
        if not any(give.values()):
            self._end(day, "toxicity")
            return None
        needed: dict[tuple[str, float], int] = {}
        taken: dict[tuple[str, float], int] = {}
        for name, drug in reg.drugs.items():
            if not give[name]:
                continue
            missed_frac = 0.0
            col = cols.interrupt[name]
            if col is not None and u[col] < drug.toxicity.interrupt_per_cycle:
                days = drug.cycle_days_given
                missed_frac = min(int(d.missed_days[name][i, k]), days) / days
            for s, n in self._units[name][self.level[name]]:
                key = (name, s)
                needed[key] = n
                taken[key] = n - math.floor(n * missed_frac + 1e-9)
        self.cycle += 1
        return CycleOrder(k, day, needed, taken)


@dataclass(frozen=True)
class CoursePlan:
    """Every patient's course cycle by cycle, computed in bulk (numpy) before the supply simulation.

    What a cycle needs depends only on the cycle's index (the toxicity draws are per cycle), except two
    calendar rules: the course ends at progression, death, withdrawal or the horizon, and the capped
    drug stops at `cap_months` from the first dose. Both cut a *prefix* of the planned cycles (the capped
    drug's columns only, for the cap), so the plan is made as if neither applied and the supply
    simulation applies them on the actual visit day: a cycle delayed by a stock-out moves the calendar,
    never the plan.

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
    other_on: np.ndarray  # cells: a drug other than the capped one is given
    rate_changed: np.ndarray  # cells: the visit needs other units than the one before (true at k = 0)
    toxicity_end: np.ndarray  # n: first cycle with no drug left (number of drawn cycles if none)
    end_offset_days: np.ndarray  # n: progression, death or withdrawal, days from the first dose
    end_reason: np.ndarray  # n: index into END_REASONS of that end
    cap_offset_days: np.ndarray  # n: the capped drug stops this long after the first dose (inf: continues)
    capped_columns: np.ndarray  # P bools: the presentations of the capped drug
    cell_patient: np.ndarray  # cells: the patient of each cell
    cell_cycle: np.ndarray  # cells: its cycle (0-based)


def _first(flags: np.ndarray, none: int) -> np.ndarray:
    """Per row of a 2-d bool array, the index of its first True (`none` where there is none)."""
    at = flags.argmax(axis=1)
    return np.where(flags[np.arange(flags.shape[0]), at], at, none)


def _on_until(u_stop: np.ndarray, u_red: np.ndarray | None, p_stop: float, p_red: float, n_levels: int
              ) -> tuple[np.ndarray, np.ndarray | None]:
    """(first cycle the drug is off, reductions per cycle) per patient from its per-cycle stop/reduce
    uniforms (n x K; cycle 0: none; `u_red` None: one dose level, never reduced).

    The drug stops at the first stop draw, or when a reduction passes the last level; a stop draw wins
    over a reduction in the same cycle (PatientCourse.visit, step 3). So it is on exactly in cycles
    k < the first stop, and k < the cycle of the `n_levels`-th reduction: a prefix of every row (the
    plan's dose level of a cycle is the running count of the reductions, `_cell_levels`). The
    reductions are returned (n x K bools) for that count; they keep counting after the drug stopped,
    which is harmless: a stopped drug is never given again.
    """
    n, K = u_stop.shape
    stop = u_stop < p_stop
    stop[:, 0] = False
    until = _first(stop, K)
    if u_red is None:
        return until, None
    red = ~stop & (u_red < p_red)
    red[:, 0] = False
    # the cycle of the n_levels-th reduction: the first one n_levels times, each cleared once found
    left = red.copy()
    rows = np.arange(n)
    for _ in range(n_levels - 1):
        left[rows, left.argmax(axis=1)] = False  # (a row without one: its cycle 0, already False)
    return np.minimum(until, _first(left, K)), red


def _calendar(u: np.ndarray, delay_days: np.ndarray, p_delay: float, cycle_days: int, end: np.ndarray):
    """(cycles reached, gap_at) of n courses on the nominal calendar: per patient the number of cycles k
    whose visit day from the first dose (the sum of the gaps before it) is before `end`, and
    `gap_at(pi, ck)`, the gap after each cell's visit (cycle length + the toxicity delay drawn for the
    next cycle, none after the last drawn cycle K - 1). u: n x K x columns uniforms (column 0: the
    delay), delay_days n x K whole days (>= 0), end n floats (NaN: never).

    The same integers as the n x K computation it replaces (tests/treatment/test_calendar.py), over
    the part of each row the calendar can reach: a gap is at least `cycle_days`, so cycle k's visit is
    on or after day k x cycle_days, and only the first floor(end / cycle_days) + 1 cycles can be
    before `end` (floating division rounds monotonically: never fewer). The rows are cut to one more
    cycle than that (the delay of the cycle after the last reachable one), at most K; the cut rows
    are laid end to end (~16% of n x K in a baseline replicate) and summed by one running sum
    less each row's start (exact in int64)."""
    n, K = u.shape[:2]
    q = np.asarray(end, dtype=float) / cycle_days
    rows = np.minimum(np.maximum(np.floor(np.where(q < K, q, K)) + 2, 0), K).astype(np.int64)  # (NaN, inf: K)
    roff = np.zeros(n, dtype=np.int64)
    np.cumsum(rows[:-1], out=roff[1:])
    rp = np.repeat(np.arange(n), rows)
    rk = np.arange(rp.size) - roff[rp]
    flat = rp * K + rk
    delayed = u.reshape(-1)[flat * u.shape[2]] < p_delay
    delay = np.where(delayed, delay_days.reshape(-1)[flat], 0)
    gap = np.full(rp.size, cycle_days, dtype=np.int64)
    # the delay drawn for cycle k+1 comes after visit k (a row's last kept cycle: never a cell unless
    # it is cycle K - 1, whose gap is the cycle length)
    gap[:-1] += np.where(rk[1:] > 0, delay[1:], 0)
    before = np.cumsum(gap) - gap  # the visit days, less each row's first (0 at its cycle 0)
    start = before - before[roff[rp]] if rp.size else before
    reach = np.bincount(rp[start < end[rp]], minlength=n).astype(np.int64)

    def gap_at(pi: np.ndarray, ck: np.ndarray) -> np.ndarray:
        return gap[roff[pi] + ck]

    return reach, gap_at


def _first_uncovered(lo: list[np.ndarray], hi: list[np.ndarray]) -> np.ndarray:
    """Per patient, the least k >= 0 in none of the intervals lo[d] <= k < hi[d] (the drugs' cycles).

    Each pass over the intervals moves k to the end of every interval holding it; k never passes a k
    outside them (the cycles it skips are in the interval it leaves), an interval moves it at most
    once (k is past its end after), so len(lo) passes leave k outside all of them."""
    x = np.zeros(lo[0].shape if lo else 0, dtype=np.int64)
    for _ in lo:
        moved = False
        for a, b in zip(lo, hi, strict=True):
            inside = (a <= x) & (x < b)
            if inside.any():
                x = np.where(inside, b, x)
                moved = True
        if not moved:  # (outside every interval already: the passes left would move nothing)
            break
    return x


def _dispensing(need: np.ndarray, taken: np.ndarray, first: np.ndarray, upp: np.ndarray, carry_over: bool):
    """(packs, returned units, balance units) per cell (cells x P, C-ordered; `first`: a patient's first
    cycle): `_dispensing_rows` on the transposes."""
    out = _dispensing_rows(np.ascontiguousarray(need.T), np.ascontiguousarray(taken.T), first,
                           np.asarray(upp), carry_over)
    return tuple(np.ascontiguousarray(a.T) for a in out)


def _dispensing_rows(nt: np.ndarray, tt: np.ndarray, first: np.ndarray, upp: np.ndarray, carry_over: bool):
    """(packs, returned units, balance units), presentation by cell (P x cells, C-ordered), from the
    units needed and taken (P x cells, C-ordered; `first`: a patient's first cycle, per cell).

    return_each_visit: each visit returns the whole balance and dispenses ceil(need / units per pack).
    carry_over: a presentation is used over runs of consecutive cycles; a cycle without it (or a new
    patient) returns the balance and starts a new run. Within a run, with C_k the units taken before
    visit k, the units dispensed up to visit k are D_k = max_{j<=k} upp * ceil((need_j + C_j) / upp):
    whole packs are given only when what the patient holds falls short of the cycle (by induction on k,
    D_{k-1} being a multiple of upp). An offset per run keeps the running maximum from crossing runs.
    Presentation by cell because numpy's running sums and row reductions along a short axis cost
    several times those along a long one (same integers).
    """
    u = upp[:, None]
    if not carry_over:
        packs = -(-nt // u)
        balance = packs * u - tt
        returned = np.zeros_like(balance)
        returned[:, 1:] = balance[:, :-1]
        returned *= ~first
        return packs, returned, balance
    used = nt > 0
    tk = tt * used
    cum = np.cumsum(tk, axis=1)
    start = ~used | first
    run = np.cumsum(start, axis=1)
    ctk = cum - tk
    before = ctk - np.maximum.accumulate(ctk * start, axis=1)  # C_k (less the units taken before the run)
    # in packs: D_k / upp, the running maximum of ceil((need_k + C_k) / upp) (no division after it)
    q = nt + before
    for p, k in enumerate(upp.tolist()):  # (row by row: numpy divides by a scalar ~2x faster)
        np.floor_divide(q[p], -k, out=q[p])  # -ceil(x / k)
    np.negative(q, out=q)
    q *= used
    big = int(q.max(initial=0)) + 1
    shift = run * big
    dispensed = np.maximum.accumulate(q + shift, axis=1) - shift
    prev = np.zeros_like(dispensed)
    prev[:, 1:] = dispensed[:, :-1] * ~start[:, 1:]  # (the same run: no new run starts at k)
    packs = dispensed - prev
    # (a cell without the presentation starts a run of its own: nothing dispensed, held or taken)
    balance = dispensed * u - before - tk
    returned = np.zeros_like(balance)
    returned[:, 1:] = balance[:, :-1]
    returned *= ~first
    returned *= ~used
    return packs, returned, balance


def plan_courses(regimen: RegimenConfig, draws: CourseDraws, units: dict[str, np.ndarray],
                 keys: list[tuple[str, float]], units_per_pack: np.ndarray, carry_over: bool) -> CoursePlan:
    """The plan of n courses (see `CoursePlan`), equal cycle by cycle to `PatientCourse.visit`.

    units: drug -> n x dose levels x strengths, units per administration (`patient_units`).
    keys: (drug, strength_mg) of each presentation; a dose the regimen can give must have one.

    The cells x P arrays are computed presentation by cell (P x cells) and returned as their transposes
    (same shape and integers, Fortran-ordered): numpy's running sums along the long axis cost several
    times less, and the column sums after the run read them without a copy.
    """
    tox = regimen.toxicity
    cols = columns(regimen)
    u = draws.uniforms
    n, K = u.shape[:2]
    P = len(keys)
    col = {k: p for p, k in enumerate(keys)}

    def column(drug: str, strength: float) -> int:
        if (drug, float(strength)) not in col:
            raise ValueError(f"no presentation of {drug} {strength:g} mg in supply.presentations, "
                             "but the regimen can give that dose")
        return col[(drug, float(strength))]

    # each drug is given in an interval of cycles lo <= k < hi per patient: on until its first stop or
    # its last level passed (`_on_until`), of its phase (induction: k < the induction cycles;
    # maintenance: after them), for the patients given it (a choice group's alternative)
    ind = draws.induction_cycles
    capped = regimen.capped_drug
    zero = np.zeros(n, dtype=np.int64)
    lo, hi, reds = {}, {}, {}
    for name, d in regimen.drugs.items():
        t = d.toxicity
        r = cols.reduce[name]
        until, reds[name] = _on_until(u[..., cols.stop[name]], None if r is None else u[..., r],
                                      t.stop_per_cycle, t.reduce_per_cycle, len(d.dose_fractions))
        a = zero
        if d.phase == "induction":
            until = np.minimum(until, ind)
        elif d.phase == "maintenance":
            a = ind
        if name in draws.given:
            until = np.where(draws.given[name], until, 0)  # (never: an empty interval)
        lo[name], hi[name] = a, until
    toxicity_end = _first_uncovered(list(lo.values()), list(hi.values()))  # first cycle with no drug

    # the cycles a course can reach on the nominal calendar
    end = np.minimum(np.minimum(draws.progression_days, draws.death_days), draws.withdrawal_days)
    reason = np.where(end == draws.progression_days, 0, np.where(end == draws.death_days, 1, 2))
    reach, gap_at = _calendar(u, draws.delay_days, tox.delay_per_cycle, regimen.cycle_days, end)
    cycles = np.minimum(reach, toxicity_end)
    offset = np.zeros(n, dtype=np.int64)
    np.cumsum(cycles[:-1], out=offset[1:])
    pi = np.repeat(np.arange(n), cycles)  # the cells: patient and cycle
    ck = np.arange(pi.size) - offset[pi]
    N = pi.size

    # the cells' entries of the n x K arrays, by one flat index (a gather by (pi, ck) costs more)
    flat = pi * K + ck
    u_flat, W = u.reshape(-1), u.shape[2]  # (u is C-ordered: a view)
    need = np.zeros((P, N), dtype=np.int64)  # presentation by cell
    taken = np.zeros((P, N), dtype=np.int64)
    other_on = np.zeros(N, dtype=bool)
    for name, d in regimen.drugs.items():
        on = ck < hi[name][pi]  # the drug given in the cell's cycle (from lo: cycle 0 unless maintenance)
        if lo[name] is not zero:
            on &= lo[name][pi] <= ck
        if name != capped:
            other_on |= on
        days = d.cycle_days_given
        c_int = cols.interrupt[name]
        missed_frac = None  # no interruption: taken = need (need - floor(need * 0 + 1e-9))
        if c_int is not None:
            missed_frac = np.where(u_flat[flat * W + c_int] < d.toxicity.interrupt_per_cycle,
                                   np.minimum(draws.missed_days[name].reshape(-1)[flat], days), 0) / days
        table = units[name]
        # a flat dose's table is one patient's broadcast to all (`patient_units`): its rows picked by level
        # alone (the same units as picking them by patient and level)
        same = table.ndim == 3 and table.shape[0] > 0 and table.strides[0] == 0
        if reds[name] is None:
            rows = table[pi, 0] if not same else np.broadcast_to(table[0, 0], (N, table.shape[2]))
        else:
            levels = _cell_levels(reds[name].reshape(-1)[flat], offset, pi, table.shape[1] - 1)
            rows = table[pi, levels] if not same else table[0][levels]
        for j, strength in enumerate(d.strengths_mg):
            got = rows[:, j] * d.administrations * on
            if got.any():
                p = column(name, strength)
                need[p] = got
                taken[p] = got if missed_frac is None else \
                    got - np.floor(got * missed_frac + 1e-9).astype(np.int64)

    first = ck == 0
    packs, returned, balance = _dispensing_rows(need, taken, first,
                                                np.asarray(units_per_pack, dtype=np.int64), carry_over)
    cap_cols = np.array([k[0] == capped for k in keys], dtype=bool)
    if capped is not None:
        cont = np.asarray(draws.continue_after_cap, dtype=bool)
        cap_offset = np.where(cont, np.inf, regimen.drugs[capped].cap_months * DAYS_PER_MONTH)
    else:
        cap_offset = np.full(n, np.inf)
    changed = first.copy()
    if N:
        changed[1:] |= (need[:, 1:] != need[:, :-1]).any(axis=0)
    return CoursePlan(offset, cycles, need.T, taken.T, packs.T, returned.T, balance.T, gap_at(pi, ck),
                      other_on, changed, toxicity_end, end, reason, cap_offset, cap_cols, pi, ck)


def _cell_levels(red: np.ndarray, offset: np.ndarray, pi: np.ndarray, last: int) -> np.ndarray:
    """Each cell's dose level (reductions so far, at most `last`) from its cycle's reduction flags
    (cells in patient order, each patient's from cycle 0, whose flag is False): a running count of the
    cells' flags less the count at the patient's first cell."""
    if not red.size:
        return np.zeros(0, dtype=np.int64)
    run = np.cumsum(red)
    return np.minimum(run - run[offset[pi]], last)
