"""Shared pydantic building blocks for the scenario schema."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hn005_sim.scenario.uncertainty import Uncertainty, check_contains, check_probability


class Strict(BaseModel):
    """Every config model: unknown keys refused, no silent type coercion, frozen after load."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


class Figure(Strict):
    """A single figure that describes the world, with where it comes from (and, optionally, how
    uncertain it is: scenario/uncertainty.py)."""

    value: float
    unit: str | None = None
    source: str = Field(min_length=3, description="citation, or 'assumption: why'")
    uncertainty: Uncertainty | None = None

    @model_validator(mode="after")
    def _range(self):
        if self.uncertainty is not None:
            check_contains(self.uncertainty, self.value)
        return self


class Probability(Strict):
    """A probability that describes the world, with where it comes from (and how uncertain it is)."""

    value: float = Field(ge=0, le=1)
    source: str = Field(min_length=3, description="citation, or 'assumption: why'")
    uncertainty: Uncertainty | None = None

    @model_validator(mode="after")
    def _range(self):
        if self.uncertainty is not None:
            check_contains(self.uncertainty, self.value)
            check_probability(self.uncertainty, self.value)
        return self
