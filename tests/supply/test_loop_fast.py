"""The event loop's fast paths (issue 16, phase 4) against the computations they replace.

- `_network_all` returns the model's own echelon sums (no copies), looks only at the sites whose
  stock, packs in transit, levels or patients moved (`Stock.moved`) until a status could change with
  time, and keeps the depot's reorder point per presentation (`_net_points`) beside them: at every
  call, on random networks (sites opening and closing at random days), the sums equal
  `_network_full`'s (summed from scratch) and each point equals the formula the depot's check used,
  max(configured, ceil(rate x release lead cycles - 1e-9)) + the levels counted, computed here from
  `_network_full`'s sums (a site not marked after a dispensing or a shipment, or an opening's release
  lead left out of the status days, fails it);
- the weekly depot review's inline checks on those points send exactly the presentations to
  `_depot_check` that the check itself (the definition) finds near the window or below their point;
- a predictive site's levels recomputed only for the presentations whose need moved equal the formula
  over every presentation, and no levels object handed out changes afterwards;
- `Stock.first` (the earliest expiry held, which settles every presentation's window check at once)
  is its definition after any sequence of the stock's operations.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st_

from hn005_sim.scenario.load import load_scenario
from hn005_sim.supply.inventory import Stock
from hn005_sim.supply.levels import demand_weights
from hn005_sim.supply.model import SupplyModel
from hn005_sim.supply.search import enrolments_for
from hn005_sim.supply.simulate import simulate_supply

from .conftest import ROOT
from .test_reference import _random_case


def _points_of(m: SupplyModel, extra, rate) -> list[int]:
    out = []
    for p, r in enumerate(m.reorder_packs):
        x = math.ceil(rate[p] * m.lead_cycles - 1e-9)
        out.append(max(r, x) + extra[p])
    return out


def _run_checked(monkeypatch, args, kwargs) -> dict[str, int]:
    seen = {"calls": 0, "bad": 0, "review_checks": 0, "review_bad": 0, "moved_only": 0}
    orig_all, orig_review, orig_check = (SupplyModel._network_all, SupplyModel._depot_review,
                                         SupplyModel._depot_check)

    def network_all(self):
        # (calls that look only at the sites whose stock moved: no status can change by time yet)
        seen["moved_only"] += self.now < self._net_next
        got = orig_all(self)
        full = self._network_full()
        seen["calls"] += 1
        if got != full or self._net_points != _points_of(self, full[0], full[2]):
            seen["bad"] += 1
        return got

    def depot_review(self):
        # the presentations the definition sends to `_depot_check`: near the do-not-ship window, or the
        # position (usable + held + on order) below the reorder point recomputed from scratch
        now, depot = self.now, self.depot
        lead_end = now + self.release_lead + depot.window_days
        extra, held, rate = self._network_full() if self.network_reorder else (None, None, None)
        want = []
        for p, lots in enumerate(depot.lots):
            if lots and (lots[0][0] <= lead_end or lots[0][0] - depot.window_days <= now):
                want.append(p)
            elif self.network_reorder:
                if depot.totals[p] + held[p] + self.on_order[p] < _points_of(self, extra, rate)[p]:
                    want.append(p)
            elif depot.totals[p] + self.on_order[p] < self.reorder_packs[p]:
                want.append(p)
        self._t_checked = []
        orig_review(self)
        seen["review_checks"] += 1
        seen["review_bad"] += self._t_checked != want
        self._t_checked = None

    def depot_check(self, p, net=None):
        if getattr(self, "_t_checked", None) is not None:
            self._t_checked.append(p)
        return orig_check(self, p, net)

    monkeypatch.setattr(SupplyModel, "_network_all", network_all)
    monkeypatch.setattr(SupplyModel, "_depot_review", depot_review)
    monkeypatch.setattr(SupplyModel, "_depot_check", depot_check)
    simulate_supply(*args, **kwargs)
    return seen


@pytest.mark.parametrize("seed", range(12))
def test_reorder_points_and_inline_checks_are_their_definition_on_random_networks(base, monkeypatch, seed):
    reg, sup, enrol, sites, horizon, weights = _random_case(base, seed)
    seen = _run_checked(monkeypatch, (reg, sup, enrol, sites, horizon, np.random.default_rng([seed, 1]),
                                      np.random.default_rng([seed, 2])), {"weights": weights})
    assert seen["bad"] == 0 and seen["review_bad"] == 0, seen
    assert seen["review_checks"] > 0
    if sup.depot.network_reorder and any(s[2] is not None for s in sites):
        assert seen["calls"] > 0


@pytest.mark.parametrize("scenario", ["baseline", "network_south_china"])
def test_reorder_points_are_their_definition_in_the_scenarios(monkeypatch, scenario):
    sc, _ = load_scenario(ROOT / "scenarios" / f"{scenario}.toml")
    e, s = enrolments_for(sc, 7, 1)
    seen = _run_checked(monkeypatch, (sc.regimen, sc.supply, e, s, None, np.random.default_rng(1),
                                      np.random.default_rng(2)), {"weights": demand_weights(sc)})
    assert seen["calls"] > 300 and seen["review_checks"] > 300
    assert seen["bad"] == 0 and seen["review_bad"] == 0, seen
    assert seen["moved_only"] > seen["calls"] / 2  # (most calls take the path that skips unmoved sites)


# ---- Stock.first -------------------------------------------------------------------------------------

_OPS = st_.lists(st_.one_of(
    st_.tuples(st_.just("add"), st_.integers(0, 2), st_.integers(0, 40), st_.integers(1, 6),
               st_.integers(-1, 9)),
    st_.tuples(st_.just("purge"), st_.integers(0, 2), st_.integers(0, 40)),
    st_.tuples(st_.just("take"), st_.integers(0, 2), st_.integers(0, 25)),
    st_.tuples(st_.just("dispense"), st_.integers(0, 2), st_.integers(1, 25)),
    st_.tuples(st_.just("inline"), st_.integers(0, 2), st_.integers(1, 5)),
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(_OPS, st_.sampled_from([0.0, 3.0, 7.5]))
def test_stock_first_is_the_earliest_expiry_held(ops, window):
    """After any sequence of adds (new lots and top-ups of a lot already held), purges, takes,
    dispensings and the model's in-place dispensing from a first lot that covers it, `Stock.first` is
    the least expiry day of the lots held (inf when none), and the one-comparison window check it
    settles agrees with every presentation's own check."""
    s = Stock(3, window)
    lot_id = 0
    for op in ops:
        kind, p = op[0], op[1]
        if kind == "add":
            expiry, packs, reuse = float(op[2]), op[3], op[4]
            held = [lot for lot in s.lots[p] if lot[1] == reuse]
            if held:  # a top-up of a lot already held: its own expiry day
                s.add(p, held[0][0], reuse, packs)
            else:
                lot_id += 1
                s.add(p, expiry, 100 + lot_id, packs)
        elif kind == "purge":
            s.purge(p, float(op[2]))
        elif kind == "take":
            s.take(p, op[2])
        elif kind == "dispense":
            if 0 < op[2] <= s.totals[p]:
                s.dispense(p, op[2])
        elif s.lots[p] and s.lots[p][0][2] > op[2]:  # `_patient`'s inline dispensing
            s.lots[p][0][2] -= op[2]
            s.totals[p] -= op[2]
        firsts = [lots[0][0] for lots in s.lots if lots]
        assert s.first == min(firsts, default=math.inf)
        assert s.totals == [sum(lot[2] for lot in lots) for lots in s.lots]
        for now in (0.0, 10.0, 20.0, 33.0):
            inside = any(lots and lots[0][0] - s.window_days <= now for lots in s.lots)
            assert inside == (s.first - s.window_days <= now)


