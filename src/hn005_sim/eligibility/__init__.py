"""Eligibility: the protocol's criteria as data, the screening engine, and restrictiveness figures.

    screener = compile_criteria(scenario.criteria)          # once per scenario
    screening = screener.evaluate(candidates)               # per batch: pass matrix, first failure
    figures = restrictiveness.analyse(screening, screener=screener, frame=candidates)
"""

from hn005_sim.eligibility.config import CriteriaConfig, Criterion, Parameter, Relaxation
from hn005_sim.eligibility.engine import Screener, Screening, compile_criteria

__all__ = [
    "CriteriaConfig",
    "Criterion",
    "Parameter",
    "Relaxation",
    "Screener",
    "Screening",
    "compile_criteria",
]
