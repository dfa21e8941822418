"""How a batch of candidates is built (issue 16): native polars columns, config figures derived once,
and the bare RNG replay that bench/population.py measures the sampler against. What is built must not
change: each piece is checked against an independent construction."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hn005_sim.population import columns, memo, retest_labs, sample
from hn005_sim.population import generate as G
from hn005_sim.rng import stream
from hn005_sim.scenario.dists import Categorical

ROOT = Path(__file__).resolve().parents[2]


def _bench_helper():
    spec = importlib.util.spec_from_file_location("_rng_replay", ROOT / "bench" / "_rng_replay.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_installed_polars_takes_the_native_path():
    # if this fails, polars' native constructors changed: frames are still right (public path), slower
    assert columns.NATIVE


@pytest.mark.parametrize("n", [0, 1, 5, 1024])
def test_native_and_public_columns_give_the_same_candidates_and_retests(cfg, monkeypatch, n):
    frames = {}
    for native in (True, False):
        monkeypatch.setattr(columns, "NATIVE", native)
        rng = stream(3, n, "population")
        first = sample(cfg, n, rng)
        frames[native] = (first, retest_labs(cfg, first[np.arange(0, n, 2)], rng), rng.bit_generator.state)
    (a, ra, sa), (b, rb, sb) = frames[True], frames[False]
    assert a.schema == b.schema and ra.schema == rb.schema
    assert a.equals(b, null_equal=True) and ra.equals(rb, null_equal=True)
    assert sa == sb


values = st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=0, max_size=40)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), native=st.booleans())
def test_columns_match_a_frame_built_from_python_values(data, native):
    n = data.draw(st.integers(0, 30))
    f = np.array(data.draw(st.lists(st.floats(width=64), min_size=n, max_size=n)), dtype=np.float64)
    keep = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    ints = np.array(data.draw(st.lists(st.integers(-2**40, 2**40), min_size=n, max_size=n)), dtype=np.int64)
    labels = ("a", "bb", "ccc")
    idx = np.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), dtype=np.int64)
    c = columns.Columns(native)
    c.f64("f", f)
    c.f64("g", f, keep)
    c.i64("i", ints)
    c.flag("b", keep)
    c.text("t", labels, idx)
    c.text("u", labels, idx, keep)
    c.flag_or_null("v", idx == 1, keep)
    got = c.frame()
    # independent: python values, None for a null, nulls also for NaN where a keep mask applies
    expected = pl.DataFrame({
        "f": pl.Series(f.tolist(), dtype=pl.Float64),
        "g": pl.Series([x if k and x == x else None for x, k in zip(f.tolist(), keep, strict=True)],
                       dtype=pl.Float64),
        "i": pl.Series(ints.tolist(), dtype=pl.Int64),
        "b": pl.Series(keep.tolist(), dtype=pl.Boolean),
        "t": pl.Series([labels[j] for j in idx], dtype=pl.String),
        "u": pl.Series([labels[j] if k else None for j, k in zip(idx, keep, strict=True)], dtype=pl.String),
        "v": pl.Series([bool(j == 1) if k else None for j, k in zip(idx, keep, strict=True)],
                       dtype=pl.Boolean),
    })
    assert got.schema == expected.schema
    assert got.equals(expected, null_equal=True)
    # replacing: same as with_columns (replaced where they stand, new ones appended)
    again = columns.Columns(native)
    again.i64("new", ints)
    again.f64("f", -f)
    assert again.replacing(got).equals(got.with_columns(pl.Series("new", ints), pl.Series("f", -f)),
                                       null_equal=True)


@settings(max_examples=60, deadline=None)
@given(vals=values, nulls=st.data(), fill=st.sampled_from([0.0, np.nan, -1.5]))
def test_filled_is_fill_null_then_to_numpy(vals, nulls, fill):
    mask = nulls.draw(st.lists(st.booleans(), min_size=len(vals), max_size=len(vals)))
    s = pl.Series("x", [None if m else v for v, m in zip(vals, mask, strict=True)], dtype=pl.Float64)
    np.testing.assert_array_equal(columns.filled(s, fill), s.fill_null(fill).to_numpy())


@settings(max_examples=80, deadline=None)
@given(probs=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8).filter(lambda p: sum(p) > 0),
       seed=st.integers(0, 2**32 - 1))
def test_category_counts_the_thresholds_each_uniform_reaches(probs, seed):
    probs = [p / sum(probs) for p in probs]
    d = Categorical(dist="categorical", values=[float(i) for i in range(len(probs))], probs=probs)
    got = G._category(d, np.random.default_rng(seed), 500)
    # brute force, the comparisons the sampler used to make
    cum = np.cumsum(probs, dtype=np.float64)
    u = np.random.default_rng(seed).random(500, dtype=np.float32) * np.float32(cum[-1])
    expected = np.zeros(500, dtype=np.int64)
    for c in cum[:-1]:
        expected += u >= np.float32(c)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.int64


def test_derived_is_computed_once_per_object_and_the_cache_is_bounded(monkeypatch):
    calls = []

    class Obj:
        pass

    a, b = Obj(), Obj()
    assert memo.derived(a, "k", lambda: calls.append("a") or 1) == 1
    assert memo.derived(a, "k", lambda: calls.append("a2") or 2) == 1  # cached
    assert memo.derived(b, "k", lambda: calls.append("b") or 3) == 3  # another object
    assert memo.derived(a, "other", lambda: calls.append("a3") or 4) == 4
    assert calls == ["a", "b", "a3"]
    monkeypatch.setattr(memo, "_CACHE", {})
    monkeypatch.setattr(memo, "MAX_ENTRIES", 3)
    for i in range(7):
        memo.derived(a, f"x{i}", lambda: 0)
    assert len(memo._CACHE) <= 3


def test_the_bare_replay_makes_exactly_the_sampler_s_random_calls(cfg):
    rr = _bench_helper()
    rec = rr.RecordingGenerator(stream(5, 1, "population"))
    frame = sample(cfg, 1024, rec)
    after_sample = rec._rng.bit_generator.state
    retest_labs(cfg, frame, rec)
    after_retest = rec._rng.bit_generator.state
    fresh = stream(5, 1, "population")
    rr.replay(rec.calls, fresh)
    assert fresh.bit_generator.state == after_retest
    # the sample's calls alone leave the generator where sample() left it; one call fewer does not
    n_sample = next(i for i in range(len(rec.calls) + 1)
                    if (lambda g: (rr.replay(rec.calls[:i], g), g.bit_generator.state)[1])(
                        stream(5, 1, "population")) == after_sample)
    assert 0 < n_sample < len(rec.calls)
    short = stream(5, 1, "population")
    rr.replay(rec.calls[: n_sample - 1], short)
    assert short.bit_generator.state != after_sample
    # every candidate draws the same numbers: variates are a multiple of the batch size
    assert rec.variates % 1024 == 0 and rec.variates > 80 * 1024