# ---- predictive levels recomputed for the presentations whose need moved -------------------------------

def _levels_from_scratch(m: SupplyModel, s: int) -> tuple[list[int], list[int]]:
    _, trig, top = m.base_levels[s]
    if not m.predictive[s]:
        return trig, top
    c, rate, safe = m.forecast_cycles[s], m.need_rate[s], m.safety[s]
    out_trig, out_top = [], []
    for p in range(m.P):
        if rate[p]:
            out_trig.append(max(trig[p], math.ceil(rate[p] * c / 2 - 1e-9) + safe[p]))
            out_top.append(max(top[p], math.ceil(rate[p] * c - 1e-9) + safe[p]))
        else:
            out_trig.append(max(trig[p], 0))
            out_top.append(max(top[p], 0))
    return out_trig, out_top


def _check_levels(monkeypatch, seen: dict, handed: list) -> None:
    """Every (trigger, max) computed, by `_levels_of` when read or by `_set_rate` for the presentations
    whose need moved (phase 5: the site's levels updated where its need moves, once it has levels),
    checked against the formula over every presentation; the objects handed out kept in `handed`."""
    orig, orig_set = SupplyModel._levels_of, SupplyModel._set_rate

    def levels_of(self, s):
        fresh = self.site_levels[s] is None
        if fresh:
            seen["partial"] += self._lv_last[s] is not None
        got = orig(self, s)
        if fresh:
            seen["computed"] += 1
            seen["bad"] += (list(got[0]), list(got[1])) != _levels_from_scratch(self, s)
            handed.append((got, got[0][:], got[1][:]))
        return got

    def set_rate(self, s, old, new):
        orig_set(self, s, old, new)
        got = self.site_levels[s]
        if got is not None:  # (computed here: the site had levels)
            seen["computed"] += 1
            seen["partial"] += 1
            seen["bad"] += (list(got[0]), list(got[1])) != _levels_from_scratch(self, s)
            handed.append((got, got[0][:], got[1][:]))

    monkeypatch.setattr(SupplyModel, "_levels_of", levels_of)
    monkeypatch.setattr(SupplyModel, "_set_rate", set_rate)


