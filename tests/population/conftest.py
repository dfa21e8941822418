"""One baseline configuration and one large fixed-seed cohort shared by the population tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hn005_sim.population import sample
from hn005_sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "scenarios" / "baseline.toml"
N = 200_000


@pytest.fixture(scope="session")
def cfg():
    scenario, _ = load_scenario(BASELINE)
    return scenario.population


@pytest.fixture(scope="session")
def cohort(cfg):
    return sample(cfg, N, np.random.default_rng(20230901))


def within(observed: float, expected: float, se: float, k: float = 5.0, slack: float = 0.0) -> bool:
    """|observed - expected| within k Monte Carlo standard errors (plus a stated modelling slack)."""
    return abs(observed - expected) <= k * se + slack


def share_ok(mask: np.ndarray, p: float, k: float = 5.0) -> tuple[bool, str]:
    n = len(mask)
    obs = float(np.mean(mask))
    se = max(np.sqrt(p * (1 - p) / n), 1 / n)
    return within(obs, p, se, k), f"observed {obs:.5f}, expected {p:.5f}, se {se:.5f}, n {n}"
