"""treatment/course.py's set-up functions as they were at the end of issue 16's phase 3 (main at 031fbb0),
kept verbatim as the reference the phase-4 rewrites are tested against (tests/treatment/
test_setup_rewrites.py): the same arrays, the same random draws in the same order and sizes. Do not
optimise this file: it is the definition.
"""

from __future__ import annotations

import numpy as np

from hn005_sim.treatment.config import RegimenConfig
from hn005_sim.treatment.course import (
    DAYS_PER_MONTH,
    CourseDraws,
    CoursePlan,
    _flat_units,
    columns,
)
from hn005_sim.treatment.dosing import drug_units


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
    delay = np.maximum(np.rint(tox.delay_days.sample(rng, n * max_cycles)), 0).astype(np.int64).reshape(shape)
    oral = [name for name, d in regimen.drugs.items() if d.oral]
    missed = np.maximum(np.rint(tox.interrupted_days.sample(rng, len(oral) * n * max_cycles)), 0)
    missed = missed.astype(np.int64).reshape((len(oral), *shape))
    given: dict[str, np.ndarray] = {}
    for names in regimen.choice_groups().values():
        x = rng.random(n)
        cum = np.cumsum([regimen.drugs[m].choice.share for m in names])
        pick = np.minimum(np.searchsorted(cum, x * cum[-1], side="right"), len(names) - 1)
        for j, m in enumerate(names):
            given[m] = pick == j
    return CourseDraws(induction, prog, death, withdraw, cont, u, delay,
                       {name: missed[j] for j, name in enumerate(oral)}, given)


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
    if not carry_over:
        fresh = first[:, None]
        packs = -(-need // upp)
        balance = packs * upp - taken
        returned = np.zeros_like(balance)
        returned[1:] = balance[:-1]
        returned *= ~fresh
        return packs, returned, balance
    # carry_over, computed presentation by cycle (P x cells, C-ordered): numpy's running sums and row
    # reductions along a short axis cost several times those along a long one (same integers)
    nt, tt, u = np.ascontiguousarray(need.T), np.ascontiguousarray(taken.T), upp[:, None]
    used = nt > 0
    tk = tt * used
    cum = np.cumsum(tk, axis=1)
    start = ~used | first
    run = np.cumsum(start, axis=1)
    ctk = cum - tk
    base = np.maximum.accumulate(ctk * start, axis=1)  # units taken before the run
    before = ctk - base  # C_k
    x = -(-(nt + before) // u) * u * used
    big = int(x.max(initial=0)) + 1
    shift = run * big
    dispensed = np.maximum.accumulate(x + shift, axis=1) - shift  # D_k
    prev = np.zeros_like(dispensed)
    prev[:, 1:] = dispensed[:, :-1] * (run[:, 1:] == run[:, :-1])
    packs = (dispensed - prev) // u
    balance = (dispensed - before - tk) * used
    returned = np.zeros_like(balance)
    returned[:, 1:] = balance[:, :-1]
    returned *= ~first
    returned *= ~used
    return np.ascontiguousarray(packs.T), np.ascontiguousarray(returned.T), np.ascontiguousarray(balance.T)


def plan_courses(regimen: RegimenConfig, draws: CourseDraws, units: dict[str, np.ndarray],
                 keys: list[tuple[str, float]], units_per_pack: np.ndarray, carry_over: bool) -> CoursePlan:
    """The plan of n courses (see `CoursePlan`), equal cycle by cycle to `PatientCourse.visit`.

    units: drug -> n x dose levels x strengths, units per administration (`patient_units`).
    keys: (drug, strength_mg) of each presentation; a dose the regimen can give must have one.
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

    in_induction = np.arange(K)[None, :] < draws.induction_cycles[:, None]
    capped = regimen.capped_drug
    give, level = {}, {}
    for name, d in regimen.drugs.items():
        t = d.toxicity
        if cols.reduce[name] is not None:
            level[name], on = _levels(u[..., cols.stop[name]], u[..., cols.reduce[name]], t.stop_per_cycle,
                                      t.reduce_per_cycle, len(d.dose_fractions))
        else:
            stop = u[..., cols.stop[name]] < t.stop_per_cycle
            stop[:, 0] = False
            on = np.cumsum(stop, axis=1) == 0
            level[name] = np.zeros((n, K), dtype=np.int64)
        if name in draws.given:
            on = on & draws.given[name][:, None]
        if d.phase == "induction":
            on = on & in_induction
        elif d.phase == "maintenance":
            on = on & ~in_induction
        give[name] = on
    other_on = np.zeros((n, K), dtype=bool)
    for name in regimen.drugs:
        if name != capped:
            other_on |= give[name]
    nothing = ~(other_on | give[capped]) if capped is not None else ~other_on
    toxicity_end = np.where(nothing.any(axis=1), nothing.argmax(axis=1), K)

    # the cycles a course can reach on the nominal calendar
    delay = np.where(u[..., 0] < tox.delay_per_cycle, draws.delay_days, 0)
    gap = np.full((n, K), regimen.cycle_days, dtype=np.int64)
    gap[:, :-1] += delay[:, 1:]  # the delay drawn for cycle k+1 comes after visit k
    end = np.minimum(np.minimum(draws.progression_days, draws.death_days), draws.withdrawal_days)
    reason = np.where(end == draws.progression_days, 0, np.where(end == draws.death_days, 1, 2))
    # visit days from the first dose: integer sums (exact), compared with the float ends
    start = np.zeros((n, K), dtype=np.int64)
    np.cumsum(gap[:, :-1], axis=1, out=start[:, 1:])
    cycles = np.minimum((start < end[:, None]).sum(axis=1), toxicity_end)
    offset = np.zeros(n, dtype=np.int64)
    np.cumsum(cycles[:-1], out=offset[1:])
    pi = np.repeat(np.arange(n), cycles)  # the cells: patient and cycle
    ck = np.arange(pi.size) - offset[pi]
    N = pi.size

    # the cells' entries of the n x K arrays, by one flat index (a gather by (pi, ck) costs more)
    flat = pi * K + ck
    u_flat, W = u.reshape(-1), u.shape[2]  # (u is C-ordered: a view)
    need = np.zeros((N, P), dtype=np.int64)
    taken = np.zeros((N, P), dtype=np.int64)
    for name, d in regimen.drugs.items():
        days = d.cycle_days_given
        c_int = cols.interrupt[name]
        missed_frac = None  # no interruption: taken = need (need - floor(need * 0 + 1e-9))
        if c_int is not None:
            missed_frac = np.where(u_flat[flat * W + c_int] < d.toxicity.interrupt_per_cycle,
                                   np.minimum(draws.missed_days[name].reshape(-1)[flat], days), 0) / days
        table = units[name]
        lv = np.minimum(level[name].reshape(-1)[flat], table.shape[1] - 1)
        on = give[name].reshape(-1)[flat]
        rows = table[pi, lv]  # cells x strengths
        for j, strength in enumerate(d.strengths_mg):
            got = rows[:, j] * d.administrations * on
            if got.any():
                p = column(name, strength)
                need[:, p] = got
                taken[:, p] = got if missed_frac is None else \
                    got - np.floor(got * missed_frac + 1e-9).astype(np.int64)

    first = ck == 0
    packs, returned, balance = _dispensing(need, taken, first, np.asarray(units_per_pack, dtype=np.int64),
                                           carry_over)
    cap_cols = np.array([k[0] == capped for k in keys], dtype=bool)
    if capped is not None:
        cont = np.asarray(draws.continue_after_cap, dtype=bool)
        cap_offset = np.where(cont, np.inf, regimen.drugs[capped].cap_months * DAYS_PER_MONTH)
    else:
        cap_offset = np.full(n, np.inf)
    changed = first.copy()
    differs = need[1:] != need[:-1]
    for p in range(P):  # (column by column: any(axis=1) over P columns costs ~7x more)
        changed[1:] |= differs[:, p]
    return CoursePlan(offset, cycles, need, taken, packs, returned, balance, gap.reshape(-1)[flat],
                      other_on.reshape(-1)[flat],
                      changed, toxicity_end, end, reason, cap_offset, cap_cols, pi, ck)
