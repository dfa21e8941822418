"""The `regimen` section: the Arm 1 schedule, dose levels, toxicity and how courses end.

Every figure that describes the world carries a `source` (a citation, or `assumption: why`).
Times inside the model are days; configured durations say their unit in the key name.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import Field, model_validator

from hn005_sim.scenario.base import Strict
from hn005_sim.scenario.dists import Dist

DRUGS = ("anlotinib", "penpulimab", "capecitabine")


class Anlotinib(Strict):
    """Oral capsules once daily on days `first_day`..`last_day` of each induction cycle."""

    dose_levels_mg: list[float] = Field(min_length=1, description="starting dose, then each reduction")
    first_day: int = Field(ge=1)
    last_day: int = Field(ge=1)
    induction_only: bool = Field(description="true: not given in maintenance (protocol Arm 1)")
    source: str = Field(min_length=3)


class Penpulimab(Strict):
    """Flat intravenous dose on day 1; PD-1 antibodies have no dose reduction (label)."""

    dose_mg: float = Field(gt=0)
    vial_mg: float = Field(gt=0, description="strength of one vial; a dose is whole vials")
    cap_months: float = Field(gt=0, description="months from first dose; later only by choice")
    continue_after_cap: Dist = Field(description="bernoulli: the investigator continues past the cap")
    source: str = Field(min_length=3)


class Capecitabine(Strict):
    """BSA-based oral dose twice daily on days `first_day`..`last_day`; rounded to whole tablets."""

    dose_mg_m2: float = Field(gt=0, description="per administration")
    administrations_per_day: int = Field(ge=1)
    first_day: int = Field(ge=1)
    last_day: int = Field(ge=1)
    dose_fractions: list[float] = Field(min_length=1, description="1.0, then each reduction (75%, 50%)")
    tablet_strengths_mg: list[Annotated[int, Field(gt=0)]] = Field(min_length=1, max_length=16)
    max_tablets_per_administration: int = Field(default=12, ge=1)
    source: str = Field(min_length=3)


class DrugToxicity(Strict):
    """Per-cycle probabilities for one drug, drawn independently at each cycle visit (assumptions)."""

    reduce_per_cycle: float = Field(ge=0, le=1, description="next dose level from this cycle on")
    stop_per_cycle: float = Field(ge=0, le=1, description="drug stopped for toxicity before this cycle")
    interrupt_per_cycle: float = Field(
        default=0.0, ge=0, le=1, description="oral drug: some days of this cycle are missed"
    )
    source: str = Field(min_length=3)


class Toxicity(Strict):
    anlotinib: DrugToxicity
    penpulimab: DrugToxicity
    capecitabine: DrugToxicity
    delay_per_cycle: float = Field(ge=0, le=1, description="probability the cycle starts late")
    delay_days: Dist = Field(description="days a delayed cycle starts late")
    interrupted_days: Dist = Field(description="days of an interrupted cycle's oral doses missed")
    source: str = Field(min_length=3)


class Course(Strict):
    """How long treatment lasts: induction length, progression, death and withdrawal."""

    induction_cycles: Dist = Field(description="cycles of the three-drug induction (4-6)")
    progression_months: Dist = Field(description="progression-free time from first dose, months")
    death_months: Dist = Field(description="time to death without progression, months")
    withdrawal_months: Dist = Field(description="time to withdrawal of consent or loss, months")


class RegimenConfig(Strict):
    """Arm 1 of ALTER-HN005 (../seed/ALTER-HN005.txt)."""

    cycle_days: int = Field(gt=0)
    anlotinib: Anlotinib
    penpulimab: Penpulimab
    capecitabine: Capecitabine
    toxicity: Toxicity
    course: Course
    tablet_rule: Literal["nearest_ties_down_fewest"] = "nearest_ties_down_fewest"
    source: str = Field(min_length=3)

    @model_validator(mode="after")
    def _days(self):
        for name in ("anlotinib", "capecitabine"):
            d = getattr(self, name)
            if not d.first_day <= d.last_day <= self.cycle_days:
                raise ValueError(
                    f"{name}: need 1 <= first_day <= last_day <= cycle_days ({self.cycle_days}), "
                    f"got {d.first_day}..{d.last_day}"
                )
        if any(b >= a for a, b in itertools.pairwise(self.anlotinib.dose_levels_mg)):
            raise ValueError("anlotinib.dose_levels_mg must decrease (each entry a reduction)")
        fr = self.capecitabine.dose_fractions
        if fr[0] != 1.0 or any(b >= a for a, b in itertools.pairwise(fr)) or fr[-1] <= 0:
            raise ValueError("capecitabine.dose_fractions must start at 1.0 and decrease, staying > 0")
        return self
