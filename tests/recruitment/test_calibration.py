"""The baseline against the registry: NCT05807880 had 59 enrolled at its single site by about month 28
(docs/recruitment_des.md section 6, docs/validation.md). The registry figure is one realisation, so the
test asks that it be a typical draw of the simulated distribution, with tolerances from the Monte Carlo
error of 200 replicates."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from hn005_sim.recruitment.candidates import ScreenerSource
from hn005_sim.recruitment.config import MONTH_DAYS
from hn005_sim.recruitment.des import simulate_recruitment
from hn005_sim.scenario.load import load_scenario

REGISTRY_ENROLLED = 59
REGISTRY_MONTH = 28
REPLICATES = 200


def test_baseline_enrolled_by_month_28_matches_the_registry():
    sc, _ = load_scenario(Path(__file__).resolve().parents[2] / "scenarios" / "baseline.toml")
    source = ScreenerSource(sc)
    enrolled = np.array([
        int(np.sum(simulate_recruitment(sc, source, 20230901, r)[0].enrol_day <= REGISTRY_MONTH * MONTH_DAYS))
        for r in range(REPLICATES)
    ])
    se_mean = enrolled.std(ddof=1) / math.sqrt(REPLICATES)
    assert abs(enrolled.mean() - REGISTRY_ENROLLED) < 4.5 * se_mean
    # the registry's count sits near the middle of the simulated distribution: P(X <= 59) = 0.5 +- 5 SE
    below = float(np.mean(enrolled <= REGISTRY_ENROLLED))
    assert abs(below - 0.5) < 5 * math.sqrt(0.25 / REPLICATES)
