"""Treatment courses: the cycle schedule, induction, the penpulimab cap, reductions and stopping."""

from __future__ import annotations

import numpy as np
import pytest

from hn005_sim.treatment.course import DAYS_PER_MONTH, PatientCourse, draw_courses

from .conftest import deterministic_regimen, with_drug


def walk(regimen, horizon, first_day=0.0, bsa=1.7, seed=0):
    draws = draw_courses(regimen, 1, int(horizon // regimen.cycle_days) + 2, np.random.default_rng(seed))
    c = PatientCourse(regimen, draws, 0, first_day, {"bsa_m2": bsa}, horizon)
    orders, day = [], first_day
    while (o := c.visit(day)) is not None:
        orders.append(o)
        day += regimen.cycle_days + c.delay_before()
    return c, orders


def test_fixed_course_until_progression(base):
    """Progression at 10 months (304.4 days): cycles on days 0, 21, ..., 294 -> 15 cycles."""
    reg = deterministic_regimen(base.regimen, induction=5, progression_months=10.0)
    c, orders = walk(reg, horizon=5000)
    assert [o.day for o in orders] == [21.0 * k for k in range(15)]
    assert c.end_reason == "progression"
    with_anl = [o.cycle for o in orders if ("anlotinib", 10.0) in o.needed]
    assert with_anl == [0, 1, 2, 3, 4]
    assert all(o.needed[("penpulimab", 100.0)] == 2 for o in orders)
    assert all(o.needed[("capecitabine", 150.0)] == 42 and o.needed[("capecitabine", 500.0)] == 84
               for o in orders)
    assert all(o.needed == o.taken for o in orders)


def test_penpulimab_stops_at_cap_unless_continued(base):
    reg = deterministic_regimen(base.regimen, induction=4)
    from hn005_sim.scenario.dists import Constant

    stop = with_drug(reg, "penpulimab", continue_after_cap=Constant(dist="constant", value=0.0))
    cap_day = 24 * DAYS_PER_MONTH  # 730.5
    _, orders = walk(stop, horizon=1000)
    pen_days = [o.day for o in orders if ("penpulimab", 100.0) in o.needed]
    assert max(pen_days) < cap_day and min(o.day for o in orders if o.day >= cap_day) == 735.0
    assert all(("capecitabine", 150.0) in o.needed for o in orders)
    _, orders = walk(reg, horizon=1000)  # continued past the cap
    assert all(("penpulimab", 100.0) in o.needed for o in orders)


def test_reductions_follow_dose_levels(base):
    """Reduce at every cycle: anlotinib 10 -> 8 -> stopped; capecitabine 100% -> 75% -> 50% -> stopped."""
    reg = deterministic_regimen(base.regimen, induction=6)
    reg = with_drug(reg, "anlotinib", toxicity={"reduce_per_cycle": 1.0})
    reg = with_drug(reg, "capecitabine", toxicity={"reduce_per_cycle": 1.0})
    _, orders = walk(reg, horizon=400)
    anl = [next((k[1] for k in o.needed if k[0] == "anlotinib"), None) for o in orders]
    assert anl[:3] == [10.0, 8.0, None]
    cape = [sum(k[1] * n / 42 for k, n in o.needed.items() if k[0] == "capecitabine") for o in orders]
    assert cape[:4] == [1150.0, 800.0, 500.0, 0.0]  # BSA 1.7: 1105 -> 1150, 828.75 -> 800, 552.5 -> 500
    assert all(("penpulimab", 100.0) in o.needed for o in orders)


def test_everything_stopped_ends_the_course(base):
    reg = deterministic_regimen(base.regimen, induction=4)
    for name in reg.drugs:
        reg = with_drug(reg, name, toxicity={"stop_per_cycle": 1.0})
    c, orders = walk(reg, horizon=400)
    assert len(orders) == 1 and c.end_reason == "toxicity" and c.end_day == 21.0


def test_progression_distribution_matches_config(base):
    """The drawn progression-free times follow the configured piecewise-exponential curve: the share
    progression-free at 12, 24 and 36 months within 4 binomial standard errors of S(t), and S(t) at the
    configured points is what the sources say (AK105-304: 44% at 12, 23% at 24 months)."""
    curve = base.regimen.course.progression_months
    draws = draw_courses(base.regimen, 200_000, 1, np.random.default_rng(3))
    months = draws.progression_days / DAYS_PER_MONTH
    for t in (12, 24, 36):
        s = float(curve.survival_at(t))
        assert abs((months > t).mean() - s) < 4 * np.sqrt(s * (1 - s) / months.size), t
    assert curve.survival_at(12) == pytest.approx(0.44) and curve.survival_at(24) == pytest.approx(0.23)
    # S(36) by hand: 0.23 * exp(-12 * tail hazard)
    assert curve.survival_at(36) == pytest.approx(0.23 * np.exp(-12 * curve.tail_hazard))
    # median by hand: 12 ln 2 / ln(1 / 0.44), in the published 9.6-11.7 range
    assert np.median(months) == pytest.approx(12 * np.log(2) / np.log(1 / 0.44), rel=0.01)
    assert 9.6 <= 12 * np.log(2) / np.log(1 / 0.44) <= 11.7
    # the closed-form mean against the sample mean (4 standard errors)
    assert abs(months.mean() - curve.mean()) < 4 * months.std() / np.sqrt(months.size)
