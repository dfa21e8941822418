"""The recruitment DES's callback path (des._SiteSteps, des._ScreeningSteps: `des.STEPPED`) against the
generator processes it replaces (des._site_process and des._screening run by des._Proc): the same
records and event logs, the same simpy events scheduled (the environment's event counter), the same
queue left behind, the same generator states at the end; and the judging's fast paths against what
they replace: candidates.pack_bits against the engine's pack_failures, candidates.stacked_units against
each chart's draw_units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from hn005_sim.eligibility.engine import pack_failures
from hn005_sim.recruitment import des
from hn005_sim.recruitment.candidates import candidate_source, pack_bits
from hn005_sim.recruitment.config import Capacity, Rescreen
from hn005_sim.scenario.load import load_scenario

from .test_des import scenario

ROOT = Path(__file__).resolve().parents[2]


def _run_both(monkeypatch, sc, seed, replicates):
    """Each path's (records, per environment (clock, events scheduled, queue entries left), per pool
    its population and screening generators' states)."""
    made = []

    class Env(simpy.Environment):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    pools = []
    init = des._Pool.__init__

    def keep(self, *args, **kwargs):
        init(self, *args, **kwargs)
        pools.append(self)

    monkeypatch.setattr(des.simpy, "Environment", Env)
    monkeypatch.setattr(des._Pool, "__init__", keep)
    out = {}
    for stepped in (False, True):
        monkeypatch.setattr(des, "STEPPED", stepped)
        made.clear()
        pools.clear()
        recs = des.simulate_recruitment_many(sc, candidate_source(sc), seed, replicates, keep_events=True)
        envs = [(env._now, next(env._eid), sorted(entry[:3] for entry in env._queue)) for env in made]
        states = [(p.rng_pop.bit_generator.state, p.rng_scr.bit_generator.state) for p in pools]
        out[stepped] = ([rec for rec, _ in recs], envs, states)
    return out[False], out[True]


def _same_record(a, b) -> None:
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name
        elif isinstance(x, dict):
            assert x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x), name
        elif isinstance(x, float) and np.isnan(x):
            assert np.isnan(y), name
        else:
            assert x == y, name


def _assert_same(old, new) -> None:
    (recs_a, envs_a, states_a), (recs_b, envs_b, states_b) = old, new
    assert len(recs_a) == len(recs_b)
    for a, b in zip(recs_a, recs_b, strict=True):
        _same_record(a, b)
    assert envs_a == envs_b  # clock, event counter and the queue left, entry by entry
    assert states_a == states_b


@settings(max_examples=25, deadline=None)
@given(sites=st.integers(1, 4), capacity=st.one_of(st.none(), st.integers(1, 3)),
       target=st.integers(1, 40), rescreen=st.one_of(st.none(), st.floats(0.0, 1.0)),
       pre=st.floats(0.2, 1.0), screen=st.floats(0.0, 1.0), withdrawal=st.floats(0.0, 0.3),
       seed=st.integers(0, 2**16))
def test_callbacks_schedule_and_record_as_the_generator_processes(sites, capacity, target, rescreen, pre,
                                                                  screen, withdrawal, seed):
    sc = scenario(sites=sites, capacity=capacity, target=target, horizon=8.0, pre=pre, screen=screen,
                  withdrawal=withdrawal, rescreen=rescreen, rate_mean=6.0,
                  screening={"dist": "gamma", "mean": 20.0, "sd": 10.0})
    with pytest.MonkeyPatch.context() as mp:
        old, new = _run_both(mp, sc, seed, [0, 1, 2])
    assert sum(len(r.events) for r in old[0]) > 0
    _assert_same(old, new)


def with_slots_of_two_and_rescreens(sc):
    """`sc` with screening slots of 2 at every region and re-screens (probability 0.5, after 12 days):
    candidates wait for a slot, some still wait at the stop, and some are screened twice."""
    rec = sc.recruitment
    rescreen = Rescreen.model_validate({"probability": {"value": 0.5, "source": "test"},
                                        "delay_days": {"dist": "constant", "value": 12.0}})
    two = Capacity.model_validate({"value": 2, "source": "test"})
    regions = [r.model_copy(update={"screening_capacity": two}) for r in rec.regions]
    return sc.model_copy(update={"recruitment": rec.model_copy(update={"rescreen": rescreen,
                                                                       "regions": regions})})


@pytest.mark.parametrize("name", ["baseline", "network_guangdong"])
def test_callbacks_as_the_generator_processes_on_shipped_scenarios(monkeypatch, name):
    """The criteria engine's candidates; the baseline with screening slots of 2 (candidates wait, some
    still waiting at the stop) and re-screens, network_guangdong as shipped (capacities of 6 and 3)."""
    sc, _ = load_scenario(ROOT / "scenarios" / f"{name}.toml")
    if name == "baseline":
        sc = with_slots_of_two_and_rescreens(sc)
    old, new = _run_both(monkeypatch, sc, 4, [0, 1, 2, 3])
    assert sum(r.rescreens for r in old[0]) > 0 or name != "baseline"
    _assert_same(old, new)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 300), k=st.sampled_from([1, 7, 63, 64, 65, 66, 128, 130]), p=st.floats(0.0, 1.0),
       seed=st.integers(0, 2**16))
def test_pack_bits_is_the_engines_packing(n, k, p, seed):
    m = np.random.default_rng(seed).random((n, k)) < p
    got, want = pack_bits(m), pack_failures(~m)
    assert got.dtype == want.dtype == np.uint64
    assert got.shape == want.shape
    assert np.array_equal(got, want)
    # a non-contiguous view packs the same
    wide = np.zeros((n, k + 3), dtype=bool)
    wide[:, 1:k + 1] = m
    assert np.array_equal(pack_bits(wide[:, 1:k + 1]), want)


@pytest.mark.parametrize("name", ["baseline", "network_south_china"])
def test_stacked_units_are_each_charts_draw_units(name):
    """The chart units of a round's batches drawn into one buffer: the values `SiteChart.draw_units`
    gives chart by chart, and every unit generator left in the same state."""
    from hn005_sim.recruitment.candidates import stacked_units
    from hn005_sim.recruitment.sites import draw_sites

    sc, _ = load_scenario(ROOT / "scenarios" / f"{name}.toml")
    source = candidate_source(sc)
    sites = [s for r in range(3) for s in draw_sites(sc.recruitment, 2, r)]
    sizes = [(37 * i) % 300 + (i == 0) for i in range(len(sites))]  # uneven, one batch of 0 at most
    one, two = source.site_charts(2, 0, sites), source.site_charts(2, 0, sites)
    for _ in range(2):  # twice: the generators go on from where the first round left them
        want = np.concatenate([c.draw_units(n) for c, n in zip(one, sizes, strict=True)])
        got = stacked_units(two, sizes)
        assert got.shape == want.shape and got.dtype == want.dtype
        assert np.array_equal(got, want)
    assert [[g.bit_generator.state for g in c.generators] for c in one] == \
        [[g.bit_generator.state for g in c.generators] for c in two]
