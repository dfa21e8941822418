"""A site's last batch judged only as far as anything reads it (des.JUDGED_TO_ARRIVALS, candidates.
_rows_that_matter, population.Streams' keep) against judging every candidate of every batch: the same
records and event traces, every generator (population, screening, chart units) left in the same state;
and the pieces on their own: a judged request's verdicts on the rows that matter, the chart units of
the kept rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hn005_sim.recruitment import candidates as C
from hn005_sim.recruitment import des
from hn005_sim.recruitment.candidates import JudgeRequest, candidate_source, stacked_units
from hn005_sim.recruitment.config import Rescreen
from hn005_sim.scenario.load import load_scenario

from .test_des_steps import _same_record

ROOT = Path(__file__).resolve().parents[2]


def _scenario(name: str, batch: int | None = None, rescreen: bool = False):
    sc, _ = load_scenario(ROOT / "scenarios" / f"{name}.toml")
    rec = sc.recruitment
    update = {}
    if batch is not None:
        update["candidate_batch"] = batch
    if rescreen:
        update["rescreen"] = Rescreen.model_validate({"probability": {"value": 0.5, "source": "test"},
                                                      "delay_days": {"dist": "constant", "value": 12.0}})
    return sc.model_copy(update={"recruitment": rec.model_copy(update=update)}) if update else sc


def _run(monkeypatch, sc, seed, replicates, to_arrivals: bool):
    """Records (with traces), per pool its generators' states, and how many requests judged part of
    their batch."""
    pools, cut = [], []
    init = des._Pool.__init__

    def keep_pool(self, *args, **kwargs):
        init(self, *args, **kwargs)
        pools.append(self)

    rows_that_matter = C._rows_that_matter

    def spy(r):
        out = rows_that_matter(r)
        cut.append(out is not None)
        return out

    with monkeypatch.context() as m:
        m.setattr(des, "JUDGED_TO_ARRIVALS", to_arrivals)
        m.setattr(C, "UNJUDGED_SHARE", 0.0)  # the kept rows' path whenever a row is left out
        m.setattr(C, "_rows_that_matter", spy)
        m.setattr(des._Pool, "__init__", keep_pool)
        recs = [rec for rec, _ in des.simulate_recruitment_many(sc, candidate_source(sc), seed, replicates,
                                                                  keep_events=True)]
    states = [(p.rng_pop.bit_generator.state, p.rng_scr.bit_generator.state,
               [g.bit_generator.state for g in (p.chart.generators if p.chart is not None else [])])
              for p in pools]
    return recs, states, sum(cut)


@pytest.mark.parametrize(("name", "batch", "rescreen", "seed"), [
    ("network_south_china", None, False, 3),
    ("network_guangdong", 256, True, 4),
    ("baseline", 4096, True, 5),
    ("ak105_304", 16384, False, 6),
])
def test_judging_to_the_arrivals_changes_no_record_and_no_stream(monkeypatch, name, batch, rescreen, seed):
    sc = _scenario(name, batch, rescreen)
    reps = [0, 1, 2]
    new_recs, new_states, cut = _run(monkeypatch, sc, seed, reps, True)
    old_recs, old_states, none = _run(monkeypatch, sc, seed, reps, False)
    assert cut > 0 and none == 0  # the path under test was taken, and the other was not
    for a, b in zip(new_recs, old_recs, strict=True):
        _same_record(a, b)
    assert new_states == old_states
    assert sum(r.enrolled for r in new_recs) and sum(r.retests for r in new_recs)


def _requests(sc, rows, seed):
    """Two sites' last batches of a round, and the same with no rows given."""
    source = candidate_source(sc)
    sites = des.draw_sites(sc.recruitment, 1, 0)[:2]
    n = sc.recruitment.candidate_batch
    out = []
    for given in (rows, None):
        mask = np.random.default_rng(seed)
        charts = source.site_charts(1, 0, sites)
        out.append([JudgeRequest(np.random.default_rng([seed, i]), n, mask.random(n) < 0.2,
                                 mask.random(n) < 0.2, charts[i], None if given is None else given[i])
                    for i in range(2)])
    return source, out


@pytest.mark.parametrize("rows", [(1, 700), (300, 5), (1023, 0)])
def test_a_cut_batch_has_the_whole_batchs_verdicts_where_they_are_read(monkeypatch, rows):
    """Every field of each batch on its rows that can arrive and on the re-tested or re-screened rows;
    the population and chart generators where judging the whole batch leaves them."""
    monkeypatch.setattr(C, "UNJUDGED_SHARE", 0.0)
    sc = _scenario("network_south_china")
    source, (cut, whole) = _requests(sc, rows, 11)
    got, want = source.judge_many(cut), source.judge_many(whole)
    for a, b, r, w in zip(got, want, cut, whole, strict=True):
        read = np.zeros(r.n, bool)
        read[: r.rows] = True
        read |= (r.retest | r.rescreen_if_fail) & b.prescreen_pass
        for name in a.__dataclass_fields__:
            x, y = getattr(a, name), getattr(b, name)
            if isinstance(x, dict):
                for k in x:
                    assert x[k].dtype == y[k].dtype and np.array_equal(x[k][read], y[k][read]), (name, k)
            elif x is not None:
                assert x.dtype == y.dtype and x.shape == y.shape, name
                assert np.array_equal(x[read], y[read]), name
        assert r.rng.bit_generator.state == w.rng.bit_generator.state
        assert [g.bit_generator.state for g in r.chart.generators] == \
            [g.bit_generator.state for g in w.chart.generators]


def test_stacked_units_of_kept_rows_are_the_whole_batches_rows():
    sc = _scenario("network_south_china")
    source = candidate_source(sc)
    sites = des.draw_sites(sc.recruitment, 1, 0)[:3]
    sizes = [1024, 40, 7]
    keeps = [np.flatnonzero(np.random.default_rng(1).random(1024) < 0.3), None, np.array([0, 6])]
    full = stacked_units(source.site_charts(1, 0, sites), sizes)
    charts = source.site_charts(1, 0, sites)
    got = stacked_units(charts, sizes, keeps)
    lo = np.cumsum([0, *sizes])
    rows = np.concatenate([lo[i] + (np.arange(n) if k is None else k)
                           for i, (k, n) in enumerate(zip(keeps, sizes, strict=True))])
    assert np.array_equal(got, full[rows])
    again = source.site_charts(1, 0, sites)
    stacked_units(again, sizes)
    assert [[g.bit_generator.state for g in c.generators] for c in charts] == \
        [[g.bit_generator.state for g in c.generators] for c in again]
