"""hn005-sim: synthetic-cohort simulation and recruitment feasibility for R/M NPC trials written as data."""

__version__ = "0.1.0"
