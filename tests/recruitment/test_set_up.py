"""A replicate's set-up, the pieces made cheaper against what they replace: `sites.with_knot` against
`np.union1d` (the ramp-up's knot among the days of a site's cumulative intensity), the chart unit
probabilities computed once per region against the chart model's own per site."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hn005_sim.recruitment import des
from hn005_sim.recruitment.candidates import candidate_source
from hn005_sim.recruitment.sites import with_knot
from hn005_sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]


@settings(max_examples=300, deadline=None)
@given(lo=st.integers(0, 2000), n=st.integers(0, 1500), x=st.floats(-10.0, 4000.0, allow_nan=False),
       on_a_knot=st.booleans())
def test_with_knot_is_union1d(lo, n, x, on_a_knot):
    knots = np.arange(lo + 1, lo + 1 + n, dtype=float)
    if on_a_knot and n:
        x = float(knots[int(abs(x)) % n])
    got, want = with_knot(knots, x), np.union1d(knots, [x])
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got.view(np.int64), want.view(np.int64))


def test_chart_probabilities_once_per_region_are_the_models_per_site():
    sc, _ = load_scenario(ROOT / "scenarios" / "network_south_china.toml")
    # regions of both site types, one with its own chart probabilities
    rec = sc.recruitment
    regions = [r.model_copy(update={"site_type": "general_hospital" if i % 2 else "cancer_centre"})
               for i, r in enumerate(rec.regions)]
    own = {"brain_imaging": {"value": 0.05, "source": "test"}}
    regions[-1] = regions[-1].model_copy(update={"chart_known": type(regions[-1]).model_validate(
        {**regions[-1].model_dump(by_alias=True), "chart_known": own}).chart_known})
    sc = sc.model_copy(update={"recruitment": rec.model_copy(update={"regions": regions})})
    source = candidate_source(sc)
    sites = des.draw_sites(sc.recruitment, 1, 0)
    assert len({s.region for s in sites}) > 2
    charts = source.site_charts(1, 0, sites)
    for site, chart in zip(sites, charts, strict=True):
        region = source._regions.get(site.region)
        want = source._chart.probabilities(getattr(region, "site_type", None),
                                           getattr(region, "chart_known", None))
        assert chart.probabilities.dtype == want.dtype and np.array_equal(chart.probabilities, want)
        assert not chart.probabilities.flags.writeable  # shared by the region's sites
        one = source.site_chart(1, 0, site)
        assert np.array_equal(one.probabilities, want)
    assert len({tuple(c.probabilities) for c in charts}) == 3  # the regions' probabilities differ
