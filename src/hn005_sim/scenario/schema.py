"""The scenario schema: one frozen pydantic model per section, unknown keys refused everywhere.

Each stage of the data flow owns its section's model (population/config.py, eligibility/config.py, ...);
this module composes them and runs the checks that span sections.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from pydantic import Field

from hn005_sim.eligibility.chart import ChartReviewConfig
from hn005_sim.eligibility.config import CriteriaConfig
from hn005_sim.population.config import PopulationConfig
from hn005_sim.recruitment.config import RecruitmentConfig
from hn005_sim.scenario.base import Strict
from hn005_sim.scenario.errors import Problem
from hn005_sim.supply.config import SupplyConfig
from hn005_sim.treatment.config import RegimenConfig

if TYPE_CHECKING:
    from hn005_sim.scenario.load import RawScenario


class Comparator(Strict):
    """Baseline figures of a published trial the report sets the simulated cohort beside (None: not
    gathered, shown as a dash rather than guessed)."""

    trial: str = Field(min_length=1)
    regimen: str = Field(min_length=1)
    patients: int = Field(gt=0)
    screened: int | None = None
    median_age_years: float | None = None
    age_iqr_years: list[float] | None = Field(default=None, min_length=2, max_length=2)
    female_fraction: float | None = Field(default=None, ge=0, le=1)
    sites: int | None = None
    source: str = Field(min_length=3)


class Trial(Strict):
    """The trial's identity (configs/<trial>/base.toml) and the published trials it is compared with."""

    name: str = Field(default="unnamed trial", min_length=1)
    title: str | None = Field(default=None, description="the report's title; default: name")
    registry: str | None = None
    target_enrolled: int = Field(gt=0, description="patients to enrol (first dose)")
    start_date: dt.date
    deadline_months: float = Field(gt=0, description="months from start_date by which the target is wanted")
    source: str | None = None
    comparators: list[Comparator] = Field(default_factory=list)

    @property
    def display_title(self) -> str:
        return self.title or self.name


class Scenario(Strict):
    name: str
    description: str = ""
    trial: Trial
    population: PopulationConfig | None = None
    criteria: CriteriaConfig | None = None
    recruitment: RecruitmentConfig | None = None
    regimen: RegimenConfig | None = None
    supply: SupplyConfig | None = None
    chart_review: ChartReviewConfig | None = None

    def check(self, raw: RawScenario) -> list[Problem]:
        """Checks that span sections; each returns problems with the path and file that caused them."""
        from hn005_sim.scenario.bounds import check_bounds

        problems: list[Problem] = check_bounds(self, raw)
        if self.criteria is not None:
            from hn005_sim.eligibility.check import check_scenario_criteria

            problems += check_scenario_criteria(self.criteria, raw)
        problems += self._check_chart_review(raw)
        if self.regimen is not None and self.supply is not None:
            problems += _check_presentations(self.regimen, self.supply, raw)
        if self.criteria is not None and self.population is not None:
            from hn005_sim.scenario.load import origin_of

            have = set(self.population.declared_attributes())
            for name in self.criteria.columns:
                if name not in have:
                    problems.append(Problem(
                        origin_of(raw, ("criteria", "columns", name)), f"criteria.columns.{name}",
                        "expected a population attribute of that name (population.history or "
                        "population.disease.conditional_flags), found none"))
        return problems

    def _check_chart_review(self, raw: RawScenario) -> list[Problem]:
        """Columns and panels named in [chart_review], and the site types the regions name."""
        from hn005_sim.eligibility.chart import check_chart_review
        from hn005_sim.eligibility.columns import CONTRACT_COLUMNS
        from hn005_sim.scenario.load import origin_of

        regions = self.recruitment.regions if self.recruitment is not None else []
        if self.chart_review is None:
            return [Problem(origin_of(raw, ("recruitment", "regions", i)), f"recruitment.regions[{i}]."
                            + ("site_type" if r.site_type is not None else "chart_known"),
                            "needs a [chart_review] section (site types and what their charts hold)")
                    for i, r in enumerate(regions) if r.site_type is not None or r.chart_known]
        columns = list(CONTRACT_COLUMNS)
        if self.population is not None:  # the trial's own attributes, declared in its config
            columns += [c for c in self.population.declared_attributes() if c not in CONTRACT_COLUMNS]
        return check_chart_review(self.chart_review, regions, columns, lambda loc: origin_of(raw, loc))


def _check_presentations(regimen: RegimenConfig, supply: SupplyConfig, raw: RawScenario) -> list[Problem]:
    """Every presentation names a drug of the regimen; every strength a drug is made of has one."""
    from hn005_sim.scenario.load import origin_of

    out = []
    have = {(p.drug, float(p.strength_mg)) for p in supply.presentations}
    for i, p in enumerate(supply.presentations):
        if p.drug not in regimen.drugs:
            loc = ("supply", "presentations", i, "drug")
            out.append(Problem(origin_of(raw, loc), f"supply.presentations[{i}].drug",
                               f"expected a drug of the regimen ({', '.join(regimen.drugs)}), "
                               f"got {p.drug!r}"))
    for name, d in regimen.drugs.items():
        for s in d.strengths_mg:
            if (name, float(s)) not in have:
                loc = ("regimen", "drugs", name, "strengths_mg")
                out.append(Problem(origin_of(raw, loc), f"regimen.drugs.{name}.strengths_mg",
                                   f"expected a supply presentation of {name} {s:g} mg, found none"))
    return out
