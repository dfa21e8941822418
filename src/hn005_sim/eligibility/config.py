"""The `[criteria]` section: every eligibility criterion of the protocol as data.

Conventions (also in configs/alter_hn005/criteria.toml and docs/criteria.md):
- an INCLUSION rule is true for a candidate who PASSES it; an EXCLUSION rule is true for a candidate
  who is EXCLUDED by it. Either way the engine turns it into a pass column.
- a rule is SQL (polars `pl.sql_expr`) over cohort columns, with named threshold parameters written
  `{name}`; parameter values are substituted as SQL literals before compiling. Never Python eval.
- `null` says what a rule that evaluates to NULL (a test not done, a value not applicable) means for
  the candidate: "pass" or "fail". It is applied to the pass column, so the pass matrix is pure bool.
- an ambiguity of the protocol is a named reading: the criterion gives one rule per reading
  (`reading = "prior_ici"`, `rules = {never = "...", curative_phase_allowance = "..."}`) and
  `[criteria.readings]` chooses one; a scenario can choose another.
- thresholds are overridden by name: `[criteria.overrides] crcl_min_ml_min = 50` (or
  `{ value = 50, source = "..." }`), or the sweep-friendly shortcut `criteria.crcl_min_ml_min = 50`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, model_validator

from hn005_sim.scenario.base import Strict

ParamValue = float | int | bool | str

NAME = r"^[a-z][a-z0-9_]*$"


class Sweep(Strict):
    """Values a threshold is swept over: `{low, high, step}` (inclusive) or an explicit `values` list."""

    low: float | None = None
    high: float | None = None
    step: float | None = Field(default=None, gt=0)
    values: list[float] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _shape(self):
        ranged = self.low is not None and self.high is not None and self.step is not None
        if ranged == (self.values is not None):
            raise ValueError("give either low, high and step, or values")
        if ranged and self.low > self.high:  # type: ignore[operator]
            raise ValueError(f"low must be <= high, got low={self.low}, high={self.high}")
        if ranged and (self.high - self.low) / self.step > 1000:  # type: ignore[operator]
            raise ValueError("more than 1000 sweep points; use a larger step")
        return self

    def grid(self) -> list[float]:
        if self.values is not None:
            return [float(v) for v in self.values]
        n = math.floor((self.high - self.low) / self.step + 1e-9)  # type: ignore[operator]
        return [round(self.low + i * self.step, 10) for i in range(n + 1)]  # type: ignore[operator]


class Parameter(Strict):
    """A named threshold of the protocol, with its unit, source and the range a sweep explores."""

    value: ParamValue
    unit: str | None = None
    source: str = Field(min_length=3, description="protocol wording, citation, or 'assumption: why'")
    description: str = ""
    sweep: Sweep | None = None


class OverrideFigure(Strict):
    value: ParamValue
    source: str = Field(min_length=3)


class Criterion(Strict):
    """One atomic criterion. Inclusion rule: true = passes; exclusion rule: true = excluded."""

    id: str = Field(pattern=NAME)
    kind: Literal["inclusion", "exclusion"]
    stage: Literal["prescreen", "screening"]
    protocol_text: str = Field(min_length=3, description="the protocol's own words this criterion encodes")
    rule: str | None = None
    reading: str | None = Field(default=None, pattern=NAME)
    rules: dict[str, str] | None = None
    null: Literal["pass", "fail"]
    note: str = ""

    @model_validator(mode="after")
    def _one_rule(self):
        if (self.rule is None) == (self.rules is None):
            raise ValueError("give either `rule`, or `reading` and `rules` (one rule per reading)")
        if (self.rules is None) != (self.reading is None):
            raise ValueError("`rules` (one rule per reading) needs `reading`, the reading it depends on")
        if self.rules is not None and not self.rules:
            raise ValueError("`rules` must name at least one reading")
        return self

    def active_rule(self, readings: dict[str, str]) -> str:
        if self.rules is None:
            return self.rule  # type: ignore[return-value]
        return self.rules[readings[self.reading]]  # type: ignore[index]

    def all_rules(self) -> dict[str, str]:
        """Every rule text this criterion can take, keyed by reading choice ('' when there is one)."""
        return {"": self.rule} if self.rules is None else dict(self.rules)  # type: ignore[dict-item]


class Relaxation(Strict):
    """A clinically defensible relaxation: parameter overrides and/or reading choices, with why."""

    id: str = Field(pattern=NAME)
    description: str = Field(min_length=3)
    rationale: str = Field(min_length=3, description="why it is defensible, citation where there is one")
    overrides: dict[str, ParamValue] = Field(default_factory=dict)
    readings: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _something(self):
        if not self.overrides and not self.readings:
            raise ValueError("a relaxation must change at least one parameter or reading")
        return self


class CriteriaConfig(Strict):
    """Eligibility criteria, their threshold parameters, readings of ambiguities and relaxation menu."""

    parameters: dict[str, Parameter] = Field(default_factory=dict)
    readings: dict[str, str] = Field(default_factory=dict)
    overrides: dict[str, ParamValue | OverrideFigure] = Field(default_factory=dict)
    criterion: list[Criterion] = Field(min_length=1)
    columns: dict[str, Literal["bool", "float", "int", "string"]] = Field(
        default_factory=dict,
        description="trial-specific cohort columns the rules name beyond the contract's (e.g. prior "
                    "exposure to the trial's own drug), generated by the population's declared attributes")
    relaxations: list[Relaxation] = Field(default_factory=list)
    target_eligible_fraction: float | None = Field(
        default=None, gt=0, le=1, description="default target of the relaxation plan (--target-fraction)"
    )
    bootstrap_replicates: int = Field(default=200, ge=0, le=10_000)

    @model_validator(mode="before")
    @classmethod
    def _shortcuts(cls, data: Any) -> Any:
        """`criteria.crcl_min_ml_min = 50` is a shortcut for `criteria.overrides.crcl_min_ml_min = 50`."""
        if not isinstance(data, dict):
            return data
        params = data.get("parameters")
        if not isinstance(params, dict):
            return data
        fields = set(cls.model_fields)
        moved = {k: v for k, v in data.items() if k not in fields and k in params}
        if not moved:
            return data
        out = {k: v for k, v in data.items() if k not in moved}
        overrides = dict(out.get("overrides") or {})
        for key, value in moved.items():
            if key in overrides and overrides[key] != value:
                raise ValueError(f"{key} is set both as criteria.{key} and criteria.overrides.{key}")
            overrides[key] = value
        out["overrides"] = overrides
        return out

    def override_values(self) -> dict[str, ParamValue]:
        return {k: (v.value if isinstance(v, OverrideFigure) else v) for k, v in self.overrides.items()}

    def values(self) -> dict[str, ParamValue]:
        """Parameter values in force: the defaults, then the scenario's overrides."""
        out = {k: p.value for k, p in self.parameters.items()}
        out.update({k: v for k, v in self.override_values().items() if k in out})
        return out

    def with_changes(
        self, overrides: dict[str, ParamValue] | None = None, readings: dict[str, str] | None = None
    ) -> CriteriaConfig:
        """A copy with more overrides and reading choices (used by sweeps and the relaxation plan)."""
        new_over: dict[str, Any] = dict(self.overrides)
        new_over.update(overrides or {})
        new_read = {**self.readings, **(readings or {})}
        return self.model_copy(update={"overrides": new_over, "readings": new_read})
