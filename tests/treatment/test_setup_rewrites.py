"""The phase-4 rewrites of the treatment set-up (treatment/course.py `plan_courses` by intervals of cycles
and presentation by cell, `_dispensing_rows`, `_on_until`, `_first_uncovered`, `_cell_levels`) against
the phase-3 functions kept verbatim in tests/treatment/reference_course.py, on random regimens, cohorts
and draws: the same arrays (values, dtypes, shapes) and the same random draws."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hn005_sim.scenario.load import load_scenario
from hn005_sim.treatment import course

from . import reference_course as ref
from .conftest import ROOT, const, random_dispensing_plans, with_drug


def _keys(reg):
    return [(name, float(s)) for name, d in reg.drugs.items() for s in d.strengths_mg]


@pytest.fixture(scope="module")
def regimens(base):
    """The baseline regimen and AK105-304's (a choice group, induction-only drugs, a cap)."""
    other, _ = load_scenario(ROOT / "scenarios" / "ak105_304.toml")
    return [base.regimen, other.regimen]


def _vary(reg, g: np.random.Generator):
    """The regimen with random toxicity (often none, sometimes certain), dose levels, phases and
    induction length: drugs that stop at once, never, or are never given in a phase."""
    for name, d in reg.drugs.items():
        tox = {k: float(g.choice([0.0, 0.0, g.random() * 0.3, g.random(), 1.0]))
               for k in ("reduce_per_cycle", "stop_per_cycle", "interrupt_per_cycle")}
        if not d.oral:
            tox["interrupt_per_cycle"] = 0.0
        levels = int(g.integers(1, 5))
        fractions = sorted((1.0 - 0.15 * np.arange(levels)).tolist(), reverse=True)
        update = {"dose_fractions": fractions}
        if d.choice is None and g.random() < 0.3:
            update["phase"] = str(g.choice(["all", "induction", "maintenance"]))
        reg = with_drug(reg, name, toxicity=tox, **update)
    tox = reg.toxicity.model_copy(update={"delay_per_cycle": float(g.choice([0.0, g.random(), 1.0]))})
    course_ = reg.course.model_copy(update={"induction_cycles": const(int(g.integers(-1, 9)))}) \
        if g.random() < 0.5 else reg.course
    return reg.model_copy(update={"toxicity": tox, "course": course_})


def _same(a, b, what):
    assert a.dtype == b.dtype and a.shape == b.shape, what
    assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), what


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), carry_over=st.booleans())
def test_plan_equals_the_phase3_plan(regimens, seed, carry_over):
    """plan_courses equals the phase-3 function field by field on random regimens and cohorts (0 to
    60 patients, 2 to 40 cycles), and draw_courses and patient_units draw and return what theirs did."""
    g = np.random.default_rng(seed)
    reg = _vary(regimens[int(g.integers(len(regimens)))], g)
    n, K = int(g.integers(0, 60)), int(g.integers(2, 40))
    keys = _keys(reg)
    upp = g.integers(1, 130, len(keys))
    a, b = np.random.default_rng(seed), np.random.default_rng(seed)
    draws, want_draws = course.draw_courses(reg, n, K, a), ref.draw_courses(reg, n, K, b)
    assert a.bit_generator.state == b.bit_generator.state  # the same draws, in the same sizes
    for f in fields(draws):
        x, y = getattr(draws, f.name), getattr(want_draws, f.name)
        if isinstance(x, dict):
            assert list(x) == list(y)
            for k in x:
                _same(x[k], y[k], (f.name, k))
        else:
            _same(x, y, f.name)
    cov = {"bsa_m2": g.uniform(1.2, 2.4, n), "weight_kg": g.uniform(40, 100, n),
           "crcl_ml_min": g.uniform(30, 150, n)}
    units, want_units = course.patient_units(reg, cov), ref.patient_units(reg, cov)
    for k in want_units:
        _same(units[k], want_units[k], k)
    got = course.plan_courses(reg, draws, units, keys, upp, carry_over)
    want = ref.plan_courses(reg, want_draws, want_units, keys, upp, carry_over)
    for f in fields(want):
        _same(getattr(got, f.name), getattr(want, f.name), f.name)


