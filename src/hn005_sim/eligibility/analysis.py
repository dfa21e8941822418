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


def chart_for_screen(sc, raw, screener, seed: int, site_type: str | None):
    """The chart draws of the `screen` cohort: site type `site_type` (default chart_review.site_type),
    uniforms from the replicate-0 children of the named stream "chart"."""
    from hn005_sim.eligibility.chart import ChartModel, SiteChart

    cfg = sc.chart_review
    if site_type is not None and (cfg is None or site_type not in cfg.site_types):
        known = sorted(cfg.site_types) if cfg is not None else []
        raise ConfigError.one(display(raw.path), "chart_review.site_types",
                              f"--site-type must be one of {known}, got {site_type!r}" if cfg is not None
                              else "--site-type needs a [chart_review] section")
    model = ChartModel.build(cfg, screener)
    return SiteChart(model, model.probabilities(site_type), model.generators(seed, 0))


def analyse_scenario(sc, raw, patients: int, seed: int, target_fraction: float | None = None,
                     site_type: str | None = None, on_sweeps=None):
    """Draw `patients` candidates from the population stream, screen them, analyse restrictiveness.

    Prescreen judges each criterion on the values in the chart of a site of type `site_type` (default:
    chart_review.site_type; eligibility/chart.py). Returns (frame, screener, screening,
    restrictiveness). Shared by `screen` and `run` (whose report shows the same attrition and
    restrictiveness figures), so both give the same numbers for a seed. on_sweeps: as in
    `restrictiveness.analyse` (the sweeps' frame, as soon as it exists).
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
    chart = chart_for_screen(sc, raw, screener, seed, site_type)
    screening = screener.evaluate(frame, chart.draw(frame))
    res = analyse(screening, screener=screener, frame=frame, rng=stream(seed, 0, "bootstrap"),
                  target_fraction=target_fraction, on_sweeps=on_sweeps)
    if sc.chart_review is not None:
        res.summary["site_type"] = site_type or sc.chart_review.site_type
    return frame, screener, screening, res
