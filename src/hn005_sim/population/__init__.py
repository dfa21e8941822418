"""The synthetic R/M NPC candidate population: `sample` draws candidates, `retest_labs` re-measures labs."""

from hn005_sim.population.config import PopulationConfig
from hn005_sim.population.generate import sample
from hn005_sim.population.retest import retest_labs

__all__ = ["PopulationConfig", "retest_labs", "sample"]