def test_plan_of_the_scenarios_equals_the_phase3_plan(regimens):
    """The two scenarios' own regimens at a replicate's size (110 patients, 170 cycles)."""
    for reg in regimens:
        keys = _keys(reg)
        upp = np.arange(1, len(keys) + 1) * 7
        for seed in range(3):
            draws = ref.draw_courses(reg, 110, 170, np.random.default_rng(seed))
            units = ref.patient_units(reg, {"bsa_m2": np.linspace(1.3, 2.2, 110),
                                            "weight_kg": np.linspace(45, 95, 110),
                                            "crcl_ml_min": np.linspace(40, 140, 110)})
            for carry_over in (True, False):
                got = course.plan_courses(reg, draws, units, keys, upp, carry_over)
                want = ref.plan_courses(reg, draws, units, keys, upp, carry_over)
                assert got.need.sum() > 0
                for f in fields(want):
                    _same(getattr(got, f.name), getattr(want, f.name), f.name)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_on_until_is_the_first_cycle_off(seed):
    """_on_until's first cycle off equals a scan of each row (the drug on while no stop so far and fewer
    reductions than levels - 1), and its reductions are the phase-3 `_levels`' increments."""
    g = np.random.default_rng(seed)
    n, K, levels = int(g.integers(0, 12)), int(g.integers(1, 30)), int(g.integers(1, 5))
    u_stop, u_red = g.random((n, K)), g.random((n, K))
    p_stop, p_red = float(g.choice([0.0, g.random() * 0.3, 1.0])), float(g.choice([0.0, g.random(), 1.0]))
    until, red = course._on_until(u_stop, u_red if levels > 1 else None, p_stop, p_red, levels)
    for i in range(n):
        k, level = 0, 0
        while k < K:
            if k > 0 and u_stop[i, k] < p_stop:
                break
            if k > 0 and levels > 1 and u_red[i, k] < p_red:
                level += 1
                if level >= levels:
                    break
            k += 1
        assert until[i] == k
    if levels > 1:
        lv, on = ref._levels(u_stop, u_red, p_stop, p_red, levels)
        assert np.array_equal(np.cumsum(red, axis=1), lv)
        assert np.array_equal(on, np.arange(K)[None, :] < until[:, None])
    else:
        assert red is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 12), st.integers(-3, 12)), min_size=1, max_size=5))
def test_first_uncovered_is_the_least_k_outside_every_interval(intervals):
    lo = [np.array([a]) for a, _ in intervals]
    hi = [np.array([b]) for _, b in intervals]
    k = 0
    while any(a <= k < b for a, b in intervals):
        k += 1
    assert course._first_uncovered(lo, hi).tolist() == [k]


@pytest.mark.parametrize("carry_over", [True, False])
def test_dispensing_rows_equals_the_phase3_dispensing(carry_over):
    """_dispensing_rows (presentation by cell in and out) gives the transposes of the phase-3
    `_dispensing`'s arrays, C-ordered, on random plans; `_dispensing` (cells x P) is the same as before."""
    for trial, need, taken, first, upp in random_dispensing_plans(11):
        want = ref._dispensing(need, taken, first, upp, carry_over)
        rows = course._dispensing_rows(np.ascontiguousarray(need.T), np.ascontiguousarray(taken.T), first,
                                       upp, carry_over)
        for a, b in zip(rows, want, strict=True):
            assert a.flags.c_contiguous and a.dtype == b.dtype
            assert np.array_equal(a, b.T), trial
        for a, b in zip(course._dispensing(need, taken, first, upp, carry_over), want, strict=True):
            assert a.flags.c_contiguous and a.dtype == b.dtype and np.array_equal(a, b), trial


def test_cell_levels_are_running_counts_per_patient():
    g = np.random.default_rng(3)
    cycles = g.integers(0, 9, 20)
    offset = np.concatenate([[0], np.cumsum(cycles)[:-1]])
    pi = np.repeat(np.arange(20), cycles)
    ck = np.arange(pi.size) - offset[pi]
    red = (g.random(pi.size) < 0.4) & (ck > 0)
    got = course._cell_levels(red, offset, pi, 2)
    want = [min(int(red[offset[i]:offset[i] + k + 1].sum()), 2) for i, k in zip(pi, ck, strict=True)]
    assert got.tolist() == want
    assert course._cell_levels(red[:0], offset[:0], pi[:0], 2).tolist() == []



@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 6), size=st.integers(0, 3000))
def test_whole_days_are_the_rounded_draws(seed, m, size):
    """_whole_days (a categorical's values rounded once and picked by counting cumulative probabilities)
    equals np.maximum(np.rint(dist.sample(...)), 0) as int64 and leaves the generator where `sample`
    does: random categoricals (zero probabilities, negative and fractional values, repeated values,
    more values than the fast path takes), a uniform and a constant."""
    from hn005_sim.scenario.dists import Categorical, Constant, Uniform

    g = np.random.default_rng(seed)
    probs = g.random(m) * (g.random(m) < 0.8)
    probs = (probs / probs.sum()).tolist() if probs.sum() > 0 else [1.0 / m] * m
    values = np.round(g.uniform(-5, 25, m) * 2) / 2
    if m > 1 and g.random() < 0.3:
        values[1] = values[0]
    dists = [Categorical(dist="categorical", values=values.tolist(), probs=probs, source="test: random"),
             Uniform(dist="uniform", low=float(g.uniform(-3, 2)), high=float(g.uniform(3, 9)), source="t: r"),
             Constant(dist="constant", value=float(g.uniform(-2, 9)), source="test: random")]
    for d in dists:
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        got = course._whole_days(d, a, size)
        want = np.maximum(np.rint(d.sample(b, size)), 0).astype(np.int64)
        assert got.dtype == want.dtype and np.array_equal(got, want)
        assert a.bit_generator.state == b.bit_generator.state
