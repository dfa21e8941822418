"""Treatment courses: the cycle schedule, induction, the penpulimab cap, reductions and stopping."""

from __future__ import annotations

import numpy as np

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
    assert all(o.needed[("capecitabine", 150.0)] == 168 and o.needed[("capecitabine", 500.0)] == 42
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
    assert cape[:4] == [1100.0, 800.0, 600.0, 0.0]  # BSA 1.7: 1105 -> 1100, 828.75 -> 800, 552.5 -> 600
    assert all(("penpulimab", 100.0) in o.needed for o in orders)


def test_everything_stopped_ends_the_course(base):
    reg = deterministic_regimen(base.regimen, induction=4)
    for name in reg.drugs:
        reg = with_drug(reg, name, toxicity={"stop_per_cycle": 1.0})
    c, orders = walk(reg, horizon=400)
    assert len(orders) == 1 and c.end_reason == "toxicity" and c.end_day == 21.0


def test_progression_distribution_matches_config(base):
    """Weibull(1.5, 13.6) months: median 10.65 months, S(12) = 0.44 (the sourced targets)."""
    draws = draw_courses(base.regimen, 200_000, 1, np.random.default_rng(3))
    months = draws.progression_days / DAYS_PER_MONTH
    se_median = 1.2533 * months.std() / np.sqrt(months.size)  # asymptotic SE, generous
    assert abs(np.median(months) - 13.6 * np.log(2) ** (1 / 1.5)) < 5 * se_median
    s12 = np.exp(-((12 / 13.6) ** 1.5))
    assert abs((months > 12).mean() - s12) < 5 * np.sqrt(s12 * (1 - s12) / months.size)
    assert 10.5 < 13.6 * np.log(2) ** (1 / 1.5) < 10.8 and 0.31 <= s12 <= 0.45
