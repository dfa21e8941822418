"""The `regimen` section: any trial's drugs as data - schedule, dose rule, reduction levels, toxicity, caps.

A regimen is `cycle_days` plus a table of drugs (`[regimen.drugs.NAME]`, in the order written; the order
fixes the order of the random draws, so it is part of the trial's definition). Each drug says its
route, its dose rule (flat mg, mg/m2 of BSA, mg/kg of weight, or a target AUC by the Calvert formula),
the days of a cycle it is given, the phase (every cycle, induction only, maintenance only), its
reduction levels, the strengths it is made from and how a dose is rounded to whole units, an optional
cap in months from the first dose, an optional choice between alternatives (cisplatin or carboplatin)
and its per-cycle toxicity. Presentations, pack sizes and stability live in the `supply` section, one
presentation per (drug, strength).

Every figure that describes the world carries a `source` (a citation, or `assumption: why`).
Times inside the model are days; configured durations say their unit in the key name.
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from hn005_sim.scenario.base import Strict
from hn005_sim.scenario.dists import Dist

ROUNDING = ("nearest", "label_table", "cover")
"""How a dose becomes whole units (tablets, capsules, vials), see treatment/dosing.py."""


class DrugToxicity(Strict):
    """Per-cycle probabilities for one drug, drawn independently at each cycle visit (assumptions)."""

    reduce_per_cycle: float = Field(ge=0, le=1, description="next dose level from this cycle on")
    stop_per_cycle: float = Field(ge=0, le=1, description="drug stopped for toxicity before this cycle")
    interrupt_per_cycle: float = Field(
        default=0.0, ge=0, le=1, description="oral drug: some days of this cycle are missed"
    )
    source: str = Field(min_length=3)


class Choice(Strict):
    """One of several alternative drugs is given to each patient (investigator's choice)."""

    group: str = Field(min_length=1, description="drugs with the same group are alternatives")
    share: float = Field(ge=0, le=1, description="share of patients given this alternative")
    source: str = Field(min_length=3)


class Drug(Strict):
    """One drug of the regimen."""

    route: Literal["oral", "iv", "sc"]
    dose_rule: Literal["flat", "per_m2", "per_kg", "auc"] = Field(
        description="flat: mg; per_m2: mg per m2 of BSA; per_kg: mg per kg; auc: target AUC "
                    "(mg/mL x min), dose = AUC x (GFR + 25) (Calvert)")
    dose: float = Field(gt=0, description="per administration, in the unit of the dose rule")
    dose_fractions: list[float] = Field(
        default_factory=lambda: [1.0], min_length=1,
        description="1.0, then each reduction level as a fraction of the starting dose")
    max_dose_mg: float | None = Field(default=None, gt=0, description="cap on one administration, mg")
    gfr_cap_ml_min: float | None = Field(
        default=None, gt=0, description="auc: the GFR (Cockcroft-Gault CrCl) used is capped at this")
    administrations_per_day: int = Field(default=1, ge=1)
    days: list[int] = Field(min_length=1, description="days of the cycle the drug is given (1 = day 1)")
    phase: Literal["all", "induction", "maintenance"] = Field(
        default="all", description="induction: only in the first `course.induction_cycles` cycles")
    strengths_mg: list[Annotated[float, Field(gt=0)]] = Field(min_length=1, max_length=16,
                                                          description="per tablet, capsule or vial")
    rounding: Literal["nearest", "label_table", "cover"] = Field(
        default="nearest",
        description="nearest: the amount of whole units nearest the dose (ties down, fewest units); "
                    "label_table: units of the largest strength plus at most `max_small_units` of the "
                    "others, nearest (ties down); cover: the least amount >= the dose (vials)")
    max_units_per_administration: int = Field(default=12, ge=1)
    max_small_units: int | None = Field(
        default=None, ge=0, description="label_table: most units of the smaller strengths per dose")
    cap_months: float | None = Field(
        default=None, gt=0, description="months from first dose; later only by choice")
    continue_after_cap: Dist | None = Field(default=None, description="bernoulli: continued past the cap")
    choice: Choice | None = None
    toxicity: DrugToxicity
    source: str = Field(min_length=3)

    @field_validator("days", mode="before")
    @classmethod
    def _day_range(cls, v):
        """`days` may be written as "1-21" for a run of days."""
        if isinstance(v, str):
            try:
                a, b = (int(x) for x in v.split("-"))
            except ValueError:
                raise ValueError(f"days: expected a list of days or 'FIRST-LAST', got {v!r}") from None
            return list(range(a, b + 1))
        return v

    @model_validator(mode="after")
    def _consistent(self):
        if any(d < 1 for d in self.days) or len(set(self.days)) != len(self.days):
            raise ValueError("days must be distinct day numbers >= 1")
        fr = self.dose_fractions
        if fr[0] != 1.0 or any(b >= a for a, b in itertools.pairwise(fr)) or fr[-1] <= 0:
            raise ValueError("dose_fractions must start at 1.0 and decrease, staying > 0")
        if (self.cap_months is None) != (self.continue_after_cap is None):
            raise ValueError("cap_months and continue_after_cap go together")
        if self.rounding == "label_table" and self.max_small_units is None:
            raise ValueError("rounding 'label_table' needs max_small_units")
        if self.route != "oral" and self.toxicity.interrupt_per_cycle > 0:
            raise ValueError("interrupt_per_cycle applies to oral drugs only")
        return self

    @property
    def oral(self) -> bool:
        return self.route == "oral"

    @property
    def cycle_days_given(self) -> int:
        return len(self.days)

    @property
    def administrations(self) -> int:
        """Administrations per cycle."""
        return len(self.days) * self.administrations_per_day


class Toxicity(Strict):
    """What is shared by all drugs: cycle delays and the days an interruption lasts."""

    delay_per_cycle: float = Field(ge=0, le=1, description="probability the cycle starts late")
    delay_days: Dist = Field(description="days a delayed cycle starts late")
    interrupted_days: Dist = Field(description="days of an interrupted cycle's oral doses missed")
    source: str = Field(min_length=3)


class Course(Strict):
    """How long treatment lasts: induction length, progression, death and withdrawal."""

    induction_cycles: Dist = Field(description="cycles of the induction phase")
    progression_months: Dist = Field(description="progression-free time from first dose, months")
    death_months: Dist = Field(description="time to death without progression, months")
    withdrawal_months: Dist = Field(description="time to withdrawal of consent or loss, months")


class RegimenConfig(Strict):
    """The treatment arm of the trial (drugs in the order written)."""

    cycle_days: int = Field(gt=0)
    drugs: dict[str, Drug] = Field(min_length=1)
    toxicity: Toxicity
    course: Course
    source: str = Field(min_length=3)

    @model_validator(mode="after")
    def _checks(self):
        for name, d in self.drugs.items():
            if max(d.days) > self.cycle_days:
                raise ValueError(f"drugs.{name}.days: every day must be <= cycle_days ({self.cycle_days})")
        capped = [n for n, d in self.drugs.items() if d.cap_months is not None]
        if len(capped) > 1:
            raise ValueError(f"at most one drug may have cap_months, got {', '.join(capped)}")
        groups: dict[str, float] = {}
        for d in self.drugs.values():
            if d.choice is not None:
                groups[d.choice.group] = groups.get(d.choice.group, 0.0) + d.choice.share
        for g, total in groups.items():
            if not math.isclose(total, 1.0, abs_tol=1e-6):
                raise ValueError(f"choice group {g!r}: shares must sum to 1, got {total:.6g}")
        return self

    @property
    def drug_names(self) -> tuple[str, ...]:
        return tuple(self.drugs)

    @property
    def capped_drug(self) -> str | None:
        return next((n for n, d in self.drugs.items() if d.cap_months is not None), None)

    def choice_groups(self) -> dict[str, list[str]]:
        """Group -> its alternative drugs, in the order written."""
        out: dict[str, list[str]] = {}
        for n, d in self.drugs.items():
            if d.choice is not None:
                out.setdefault(d.choice.group, []).append(n)
        return out
