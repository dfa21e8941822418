"""Screen a scenario's candidates and analyse restrictiveness: the analysis `screen` writes and `run`'s
report shows, in one place so that both commands give the same numbers for a seed."""

from __future__ import annotations

from hn005_sim.eligibility.engine import compile_criteria
from hn005_sim.eligibility.restrictiveness import analyse
from hn005_sim.rng import stream
from hn005_sim.scenario.errors import ConfigError
from hn005_sim.scenario.load import display

RESTRICTIVENESS_FILES = ("criteria", "funnel", "cofailure", "sweeps", "relaxation")
"""The restrictiveness tables, each written as NAME.csv (docs/outputs.md)."""


def analyse_scenario(sc, raw, patients: int, seed: int, target_fraction: float | None = None):
    """Draw `patients` candidates from the population stream, screen them, analyse restrictiveness.

    Returns (frame, screener, screening, restrictiveness). Shared by `screen` and `run` (whose report
    shows the same attrition and restrictiveness figures), so both give the same numbers for a seed.
    """
    from hn005_sim.guards import check_memory, measure_bytes_per_row
    from hn005_sim.population import sample

    for section in ("population", "criteria"):
        if getattr(sc, section) is None:
            raise ConfigError.one(display(raw.path), section, f"the scenario has no [{section}] section")
    per_row = measure_bytes_per_row(lambda n: sample(sc.population, n, stream(seed, 0, "population")))
    check_memory(patients, per_row, f"screen --patients {patients}", unit="patients")
    frame = sample(sc.population, patients, stream(seed, 0, "population"))
    screener = compile_criteria(sc.criteria, frame.schema, file=display(raw.path))
    screening = screener.evaluate(frame)
    res = analyse(screening, screener=screener, frame=frame, rng=stream(seed, 0, "bootstrap"),
                  target_fraction=target_fraction)
    return frame, screener, screening, res
