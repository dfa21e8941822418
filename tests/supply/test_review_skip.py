"""The weekly review skips a site whose stock, shipments in transit and levels did not change since it
last found nothing to do there (supply/model.py `_review_all`, `Stock.changed`): at every review, the
sites it tops up are exactly those the full check (the definition, kept here verbatim) picks."""

from __future__ import annotations

import numpy as np
import pytest

from hn005_sim import rng
from hn005_sim.scenario.load import load_scenario
from hn005_sim.supply.levels import demand_weights
from hn005_sim.supply.model import SupplyModel
from hn005_sim.supply.search import enrolments_for
from hn005_sim.supply.simulate import simulate_supply

from .conftest import ROOT
from .test_loop import _network_case


def _open(m: SupplyModel, s: int) -> bool:
    now = m.now
    a, c = m.activation[s], m.close[s]
    return a is not None and now >= a and now < m.horizon and (m.active[s] > 0 or c is None or now < c)


def _full_check(m: SupplyModel, s: int) -> bool:
    """Whether the review's check sends site s (not waiting) to `_resupply`: the check without the skip."""
    if not _open(m, s):
        return False
    now = m.now
    trig = (m.site_levels[s] or m._levels_of(s))[0]
    st = m.stock[s]
    win = st.window_days
    until = now + m.cover_days[s] + win
    return any(n + q < t or (lots and (lots[0][0] <= until or lots[0][0] - win <= now))
               for lots, n, q, t in zip(st.lots, st.totals, m.transit[s], trig, strict=True))


@pytest.fixture
def checked(monkeypatch):
    """Runs of the model record, per review, (sites the full check picks, sites the review resupplied),
    and how many sites were unchanged since the review last found nothing to do there and are still left
    by the full check (those the review settles without checking, unless their first lot's expiry came
    near)."""
    log: dict[str, list] = {"reviews": [], "skipped": []}
    orig_review, orig_resupply = SupplyModel._review_all, SupplyModel._resupply

    def review_all(self, emergency_only: bool = False):
        if emergency_only:
            return orig_review(self, emergency_only)
        want = {s for s in range(len(self.sites)) if not self.waiting[s] and _full_check(self, s)}
        unchanged = [s for s in range(len(self.sites))
                     if not self.stock[s].changed and not self.waiting[s] and _open(self, s)]
        self._t_got = set()
        orig_review(self, emergency_only)
        got, self._t_got = self._t_got, None
        log["reviews"].append((want, got))
        log["skipped"].append(len([s for s in unchanged if s not in want]))

    def resupply(self, s, emergency=False):
        if not emergency and getattr(self, "_t_got", None) is not None:
            self._t_got.add(s)
        return orig_resupply(self, s, emergency)

    monkeypatch.setattr(SupplyModel, "_review_all", review_all)
    monkeypatch.setattr(SupplyModel, "_resupply", resupply)
    return log


@pytest.mark.parametrize(("network", "least"), [(True, 100), (False, 5)])
def test_skipped_sites_are_those_the_full_check_leaves(base, checked, network, least):
    reg, sup, sites, enrol = _network_case(base, network)
    rec = simulate_supply(reg, sup, enrol, sites, 500.0, np.random.default_rng(1), np.random.default_rng(2),
                          weights={"big": 1.0, "small": 0.3})
    assert rec.stockout_events.sum() > 0  # the waiting paths ran too
    reviews = checked["reviews"]
    assert len(reviews) > 70
    assert all(want == got for want, got in reviews)
    # both branches ran: sites resupplied, and unchanged sites left alone (250 and 11 when written)
    assert any(want for want, _ in reviews) and sum(checked["skipped"]) > least


@pytest.mark.parametrize(("scenario", "least"), [("baseline", 50), ("network_south_china", 1000)])
def test_skipped_sites_on_scenarios(checked, scenario, least):
    sc, _ = load_scenario(ROOT / "scenarios" / f"{scenario}.toml")
    e, s = enrolments_for(sc, 4, 0)
    simulate_supply(sc.regimen, sc.supply, e, s, None, rng.stream(4, 0, "treatment"),
                    rng.stream(4, 0, "supply"), weights=demand_weights(sc))
    reviews = checked["reviews"]
    assert all(want == got for want, got in reviews)
    # (131 and 2,274 sites settled unchecked when written)
    assert any(want for want, _ in reviews) and sum(checked["skipped"]) > least
