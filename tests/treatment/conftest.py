"""Small configurations built from the ALTER-HN005 base files, varied per test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hn005_sim.scenario.dists import Constant
from hn005_sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]


def const(v: float) -> Constant:
    return Constant(dist="constant", value=float(v), source="test: fixed")


@pytest.fixture(scope="session")
def base():
    sc, _ = load_scenario(ROOT / "scenarios" / "baseline.toml")
    return sc


def with_drug(regimen, name, toxicity=None, **update):
    """The regimen with drug `name` updated (and its toxicity, when given)."""
    d = regimen.drugs[name]
    if toxicity:
        update["toxicity"] = d.toxicity.model_copy(update=toxicity)
    drugs = dict(regimen.drugs)
    drugs[name] = d.model_copy(update=update)
    return regimen.model_copy(update={"drugs": drugs})


def deterministic_regimen(regimen, *, induction: int = 4, progression_months: float = 1000.0):
    """Fixed induction length, no toxicity, no progression/death/withdrawal within the horizon."""
    zero = {"reduce_per_cycle": 0.0, "stop_per_cycle": 0.0, "interrupt_per_cycle": 0.0}
    for name in regimen.drugs:
        regimen = with_drug(regimen, name, toxicity=zero)
    tox = regimen.toxicity.model_copy(update={"delay_per_cycle": 0.0})
    course = regimen.course.model_copy(update={
        "induction_cycles": const(induction), "progression_months": const(progression_months),
        "death_months": const(1e6), "withdrawal_months": const(1e6),
    })
    regimen = with_drug(regimen, "penpulimab", continue_after_cap=Constant(dist="constant", value=1.0))
    return regimen.model_copy(update={"toxicity": tox, "course": course})


def generous_supply(supply, *, partial_packs: str = "carry_over", lead_days: float = 1.0):
    """Long shelf life, large lots and site levels, fixed 1-day shipping: no stock-out, no expiry."""
    pres = [p.model_copy(update={"shelf_life_months": 600.0, "lot_size_packs": 10_000,
                                 "depot_reorder_packs": 100, "initial_lots": 1})
            for p in supply.presentations]
    tiers = [t.model_copy(update={"initial_cycles": 40.0, "trigger_cycles": 30.0, "max_cycles": 40.0,
                                  "predictive": False}) for t in supply.tiers]
    ship = supply.shipping.model_copy(update={"lead_days": const(lead_days), "emergency_lead_days": const(1)})
    return supply.model_copy(update={"presentations": pres, "tiers": tiers, "shipping": ship,
                                     "partial_packs": partial_packs})


def random_dispensing_plans(seed: int, trials: int = 60):
    """(need, taken, first, units per pack) of `trials` random plans for the dispensing tests: gaps in a
    presentation, new patients, interruptions; the first plan is empty."""
    g = np.random.default_rng(seed)
    for trial in range(trials):
        N, P = int(g.integers(0, 80)) if trial else 0, int(g.integers(1, 6))
        need = g.integers(0, 30, (N, P)) * (g.random((N, P)) < 0.7)
        taken = need - g.integers(0, 5, (N, P)).clip(max=need)
        first = g.random(N) < 0.15
        if N:
            first[0] = True
        yield trial, need, taken, first, g.integers(1, 40, P)
