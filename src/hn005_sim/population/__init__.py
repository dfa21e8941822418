"""The synthetic R/M NPC candidate population: `sample` draws candidates, `retest_labs` re-measures labs."""

from hn005_sim.population.config import PopulationConfig
from hn005_sim.population.generate import sample, sample_many
from hn005_sim.population.retest import retest_labs
from hn005_sim.population.streams import Streams

__all__ = ["PopulationConfig", "Streams", "retest_labs", "sample", "sample_many"]
