"""Random streams: one SeedSequence per replicate, named child streams in a fixed order.

The stream for (seed, replicate, name) depends on nothing else, so results are identical whatever the
number of workers, the executor, or the order in which replicates finish. No global random state.
"""

from __future__ import annotations

import numpy as np

STREAMS = ("population", "sites", "arrivals", "screening", "treatment", "supply", "bootstrap", "chart")
"""Names of the child streams; a new name is appended, so every existing stream keeps its spawn key
("chart": which values are in the chart at prescreen, eligibility/chart.py)."""


def replicate_seed(seed: int, replicate: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(entropy=seed, spawn_key=(replicate,))


def stream(seed: int, replicate: int, name: str) -> np.random.Generator:
    """The named child stream of a replicate (common random numbers across scenarios)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(
        entropy=seed, spawn_key=(replicate, STREAMS.index(name)))))


def streams(seed: int, replicate: int) -> dict[str, np.random.Generator]:
    return {name: stream(seed, replicate, name) for name in STREAMS}
