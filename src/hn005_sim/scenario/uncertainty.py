"""The uncertainty of a world figure: a range or distribution of what the figure's true value may be.

A figure is one value of the world (`consent = { value = 0.70, source = "..." }`): the simulation draws
patients and arrivals around it (first-order randomness), but the figure itself is known only roughly.
Its `uncertainty` says how roughly, with its own source (a citation, or `assumption: why`):

    consent = { value = 0.70, source = "...",
                uncertainty = { dist = "uniform", low = 0.55, high = 0.85, source = "assumption: ..." } }

A distribution carries one uncertainty per parameter, keyed by the parameter's name:

    progression_months = { dist = "weibull", shape = 1.5, scale = 13.6, source = "...",
                           uncertainty = { scale = { dist = "triangular", low = 11, mode = 13.6,
                                                     high = 16, source = "..." } } }

`relative = true` reads low/mode/high as multiples of the figure's value (`low = 0.75, high = 1.25`:
+-25%), so the range follows the central value when a scenario or a recalibration changes it.

Every range is bounded (uniform, triangular, beta's central 99%, log-uniform), so any point of the unit
cube maps onto a value through the quantile function (`ppf`): `run --uncertainty` maps uniform draws of
the replicate's `uncertainty` stream, `sensitivity` maps SALib's Sobol or Morris design. The central
value must lie inside the range (a range that excludes the figure it qualifies is a typo or a stale
recalibration).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from hn005_sim.scenario.load import RawScenario


def _triang_ppf(q: np.ndarray, c: float, loc: float, scale: float) -> np.ndarray:
    """`scipy.stats.triang.ppf(q, c, loc, scale)` without importing scipy.stats (0.6-0.8 s, paid by every
    scenario load for the bounds checks): the same operations in the same order, so the same bits
    (tests/scenario/test_uncertainty_ppf.py compares them). Outside [0, 1] (or c outside [0, 1]): NaN,
    as scipy gives."""
    q = np.asarray(q, float)
    inside = (q >= 0) & (q <= 1) & (0 <= c <= 1) & (scale > 0)
    with np.errstate(invalid="ignore"):
        x = np.where(q < c, np.sqrt(c * q), 1 - np.sqrt((1 - c) * (1 - q))) * scale + loc
    out = np.where(inside, x, np.nan)
    return out[()] if out.ndim == 0 else out


def _beta_ppf(q: np.ndarray, a: float, b: float) -> np.ndarray:
    """`scipy.stats.beta.ppf(q, a, b)` for q in (0, 1) (a beta range's q lies in [0.005, 0.995]) through
    scipy.special's ufunc, the function scipy.stats.beta calls itself, without importing scipy.stats."""
    from scipy import special
    from scipy.special import _ufuncs

    inverse = getattr(_ufuncs, "_beta_ppf", None)  # private; betaincinv gives the same bits in scipy 1.17
    return inverse(q, a, b) if inverse is not None else special.betaincinv(a, b, q)


class _Range(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)
    relative: bool = Field(default=False, description="low/mode/high are multiples of the figure's value")
    source: str = Field(min_length=3, description="citation, or 'assumption: why'")

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Quantile function on [low, high] (multipliers when relative), u in [0, 1]."""
        raise NotImplementedError

    def bounds(self) -> tuple[float, float]:
        return self.low, self.high  # type: ignore[attr-defined]

    def scaled_bounds(self, value: float) -> tuple[float, float]:
        """The range in the figure's own units."""
        lo, hi = self.bounds()
        if self.relative:
            lo, hi = sorted((lo * value, hi * value))
        return lo, hi

    def describe(self) -> str:
        raise NotImplementedError

    def _check(self) -> None:
        lo, hi = self.bounds()
        if not lo < hi:
            raise ValueError(f"low must be < high, got low={lo:g}, high={hi:g}")


class UniformRange(_Range):
    dist: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _order(self):
        self._check()
        return self

    def ppf(self, u):
        return self.low + (self.high - self.low) * np.asarray(u, float)

    def describe(self):
        return f"uniform({self.low:g}, {self.high:g})"


class TriangularRange(_Range):
    dist: Literal["triangular"]
    low: float
    mode: float
    high: float

    @model_validator(mode="after")
    def _order(self):
        self._check()
        if not self.low <= self.mode <= self.high:
            raise ValueError(f"mode must be within [low, high], got mode={self.mode:g}")
        return self

    def ppf(self, u):
        width = self.high - self.low
        return _triang_ppf(np.asarray(u, float), (self.mode - self.low) / width, self.low, width)

    def describe(self):
        return f"triangular({self.low:g}, {self.mode:g}, {self.high:g})"


BETA_MASS = 0.99
"""A beta range keeps its central 99%: every value drawn is plausible, and the ends of a Morris grid
(u = 0 and 1) are its 0.5% and 99.5% quantiles rather than 0 and 1."""


class BetaRange(_Range):
    """Beta(a, b) stretched onto [low, high] (default [0, 1]) and truncated to its central 99%: a
    probability's uncertainty from counts, e.g. a = events + 1, b = non-events + 1."""

    dist: Literal["beta"]
    a: float = Field(gt=0)
    b: float = Field(gt=0)
    low: float = 0.0
    high: float = 1.0

    @model_validator(mode="after")
    def _order(self):
        if not self.low < self.high:
            raise ValueError(f"low must be < high, got low={self.low:g}, high={self.high:g}")
        return self

    def ppf(self, u):
        tail = (1 - BETA_MASS) / 2
        q = tail + BETA_MASS * np.asarray(u, float)
        return self.low + (self.high - self.low) * _beta_ppf(q, self.a, self.b)

    def bounds(self) -> tuple[float, float]:
        lo, hi = self.ppf(np.array([0.0, 1.0]))
        return float(lo), float(hi)

    def describe(self):
        where = "" if (self.low, self.high) == (0.0, 1.0) else f" on [{self.low:g}, {self.high:g}]"
        return f"beta({self.a:g}, {self.b:g}){where}, central 99%"


class LogUniformRange(_Range):
    """Uniform on the log scale: for a figure known only to within a factor (a rate, a scale)."""

    dist: Literal["loguniform"]
    low: float = Field(gt=0)
    high: float = Field(gt=0)

    @model_validator(mode="after")
    def _order(self):
        self._check()
        return self

    def ppf(self, u):
        return np.exp(math.log(self.low) + (math.log(self.high) - math.log(self.low)) * np.asarray(u, float))

    def describe(self):
        return f"loguniform({self.low:g}, {self.high:g})"


Uncertainty = Annotated[
    UniformRange | TriangularRange | BetaRange | LogUniformRange, Field(discriminator="dist")
]
"""The uncertainty of one figure; pydantic picks the model from the `dist` key."""

RANGES = ("uniform", "triangular", "beta", "loguniform")


def check_contains(spec: _Range, value: float, what: str = "value") -> None:
    """Raise ValueError when the range does not contain the figure's central value."""
    if spec.relative:
        lo, hi = spec.bounds()
        if not lo <= 1.0 <= hi:
            raise ValueError(f"uncertainty: a relative range must contain 1 (the {what} itself), "
                             f"got [{lo:g}, {hi:g}]")
        return
    lo, hi = spec.scaled_bounds(value)
    if not lo <= value <= hi:
        raise ValueError(f"uncertainty: range [{lo:g}, {hi:g}] does not contain the {what} {value:g}")


def check_probability(spec: _Range, value: float) -> None:
    lo, hi = spec.scaled_bounds(value)
    if lo < 0 or hi > 1:
        raise ValueError(f"uncertainty: a probability's range must lie within [0, 1], got [{lo:g}, {hi:g}]")


# ---------------------------------------------------------------------------------------------------
# the uncertain figures of a scenario, and scenarios with drawn values


@dataclass(frozen=True)
class UncertainFigure:
    """One uncertain number of a scenario: where it is, its central value and its range."""

    name: str  # dotted key of the number, usable with --set (e.g. recruitment.consent.value)
    path: tuple[str | int, ...]
    value: float
    spec: Any  # a _Range
    integer: bool = False

    def at(self, u: float) -> float | int:
        """The figure's value at quantile u of its range."""
        lo, hi = self.spec.bounds()
        x = min(max(float(self.spec.ppf(np.asarray([u]))[0]), lo), hi)  # no rounding error past a bound
        if self.spec.relative:
            x *= self.value
        if self.integer:
            return round(x)
        return x

    def bounds(self) -> tuple[float, float]:
        return self.spec.scaled_bounds(self.value)

    def row(self) -> dict[str, Any]:
        lo, hi = self.bounds()
        return {"parameter": self.name, "value": self.value, "low": lo, "high": hi,
                "distribution": ("relative " if self.spec.relative else "") + self.spec.describe(),
                "source": self.spec.source}


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
    return out


def uncertain_figures(scenario: Any) -> list[UncertainFigure]:
    """Every figure of a validated scenario that carries an uncertainty, in config order."""
    out: list[UncertainFigure] = []

    def walk(node: Any, path: tuple[str | int, ...]) -> None:
        if isinstance(node, BaseModel):
            unc = getattr(node, "uncertainty", None)
            if isinstance(unc, dict) and unc:  # a distribution's: {parameter: range}
                for param, spec in unc.items():
                    value = getattr(node, _field_name(node, param))
                    out.append(UncertainFigure(_dotted((*path, param)), (*path, param), float(value), spec))
            elif unc is not None and hasattr(node, "value"):
                value = node.value
                out.append(UncertainFigure(_dotted((*path, "value")), (*path, "value"), float(value), unc,
                                           integer=isinstance(value, int) and not isinstance(value, bool)))
            for name, info in type(node).model_fields.items():
                if name == "uncertainty":
                    continue
                walk(getattr(node, name), (*path, info.alias or name))
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, str(k)))
        elif isinstance(node, list | tuple):
            for i, v in enumerate(node):
                walk(v, (*path, i))

    walk(scenario, ())
    return out


def _field_name(model: BaseModel, key: str) -> str:
    """The attribute of a config key (`mean` -> `mean_`)."""
    for name, info in type(model).model_fields.items():
        if (info.alias or name) == key:
            return name
    return key


NOT_UNCERTAIN = ("recruitment.horizon_months.value",)
"""Figures that fix the shape of a run's outputs (months simulated), not the world: never drawn."""


def check_figures(figures: list[UncertainFigure], raw: RawScenario) -> list:
    """Problems with the scenario's uncertain figures (run by the scenario's validation)."""
    from hn005_sim.scenario.errors import Problem

    return [Problem(raw.origin(f.path), _dotted((*f.path[:-1], "uncertainty")),
                    "this figure sets the simulated months, not the world: it cannot be uncertain "
                    "(give the horizon you want)") for f in figures if f.name in NOT_UNCERTAIN]
