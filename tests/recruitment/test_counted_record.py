"""The replicate record counted without the event trace (des._counted_record: `des.COUNTED`, used when
no trace is kept) against the path it replaces (des._arrivals_log merges and sorts the whole trace,
des._record reads the record off it): every field equal, arrays bit for bit (dtype included), on random
funnel scenarios (capacities, re-screens, withdrawals, targets reached or not) and on shipped scenarios
with the criteria engine and chart review."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hn005_sim.recruitment import des
from hn005_sim.recruitment.candidates import candidate_source
from hn005_sim.scenario.load import load_scenario

from .test_des import scenario
from .test_des_steps import with_slots_of_two_and_rescreens

ROOT = Path(__file__).resolve().parents[2]


def _records(monkeypatch, sc, seed, replicates, counted: bool) -> list[des.ReplicateRecord]:
    monkeypatch.setattr(des, "COUNTED", counted)
    calls = []
    counted_record = des._counted_record

    def spy(*args):
        calls.append(1)
        return counted_record(*args)

    monkeypatch.setattr(des, "_counted_record", spy)
    out = [rec for rec, _ in des.simulate_recruitment_many(sc, candidate_source(sc), seed, replicates)]
    assert bool(calls) == counted  # the path asked for is the path taken
    return out


def _same(a: des.ReplicateRecord, b: des.ReplicateRecord) -> None:
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape, name
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name
        elif isinstance(x, dict):
            assert x.keys() == y.keys(), name
            for k in x:
                u, v = x[k], y[k]
                assert u.dtype == v.dtype and np.array_equal(u, v, equal_nan=u.dtype.kind == "f"), (name, k)
        elif isinstance(x, float) and np.isnan(x):
            assert isinstance(y, float) and np.isnan(y), name
        else:
            assert type(x) is type(y) and x == y, name


def _compare(monkeypatch, sc, seed, replicates) -> list[des.ReplicateRecord]:
    counted = _records(monkeypatch, sc, seed, replicates, True)
    traced = _records(monkeypatch, sc, seed, replicates, False)
    assert len(counted) == len(traced) == len(replicates)
    for a, b in zip(counted, traced, strict=True):
        assert a.events is None and b.events is None
        _same(a, b)
    return counted


@settings(max_examples=40, deadline=None)
@given(sites=st.integers(1, 4), capacity=st.one_of(st.none(), st.integers(1, 3)),
       target=st.integers(1, 40), rescreen=st.one_of(st.none(), st.floats(0.0, 1.0)),
       pre=st.floats(0.0, 1.0), consent=st.floats(0.0, 1.0), screen=st.floats(0.0, 1.0),
       withdrawal=st.floats(0.0, 0.3), horizon=st.floats(0.5, 8.0), seed=st.integers(0, 2**16))
def test_counted_record_is_the_traced_record(sites, capacity, target, rescreen, pre, consent, screen,
                                             withdrawal, horizon, seed):
    sc = scenario(sites=sites, capacity=capacity, target=target, horizon=horizon, pre=pre, screen=screen,
                  consent=consent, withdrawal=withdrawal, rescreen=rescreen, rate_mean=6.0,
                  screening={"dist": "gamma", "mean": 20.0, "sd": 10.0})
    with pytest.MonkeyPatch.context() as mp:
        _compare(mp, sc, seed, [0, 1, 2])


@pytest.mark.parametrize("name", ["baseline", "network_guangdong", "ak105_304"])
def test_counted_record_is_the_traced_record_on_shipped_scenarios(monkeypatch, name):
    """The criteria engine's candidates and chart review (prescreen_unknown); the baseline with screening
    slots of 2 and re-screens (candidates waiting and pending at the stop), the others as shipped."""
    sc, _ = load_scenario(ROOT / "scenarios" / f"{name}.toml")
    if name == "baseline":
        sc = with_slots_of_two_and_rescreens(sc)
    recs = _compare(monkeypatch, sc, 5, [0, 1, 2, 3])
    # the comparison covered what it is meant to: failures of both stages, the enrolled, their traits
    assert sum(r.prescreen_failures for r in recs) and sum(r.screen_failures for r in recs)
    assert sum(r.enrolled for r in recs) and all(r.enrol_traits for r in recs)
    if name == "baseline":
        assert sum(r.rescreens for r in recs) and sum(r.pending for r in recs)
        assert sum(r.prescreen_unknown for r in recs) and sum(r.retests for r in recs)
