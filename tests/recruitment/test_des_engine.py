"""The DES's lean simpy pieces (des._Proc, des._run_until, des._At) against simpy's own Process and
Environment.run: the same events scheduled (the environment's event counter), processed in the same
order at the same times, with the same values; failed and already-processed events handled as simpy
does."""

from __future__ import annotations

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from hn005_sim.recruitment import des


def _world(env, trace, delays, lean: bool, waits: bool):
    """Processes that wait on timeouts (or _At), on events another process succeeds, and that start
    processes; `lean`: des's pieces, else simpy's. Returns the stop event."""
    done = env.event()
    gate = env.event()
    start = des._Proc if lean else simpy.Process

    def wait(d):
        return des._At(env, env._now + d) if lean else env.timeout(d)

    def child(i, d):
        yield wait(d)
        trace.append((env.now, "child", i))
        if waits and i == 0:
            gate.succeed(i)
        return i * 10

    def parent():
        for i, d in enumerate(delays):
            p = start(env, child(i, d))
            trace.append((env.now, "started", i))
            yield wait(d / 2)
        if waits:
            v = yield gate
            trace.append((env.now, "gate", v))
        v = yield p  # a process is an event: its generator's return value
        trace.append((env.now, "joined", v))
        yield wait(1.0)
        done.succeed()

    start(env, parent())
    return done


@settings(max_examples=40, deadline=None)
@given(delays=st.lists(st.floats(0.0, 50.0, allow_nan=False), min_size=1, max_size=12), waits=st.booleans())
def test_lean_process_and_run_schedule_and_order_as_simpy(delays, waits):
    runs = []
    for lean in (False, True):
        env, trace = simpy.Environment(), []
        done = _world(env, trace, delays, lean, waits)
        if lean:
            des._run_until(env, done)
        else:
            env.run(until=done)
        runs.append((trace, env.now, next(env._eid), len(env._queue)))
    assert runs[0] == runs[1]


def test_a_failed_event_goes_to_simpys_resume_and_is_thrown_into_the_generator():
    env, seen = simpy.Environment(), []
    done = env.event()

    def proc():
        bad = env.event()
        bad.fail(ValueError("no slot"))
        try:
            yield bad
        except ValueError as e:
            seen.append(str(e))
        yield des._At(env, 2.0)
        done.succeed()

    des._Proc(env, proc())
    des._run_until(env, done)
    assert seen == ["no slot"] and env.now == 2.0


def test_an_event_already_processed_resumes_at_once_with_its_value():
    env, seen = simpy.Environment(), []
    done = env.event()
    early = env.event()
    early.succeed("early")

    def proc():
        yield des._At(env, 1.0)  # `early` is processed at 0
        v = yield early
        seen.append((env.now, v))
        done.succeed()

    des._Proc(env, proc())
    des._run_until(env, done)
    assert seen == [(1.0, "early")]


def test_run_until_raises_on_an_unhandled_failure_and_on_an_empty_queue():
    env = simpy.Environment()
    ev = env.event()
    ev.fail(KeyError("lost"))
    with pytest.raises(KeyError):
        des._run_until(env, env.event())
    with pytest.raises(RuntimeError, match="no scheduled events"):
        des._run_until(simpy.Environment(), simpy.Environment().event())


def test_pool_follow_values_are_the_columns_of_the_consenting():
    """_Pool.follow (what _screening reads) holds, for each consenting candidate, the batch's column
    values in _FOLLOW order, as Python scalars."""
    from hn005_sim.recruitment.candidates import candidate_source
    from hn005_sim.scenario.load import load_scenario

    sc, _ = load_scenario("scenarios/baseline.toml")
    rep = des._set_up(sc, candidate_source(sc), 3, 0, None)
    des._prejudge(rep.pools[0].source, [rep])
    pool = rep.pools[0]
    assert pool.drawn and len(pool.follow) == len(pool.consenting) == pool.drawn // pool.batch
    for ks, follow in zip(pool.consenting, pool.follow, strict=True):
        assert len(ks) == len(follow)
        for k, f in zip(ks, follow, strict=True):
            want = tuple(pool.arr[key][k].item() for key in des._FOLLOW)
            assert f == want and all(not isinstance(v, np.generic) for v in f)
