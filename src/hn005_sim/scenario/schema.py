"""The scenario schema: one frozen pydantic model per section, unknown keys refused everywhere.

Each stage of the data flow owns its section's model (population/config.py, eligibility/config.py, ...);
this module composes them and runs the checks that span sections.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from pydantic import Field

from hn005_sim.eligibility.config import CriteriaConfig
from hn005_sim.population.config import PopulationConfig
from hn005_sim.recruitment.config import RecruitmentConfig
from hn005_sim.scenario.base import Strict
from hn005_sim.scenario.errors import Problem
from hn005_sim.supply.config import SupplyConfig
from hn005_sim.treatment.config import RegimenConfig

if TYPE_CHECKING:
    from hn005_sim.scenario.load import RawScenario


class Trial(Strict):
    name: str = "ALTER-HN005"
    registry: str | None = None
    target_enrolled: int = Field(gt=0, description="patients to enrol (first dose)")
    start_date: dt.date
    deadline_months: float = Field(gt=0, description="months from start_date by which the target is wanted")
    source: str | None = None


class Scenario(Strict):
    name: str
    description: str = ""
    trial: Trial
    population: PopulationConfig | None = None
    criteria: CriteriaConfig | None = None
    recruitment: RecruitmentConfig | None = None
    regimen: RegimenConfig | None = None
    supply: SupplyConfig | None = None

    def check(self, raw: RawScenario) -> list[Problem]:
        """Checks that span sections; each returns problems with the path and file that caused them."""
        problems: list[Problem] = []
        if self.criteria is not None:
            from hn005_sim.eligibility.check import check_scenario_criteria

            problems += check_scenario_criteria(self.criteria, raw)
        from hn005_sim.scenario.uncertainty import check_figures, uncertain_figures

        problems += check_figures(uncertain_figures(self), raw)
        return problems
