"""Shared pydantic building blocks for the scenario schema."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Every config model: unknown keys refused, no silent type coercion, frozen after load."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


class Figure(Strict):
    """A single figure that describes the world, with where it comes from."""

    value: float
    unit: str | None = None
    source: str = Field(min_length=3, description="citation, or 'assumption: why'")


class Probability(Strict):
    """A probability that describes the world, with where it comes from."""

    value: float = Field(ge=0, le=1)
    source: str = Field(min_length=3, description="citation, or 'assumption: why'")
