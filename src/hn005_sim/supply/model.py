"""The supply chain of one replicate as a simpy model: depot -> sites -> patients.

Processes (one fresh `simpy.Environment` per replicate, run after recruitment: treatment and supply do
not feed back on recruitment, so the enrolment record of the recruitment simulation is their input):
- `_patient`: one per enrolled patient, from first dose: at each cycle visit the course says what the
  cycle needs (treatment/course.py); the site dispenses whole packs; if any presentation is short the
  whole cycle waits for stock (a stock-out), an emergency shipment is sent, and the wait is recorded as
  patient-days without drug for every drug of that cycle.
- `_activation`: seeds a site with its tier's initial level when it opens.
- `_review`: every `review_days` the IRT writes off stock inside its expiry window and tops sites up
  (trigger/max levels, optionally raised to the active patients' forecast).
- `_release`: a lot released to the depot `release_lead_days` after its order.
- `_snapshots`: stock on hand at the depot and at sites at each month boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import simpy

from hn005_sim.supply.config import SupplyConfig
from hn005_sim.supply.inventory import Stock
from hn005_sim.treatment.config import DRUGS, RegimenConfig
from hn005_sim.treatment.course import DAYS_PER_MONTH, PatientCourse, draw_courses
from hn005_sim.treatment.dosing import capecitabine_tablets, full_cycle_units


@dataclass(frozen=True)
class SiteRow:
    site: str
    region: str
    activation_day: float | None
    close_day: float | None


@dataclass(frozen=True)
class EnrolmentRow:
    patient_id: int
    site: str
    region: str
    day: float
    bsa_m2: float


def cycle_packs(regimen: RegimenConfig, supply: SupplyConfig) -> np.ndarray:
    """Packs per presentation that one full-dose cycle of the reference patient uses (fractional)."""
    units = full_cycle_units(supply.reference_bsa_m2, regimen, induction=True)
    out = np.zeros(len(supply.presentations))
    for p, pres in enumerate(supply.presentations):
        out[p] = units.get((pres.drug, float(pres.strength_mg)), 0) / pres.units_per_pack
    return out


Levels = list[tuple[np.ndarray, np.ndarray, np.ndarray]]


def tier_levels(regimen: RegimenConfig, supply: SupplyConfig) -> Levels:
    """(initial, trigger, max) packs per presentation for each tier."""
    per = cycle_packs(regimen, supply)
    floor = np.array([p.site_min_packs for p in supply.presentations])

    def packs(cycles: float) -> np.ndarray:
        return np.maximum(np.ceil(cycles * per - 1e-9).astype(np.int64), floor)

    out = []
    for t in supply.tiers:
        trig = packs(t.trigger_cycles)
        out.append((packs(t.initial_cycles), trig, np.maximum(packs(t.max_cycles), trig)))
    return out


class SupplyModel:
    """State and processes of one replicate's supply chain; `run()` then read the counters."""

    def __init__(self, regimen: RegimenConfig, supply: SupplyConfig, sites: list[SiteRow],
                 enrolments: list[EnrolmentRow], horizon_day: float, rng_treatment: np.random.Generator,
                 rng_supply: np.random.Generator, levels=None):
        self.regimen, self.cfg = regimen, supply
        self.env = simpy.Environment()
        self.horizon = float(horizon_day)
        self.rng = rng_supply
        pres = supply.presentations
        self.P = P = len(pres)
        self.key_to_p = {(p.drug, float(p.strength_mg)): i for i, p in enumerate(pres)}
        self.units_per_pack = np.array([p.units_per_pack for p in pres], dtype=np.int64)
        self.drug_of = [DRUGS.index(p.drug) for p in pres]
        self.sites = sites
        self.site_index = {s.site: i for i, s in enumerate(sites)}
        S = len(sites)
        self.depot = Stock(P, supply.depot.do_not_ship_days)
        self.stock = [Stock(P, supply.depot.do_not_dispense_days) for _ in range(S)]
        self.in_transit = np.zeros((S, P), dtype=np.int64)
        self.levels = levels if levels is not None else tier_levels(regimen, supply)
        self.tier = [supply.tier_of(s.region) for s in sites]
        self.restock = [self.env.event() for _ in range(S)]
        self.waiting = np.zeros(S, dtype=np.int64)
        self.waiting_need = np.zeros((S, P), dtype=np.int64)  # packs the waiting patients need
        self.balances: dict[int, dict[int, int]] = {}  # units each patient on treatment holds
        self.active = np.zeros(S, dtype=np.int64)
        self.need_rate = np.zeros((S, P))  # packs per cycle of active patients (predictive resupply)
        self.pending_release = np.zeros(P, dtype=bool)
        self.lot_seq = 0
        self.lead_by_region = supply.shipping.lead_days_by_region
        # counters (packs unless named otherwise)
        self.released = np.zeros(P, dtype=np.int64)
        self.shipped = np.zeros(P, dtype=np.int64)
        self.shipments_with = np.zeros(P, dtype=np.int64)
        self.shipments = 0
        self.emergency_shipments = 0
        self.dispensed = np.zeros(P, dtype=np.int64)
        self.wasted_expiry_depot = np.zeros(P, dtype=np.int64)
        self.wasted_expiry_sites = np.zeros(P, dtype=np.int64)
        self.returned_units = np.zeros(P, dtype=np.int64)
        self.taken_units = np.zeros(P, dtype=np.int64)
        self.held_units = np.zeros(P, dtype=np.int64)
        self.stockout_events = np.zeros(P, dtype=np.int64)
        self.patient_days_without = np.zeros(len(DRUGS))
        self.min_dispense_margin = np.full(P, math.inf)
        self.cycles_given = 0
        self.end_reasons: dict[str, int] = {}
        self.n_months = max(math.ceil(self.horizon / DAYS_PER_MONTH), 1)
        self.dispensed_monthly = np.zeros((self.n_months, P), dtype=np.int64)
        self.on_hand_depot_monthly = np.zeros((self.n_months, P), dtype=np.int64)
        self.on_hand_sites_monthly = np.zeros((self.n_months, P), dtype=np.int64)
        self.stockouts_monthly = np.zeros((self.n_months, P), dtype=np.int64)
        # treatment draws, one row per enrolment in the given order
        first = min((e.day for e in enrolments), default=0.0)
        max_cycles = math.ceil(max(self.horizon - first, 0.0) / regimen.cycle_days) + 2
        self.draws = draw_courses(regimen, len(enrolments), max_cycles, rng_treatment)
        self.enrolments = enrolments
        # capecitabine tablets per administration for every patient and dose level, in one vectorised call
        fr = np.asarray(regimen.capecitabine.dose_fractions)
        bsa = np.array([e.bsa_m2 for e in enrolments], dtype=float)
        _, tabs = capecitabine_tablets(bsa[:, None], fr[None, :], regimen)
        self.cap_tablets = tabs  # patients x levels x strengths
        self.last_enrol_day = max((e.day for e in enrolments), default=0.0)

    # ---- depot ---------------------------------------------------------------------------------------
    def _release_lot(self, p: int):
        pres = self.cfg.presentations[p]
        self.lot_seq += 1
        life_days = (pres.shelf_life_months - pres.age_at_release_months) * DAYS_PER_MONTH
        self.depot.add(p, self.env.now + life_days, self.lot_seq, pres.lot_size_packs)
        self.released[p] += pres.lot_size_packs

    def _release(self, p: int):
        yield self.env.timeout(self.cfg.depot.release_lead_days)
        self.pending_release[p] = False
        self._release_lot(p)
        self._review_all(emergency_only=True)

    def _demand_ahead(self) -> bool:
        """Whether any more dispensing can happen: a site still recruiting or a patient on treatment."""
        now = self.env.now
        if now >= self.horizon:
            return False
        if self.active.any() or now <= self.last_enrol_day:
            return True
        return any(s.activation_day is not None and (s.close_day is None or now < s.close_day)
                   for s in self.sites)

    def _depot_check(self, p: int):
        self.wasted_expiry_depot[p] += self.depot.purge(p, self.env.now)
        low = self.depot.on_hand(p) < self.cfg.presentations[p].depot_reorder_packs
        if not self.pending_release[p] and low and self._demand_ahead():
            self.pending_release[p] = True
            self.env.process(self._release(p))

    # ---- shipments -----------------------------------------------------------------------------------
    def _lead(self, s: int, emergency: bool) -> float:
        ship = self.cfg.shipping
        dist = ship.emergency_lead_days if emergency else self.lead_by_region.get(self.sites[s].region,
                                                                                  ship.lead_days)
        return max(float(dist.sample(self.rng, 1)[0]), 0.0)

    def _ship(self, s: int, want: np.ndarray, emergency: bool) -> None:
        """Send up to `want` packs per presentation from the depot to site s (one shipment)."""
        items = []
        for p in np.flatnonzero(want > 0):
            self.wasted_expiry_depot[p] += self.depot.purge(p, self.env.now)
            got = self.depot.take(p, int(want[p]))
            n = sum(g[2] for g in got)
            if n:
                items.append((p, got))
                self.shipped[p] += n
                self.in_transit[s, p] += n
                self.shipments_with[p] += 1
            self._depot_check(p)
        if items:
            self.shipments += 1
            self.emergency_shipments += emergency
            self.env.process(self._deliver(s, items, self._lead(s, emergency)))

    def _deliver(self, s: int, items, lead: float):
        yield self.env.timeout(lead)
        st = self.stock[s]
        for p, got in items:
            for expiry, lot, n in got:
                st.add(p, expiry, lot, n)
                self.in_transit[s, p] -= n
            self.wasted_expiry_sites[p] += st.purge(p, self.env.now)
        ev, self.restock[s] = self.restock[s], self.env.event()
        ev.succeed()

    def _position(self, s: int) -> np.ndarray:
        st = self.stock[s]
        now = self.env.now
        for p in range(self.P):
            lots = st.lots[p]
            if lots and lots[0][0] - st.window_days <= now:
                self.wasted_expiry_sites[p] += st.purge(p, now)
        return np.array(st.totals, dtype=np.int64) + self.in_transit[s]

    def _site_open_for_supply(self, s: int) -> bool:
        site = self.sites[s]
        now = self.env.now
        if site.activation_day is None or now < site.activation_day or now >= self.horizon:
            return False
        return self.active[s] > 0 or site.close_day is None or now < site.close_day

    def _resupply(self, s: int, emergency: bool = False) -> None:
        if not self._site_open_for_supply(s) and not self.waiting[s]:
            return
        _, trig, top = self.levels[self.tier[s]]
        tier = self.cfg.tiers[self.tier[s]]
        if tier.predictive:
            # the active patients' next cycles: trigger covers half the forecast window, max all of it
            cycles = tier.forecast_days / self.regimen.cycle_days
            trig = np.maximum(trig, np.ceil(self.need_rate[s] * cycles / 2 - 1e-9).astype(np.int64))
            top = np.maximum(top, np.ceil(self.need_rate[s] * cycles - 1e-9).astype(np.int64))
        pos = self._position(s)
        if (pos < trig).any() or emergency:
            # an emergency shipment always covers what the waiting patients need, whatever the levels
            want = np.maximum(top - pos, self.waiting_need[s] - pos) if emergency else top - pos
            self._ship(s, np.maximum(want, 0), emergency)

    def _review_all(self, emergency_only: bool = False) -> None:
        for s in range(len(self.sites)):
            if self.waiting[s]:
                self._resupply(s, emergency=True)
            elif not emergency_only:
                self._resupply(s)
        for p in range(self.P):
            self._depot_check(p)

    def _review(self):
        while self.env.now < self.horizon:
            self._review_all()
            yield self.env.timeout(self.cfg.review_days)

    def _activation(self, s: int):
        site = self.sites[s]
        yield self.env.timeout(site.activation_day)
        init, _, _ = self.levels[self.tier[s]]
        self._ship(s, init - self._position(s), emergency=False)

    def _snapshots(self):
        for m in range(self.n_months):
            t = m * DAYS_PER_MONTH
            if t > self.env.now:
                yield self.env.timeout(t - self.env.now)
            for p in range(self.P):
                self.wasted_expiry_depot[p] += self.depot.purge(p, self.env.now)
                self.on_hand_depot_monthly[m, p] = self.depot.on_hand(p)
                tot = 0
                for s, st in enumerate(self.stock):
                    self.wasted_expiry_sites[p] += st.purge(p, self.env.now)
                    tot += st.on_hand(p) + self.in_transit[s, p]
                self.on_hand_sites_monthly[m, p] = tot

    # ---- patients ------------------------------------------------------------------------------------
    def _month(self, day: float) -> int:
        return min(int(day // DAYS_PER_MONTH), self.n_months - 1)

    def _patient(self, i: int, e: EnrolmentRow):
        env = self.env
        s = self.site_index[e.site]
        yield env.timeout(max(e.day - env.now, 0.0))
        course = PatientCourse(self.regimen, self.draws, i, e.day, e.bsa_m2, self.horizon)
        course.preset_capecitabine(self.cap_tablets[i])
        balance: dict[int, int] = {}
        self.balances[i] = balance
        rate = np.zeros(self.P)
        self.active[s] += 1
        carry = self.cfg.partial_packs == "carry_over"
        st = self.stock[s]
        while True:
            order = course.visit(env.now)
            if order is None:
                break
            need_p = {self.key_to_p[k]: n for k, n in order.needed.items()}
            if not carry:
                for p, n in balance.items():
                    self.returned_units[p] += n
                balance.clear()
            else:  # units of a presentation this cycle does not use (dose changed, drug stopped) go back
                for p in [p for p in balance if p not in need_p]:
                    self.returned_units[p] += balance.pop(p)
            packs = {p: max(0, math.ceil((n - balance.get(p, 0)) / self.units_per_pack[p]))
                     for p, n in need_p.items()}
            self.need_rate[s] -= rate
            rate = np.zeros(self.P)
            for p, n in need_p.items():
                rate[p] = n / self.units_per_pack[p]
            self.need_rate[s] += rate
            asked = env.now
            counted = False
            while True:
                for p in packs:
                    self.wasted_expiry_sites[p] += st.purge(p, env.now)
                short = [p for p, n in packs.items() if n and st.on_hand(p) < n]
                if not short or env.now >= self.horizon:
                    break
                if not counted:
                    counted = True
                    m = self._month(env.now)
                    for p in short:
                        self.stockout_events[p] += 1
                        self.stockouts_monthly[m, p] += 1
                self.waiting[s] += 1
                for p, n in packs.items():
                    self.waiting_need[s, p] += n
                self._resupply(s, emergency=True)
                yield self.restock[s]
                self.waiting[s] -= 1
                for p, n in packs.items():
                    self.waiting_need[s, p] -= n
            if short:  # the horizon came while waiting
                break
            wait = env.now - asked
            if wait > 0:
                for drug in {self.drug_of[p] for p in need_p}:
                    self.patient_days_without[drug] += wait
            m = self._month(env.now)
            for p, n in packs.items():
                if n:
                    for expiry, _lot, _k in st.take(p, n):
                        self.min_dispense_margin[p] = min(self.min_dispense_margin[p], expiry - env.now)
                    self.dispensed[p] += n
                    self.dispensed_monthly[m, p] += n
                taken = order.taken[self.regimen_key(p)]
                balance[p] = balance.get(p, 0) + n * int(self.units_per_pack[p]) - taken
                self.taken_units[p] += taken
            self.cycles_given += 1
            self._resupply(s)
            delay = course.delay_before()
            yield env.timeout(self.regimen.cycle_days + delay)
        self.need_rate[s] -= rate
        self.active[s] -= 1
        del self.balances[i]
        reason = course.end_reason or "horizon"
        self.end_reasons[reason] = self.end_reasons.get(reason, 0) + 1
        for p, n in balance.items():
            if reason == "horizon":
                self.held_units[p] += n  # still with the patient when the simulation stops
            else:
                self.returned_units[p] += n

    def regimen_key(self, p: int) -> tuple[str, float]:
        pres = self.cfg.presentations[p]
        return (pres.drug, float(pres.strength_mg))

    # ---- run -----------------------------------------------------------------------------------------
    def run(self) -> None:
        env = self.env
        for p, pres in enumerate(self.cfg.presentations):
            for _ in range(pres.initial_lots):
                self._release_lot(p)
        for s, site in enumerate(self.sites):
            if site.activation_day is not None and site.activation_day < self.horizon:
                env.process(self._activation(s))
        for i, e in enumerate(self.enrolments):
            if e.day < self.horizon:
                env.process(self._patient(i, e))
        env.process(self._review())
        env.process(self._snapshots())
        env.run(until=self.horizon)
        # patients still on treatment when the simulation stops keep what they hold
        for balance in self.balances.values():
            for p, n in balance.items():
                self.held_units[p] += n
        if self.balances:
            self.end_reasons["horizon"] = self.end_reasons.get("horizon", 0) + len(self.balances)
