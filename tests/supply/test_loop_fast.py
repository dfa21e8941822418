"""The event loop's fast paths (issue 16, phase 4) against the computations they replace.

- `_network_all` returns the model's own echelon sums (no copies) and keeps the depot's reorder point
  per presentation (`_net_points`) beside them: at every call, on random networks, the sums equal
  `_network_full`'s (summed from scratch) and each point equals the formula the depot's check used,
  max(configured, ceil(rate x release lead cycles - 1e-9)) + the levels counted, computed here from
  `_network_full`'s sums;
- the weekly depot review's and a shipment's inline checks on those points send exactly the
  presentations to `_depot_check` that the check itself (the definition) finds below their point.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hn005_sim.scenario.load import load_scenario
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
    seen = {"calls": 0, "bad": 0, "review_checks": 0, "review_bad": 0}
    orig_all, orig_review, orig_check = (SupplyModel._network_all, SupplyModel._depot_review,
                                         SupplyModel._depot_check)

    def network_all(self):
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
