"""The scenario schema: one frozen pydantic model per section, unknown keys refused everywhere.

Each stage of the data flow owns its section's model (population/config.py, eligibility/config.py, ...);
this module composes them and runs the checks that span sections.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from pydantic import Field

from hn005_sim.scenario.base import Strict
from hn005_sim.scenario.errors import Problem

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

    def check(self, raw: RawScenario) -> list[Problem]:
        """Checks that span sections; each returns problems with the path and file that caused them."""
        return []
