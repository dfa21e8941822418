"""treatment/course.py `_calendar` (issue 16, phase 5: the nominal calendar over the part of each row it
can reach) against the n x K computation it replaced in `plan_courses` (kept here, as it was at
b36d348): the same cycles reached and the same gap after every cell, on random draws with ends of every
kind (NaN, infinite, negative, zero, exactly on a visit day, beyond the drawn cycles) and on the
scenarios' own regimens at a replicate's size."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hn005_sim.scenario.load import load_scenario
from hn005_sim.treatment import course

from .conftest import ROOT


def nk_calendar(u, delay_days, p_delay, cycle_days, end):
    """The n x K computation of b36d348's plan_courses: (cycles reached, gap n x K)."""
    n, K = u.shape[:2]
    delay = np.where(u[..., 0] < p_delay, delay_days, 0)
    gap = np.full((n, K), cycle_days, dtype=np.int64)
    gap[:, :-1] += delay[:, 1:]
    start = np.zeros((n, K), dtype=np.int64)
    np.cumsum(gap[:, :-1], axis=1, out=start[:, 1:])
    return np.count_nonzero(start < end[:, None], axis=1), gap


def _check(u, delay_days, p_delay, cycle_days, end):
    n = u.shape[0]
    want_reach, want_gap = nk_calendar(u, delay_days, p_delay, cycle_days, end)
    reach, gap_at = course._calendar(u, delay_days, p_delay, cycle_days, end)
    assert reach.dtype == np.int64 and reach.shape == (n,)
    assert np.array_equal(reach, want_reach)
    # every cell a plan can have: cycles k < the cycles reached (plan_courses cuts them further by
    # the first cycle without a drug, which only drops cells)
    pi = np.repeat(np.arange(n), reach)
    off = np.zeros(n, dtype=np.int64)
    np.cumsum(reach[:-1], out=off[1:])
    ck = np.arange(pi.size) - off[pi]
    got = gap_at(pi, ck)
    assert got.dtype == np.int64
    assert np.array_equal(got, want_gap[pi, ck])
    return int(reach.sum())


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_calendar_equals_the_n_by_k_calendar(seed):
    g = np.random.default_rng(seed)
    n, K, W = int(g.integers(0, 40)), int(g.integers(1, 60)), int(g.integers(1, 5))
    cycle_days = int(g.choice([1, 7, 14, 21, 28]))
    u = g.random((n, K, W))
    delay_days = g.choice([0, 1, 7, 14, 30], size=(n, K)).astype(np.int64)
    p_delay = float(g.choice([0.0, 0.3, 1.0]))
    kind = g.integers(0, 4, n)
    end = np.where(kind == 0, g.exponential(cycle_days * K / 3, n),  # anywhere, often past K
                   np.where(kind == 1, g.integers(-2, K + 3, n) * float(cycle_days),  # on a nominal day
                            np.where(kind == 2, g.choice([np.nan, np.inf, -np.inf, 0.0, -5.0], n),
                                     g.uniform(0, cycle_days * K * 2, n))))
    _check(u, delay_days, p_delay, cycle_days, end)


def test_an_end_on_the_day_after_the_last_reachable_visit_needs_the_next_delay():
    """The cut keeps one cycle more than the calendar can reach: the gap after the last visit before
    the end holds the delay drawn for the cycle after it."""
    K = 10
    u = np.zeros((1, K, 1))  # every cycle delayed
    delay = np.full((1, K), 7, dtype=np.int64)
    for end_day in (20.5, 21.0, 21.5, 28.0, 28.5, 63.0, 1e9):
        total = _check(u, delay, 1.0, 21, np.array([end_day]))
        assert total >= 1


@pytest.mark.parametrize("name", ["baseline", "ak105_304"])
def test_calendar_of_the_scenarios_draws(name):
    """The scenarios' regimens, 110 patients x 170 cycles, their own delay draws and ends."""
    sc, _ = load_scenario(ROOT / "scenarios" / f"{name}.toml")
    reg = sc.regimen
    reached = 0
    for seed in range(5):
        draws = course.draw_courses(reg, 110, 170, np.random.default_rng(seed))
        end = np.minimum(np.minimum(draws.progression_days, draws.death_days), draws.withdrawal_days)
        reached += _check(draws.uniforms, draws.delay_days, reg.toxicity.delay_per_cycle, reg.cycle_days,
                          end)
    assert reached > 0
