"""Recruitment: the site and funnel simulation (des.py), its config, and the analytic Poisson-gamma model."""
