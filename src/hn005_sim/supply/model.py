"""The supply chain of one replicate as a discrete-event model: depot -> sites -> patients.

Treatment and supply do not feed back on recruitment, so the enrolment record of the recruitment
simulation is the input. Every patient's course is planned up front in numpy (treatment/course.py
`plan_courses`: what each cycle needs, the packs each visit dispenses under the partial-pack rule, the
returns and the cycle gaps), so the event loop only runs what depends on stock and time:
- `_patient`: one per enrolled patient, from first dose: at each cycle visit the site dispenses the
  planned packs; if any presentation is short the whole cycle waits for stock (a stock-out), an
  emergency shipment is sent, and the wait is recorded as patient-days without drug for every drug of
  that cycle. The calendar rules (progression, death, withdrawal, the capped drug's cap) are applied on the
  actual visit day, so a delayed cycle moves the calendar, not the plan.
- `_activation`: seeds a site with its initial level when it opens. A site's levels are its tier's
  scaled by its predicted demand (supply/levels.py); the depot reorders on the network's stock
  (`_network_all`, echelon stock) when `depot.network_reorder`.
- `_review`: every `review_days` the IRT writes off stock inside its expiry window, checks the depot's
  reorder point and tops sites up (trigger/max levels, optionally raised to the active patients'
  forecast). Sites are also checked after every dispensing. A site whose stock, shipments in transit
  and levels did not change since the review last found nothing to do there (`Stock.changed`) is
  left alone unless its first lot came near its window: the check would find the same.
- `_release`: a lot released to the depot `release_lead_days` after its order.
- `_snapshots`: stock on hand at the depot and at sites at each month boundary.

Totals that follow from the plan once each patient's number of cycles is known (units taken,
returned, held) are summed in numpy after the run.

The event loop (`_loop`) is a plain heap of (day, sequence number, process) with simpy's semantics, so
the events, their order and the random draws are those of the simpy model this replaced (the stored
back-test is unchanged): a process is a generator that yields a delay in days (a timeout: resumed at
now + delay, after every event already scheduled for that day) or a site's list of waiters (resumed, in
the order they waited, by an event scheduled when a shipment arrives there); a process started while
an event is handled (a lot release, a delivery) runs to its first yield after that event and before
the next one (simpy's urgent initialisation); the loop stops before the first event at the horizon.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from heapq import heappop, heappush
from itertools import count

import numpy as np

from hn005_sim.supply.config import SupplyConfig
from hn005_sim.supply.inventory import Stock
from hn005_sim.supply.levels import patient_cycle_packs, site_levels, weight_of
from hn005_sim.treatment.config import RegimenConfig
from hn005_sim.treatment.course import (
    DAYS_PER_MONTH,
    END_REASONS,
    draw_courses,
    patient_units,
    plan_courses,
)
from hn005_sim.treatment.dosing import full_cycle_units


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
    weight_kg: float | None = None  # for per-kg doses; None: the supply's reference patient
    crcl_ml_min: float | None = None  # for AUC (Calvert) doses; None: the supply's reference patient


def enrolment_covariates(enrolments: list[EnrolmentRow], supply: SupplyConfig) -> dict[str, np.ndarray]:
    """The dosing covariates of the enrolled (BSA; weight and CrCl where the record has them, else the
    supply's reference patient)."""
    ref = supply.reference_covariates()
    out = {"bsa_m2": np.array([e.bsa_m2 for e in enrolments], dtype=float)}
    for key in ("weight_kg", "crcl_ml_min"):
        if key in ref:
            out[key] = np.array([ref[key] if getattr(e, key) is None else getattr(e, key)
                                 for e in enrolments], dtype=float)
    return out


_INT64_MAX = np.iinfo(np.int64).max


def _col_sums(a: np.ndarray) -> np.ndarray:
    """a.sum(axis=0) of an integer array of rows x P, summed along the long axis (numpy's sum over the
    rows of a few columns costs ~10x more here): the same integers."""
    return np.ascontiguousarray(a.T).sum(axis=1)


_EXACT_FLOAT_SUM = 2**53  # integers summed as floats below this are exact (`_totals`)
_CYCLE_PACKS: dict[tuple[int, int], tuple[RegimenConfig, SupplyConfig, np.ndarray]] = {}


def cycle_packs(regimen: RegimenConfig, supply: SupplyConfig) -> np.ndarray:
    """Packs per presentation that one full-dose cycle of the reference patient uses (fractional).

    Kept per (regimen, supply) object (configs are frozen; the objects are held, so their ids are not
    reused): a run's replicates share them."""
    key = (id(regimen), id(supply))
    got = _CYCLE_PACKS.get(key)
    if got is None or got[0] is not regimen or got[1] is not supply:
        if len(_CYCLE_PACKS) >= 16:
            _CYCLE_PACKS.clear()
        got = _CYCLE_PACKS[key] = (regimen, supply, _cycle_packs(regimen, supply))
    return got[2].copy()


def _cycle_packs(regimen: RegimenConfig, supply: SupplyConfig) -> np.ndarray:
    units = full_cycle_units(supply.reference_covariates(), regimen, induction=True)
    out = np.zeros(len(supply.presentations))
    for p, pres in enumerate(supply.presentations):
        out[p] = units.get((pres.drug, float(pres.strength_mg)), 0) / pres.units_per_pack
    return out


_SITE_SETUP: dict[tuple[int, int], tuple[RegimenConfig, SupplyConfig, dict]] = {}


def _site_setup(regimen: RegimenConfig, supply: SupplyConfig, region: str, weight: float) -> tuple:
    """((initial, trigger, max) packs, predictive, forecast cycles, safety packs, expiry cover days) of a
    site in `region` with demand `weight` (supply/levels.py `site_levels` and the tier's settings).

    Kept per (regimen, supply) object as `cycle_packs` is (frozen configs, held while cached, so their
    ids are not reused), then per (region, weight): a run's replicates share them. The lists are the
    cache's: `SupplyModel` copies them for each site."""
    key = (id(regimen), id(supply))
    got = _SITE_SETUP.get(key)
    if got is None or got[0] is not regimen or got[1] is not supply:
        if len(_SITE_SETUP) >= 16:
            _SITE_SETUP.clear()
        got = _SITE_SETUP[key] = (regimen, supply, {})
    table = got[2]
    out = table.get((region, weight))
    if out is None:
        t = supply.tier_of(region)
        tier = supply.tiers[t]
        one = patient_cycle_packs(regimen, supply)  # packs of one patient's cycle (supply/levels.py)
        per = cycle_packs(regimen, supply)
        floors = np.array([p.site_min_packs for p in supply.presentations])
        base = tuple(lv.tolist() for lv in site_levels(per, floors, one, tier, weight))
        safety = np.ceil(tier.safety_patient_cycles * one - 1e-9).astype(np.int64).tolist()
        ship = supply.shipping
        # a site replaces stock that would leave its do-not-dispense window before the next review's
        # shipment is safely in: review interval + `expiry_cover_lead_times` (2) mean lead times
        # (assumption: covers the slow tail of the courier's lead time)
        cover = supply.review_days + tier.expiry_cover_lead_times * \
            ship.lead_days_by_region.get(region, ship.lead_days).mean()
        out = table[(region, weight)] = (base, tier.predictive, tier.forecast_days / regimen.cycle_days,
                                         safety, cover)
    return out


Levels = list[tuple[np.ndarray, np.ndarray, np.ndarray]]


def tier_levels(regimen: RegimenConfig, supply: SupplyConfig) -> Levels:
    """(initial, trigger, max) packs per presentation for each tier, at a site of demand weight 1 (the
    busiest site; supply/levels.py `site_levels` scales them for the others)."""
    per = cycle_packs(regimen, supply)
    floors = np.array([p.site_min_packs for p in supply.presentations])
    one = patient_cycle_packs(regimen, supply)
    return [site_levels(per, floors, one, t, 1.0) for t in supply.tiers]


def levels_for(rate: float, cycles: float, safety: int, trigger: int, top: int) -> tuple[int, int]:
    """A predictive site's (trigger, max) packs of one presentation: its active patients' need `rate`
    (packs per cycle) over half the forecast window (`cycles`) and over all of it, each plus `safety`
    packs, never below the tier's configured `trigger` and `top` (nor below 0). The one formula the
    event loop's three level updates (`_levels_of` whole or for the moved presentations, `_set_rate`)
    share; `r * c / 2` is `(r * c) / 2`, the same float."""
    if rate:
        rc = rate * cycles
        x = math.ceil(rc / 2 - 1e-9) + safety
        y = math.ceil(rc - 1e-9) + safety
        return (trigger if trigger >= x else x), (top if top >= y else y)
    return (trigger if trigger >= 0 else 0), (top if top >= 0 else 0)


class SupplyModel:
    """State and processes of one replicate's supply chain; `run()` then read the counters."""

    def __init__(self, regimen: RegimenConfig, supply: SupplyConfig, sites: list[SiteRow],
                 enrolments: list[EnrolmentRow], horizon_day: float, rng_treatment: np.random.Generator,
                 rng_supply: np.random.Generator, levels=None, weights: dict[str, float] | None = None):
        self.regimen, self.cfg = regimen, supply
        self.now = 0.0
        self._heap: list[tuple] = []  # (day, sequence number, a process or a list of waiting processes)
        self._seq = count()
        self._pending: list = []  # processes started by the event being handled
        self.horizon = float(horizon_day)
        self.rng = rng_supply
        pres = supply.presentations
        self.P = P = len(pres)
        self.units_per_pack = np.array([p.units_per_pack for p in pres], dtype=np.int64)
        self.drug_of = [regimen.drug_names.index(p.drug) for p in pres]
        self.sites = sites
        self.site_index = {s.site: i for i, s in enumerate(sites)}
        S = len(sites)
        self.depot = Stock(P, supply.depot.do_not_ship_days)
        self.stock = [Stock(P, supply.depot.do_not_dispense_days) for _ in range(S)]
        self.transit = [[0] * P for _ in range(S)]  # packs on their way to each site
        self.tier = [supply.tier_of(s.region) for s in sites]
        # each site's levels, predictive settings and expiry cover: figures of the configs, the site's
        # region and its demand weight only, computed once per process (`_site_setup`), copied per site
        setup = [_site_setup(regimen, supply, x.region, weight_of(weights, x.region)) for x in sites]
        if levels is not None:  # explicit (initial, trigger, max) per tier, the same at every site
            self.base_levels = [tuple(lv.tolist() for lv in levels[t]) for t in self.tier]
        else:  # each site's own, from its predicted demand (supply/levels.py)
            self.base_levels = [(a[:], b[:], c[:]) for (a, b, c), *_ in setup]
        self.predictive = [x[1] for x in setup]
        self.forecast_cycles = [x[2] for x in setup]
        self.safety = [x[3][:] for x in setup]  # packs above the predictive forecast, per site
        self.cover_days = [x[4] for x in setup]
        self.site_levels: list[tuple[list[int], list[int]] | None] = [None] * S  # (trigger, max) cache
        self.restock: list[list] = [[] for _ in range(S)]  # processes waiting for a delivery, per site
        self.waiting = [0] * S
        self._first_expiry = [math.inf] * S  # the review's: a site's first expiry when it was last clean
        self.waiting_need = [[0] * P for _ in range(S)]  # packs the waiting patients need
        self.active = [0] * S
        self.need_rate = [[0.0] * P for _ in range(S)]  # packs per cycle of active patients (predictive)
        self.on_order = [0] * P  # packs ordered for release to the depot, not yet released
        self.lot_seq = 0
        self.lead_by_region = supply.shipping.lead_days_by_region
        # figures read at every event, looked up once
        self.release_lead = float(supply.depot.release_lead_days)
        self.lead_cycles = supply.depot.release_lead_days / regimen.cycle_days
        self.network_reorder = bool(supply.depot.network_reorder)
        self.reorder_packs = [q.depot_reorder_packs for q in pres]
        self.lot_size = [q.lot_size_packs for q in pres]
        self.activation = [x.activation_day for x in sites]
        self.close = [x.close_day for x in sites]
        # `_network_all`'s sums and each site's share: (status 0 not counted / 1 opening soon / 2 counted,
        # levels, on hand, in transit, levels counted, stock counted)
        self._net_cache: list[tuple] = [(0, None, None, None, None, None)] * S
        self._net_extra, self._net_held, self._net_rate = [0] * P, [0] * P, [0.0] * P
        self.lead_pool: dict[tuple[bool, str], list[float]] = {}
        # counters (packs unless named otherwise)
        self.released = [0] * P
        self.shipped = [0] * P
        self.shipments_with = [0] * P
        self.shipments = 0
        self.emergency_shipments = 0
        self.dispensed = [0] * P  # (summed from the plan after the run: `_totals`)
        self.wasted_expiry_depot = [0] * P
        self.wasted_expiry_sites = [0] * P
        self.stockout_events = np.zeros(P, dtype=np.int64)
        # a failed dispensing is missed (the depot or a shipment on its way to the site could cover it)
        # or out of stock (neither could): missed + out of stock = stock-out events
        self.missed_events = np.zeros(P, dtype=np.int64)
        self.out_of_stock_events = np.zeros(P, dtype=np.int64)
        self.patient_days_without = np.zeros(len(regimen.drugs))
        self.min_dispense_margin = [math.inf] * P
        self.n_months = max(math.ceil(self.horizon / DAYS_PER_MONTH), 1)
        self.on_hand_depot_monthly = np.zeros((self.n_months, P), dtype=np.int64)
        self.on_hand_sites_monthly = np.zeros((self.n_months, P), dtype=np.int64)
        self.stockouts_monthly = np.zeros((self.n_months, P), dtype=np.int64)
        # treatment: draws (one row per enrolment in the given order) and the plan of every course
        self.enrolments = enrolments
        n = len(enrolments)
        self._days = days = [e.day for e in enrolments]  # (first doses: read again after the run)
        first = min(days, default=0.0)
        max_cycles = math.ceil(max(self.horizon - first, 0.0) / regimen.cycle_days) + 2
        draws = draw_courses(regimen, n, max_cycles, rng_treatment)
        self.progression_days = draws.progression_days
        units = patient_units(regimen, enrolment_covariates(enrolments, supply))
        keys = [(p.drug, float(p.strength_mg)) for p in pres]
        self.plan = plan_courses(regimen, draws, units, keys, self.units_per_pack,
                                 supply.partial_packs == "carry_over")
        self.max_cycles = max_cycles
        # what each patient did, read after the run
        self.n_given = [0] * n  # (arrays after the run)
        self.cap_visit = np.full(n, -1, dtype=np.int64)  # first visit at or past the capped drug's cap
        self.reason = [""] * n  # "" while on treatment (or never started)
        self.visit_day = [math.nan] * self.plan.need.shape[0]  # per planned cell
        # the plan as Python lists, read visit by visit (numpy item access is slower than a list's)
        plan = self.plan
        L = self._plan_lists = {k: getattr(plan, k).tolist() for k in (
            "cycles", "offset", "gap_days", "other_on", "rate_changed", "end_offset_days", "cap_offset_days",
            "capped_columns", "toxicity_end", "end_reason")}
        L["units_per_pack"] = self.units_per_pack.tolist()
        # packs per cycle each cell needs (units / units per pack: float64 division of exact integers, so
        # the quotient a Python int / int gives), one row per cell that needs other units than the one
        # before (a patient's first included), and each cell's row
        changed = plan.rate_changed
        L["rate_rows"] = (plan.need[changed] / self.units_per_pack).tolist()
        L["rate_row_of"] = (np.cumsum(changed) - 1).tolist()
        L["items"] = self._visit_items(plan.packs)
        self.last_enrol_day = max(days, default=0.0)
        # ---- the event loop's own figures (supply/model.py's loop methods; issue 16, phase 4) ----
        # the sites that ever open (an activation day), in site order: what `_network_all` walks
        self._net_sites = [s for s, a in enumerate(self.activation) if a is not None]
        # the depot's reorder point per presentation on the echelon stock (`_network_all` keeps it with
        # the sums it follows from: max(configured, the need over the release lead) + the sites' levels)
        self._net_points: list[int] = []
        self._reorder_points()
        self._net_next = -math.inf  # `_network_all` looks at every site until this day (see there)
        # a predictive site's levels as last computed, and the presentations whose need moved since
        self._lv_last: list[tuple[list[int], list[int]] | None] = [None] * S
        self._lv_moved: list[list[int]] = [[] for _ in range(S)]
        # each site's (stock, packs in transit), for the monthly snapshots; the snapshots' rows (depot,
        # sites) as they are taken
        self._snap_sites = list(zip(self.stock, self.transit, strict=True))
        self._snap_rows: tuple[list, list] = ([], [])

    @staticmethod
    def _visit_items(packs: np.ndarray) -> list[list[tuple[int, int]]]:
        """The packs of each planned visit as (presentation, packs) pairs, one shared list per distinct row
        (few distinct rows: found by one integer key per row, the row's digits in base max + 1; the keys
        marked in a table of every possible key when that table is small, else sorted by np.unique)."""
        cells, P = packs.shape
        base = int(packs.max(initial=0)) + 1
        if cells == 0 or packs.min() < 0 or base ** P >= 2**62:  # (keys would not be unique: tuples)
            keys = list(map(tuple, packs.tolist()))
            first: dict = {}
            for c, key in enumerate(keys):
                if key not in first:
                    first[key] = c
            rows = {key: [(p, n) for p, n in enumerate(packs[c].tolist()) if n] for key, c in first.items()}
            return [rows[key] for key in keys]
        powers = base ** np.arange(P, dtype=np.int64)
        keys = powers @ packs.T  # (packs.T: C-ordered for the plan's)
        if base ** P <= 4 * cells + 256:
            seen = np.zeros(base ** P, dtype=bool)
            seen[keys] = True
            distinct = np.flatnonzero(seen)
            which = (np.cumsum(seen) - 1)[keys]  # each cell's distinct row
        else:
            # (return_index: a stable sort, ~3x faster here than the default one)
            distinct, _, which = np.unique(keys, return_index=True, return_inverse=True)
        shared = np.empty(distinct.size, dtype=object)  # (one list per distinct row, picked for every cell)
        for j, row in enumerate((distinct[:, None] // powers % base).tolist()):  # (the keys' digits)
            shared[j] = [(p, n) for p, n in enumerate(row) if n]
        return shared[which.reshape(-1)].tolist()

    # ---- depot ---------------------------------------------------------------------------------------
    def _release_lot(self, p: int):
        pres = self.cfg.presentations[p]
        self.lot_seq += 1
        life_days = (pres.shelf_life_months - pres.age_at_release_months) * DAYS_PER_MONTH
        self.depot.add(p, self.now + life_days, self.lot_seq, pres.lot_size_packs)
        self.released[p] += pres.lot_size_packs

    def _release(self, p: int):
        yield self.cfg.depot.release_lead_days
        self.on_order[p] -= self.cfg.presentations[p].lot_size_packs
        self._release_lot(p)
        self._review_all()  # sites below their trigger get the new lot now, not at the next review

    def _demand_ahead(self) -> bool:
        """Whether any more dispensing can happen: a site still recruiting or a patient on treatment."""
        now = self.now
        if now >= self.horizon:
            return False
        if any(self.active) or now <= self.last_enrol_day:
            return True
        return any(s.activation_day is not None and (s.close_day is None or now < s.close_day)
                   for s in self.sites)

    def _depot_check(self, p: int, net: tuple[int, int, float] | None = None):
        """Order lots while the depot's inventory position is below the reorder point.

        The position counts the lots on order and only the depot stock still shippable when a lot
        ordered now would arrive: stock that enters its do-not-ship window within the release lead time
        is replaced before it goes, instead of leaving the depot empty for a whole lead time.
        """
        now = self.now
        depot = self.depot
        lots = depot.lots[p]
        if lots and lots[0][0] - depot.window_days <= now:
            self.wasted_expiry_depot[p] += depot.purge(p, now)
        reorder = self.reorder_packs[p]
        lead_end = now + self.release_lead + depot.window_days
        usable = depot.totals[p]
        if lots and lots[0][0] <= lead_end:  # some stock goes before a new lot could arrive
            usable = sum(n for expiry, _lot, n in lots if expiry > lead_end)
        if self.network_reorder:
            extra, held, rate = net if net is not None else self._network_need(p)
            # the depot's own reorder point: the configured one, or the active patients' need over the
            # release lead time when that is more (a network recruiting faster treats more at once)
            reorder = max(reorder, math.ceil(rate * self.lead_cycles - 1e-9)) + extra
            usable += held
        on_order = self.on_order
        if usable + on_order[p] >= reorder:
            return
        if not self._demand_ahead():
            return
        lot = self.lot_size[p]
        while usable + on_order[p] < reorder:
            on_order[p] += lot
            self._pending.append(self._release(p))

    def _network_need(self, p: int) -> tuple[int, int, float]:
        """Echelon stock of presentation p (see `_network_all`)."""
        extra, held, rate = self._network_all()
        return extra[p], held[p], rate[p]

    def _network_all(self) -> tuple[list[int], list[int], list[float]]:
        """Echelon stock per presentation: (the current max levels of the sites open, and the initial
        levels of those opening within the release lead time; their stock on hand + in transit, each up to
        its max; packs per cycle the active patients need, predictive tiers). The depot reorders while its
        own position plus the sites' falls below its reorder point plus what the sites are meant to hold,
        so a network of sites filling up to their levels does not empty the depot.

        `_network_full` computed incrementally: each site's share is kept with what it was computed from
        (its status, its levels object, its stock on hand and in transit) and recomputed only when one of
        those changed; the integer sums move by the changed shares, the packs-per-cycle sums (floats) are
        summed again in site order, as `_network_full` does, whenever a counted site's levels or the set of
        counted sites changed (a site's need changes only with its levels: `_set_rate`).

        The lists returned are the model's own sums (not copies: read them before the next call, never
        write them); `_net_points` then holds the depot's reorder point on them per presentation
        (`_depot_check`'s: max(configured, ceil(rate x lead cycles)) + the levels counted)."""
        now = self.now
        soon = now + self.release_lead
        open_now = now < self.horizon  # (_site_open_for_supply, inlined)
        activation, active, close, site_levels = self.activation, self.active, self.close, self.site_levels
        cache, extra, held = self._net_cache, self._net_extra, self._net_held
        rP = range(self.P)
        rate_stale = sums_moved = False
        # a site's share follows from its status (time, patients on treatment), levels, stock and packs
        # in transit; all but time set its stock's `moved` when they change. Time changes a status only
        # near an opening (less the release lead), an opening, a closing or the horizon: before the
        # first of those still ahead (less a day: float margins) only sites that moved are looked at
        full = now >= self._net_next
        stock = self.stock
        for s in self._net_sites:
            st = stock[s]
            if not (full or st.moved):
                continue
            st.moved = False
            a = activation[s]
            if a > soon:
                status = 0
            elif a > now:  # opens soon: it will be seeded
                status = 1
            else:
                # counted while open for supply (closed with no one on treatment: its stock is not the
                # network's any more), at its max now (raised by the predictive forecast)
                c = close[s]
                status = 2 if open_now and (active[s] > 0 or c is None or now < c) else 0
            old = cache[s]
            if status == 2:
                lv = site_levels[s] or self._levels_of(s)
                tot, tr = st.totals, self.transit[s]
                if old[0] == 2 and old[1] is lv:
                    if old[2] == tot and old[3] == tr:
                        continue
                    # only its stock moved: its share and the sums in one pass
                    top, oh = lv[1], old[5]
                    h = []
                    for p in rP:
                        x = tot[p] + tr[p]
                        if x >= top[p]:
                            x = top[p]
                        held[p] += x - oh[p]
                        h.append(x)
                    cache[s] = (2, lv, tot[:], tr[:], top, h)
                    continue
                top = lv[1]
                rate_stale = sums_moved = True  # (a new counted site, or new levels: its need moved)
                if old[0] == 2:  # counted before, new levels: its old share out and the new in, one pass
                    ot, oh = old[4], old[5]
                    h = []
                    for p in rP:
                        x, y = tot[p] + tr[p], top[p]
                        if x >= y:
                            x = y
                        extra[p] += y - ot[p]
                        held[p] += x - oh[p]
                        h.append(x)
                    cache[s] = (2, lv, tot[:], tr[:], top, h)
                    continue
                h = [tot[p] + tr[p] if tot[p] + tr[p] < top[p] else top[p] for p in rP]
                new = (2, lv, tot[:], tr[:], top, h)
            elif status == old[0]:
                continue
            elif status == 1:
                new = (1, None, None, None, self.base_levels[s][0], None)
                rate_stale = rate_stale or old[0] == 2
            else:
                new = (0, None, None, None, None, None)
                rate_stale = rate_stale or old[0] == 2
            sums_moved = True
            if old[0]:  # take the old share out
                o = old[4]
                for p in rP:
                    extra[p] -= o[p]
                if old[0] == 2:
                    o = old[5]
                    for p in rP:
                        held[p] -= o[p]
            if status:
                o = new[4]
                for p in rP:
                    extra[p] += o[p]
                if status == 2:
                    o = new[5]
                    for p in rP:
                        held[p] += o[p]
            cache[s] = new
        if rate_stale:
            rate = self._net_rate = [0.0] * self.P
            need_rate = self.need_rate
            for s, c in enumerate(cache):
                if c[0] == 2:
                    need = need_rate[s]
                    for p in rP:
                        rate[p] += need[p]
        if sums_moved:
            self._reorder_points()
        if full:
            self._net_next = self._next_status_day(now)
        return extra, held, self._net_rate

    def _next_status_day(self, now: float) -> float:
        """A day before which no site's echelon status can change by time alone: a day (float margin)
        before the first opening (less the release lead), opening, closing or horizon not yet a day past."""
        rl, nxt = self.release_lead, math.inf
        for s in self._net_sites:
            a, c = self.activation[s], self.close[s]
            for x in (a - rl, a, math.inf if c is None else c):
                if now < x + 1.0 and x - 1.0 < nxt:
                    nxt = x - 1.0
        h = self.horizon
        return h - 1.0 if now < h + 1.0 and h - 1.0 < nxt else nxt

    def _reorder_points(self) -> None:
        """`_net_points` from the echelon sums: max(configured, ceil(rate x lead cycles)) + levels."""
        ceil, lead_cycles, rate, extra = math.ceil, self.lead_cycles, self._net_rate, self._net_extra
        points = []
        for p, r in enumerate(self.reorder_packs):
            x = ceil(rate[p] * lead_cycles - 1e-9)
            points.append((r if r >= x else x) + extra[p])
        self._net_points = points

    def _network_full(self) -> tuple[list[int], list[int], list[float]]:
        """`_network_all` computed from scratch (the definition; tests check the two agree)."""
        P = self.P
        now = self.now
        soon = now + self.release_lead
        extra, held, rate = [0] * P, [0] * P, [0.0] * P
        rP = range(P)
        open_now = now < self.horizon  # (_site_open_for_supply, inlined)
        active, close, site_levels = self.active, self.close, self.site_levels
        for s, a in enumerate(self.activation):
            if a is None or a > soon:
                continue
            if a > now:  # opens soon: it will be seeded
                for p, n in enumerate(self.base_levels[s][0]):
                    extra[p] += n
                continue
            # counted while open for supply (closed with no one on treatment: its stock is not the
            # network's any more), at its max now (raised by the predictive forecast)
            c = close[s]
            if not open_now or not (active[s] > 0 or c is None or now < c):
                continue
            top = (site_levels[s] or self._levels_of(s))[1]
            totals, transit, need = self.stock[s].totals, self.transit[s], self.need_rate[s]
            for p in rP:
                t = top[p]
                extra[p] += t
                # stock above a site's max serves only that site (no transfers): counted up to the max
                h = totals[p] + transit[p]
                held[p] += h if h < t else t
                rate[p] += need[p]
        return extra, held, rate

    # ---- shipments -----------------------------------------------------------------------------------
    def _lead(self, s: int, emergency: bool) -> float:
        ship = self.cfg.shipping
        dist = ship.emergency_lead_days if emergency else self.lead_by_region.get(self.sites[s].region,
                                                                                  ship.lead_days)
        # drawn 64 at a time per (kind, region) from the supply stream: same sequence for same inputs
        key = (emergency, self.sites[s].region)
        pool = self.lead_pool.get(key)
        if not pool:
            pool = self.lead_pool[key] = np.maximum(dist.sample(self.rng, 64), 0.0).tolist()[::-1]
        return pool.pop()

    def _ship(self, s: int, want: list[int], emergency: bool) -> None:
        """Send up to `want` packs per presentation from the depot to site s (one shipment)."""
        items = []
        transit = self.transit[s]
        net = top = None
        first = True
        totals = self.stock[s].totals
        depot = self.depot
        dtot = depot.totals
        now = self.now
        win = depot.window_days
        lead_end = now + self.release_lead + win
        on_order, reorder_packs = self.on_order, self.reorder_packs
        shipped, shipments_with = self.shipped, self.shipments_with
        for p, w in enumerate(want):
            if w <= 0:
                continue
            if first:
                first = False
                if self.network_reorder:
                    # the network's stock before this shipment; taking from the depot changes only site
                    # s's share
                    net = self._network_all()
                    n_extra, n_held, n_rate = net
                    points = self._net_points  # (`_network_all`'s reorder points, for these sums)
                    # site s's max levels now (raised by the predictive forecast) if its stock counts in
                    # the network's: opened, open for supply (`_site_open_for_supply`; closed with no one
                    # on treatment, its stock is not the network's any more)
                    a, c = self.activation[s], self.close[s]
                    if a is not None and a <= now < self.horizon and \
                            (self.active[s] > 0 or c is None or now < c):
                        top = (self.site_levels[s] or self._levels_of(s))[1]
            lots = depot.lots[p]
            if lots and lots[0][0] - win <= now:
                self.wasted_expiry_depot[p] += depot.purge(p, now)
            lot = lots[0] if lots else None
            if lot is not None and lot[2] > w:  # `Stock.take`, its usual case inline: the first lot covers it
                got = [(lot[0], lot[1], w)]
                lot[2] -= w
                dtot[p] -= w
                depot.changed = True
                n = w
            else:
                got = depot.take(p, w)
                n = got[0][2] if len(got) == 1 else sum(g[2] for g in got)
            if net is not None:
                held = n_held[p]  # the network's held stock of p with this shipment
                if top is not None and n:
                    before = totals[p] + transit[p]
                    cap = top[p]
                    held += (before + n if before + n < cap else cap) - (before if before < cap else cap)
            if n:
                items.append((p, got))
                shipped[p] += n
                transit[p] += n
                shipments_with[p] += 1
            # `_depot_check`, its usual case (nothing near the do-not-ship window, the position at or above
            # the reorder point: nothing to do) inline
            if net is not None:
                if (lots and (lots[0][0] <= lead_end or lots[0][0] - win <= now)) or \
                        dtot[p] + held + on_order[p] < points[p]:
                    self._depot_check(p, (n_extra[p], held, n_rate[p]))
            elif (lots and (lots[0][0] <= lead_end or lots[0][0] - win <= now)) or \
                    dtot[p] + on_order[p] < reorder_packs[p]:
                self._depot_check(p, None)
        if items:
            st = self.stock[s]
            st.changed = st.moved = True
            self.shipments += 1
            self.emergency_shipments += emergency
            self._pending.append(self._deliver(s, items, self._lead(s, emergency)))

    def _deliver(self, s: int, items, lead: float):
        yield lead
        st = self.stock[s]
        transit = self.transit[s]
        st.moved = True  # (its packs in transit: the echelon sums)
        for p, got in items:
            for expiry, lot, n in got:
                st.add(p, expiry, lot, n)
                transit[p] -= n
            self.wasted_expiry_sites[p] += st.purge(p, self.now)
        waiters, self.restock[s] = self.restock[s], []
        if waiters:
            self._wake(waiters)

    def _wake(self, waiters: list) -> None:
        """Resume the waiters after the events already scheduled for today (simpy's event succeed)."""
        heappush(self._heap, (self.now, next(self._seq), waiters))

    def _position(self, s: int) -> list[int]:
        """Stock position per presentation at site s: packs in transit plus packs on hand that will still
        be dispensable after the site's cover (next review + mean shipping lead time), so stock about to
        enter its do-not-dispense window is replaced before it goes rather than after (lots already in
        the window are written off first)."""
        st = self.stock[s]
        now = self.now
        win = st.window_days
        until = now + self.cover_days[s] + win
        transit, totals = self.transit[s], st.totals
        if st.first > until and st.first - win > now:  # no lot near its window (`Stock.first`)
            return [totals[p] + transit[p] for p in range(self.P)]
        out = []
        for p, lots in enumerate(st.lots):
            if lots:
                e = lots[0][0]
                if e - win <= now:
                    self.wasted_expiry_sites[p] += st.purge(p, now)
                    if lots:
                        e = lots[0][0]
                if lots and e <= until:
                    out.append(sum(n for expiry, _lot, n in lots if expiry > until) + transit[p])
                    continue
            out.append(totals[p] + transit[p])
        return out

    def _site_open_for_supply(self, s: int) -> bool:
        site = self.sites[s]
        now = self.now
        if site.activation_day is None or now < site.activation_day or now >= self.horizon:
            return False
        return self.active[s] > 0 or site.close_day is None or now < site.close_day

    def _levels_of(self, s: int) -> tuple[list[int], list[int]]:
        """(trigger, max) packs per presentation at site s, cached until the active patients' need changes.

        Predictive: the active patients' next cycles; trigger covers half the forecast window, max all.
        """
        got = self.site_levels[s]
        if got is None:
            _, trig, top = self.base_levels[s]
            if self.predictive[s]:
                c = self.forecast_cycles[s]
                rate = self.need_rate[s]
                safe = self.safety[s]
                last, moved = self._lv_last[s], self._lv_moved[s]
                if last is not None:
                    # the levels last computed here, recomputed for the presentations whose need moved
                    # since (`_set_rate`): each presentation's levels follow from its own need only
                    trig2, top2 = last[0][:], last[1][:]
                    for p in moved:
                        trig2[p], top2[p] = levels_for(rate[p], c, safe[p], trig[p], top[p])
                else:
                    trig2, top2 = [], []
                    for p in range(self.P):  # (indexing: faster than a zip of four lists)
                        a, b = levels_for(rate[p], c, safe[p], trig[p], top[p])
                        trig2.append(a)
                        top2.append(b)
                moved.clear()
                got = self.site_levels[s] = self._lv_last[s] = (trig2, top2)
                return got
            got = self.site_levels[s] = (trig, top)
        return got

    def _resupply(self, s: int, emergency: bool = False) -> None:
        if not self.waiting[s]:  # (`_site_open_for_supply`, inlined)
            a, now = self.activation[s], self.now
            if a is None or now < a or now >= self.horizon:
                return
            c = self.close[s]
            if not (self.active[s] > 0 or c is None or now < c):
                return
        trig, top = self.site_levels[s] or self._levels_of(s)
        if not emergency:
            # the usual review: stock on hand + in transit above the trigger and no lot near its window
            # (then the position is on hand + in transit, see `_position`): nothing to do
            st = self.stock[s]
            now = self.now
            win = st.window_days
            until = now + self.cover_days[s] + win
            all_lots, totals, transit = st.lots, st.totals, self.transit[s]
            if st.first > until and st.first - win > now:  # no lot near its window (`Stock.first`)
                for p in range(self.P):
                    if totals[p] + transit[p] < trig[p]:
                        break
                else:
                    return
            else:
                for p in range(self.P):
                    lots = all_lots[p]
                    if totals[p] + transit[p] < trig[p] or \
                            (lots and (lots[0][0] <= until or lots[0][0] - win <= now)):
                        break
                else:
                    return
        pos = self._position(s)
        if emergency:
            # an emergency shipment always covers what the waiting patients need, whatever the levels
            need = self.waiting_need[s]
            want = [max(t - q, w - q, 0) for t, q, w in zip(top, pos, need, strict=True)]
            self._ship(s, want, True)
            return
        for p in range(self.P):
            if pos[p] < trig[p]:
                self._ship(s, [top[p] - pos[p] if top[p] > pos[p] else 0 for p in range(self.P)], False)
                break

    def _review_all(self, emergency_only: bool = False) -> None:
        now = self.now
        open_now = now < self.horizon
        waiting, active, close, site_levels = self.waiting, self.active, self.close, self.site_levels
        first_expiry = self._first_expiry
        for s, a in enumerate(self.activation):
            if waiting[s]:
                self._resupply(s, emergency=True)
                continue
            if emergency_only:
                continue
            # `_resupply(s)`'s checks inline (a site closed for supply; the usual review: stock on hand
            # + in transit above the trigger and no lot near its window), the rest in `_resupply`
            if a is None or now < a or not open_now:
                continue
            c = close[s]
            if not (active[s] > 0 or c is None or now < c):
                continue
            st = self.stock[s]
            win = st.window_days
            until = now + self.cover_days[s] + win
            if not st.changed:
                # nothing the check reads changed since it last found nothing to do here (stock on hand,
                # in transit, levels): only time moved, and the lot first to expire decides the rest
                e = first_expiry[s]
                if e > until and e - win > now:
                    continue
            trig = (site_levels[s] or self._levels_of(s))[0]
            all_lots, totals, transit = st.lots, st.totals, self.transit[s]
            e_min = st.first
            if e_min > until and e_min - win > now:  # no lot near its window: the levels decide
                for p in range(self.P):
                    if totals[p] + transit[p] < trig[p]:
                        self._resupply(s)
                        break
                else:  # nothing to do (the first expiry: `Stock.first`, the least of the first lots')
                    st.changed = False
                    first_expiry[s] = e_min
                continue
            e_min = math.inf
            for p in range(self.P):
                if totals[p] + transit[p] < trig[p]:
                    self._resupply(s)
                    break
                lots = all_lots[p]
                if lots:
                    e = lots[0][0]
                    if e <= until or e - win <= now:
                        self._resupply(s)
                        break
                    if e < e_min:
                        e_min = e
            else:  # nothing to do: the next review skips the site until something changes
                st.changed = False
                first_expiry[s] = e_min
        self._depot_review()

    def _depot_review(self) -> None:
        """`_depot_check` of every presentation, the network's stock computed once; the usual case (the
        depot's position at or above its reorder point, nothing near the do-not-ship window) inline."""
        now = self.now
        depot = self.depot
        win = depot.window_days
        lead_end = now + self.release_lead + win
        network = self.network_reorder
        if network:
            extra, held, rate = self._network_all()
            points = self._net_points  # (max(configured, ceil(rate x lead cycles)) + extra)
        on_order, reorder_packs, totals = self.on_order, self.reorder_packs, depot.totals
        first = depot.first
        if first > lead_end and first - win > now:  # no lot near the windows (`Stock.first`)
            if network:
                for p in range(self.P):
                    if totals[p] + held[p] + on_order[p] < points[p]:
                        self._depot_check(p, (extra[p], held[p], rate[p]))
            else:
                for p in range(self.P):
                    if totals[p] + on_order[p] < reorder_packs[p]:
                        self._depot_check(p, None)
            return
        for p, lots in enumerate(depot.lots):
            if lots and (lots[0][0] <= lead_end or lots[0][0] - win <= now):  # near its window: in full
                self._depot_check(p, (extra[p], held[p], rate[p]) if network else None)
            elif network:
                if totals[p] + held[p] + on_order[p] < points[p]:
                    self._depot_check(p, (extra[p], held[p], rate[p]))
            elif totals[p] + on_order[p] < reorder_packs[p]:
                self._depot_check(p, None)

    def _review(self):
        days = self.cfg.review_days
        while self.now < self.horizon:
            self._review_all()
            yield days

    def _activation(self, s: int):
        site = self.sites[s]
        yield site.activation_day
        init = self.base_levels[s][0]
        pos = self._position(s)
        self._ship(s, [a - b for a, b in zip(init, pos, strict=True)], emergency=False)

    def _snapshots(self):
        for m in range(self.n_months):
            t = m * DAYS_PER_MONTH
            if t > self.now:
                yield t - self.now
            now = self.now
            depot, sites, rP = self.depot, self._snap_sites, range(self.P)
            # the write-offs first (a stock whose first expiry is outside its window has none:
            # `Stock.first`), then the rows: a presentation's purge changes only its own packs
            if depot.first - depot.window_days <= now:
                for p in rP:
                    self.wasted_expiry_depot[p] += depot.purge(p, now)
            for st, _ in sites:
                if st.first - st.window_days <= now:
                    for p in rP:
                        self.wasted_expiry_sites[p] += st.purge(p, now)
            row_depot, row_sites = depot.totals[:], []
            for p in rP:
                tot = 0
                for st, transit in sites:
                    tot += st.totals[p] + transit[p]
                row_sites.append(tot)
            # (the rows of months 0, 1, ...: written to the numpy arrays once, after the loop: `run`)
            self._snap_rows[0].append(row_depot)
            self._snap_rows[1].append(row_sites)

    # ---- patients ------------------------------------------------------------------------------------
    def _month(self, day: float) -> int:
        return min(int(day // DAYS_PER_MONTH), self.n_months - 1)

    def _set_rate(self, s: int, old: list[float], new: list[float]) -> None:
        """A patient's packs per cycle at (predictive) site s moved from `old` to `new`: the site's need,
        and its levels for the presentations whose need moved (`_levels_of`'s formula, computed here
        once the site has levels: each presentation's levels follow from its own need only)."""
        rate = self.need_rate[s]
        st = self.stock[s]
        st.changed = st.moved = True  # (its levels: the weekly review and the echelon sums read them)
        last = self._lv_last[s]
        if last is None:  # (no levels yet: `_levels_of` computes every presentation's when read)
            moved = self._lv_moved[s]
            for p in range(self.P):
                a, b = old[p], new[p]
                if a != b:
                    rate[p] += b - a
                    moved.append(p)
            self.site_levels[s] = None
            return
        # a new levels object (the echelon sums see new levels by identity), the last one's lists copied
        trig2, top2 = last[0][:], last[1][:]
        _, trig, top = self.base_levels[s]
        c, safe = self.forecast_cycles[s], self.safety[s]
        for p in range(self.P):
            a, b = old[p], new[p]
            if a != b:
                r = rate[p] = rate[p] + (b - a)  # (the float `rate[p] += b - a` gives)
                trig2[p], top2[p] = levels_for(r, c, safe[p], trig[p], top[p])
        self.site_levels[s] = self._lv_last[s] = (trig2, top2)

    def _patient(self, i: int, s: int, first_day: float):
        yield first_day - self.now
        P, L = self.P, self._plan_lists
        bound = L["cycles"][i]
        off = L["offset"][i]
        # the packs of each planned visit as (presentation, packs) pairs; few distinct rows, so shared
        visits = L["items"][off:off + bound]
        gaps = L["gap_days"][off:off + bound]
        other_on = L["other_on"][off:off + bound]
        changed = L["rate_changed"][off:off + bound]
        end_day = first_day + L["end_offset_days"][i]
        cap_day = first_day + L["cap_offset_days"][i]
        cap_cols = L["capped_columns"]
        tox_end = L["toxicity_end"][i]
        K = self.max_cycles
        k_stop = min(K, tox_end)
        end_bound = bound < k_stop  # the plan's last visit is the one before the calendar end
        predictive = self.predictive[s]
        rate = [0.0] * P
        rate_rows, rate_row_of = L["rate_rows"], L["rate_row_of"]
        st = self.stock[s]
        lots, totals, win = st.lots, st.totals, st.window_days
        transit = self.transit[s]
        margin = self.min_dispense_margin
        site_levels, visit_day, n_given = self.site_levels, self.visit_day, self.n_given
        all_p = range(P)
        self.active[s] += 1
        st.moved = True  # (patients on treatment: whether a closed site still counts in the echelon)
        k = 0
        capped = False
        k_first = min(bound, k_stop) if end_bound else k_stop  # the first k at which a check below ends
        while True:
            t = self.now
            if t >= end_day or k >= k_first:
                # the calendar ends first (PatientCourse.visit, step 2); `bound` guards against rounding
                if t >= end_day or (end_bound and k >= bound):
                    reason = END_REASONS[L["end_reason"][i]]
                else:
                    reason = "horizon" if k >= K else "toxicity"
                break
            items = visits[k]
            new_cap = False
            if not capped and t >= cap_day:
                new_cap = capped = True
                self.cap_visit[i] = k
            if capped:
                if not other_on[k]:
                    reason = "toxicity"
                    break
                items = [(p, n) for p, n in items if not cap_cols[p]]
            rate_moved = predictive and (new_cap or changed[k])
            if rate_moved:
                new = rate_rows[rate_row_of[off + k]]  # (the cell's: its last changed cell's)
                if capped:
                    new = [0.0 if cc else r for r, cc in zip(new, cap_cols, strict=True)]
                self._set_rate(s, rate, new)
                rate = new
            short = None
            if st.first - win > t:  # no lot at the site is inside its window: nothing to write off
                for p, n in items:
                    if totals[p] < n:
                        short = [p for p, n in items if totals[p] < n]
                        break
            else:
                for p, n in items:
                    lp = lots[p]
                    if lp and lp[0][0] - win <= t:
                        self.wasted_expiry_sites[p] += st.purge(p, t)
                    if totals[p] < n:
                        short = [p for p, n in items if totals[p] < n]
                        break
            if short:
                yield from self._wait(off + k, s, items, short, capped)
                t = self.now
            # review the site when this dispensing takes a presentation below its trigger (or the
            # predictive levels moved: any presentation); expiry and other changes wait for the weekly review
            trig = (site_levels[s] or self._levels_of(s))[0]
            low = False
            for p, n in items:
                lot = lots[p][0]  # Stock.dispense, inlined for the usual case (the first lot covers it)
                expiry = lot[0]
                if lot[2] > n:
                    lot[2] -= n
                    totals[p] -= n
                else:
                    st.dispense(p, n)
                if expiry - t < margin[p]:
                    margin[p] = expiry - t
                if totals[p] + transit[p] < trig[p]:
                    low = True
            st.moved = True  # (the packs dispensed in place above: the echelon sums read them)
            visit_day[off + k] = t
            k += 1
            n_given[i] = k
            if rate_moved or short:
                low = False
                for p in all_p:
                    if totals[p] + transit[p] < trig[p]:
                        low = True
                        break
            if low:
                # (a dispensing that leaves every presentation at or above its trigger keeps the weekly
                # review's verdict on the site: the first lots' expiry days only move later)
                st.changed = True
                self._resupply(s)
            yield gaps[k - 1]
        if predictive:
            self._set_rate(s, rate, [0.0] * P)
        self.active[s] -= 1
        st.moved = True
        self.reason[i] = reason

    def _wait(self, cell: int, s: int, items: list[tuple[int, int]], short: list[int], capped: bool):
        """A stock-out: count it, ask for an emergency shipment, wait until every item is on hand."""
        st = self.stock[s]
        asked = self.now
        m = self._month(asked)
        want = dict(items)
        for p in short:
            self.stockout_events[p] += 1
            self.stockouts_monthly[m, p] += 1
            self.wasted_expiry_depot[p] += self.depot.purge(p, asked)
            upstream = self.depot.totals[p] + self.transit[s][p]
            if upstream >= want[p] - st.totals[p]:
                self.missed_events[p] += 1
            else:
                self.out_of_stock_events[p] += 1
        need = self.waiting_need[s]
        while short:
            self.waiting[s] += 1
            for p, n in items:
                need[p] += n
            self._resupply(s, emergency=True)
            yield self.restock[s]  # resumed by the next delivery to the site
            self.waiting[s] -= 1
            for p, n in items:
                need[p] -= n
            for p, _ in items:
                self.wasted_expiry_sites[p] += st.purge(p, self.now)
            short = [p for p, n in items if st.totals[p] < n]
        cap_cols = self.plan.capped_columns
        drugs = {self.drug_of[p] for p in range(self.P)
                 if self.plan.need[cell, p] and not (capped and cap_cols[p])}
        for drug in drugs:
            self.patient_days_without[drug] += self.now - asked

    # ---- run -----------------------------------------------------------------------------------------
    def run(self) -> None:
        if self.horizon <= self.now:  # (what simpy said, and when: before anything ran)
            raise ValueError(f"until ({self.horizon}) must be greater than the current simulation time")
        # a site opening or a first dose before day 0 (the horizon is later): simpy's timeout refused it
        days = [s.activation_day for s in self.sites if s.activation_day is not None]
        for day in days + [e.day for e in self.enrolments]:
            if day < 0:
                raise ValueError(f"Negative delay {day}")
        start = self._pending
        for p, pres in enumerate(self.cfg.presentations):
            for _ in range(pres.initial_lots):
                self._release_lot(p)
        for s, site in enumerate(self.sites):
            if site.activation_day is not None and site.activation_day < self.horizon:
                start.append(self._activation(s))
        for i, e in enumerate(self.enrolments):
            if e.day < self.horizon:
                start.append(self._patient(i, self.site_index[e.site], e.day))
        start.append(self._review())
        start.append(self._snapshots())
        self._loop()
        depot_rows, site_rows = self._snap_rows  # the monthly snapshots taken (months 0, 1, ...)
        if depot_rows:
            self.on_hand_depot_monthly[:len(depot_rows)] = depot_rows
            self.on_hand_sites_monthly[:len(site_rows)] = site_rows
        self._totals()

    def _loop(self) -> None:
        """Run the processes to the horizon (see the module's docstring for the semantics)."""
        heap, pending, seq, horizon = self._heap, self._pending, self._seq, self.horizon
        # a stop at the horizon: it sorts before every event on or after it (sequence number -1, below
        # every event's), so popping it is the stop before the first event at the horizon, and the heap
        # is never empty
        heappush(heap, (horizon, -1, None))
        while True:
            if pending:  # processes started by the last event run to their first yield, in order
                now = self.now
                for g in pending:  # (a starting process may start more: they are appended)
                    d = next(g, None)
                    if d is not None:
                        if d.__class__ is list:
                            d.append(g)
                        else:
                            heappush(heap, (now + d, next(seq), g))
                pending.clear()
            now, _, g = heappop(heap)
            if now >= horizon:  # (the stop)
                return
            self.now = now
            if g.__class__ is not list:
                d = next(g, None)
                if d is not None:
                    if d.__class__ is list:
                        d.append(g)
                    else:
                        heappush(heap, (now + d, next(seq), g))
            else:  # a delivery's waiters, in the order they waited
                for w in g:
                    d = next(w, None)
                    if d is not None:
                        if d.__class__ is list:
                            d.append(w)
                        else:
                            heappush(heap, (now + d, next(seq), w))

    def _treatment_counts(self, still_on: np.ndarray | None = None) -> dict[str, int]:
        """Integer counts of the courses of the patients who started treatment within the horizon (so
        pooled figures do not depend on the order replicates are added): progression-free at 12, 24 and
        36 months (the drawn progression time), months on treatment (first dose to the end of the last
        cycle given, cut at the horizon) in thousandths, and patients still on the capped drug at its cap
        (the investigator's review, e.g. penpulimab at 2 years). `still_on`: each patient on treatment
        at the horizon (as `_totals` finds it), or None to find it here. (Counts of bools by
        `np.count_nonzero`: the integers `int(x.sum())` gives, without the integer sum.)"""
        def count(flags: np.ndarray) -> int:
            return int(np.count_nonzero(flags))

        n_given = np.asarray(self.n_given)
        start = np.array(self._days, dtype=float)
        treated = (start < self.horizon) & (n_given > 0)
        pfs_months = self.progression_days / DAYS_PER_MONTH
        out = {"patients": count(treated)}
        for m in (12, 24, 36):
            out[f"progression_free_{m}m"] = count(treated & (pfs_months > m))
        idx = np.flatnonzero(treated)
        last = np.asarray(self.visit_day)[self.plan.offset[idx] + n_given[idx] - 1]
        end = np.minimum(last + self.regimen.cycle_days, self.horizon)
        out["months_on_treatment_milli"] = int(np.rint((end - start[idx]) / DAYS_PER_MONTH * 1000).sum())
        out["reached_cap"] = count(treated & (self.cap_visit >= 0))
        if still_on is None:
            still_on = np.array([r in ("", "horizon") for r in self.reason], dtype=bool)
        out["on_treatment_at_horizon"] = count(treated & still_on)
        return out

    def _totals(self) -> None:
        """Units taken, returned and held, and packs dispensed by month, from the plan and each patient's
        cycles given (the capped drug only before the cap).

        Presentation by cell (the plan's cells x P arrays are Fortran-ordered: their transposes are
        C-ordered P x cells, `plan_courses`): each presentation's mask and sums run along the long axis,
        without copies. Integer sums, so the figures are those of any order of summing."""
        n_given = self.n_given = np.array(self.n_given, dtype=np.int64)
        vd = self.visit_day = np.array(self.visit_day, dtype=float)
        plan, P = self.plan, self.P
        n = len(self.enrolments)
        pi, ck = plan.cell_patient, plan.cell_cycle  # patient and cycle of each cell
        N = pi.size
        cap_visit, cap_cols = self.cap_visit, plan.capped_columns
        given = ck < n_given[pi]
        # each presentation's cells given: the capped drug's only before the patient's cap visit
        if cap_cols.any():
            before_cap = given & (ck < np.where(cap_visit >= 0, cap_visit, _INT64_MAX)[pi])
            mask = np.where(cap_cols[:, None], before_cap, given)  # P x cells
        else:
            mask = given
        self.taken_units = (plan.taken.T * mask).sum(axis=1)
        returned = (plan.returned.T * mask).sum(axis=1)
        balance = plan.balance.T  # P x cells
        has = n_given > 0
        last = plan.offset + np.maximum(n_given - 1, 0)
        final = balance[:, np.minimum(last, N - 1)] * has if N else np.zeros((P, n), dtype=np.int64)
        capped_before = (cap_visit >= 0) & (cap_visit < n_given)
        # the capped drug's balance went back at the first visit past the cap
        back = capped_before & (cap_visit > 0)
        at_cap = balance[:, plan.offset[back] + cap_visit[back] - 1]
        returned += (at_cap * cap_cols[:, None]).sum(axis=1)
        final *= ~(cap_cols[:, None] & capped_before)
        on = np.array([r in ("", "horizon") for r in self.reason], dtype=bool)
        self.held_units = (final * on).sum(axis=1)
        self.returned_units = returned + (final * ~on).sum(axis=1)
        self.cycles_given = int(n_given.sum())
        h = self.horizon
        # ("": still on treatment when the simulation stops; counted in the order first met, as before)
        self.end_reasons = dict(Counter([r or "horizon" for r, d in zip(self.reason, self._days, strict=True)
                                         if d < h]))
        self.treatment = self._treatment_counts(on)
        M = self.n_months
        # (cells never visited are NaN: month 0, and not given)
        months = np.minimum((np.where(vd == vd, vd, 0.0) // DAYS_PER_MONTH).astype(np.int64), M - 1)
        given_packs = plan.packs.T * mask  # P x cells
        if given_packs.size and given_packs.min() >= 0 and given_packs.sum() < _EXACT_FLOAT_SUM:
            # one bincount over (presentation, month) cells: float sums of integers below 2^53 are exact,
            # so the counts equal np.add.at's (three times slower here)
            cell = (months + (np.arange(P) * M)[:, None]).ravel()
            rows = np.bincount(cell, weights=given_packs.ravel(), minlength=P * M).astype(np.int64)
            rows = rows.reshape(P, M)
        else:
            rows = np.zeros((M, P), dtype=np.int64)
            np.add.at(rows, months, given_packs.T)
            rows = rows.T
        self.dispensed_monthly = np.ascontiguousarray(rows.T)  # months x presentations
        # packs dispensed: the visits' packs summed once here (the integer sum of what each visit took)
        self.dispensed = rows.sum(axis=1)
        for name in ("released", "shipped", "shipments_with", "wasted_expiry_depot",
                     "wasted_expiry_sites"):
            setattr(self, name, np.array(getattr(self, name), dtype=np.int64))
        self.min_dispense_margin = np.array(self.min_dispense_margin, dtype=float)
        self.in_transit = np.array(self.transit, dtype=np.int64).reshape(len(self.sites), P)
