"""The events of one supply replicate, recorded for a bare replay (bench/supply.py).

`trace_supply(...)` runs the supply model (supply/model.py) as `simulate_supply` does, with the event
loop and the stocks instrumented, and returns the record with a `SupplyTrace`: every event the heap
held (day, the event that scheduled it) and the stock arithmetic each event did (packs added to or
taken from a stock: dispensings, deliveries, shipments, lot releases, expiry write-offs). `replay`
runs a plain heap loop over those events doing only that arithmetic: the floor the model's own loop is
measured against. Not used by any command; the instrumentation costs time, so `trace_supply` is for the
event list, not for timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from heapq import heapify, heappop, heappush

from hn005_sim.supply.inventory import Stock
from hn005_sim.supply.model import SupplyModel


@dataclass(frozen=True)
class SupplyTrace:
    """Events by sequence number: `day[e]`, `children[e]` (events it scheduled), `ops[e]` (stock,
    presentation, packs added: negative when taken). `roots`: scheduled before the first event (and
    `root_ops`, the arithmetic done then); `horizon`: the loop stops before the first event on or after
    it.
    `processed`: events handled, in order; `stocks`: number of stocks (0 = depot, 1 + s = site s)."""

    day: list[float]
    children: list[list[int]]
    ops: list[list[tuple[int, int, int]]]
    roots: list[int]
    root_ops: list[tuple[int, int, int]]
    horizon: float
    processed: list[int]
    stocks: int
    presentations: int

    @property
    def events(self) -> int:
        return len(self.processed)


class _Seq:
    """The loop's sequence numbers, noting which event scheduled each."""

    def __init__(self, model: _TracedModel):
        self.model = model
        self.n = 0

    def __iter__(self):
        return self

    def __next__(self) -> int:
        n = self.n
        self.n += 1
        m = self.model
        m.t_parent.append(m.t_current)
        return n


class _Totals(list):
    """A stock's packs per presentation that note every change in the model's current event (the model
    changes them in Stock's methods and, for the usual dispensing, inline)."""

    def __init__(self, values, key: int, model: _TracedModel):
        super().__init__(values)
        self.key, self.model = key, model

    def __setitem__(self, p, value):
        d = value - self[p]
        if d:
            self.model.t_log.append((self.key, p, d))
        super().__setitem__(p, value)


def _traced(stock: Stock, key: int, model: _TracedModel) -> Stock:
    stock.totals = _Totals(stock.totals, key, model)
    return stock


class _TracedModel(SupplyModel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.t_parent: list[int] = []
        self.t_current = -1
        self.t_log: list[tuple[int, int, int]] = []
        _traced(self.depot, 0, self)
        for s, st in enumerate(self.stock):
            _traced(st, 1 + s, self)
        self.t_ops: dict[int, list] = {-1: self.t_log}
        self.t_processed: list[int] = []
        self.t_day: dict[int, float] = {}
        self._seq = _Seq(self)

    def _loop(self) -> None:  # SupplyModel._loop, noting each event
        heap, pending, seq, horizon = self._heap, self._pending, self._seq, self.horizon

        def push(h, item):
            self.t_day[item[1]] = item[0]
            heappush(h, item)

        while True:
            if pending:
                now = self.now
                for g in pending:
                    d = next(g, None)
                    if d is not None:
                        if d.__class__ is list:
                            d.append(g)
                        else:
                            push(heap, (now + d, next(seq), g))
                pending.clear()
            if not heap or heap[0][0] >= horizon:
                return
            now, e, g = heappop(heap)
            self.now = now
            self.t_current = e
            self.t_processed.append(e)
            self.t_log = self.t_ops[e] = []
            if g.__class__ is not list:
                d = next(g, None)
                if d is not None:
                    if d.__class__ is list:
                        d.append(g)
                    else:
                        push(heap, (now + d, next(seq), g))
            else:
                for w in g:
                    d = next(w, None)
                    if d is not None:
                        if d.__class__ is list:
                            d.append(w)
                        else:
                            push(heap, (now + d, next(seq), w))

    def _wake(self, waiters: list) -> None:
        self.t_day[self._seq.n] = self.now
        super()._wake(waiters)

    def trace(self) -> SupplyTrace:
        n = len(self.t_parent)
        children: list[list[int]] = [[] for _ in range(n)]
        roots = []
        for e, parent in enumerate(self.t_parent):
            (roots if parent < 0 else children[parent]).append(e)
        ops = [self.t_ops.get(e, []) for e in range(n)]
        return SupplyTrace([self.t_day[e] for e in range(n)], children, ops, roots, self.t_ops[-1],
                           self.horizon, list(self.t_processed), 1 + len(self.stock), self.P)


def trace_supply(regimen, supply, enrolments, sites, horizon_day, rng_treatment, rng_supply, levels=None,
                 weights=None):
    """(SupplyRecord, SupplyTrace) of one replicate: `simulate_supply`'s arguments and record."""
    from hn005_sim.supply import simulate

    made: list[_TracedModel] = []

    class Model(_TracedModel):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    orig = simulate.SupplyModel
    simulate.SupplyModel = Model
    try:
        rec = simulate.simulate_supply(regimen, supply, enrolments, sites, horizon_day, rng_treatment,
                                       rng_supply, levels, weights)
    finally:
        simulate.SupplyModel = orig
    return rec, made[0].trace()


def replay(tr: SupplyTrace) -> tuple[list[list[int]], int]:
    """The bare loop: the trace's events through a heap, in the model's order, doing only their stock
    arithmetic. Returns (packs per stock and presentation at the end, events handled)."""
    totals = [[0] * tr.presentations for _ in range(tr.stocks)]
    for k, p, d in tr.root_ops:
        totals[k][p] += d
    day, children, ops, horizon = tr.day, tr.children, tr.ops, tr.horizon
    heap = [(day[e], e) for e in tr.roots]
    heapify(heap)
    handled = 0
    while heap and heap[0][0] < horizon:
        _, e = heappop(heap)
        handled += 1
        for k, p, d in ops[e]:
            totals[k][p] += d
        for c in children[e]:
            heappush(heap, (day[c], c))
    return totals, handled


def replay_simpy(tr: SupplyTrace, order: list[int] | None = None) -> tuple[list[list[int]], int]:
    """`replay` in a bare simpy environment: each event a `simpy.Timeout` created when the event that
    scheduled it is handled (in the model's order, so simpy's ties fall as the model's), its handler a
    callback doing only the event's stock arithmetic; `run(until=horizon)` stops before the first event
    at the horizon. The basis issue 16 measured simpy on (no process generators: the leanest simpy
    loop for these events). Returns what `replay` returns; `order` (tests) gets the events handled."""
    import simpy

    env = simpy.Environment()
    totals = [[0] * tr.presentations for _ in range(tr.stocks)]
    for k, p, d in tr.root_ops:
        totals[k][p] += d
    day, children, ops = tr.day, tr.children, tr.ops
    handled = 0
    timeout = env.timeout

    def handle(event) -> None:
        nonlocal handled
        e = event._value
        handled += 1
        if order is not None:
            order.append(e)
        for k, p, d in ops[e]:
            totals[k][p] += d
        now = env._now
        for c in children[e]:
            timeout(day[c] - now, c).callbacks.append(handle)

    for e in tr.roots:
        timeout(day[e], e).callbacks.append(handle)
    env.run(until=tr.horizon)
    return totals, handled
