"""hn005-sim: synthetic-cohort simulation and recruitment feasibility for ALTER-HN005."""

__version__ = "0.1.0"
