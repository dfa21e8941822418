"""Load-time check of the `[criteria]` section: every rule compiled against the cohort columns, every
problem reported with the file that set it and the criterion id (or the criteria edit that set the rule)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hn005_sim.eligibility.config import CriteriaConfig
from hn005_sim.eligibility.engine import check_config
from hn005_sim.scenario.errors import Problem

if TYPE_CHECKING:
    from hn005_sim.scenario.load import RawScenario


def check_scenario_criteria(cfg: CriteriaConfig, raw: RawScenario) -> list[Problem]:
    from hn005_sim.scenario.edits import relocate

    _, problems = check_config(cfg, None, raw.origin)
    return relocate(problems, raw.edited)
