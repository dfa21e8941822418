"""The supply model's event loop (supply/model.py `_loop`): the order simpy would give, the incremental
echelon stock against its definition, and the recorded events (supply/trace.py) against the model."""

from __future__ import annotations

from itertools import count

import numpy as np
import pytest
import simpy

from hn005_sim.supply import model as model_module
from hn005_sim.supply.model import SupplyModel
from hn005_sim.supply.simulate import simulate_supply
from hn005_sim.supply.trace import replay, replay_simpy, trace_supply

from .conftest import ROOT, const, deterministic_regimen


def _scripts(seed: int, n: int = 12, steps: int = 8):
    """Random process scripts: ('wait', days) / ('spawn', days) / ('block', site) / ('wake', site), with
    integer days 0-2 so that many events fall on the same day (the order is then the tie-break's)."""
    g = np.random.default_rng(seed)
    kinds = ["wait"] * 5 + ["spawn", "block", "wake"]
    return [[(kinds[g.integers(len(kinds))], int(g.integers(3)), int(g.integers(2))) for _ in range(steps)]
            for _ in range(n)], [float(g.integers(4)) for _ in range(n)]


def _run_simpy(scripts, starts, horizon):
    env = simpy.Environment()
    restock = [env.event(), env.event()]
    log = []

    def proc(name, script, start):
        yield env.timeout(start)
        for j, (kind, days, site) in enumerate(script):
            log.append((env.now, name, j))
            if kind == "wait":
                yield env.timeout(days)
            elif kind == "spawn":
                env.process(child(f"{name}.{j}", days))
            elif kind == "block":
                yield restock[site]
            else:
                ev, restock[site] = restock[site], env.event()
                ev.succeed()

    def child(name, days):
        yield env.timeout(days)
        log.append((env.now, name, 0))

    for i, (script, start) in enumerate(zip(scripts, starts, strict=True)):
        env.process(proc(str(i), script, start))
    env.run(until=horizon)
    return log


class _Loop:
    """The attributes `SupplyModel._loop` and `_wake` use, and nothing else."""

    _loop = SupplyModel._loop
    _wake = SupplyModel._wake

    def __init__(self, horizon):
        self.now, self.horizon = 0.0, horizon
        self._heap, self._seq, self._pending = [], count(), []
        self.restock = [[], []]


def _run_loop(scripts, starts, horizon):
    m = _Loop(horizon)
    log = []

    def proc(name, script, start):
        yield start - m.now
        for j, (kind, days, site) in enumerate(script):
            log.append((m.now, name, j))
            if kind == "wait":
                yield days
            elif kind == "spawn":
                m._pending.append(child(f"{name}.{j}", days))
            elif kind == "block":
                yield m.restock[site]
            else:
                waiters, m.restock[site] = m.restock[site], []
                if waiters:
                    m._wake(waiters)

    def child(name, days):
        yield days
        log.append((m.now, name, 0))

    for i, (script, start) in enumerate(zip(scripts, starts, strict=True)):
        m._pending.append(proc(str(i), script, start))
    m._loop()
    return log


@pytest.mark.parametrize("seed", range(40))
def test_the_loop_handles_events_in_simpys_order(seed):
    """Same processes, same log, step for step: timeouts (zero and tied days), processes started while
    an event is handled, waits for a site's delivery and the wake-ups, and the stop at the horizon."""
    scripts, starts = _scripts(seed)
    horizon = 6.0
    want = _run_simpy(scripts, starts, horizon)
    assert len(want) > 20
    assert _run_loop(scripts, starts, horizon) == want


def test_a_horizon_at_the_start_and_days_before_it_are_refused_as_simpy_refused_them(base):
    with pytest.raises(ValueError, match="must be greater than the current simulation time"):
        simpy.Environment().run(until=0.0)
    reg = deterministic_regimen(base.regimen)
    m = SupplyModel(reg, base.supply, [model_module.SiteRow("S0", "r", 0.0, None)], [], 0.0,
                    np.random.default_rng(0), np.random.default_rng(1))
    with pytest.raises(ValueError, match="must be greater than the current simulation time"):
        m.run()
    with pytest.raises(ValueError, match="Negative delay"):
        simpy.Environment().timeout(-1.0)
    m = SupplyModel(reg, base.supply, [model_module.SiteRow("S0", "r", -1.0, None)], [], 10.0,
                    np.random.default_rng(0), np.random.default_rng(1))
    with pytest.raises(ValueError, match=r"Negative delay -1\.0"):
        m.run()