@pytest.mark.parametrize("seed", range(12))
def test_levels_recomputed_in_part_are_the_levels_from_scratch(base, monkeypatch, seed):
    """Every (trigger, max) `_levels_of` or `_set_rate` computes equals the formula over every
    presentation, and no levels object handed out earlier changes afterwards (the echelon sums keep
    them)."""
    seen = {"computed": 0, "partial": 0, "bad": 0}
    handed: list[tuple] = []
    _check_levels(monkeypatch, seen, handed)
    reg, sup, enrol, sites, horizon, weights = _random_case(base, seed)
    simulate_supply(reg, sup, enrol, sites, horizon, np.random.default_rng([seed, 1]),
                    np.random.default_rng([seed, 2]), weights=weights)
    assert seen["bad"] == 0, seen
    assert all(got[0] == a and got[1] == b for got, a, b in handed)
    if any(t.predictive for t in sup.tiers) and enrol:
        assert seen["computed"] > 0


def test_levels_recomputed_in_part_in_the_baseline(monkeypatch):
    sc, _ = load_scenario(ROOT / "scenarios" / "baseline.toml")
    e, s = enrolments_for(sc, 7, 2)
    counts = {"computed": 0, "partial": 0, "bad": 0}
    handed: list[tuple] = []
    _check_levels(monkeypatch, counts, handed)
    simulate_supply(sc.regimen, sc.supply, e, s, None, np.random.default_rng(1), np.random.default_rng(2),
                    weights=demand_weights(sc))
    assert counts["bad"] == 0 and counts["partial"] > 100, counts
    assert all(got[0] == a and got[1] == b for got, a, b in handed)


@pytest.mark.parametrize(("rate", "cycles", "safety", "trigger", "top", "expected"), [
    (1.5, 3.0, 2, 1, 4, (5, 7)),     # need 4.5 packs: ceil(2.25) + 2 = 5, ceil(4.5) + 2 = 7
    (2.0, 2.0, 0, 0, 0, (2, 4)),     # need exactly 4 packs: 2 and 4, not rounded up to 3 and 5
    (2.0, 2.0, 0, 10, 3, (10, 4)),   # the configured trigger is higher: it stays
    (0.0, 4.0, 3, -1, 5, (0, 5)),    # no need: the configured levels, never below 0
    (0.25, 1.0, 1, 0, 0, (2, 2)),    # a quarter pack: ceil(0.125) + 1 = 2, ceil(0.25) + 1 = 2
])
def test_levels_for_by_hand(rate, cycles, safety, trigger, top, expected):
    from hn005_sim.supply.model import levels_for

    assert levels_for(rate, cycles, safety, trigger, top) == expected
