"""The exact step of the site search (recruitment/enumeration.py, via planning.optimise) against brute-force
enumeration: random boxes, costs (some zero, some tied) and monotone probability functions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hn005_sim.recruitment import planning as P
from hn005_sim.recruitment.enumeration import cheapest_below


def _monotone(w: np.ndarray, shift: float):
    def prob(allocs: np.ndarray) -> np.ndarray:
        z = np.atleast_2d(allocs) @ w - shift
        return 1 / (1 + np.exp(-z))

    return prob


@pytest.mark.parametrize("seed", range(12))
def test_optimise_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_r = int(rng.integers(1, 5))
    lo = rng.integers(0, 3, n_r)
    hi = lo + rng.integers(0, 7, n_r)
    cost = rng.choice([0.0, 1000.0, 2500.0, 4000.0], n_r)  # zero and tied costs
    w = rng.uniform(0.05, 1.0, n_r)
    prob = _monotone(w, float(rng.uniform(1, 6)))
    p = float(rng.uniform(0.3, 0.95))
    res = P.optimise(prob, lo, hi, cost, w, p)
    allocs = np.array(list(itertools.product(*[range(a, b + 1) for a, b in zip(lo, hi, strict=True)])))
    pr = prob(allocs)
    ci = np.round(cost * 1e4).astype(np.int64)
    feasible = [(int(ci @ x), int(x.sum()), -q) for x, q in zip(allocs, pr, strict=True) if q >= p]
    if not feasible:
        assert not res.feasible
        return
    best = min(feasible)
    assert res.feasible and res.proved_optimal
    assert (int(ci @ res.allocation), int(res.allocation.sum())) == best[:2]
    assert res.probability == pytest.approx(-best[2])  # ties: the higher probability


def test_cheapest_below_returns_none_when_the_box_is_too_big():
    lo, hi = np.zeros(6, int), np.full(6, 40)
    prob = _monotone(np.ones(6), 100.0)
    ci = np.ones(6, dtype=np.int64)
    assert cheapest_below(prob, lo, hi, ci, 0.5, (10**9, 10**9), max_rows=1000) is None
