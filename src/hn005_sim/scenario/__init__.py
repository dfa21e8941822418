"""Scenario files: TOML with `extends`, validated by a pydantic schema before any work."""

from hn005_sim.scenario.errors import ConfigError, Problem

__all__ = ["ConfigError", "Problem"]