def _network_case(base, network: bool = True):
    """A network where sites open at different days, one closes, stock runs short (small lots)."""
    reg = base.regimen
    pres = [p.model_copy(update={"lot_size_packs": 30, "depot_reorder_packs": 15})
            for p in base.supply.presentations]
    sup = base.supply.model_copy(update={
        "presentations": pres,
        "depot": base.supply.depot.model_copy(update={"network_reorder": network}),
        "shipping": base.supply.shipping.model_copy(update={"lead_days": const(3.0)})})
    sites = [("S0", "big", 0.0, None), ("T0", "small", 30.0, 200.0), ("T1", "small", 60.0, None),
             ("T2", "small", 120.0, None), ("T3", "small", None, None)]
    g = np.random.default_rng(5)
    enrol, k = [], 0
    for name, region, act, close in sites:
        if act is None:
            continue
        end = 300.0 if close is None else close
        for d in np.sort(g.uniform(act, end, 8)):
            enrol.append((k, name, region, float(d), float(g.uniform(1.4, 2.0))))
            k += 1
    return reg, sup, sites, enrol


def test_the_incremental_echelon_stock_is_its_definition(base, monkeypatch):
    """At every call `_network_all` (kept incrementally) equals `_network_full` (summed from scratch),
    floats included, across openings, a closing, stock-outs and emergency shipments."""
    calls = []
    orig = SupplyModel._network_all

    def checked(self):
        got = orig(self)
        calls.append(got == self._network_full())
        return got

    monkeypatch.setattr(SupplyModel, "_network_all", checked)
    reg, sup, sites, enrol = _network_case(base)
    rec = simulate_supply(reg, sup, enrol, sites, 500.0, np.random.default_rng(1), np.random.default_rng(2),
                          weights={"big": 1.0, "small": 0.3})
    assert rec.stockout_events.sum() > 0 and rec.emergency_shipments > 0  # the waiting paths ran
    assert len(calls) > 200 and all(calls)


@pytest.mark.parametrize("network", [True, False])
def test_the_recorded_events_replay_to_the_models_stock(base, network):
    """The trace is the model's: tracing changes no output, the replay handles as many events as the
    model did and its stock arithmetic alone ends at the model's stock at the depot and at the sites."""
    reg, sup, sites, enrol = _network_case(base, network)
    args = (reg, sup, enrol, sites, 500.0)
    kw = {"weights": {"big": 1.0, "small": 0.3}}
    rec = simulate_supply(*args, np.random.default_rng(1), np.random.default_rng(2), **kw)
    traced, tr = trace_supply(*args, np.random.default_rng(1), np.random.default_rng(2), **kw)
    for field in rec.__dataclass_fields__:
        a, b = getattr(rec, field), getattr(traced, field)
        assert (np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b), field
    totals, handled = replay(tr)
    assert handled == tr.events > 100
    assert totals[0] == rec.on_hand_depot.tolist()
    assert [sum(col) for col in zip(*totals[1:], strict=True)] == rec.on_hand_sites.tolist()
    # every event is handled after the one that scheduled it, no earlier than its day
    parent = {c: e for e, kids in enumerate(tr.children) for c in kids}
    seen = set()
    for e in tr.processed:
        assert parent.get(e, -1) in seen or e in tr.roots
        seen.add(e)
    days = [tr.day[e] for e in tr.processed]
    assert days == sorted(days) and days[-1] < tr.horizon
    # the same events through bare simpy: the model's order, the same stock at the end
    order: list[int] = []
    assert replay_simpy(tr, order) == (totals, handled)
    assert order == tr.processed


def test_the_baseline_replicate_is_unchanged_by_the_trace():
    from hn005_sim import rng
    from hn005_sim.scenario.load import load_scenario
    from hn005_sim.supply.levels import demand_weights
    from hn005_sim.supply.search import enrolments_for

    sc, _ = load_scenario(ROOT / "scenarios" / "baseline.toml")
    e, s = enrolments_for(sc, 3, 0)
    rec = simulate_supply(sc.regimen, sc.supply, e, s, None, rng.stream(3, 0, "treatment"),
                          rng.stream(3, 0, "supply"), weights=demand_weights(sc))
    traced, tr = trace_supply(sc.regimen, sc.supply, e, s, None, rng.stream(3, 0, "treatment"),
                              rng.stream(3, 0, "supply"), weights=demand_weights(sc))
    assert rec.dispensed.tolist() == traced.dispensed.tolist() and rec.released.tolist() == \
        traced.released.tolist() and rec.patient_days_without == traced.patient_days_without
    totals, handled = replay(tr)
    assert handled == tr.events and totals[0] == rec.on_hand_depot.tolist()
