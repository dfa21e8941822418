"""A scenario whose uncertain figures are drawn anew for each replicate or design point (`run
--uncertainty`, `sensitivity`). The figures and their ranges are scenario/uncertainty.py; this module
also validates each drawn parameter set, so it sits above scenario/load.py, which the schema modules
(importing uncertainty.py) must not reach.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from hn005_sim.scenario.errors import ConfigError, Problem
from hn005_sim.scenario.load import RawScenario, validate_raw
from hn005_sim.scenario.uncertainty import UncertainFigure, _dotted, uncertain_figures


@dataclass(frozen=True)
class UncertainScenario:
    """A scenario whose uncertain figures are drawn anew for each replicate (or each design point).

    Picklable (sent to worker processes): holds the merged raw config, not the validated model.
    """

    raw: Any  # RawScenario
    figures: tuple[UncertainFigure, ...]

    @classmethod
    def from_scenario(cls, scenario: Any, raw: RawScenario) -> UncertainScenario:
        return cls(raw, tuple(uncertain_figures(scenario)))

    def only(self, names: list[str]) -> UncertainScenario:
        """The same scenario with only the named figures uncertain (the others at their values)."""
        unknown = [n for n in names if n not in self.names]
        if unknown:
            raise ValueError(f"no uncertain figure {', '.join(unknown)}; the scenario has: "
                             f"{', '.join(self.names)}")
        return UncertainScenario(self.raw, tuple(f for f in self.figures if f.name in names))

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.figures]

    def values_at(self, u: np.ndarray) -> list[float | int]:
        """Figure values at the point u of the unit cube (one coordinate per figure)."""
        return [f.at(float(x)) for f, x in zip(self.figures, u, strict=True)]

    def draw(self, seed: int, replicate: int) -> list[float | int]:
        """The replicate's parameter set, from its own `uncertainty` stream (rng.STREAMS)."""
        from hn005_sim.rng import stream

        return self.values_at(stream(seed, replicate, "uncertainty").random(len(self.figures)))

    def scenario_with(self, values: list[float | int]) -> Any:
        """The validated scenario with each uncertain figure set to its value.

        Raises ConfigError naming the figures when the values make the scenario invalid (e.g. a
        truncnormal mean drawn outside its bounds).
        """
        data = copy.deepcopy(self.raw.data)
        for fig, value in zip(self.figures, values, strict=True):
            node: Any = data
            for part in fig.path[:-1]:
                node = node[part]
            node[fig.path[-1]] = value
        raw = RawScenario(self.raw.path, data, self.raw.origins, self.raw.files)
        try:
            return validate_raw(raw)
        except ConfigError as exc:
            problems = []
            for p in exc.problems:
                near = [f"{f.name}={v:g}" for f, v in zip(self.figures, values, strict=True)
                        if p.path.startswith(_dotted(f.path[:-1]))]
                drawn = f" at {', '.join(near)}" if near else ""
                problems.append(Problem(p.file, p.path, f"{p.message} (with the uncertain figures "
                                        f"drawn{drawn}: narrow their ranges)"))
            raise ConfigError(problems) from None

    def scenario_for(self, seed: int, replicate: int) -> Any:
        return self.scenario_with(self.draw(seed, replicate))

    def rows(self) -> Iterator[dict[str, Any]]:
        for f in self.figures:
            yield f.row()
