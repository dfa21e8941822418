"""Judging a replicate's candidates together (des._prejudge, ScreenerSource.prescreen/finish) against
judging them one batch at a time as a site reaches them: the same candidates, verdicts and records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from hn005_sim.recruitment import des
from hn005_sim.recruitment.candidates import JudgeRequest, _stack, candidate_source, judge_many
from hn005_sim.recruitment.sites import draw_sites, site_stream
from hn005_sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def baseline():
    sc, _ = load_scenario(ROOT / "scenarios" / "baseline.toml")
    return sc


@pytest.fixture(scope="module")
def network():
    sc, _ = load_scenario(ROOT / "scenarios" / "network_south_china.toml")
    return sc


def _requests(source, sc, seed, sizes):
    """One request per drawn site (its own population stream and chart), fresh generators each call."""
    sites = draw_sites(sc.recruitment, seed, 0)
    mask_rng = np.random.default_rng(99)
    out = []
    for site, n in zip(sites, sizes, strict=False):
        retest = mask_rng.random(n) < 0.3
        rescreen = mask_rng.random(n) < 0.4
        out.append(JudgeRequest(site_stream(seed, 0, "population", site.stream_key), n, retest, rescreen,
                                source.site_chart(seed, 0, site)))
    assert len(out) == len(sizes)
    return out


def _same_batch(a, b):
    for name in ("prescreen_pass", "prescreen_reason", "screen_pass", "screen_reason", "rescreen_pass",
                 "rescreen_reason", "retested", "bsa_m2", "prescreen_unknown"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for name in ("traits", "covariates"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.keys() == y.keys()
        for k in x:
            assert np.array_equal(x[k], y[k]), (name, k)


def test_judge_many_equals_one_judge_call_per_batch(network):
    """Batches of different sizes from different sites' streams and charts, evaluated together, give
    each batch exactly what `judge` gives it alone, and leave every stream where `judge` leaves it."""
    source = candidate_source(network)
    sizes = [300, 1024, 57, 700]
    alone_req = _requests(source, network, 5, sizes)
    alone = [source.judge(r.rng, r.n, retest=r.retest, rescreen_if_fail=r.rescreen_if_fail, chart=r.chart)
             for r in alone_req]
    together_req = _requests(source, network, 5, sizes)
    together = judge_many(source, together_req)
    assert len(together) == len(alone)
    for a, b in zip(alone, together, strict=True):
        _same_batch(a, b)
    assert any(b.retested.any() for b in together) and any((~b.prescreen_pass).any() for b in together)
    for r1, r2 in zip(alone_req, together_req, strict=True):  # the streams are where judge left them
        assert r1.rng.random() == r2.rng.random()
        assert [g.random() for g in r1.chart.generators] == [g.random() for g in r2.chart.generators]


def test_frames_that_do_not_stack_are_evaluated_one_by_one():
    a = pl.DataFrame({"x": [1, 2]})
    assert _stack([a, pl.DataFrame({"x": [1.5]})]) is None
    assert _stack([a, a]).height == 4
    assert _stack([a]) is a


def _run(sc, replicates, monkeypatch, *, lazy: bool, shrink: float = 1.0, during: list | None = None):
    """Records of `replicates`, and per replicate the (batches drawn, batches reached) of every site
    and the stop-day bounds `_prejudge` used. lazy: no judging ahead (every batch judged as the site
    reaches it, the code path before _prejudge); shrink: the bounds used x shrink (still lower
    bounds: more batches left to the simulation); during: gets one item per batch judged during the
    simulation."""
    seen, bounds = [], []
    during = [] if during is None else during
    one_by_one = des.judge_many
    log = des._arrivals_log

    def spy_log(st, pools, arrivals_of, clocks):
        seen.append([(p.drawn // p.batch, p.n // p.batch) for p in pools])
        return log(st, pools, arrivals_of, clocks)

    bound = des._stop_bound

    def spy_bound(*args):
        bounds.append(bound(*args) * shrink)
        return bounds[-1]

    def spy_judge(source, requests):
        during.extend(requests)
        return one_by_one(source, requests)

    with monkeypatch.context() as m:
        m.setattr(des, "_arrivals_log", spy_log)
        m.setattr(des, "_stop_bound", spy_bound)
        m.setattr(des, "judge_many", spy_judge)
        if lazy:
            m.setattr(des, "_prejudge", lambda *a: None)
        source = candidate_source(sc)
        recs = []
        for r in replicates:
            bounds.append(None)  # separates the replicates
            recs.append(des.simulate_recruitment(sc, source, 3, r, keep_events=True)[0])
    return recs, seen, bounds


def _same_record(a, b):
    for f in a.__dataclass_fields__:
        x, y = getattr(a, f), getattr(b, f)
        if isinstance(x, np.ndarray):
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f
        elif isinstance(x, dict):
            assert x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x), f
        elif isinstance(x, float) and np.isnan(x):
            assert np.isnan(y), f
        else:
            assert x == y, f


def _stops(recs, bounds, horizon, target):
    """Each replicate's stop day beside the bounds used for it."""
    out, i = [], -1
    for b in bounds:
        if b is None:
            i += 1
            continue
        rec = recs[i]
        out.append((b, rec.time_to_target_day if rec.enrolled >= target else horizon))
    return out


@pytest.mark.parametrize("name,batch,shrink", [("baseline", None, 1.0), ("network", None, 1.0),
                                               ("baseline", 128, 1.0), ("baseline", 128, 0.6)])
def test_judging_ahead_changes_no_record_and_judges_only_reached_batches(name, batch, shrink, request,
                                                                         monkeypatch):
    """The same records, event traces included, with and without judging ahead; every batch judged
    ahead is one the site reaches; the stop-day bound is below the stop. With batches of 128 the
    baseline needs many rounds; with the bound shrunk (a lower bound still) some batches are left to
    be judged as the site reaches them, after the batches judged ahead (their streams carry on)."""
    sc = request.getfixturevalue(name)
    if batch is not None:
        rec = sc.recruitment.model_copy(update={"candidate_batch": batch})
        sc = sc.model_copy(update={"recruitment": rec})
    reps = range(3)
    during = []
    ahead, seen, bounds = _run(sc, reps, monkeypatch, lazy=False, shrink=shrink, during=during)
    lazy, seen_lazy, _ = _run(sc, reps, monkeypatch, lazy=True)
    for a, b in zip(ahead, lazy, strict=True):
        _same_record(a, b)
    assert seen == seen_lazy  # the same batches drawn (none judged that the site does not reach)
    assert all(drawn == reached for rep in seen for drawn, reached in rep)
    horizon = sc.recruitment.horizon_days
    stops = _stops(ahead, bounds, horizon, sc.trial.target_enrolled)
    assert stops and all(b <= stop for b, stop in stops)
    if name == "baseline":
        assert max(b for b, _ in stops) > 0  # the bound is not trivially 0
    if batch == 128:  # rounds ahead: several bounds per replicate
        assert max(reached for rep in seen for _, reached in rep) > 2
        assert len(bounds) > 2 * len(reps)
    if shrink < 1:  # batches judged during the simulation, after batches judged ahead
        ahead_only = sum(drawn for rep in seen for drawn, _ in rep) - len(during)
        assert during and ahead_only > sum(1 for rep in seen for drawn, _ in rep if drawn)


def test_judging_ahead_is_what_the_simulation_uses(baseline, monkeypatch):
    """Without judging ahead the simulation judges every batch it reaches itself; with it, only the
    batches the stop-day bound could not certify (none of the baseline's here): the comparison above
    compares two paths."""
    calls = []
    source = candidate_source(baseline)
    orig = source.judge_many
    monkeypatch.setattr(source, "judge_many", lambda reqs: calls.extend(reqs) or orig(reqs))
    reps = range(10)
    for r in reps:
        des.simulate_recruitment(baseline, source, 3, r)
    ahead = len(calls)
    calls.clear()
    monkeypatch.setattr(des, "_prejudge", lambda *a: None)
    reached = 0
    for r in reps:
        rec, _ = des.simulate_recruitment(baseline, source, 3, r)
        reached += -(-rec.candidates // baseline.recruitment.candidate_batch)
    assert len(calls) >= reached >= 2 * len(reps)
    assert ahead < len(calls) / 2


@pytest.mark.parametrize("name,reps,together", [("baseline", range(5, 11), 4), ("network", range(3), 3)])
def test_replicates_judged_together_give_each_replicate_its_own_record(name, reps, together, request,
                                                                       monkeypatch):
    """simulate_recruitment_many (a worker's batch, its replicates' candidates judged together) gives
    every replicate the record simulate_recruitment gives it alone, in fewer criteria evaluations."""
    from hn005_sim.eligibility.engine import Screener

    sc = request.getfixturevalue(name)
    source = candidate_source(sc)
    evaluations = []
    evaluate = Screener.evaluate
    monkeypatch.setattr(Screener, "evaluate", lambda self, *a, **k: evaluations.append(1) or
                        evaluate(self, *a, **k))
    alone = [des.simulate_recruitment(sc, source, 3, r, keep_events=True) for r in reps]
    n_alone = len(evaluations)
    evaluations.clear()
    together_ = des.simulate_recruitment_many(sc, source, 3, reps, keep_events=True, together=together)
    assert len(together_) == len(alone)
    for (a, sites_a), (b, sites_b) in zip(alone, together_, strict=True):
        _same_record(a, b)
        assert sites_a == sites_b
    assert len(evaluations) < n_alone


def test_replicates_of_a_funnel_source_judged_together():
    """The funnel source (no staged judging): the same records one by one and together."""
    from tests.recruitment.test_des import scenario

    sc = scenario(sites=4, rate_mean=10.0, batch=16, target=30, pre=0.5, screen=0.7, consent=0.8,
                  rescreen=0.3,
                  screening={"dist": "constant", "value": 9.0})
    source = candidate_source(sc)
    alone = [des.simulate_recruitment(sc, source, 2, r, keep_events=True)[0] for r in range(4)]
    together = [rec for rec, _ in des.simulate_recruitment_many(sc, source, 2, range(4), keep_events=True)]
    for a, b in zip(alone, together, strict=True):
        _same_record(a, b)
    assert all(rec.enrolled == 30 for rec in alone)


@pytest.mark.parametrize("n,k,p", [(0, 5, 0.5), (9, 1, 0.5), (400, 66, 0.97), (300, 130, 0.9), (200, 64, 0.5),
                                   (50, 3, 1.0)])
def test_first_failure_from_packed_words_is_the_first_failing_column(n, k, p):
    """_lowest_failure on the engine's packed failure words against a loop over the columns in
    protocol order, for column sets spanning one, two and three 64-bit words."""
    from hn005_sim.eligibility.engine import pack_failures
    from hn005_sim.recruitment.candidates import _column_mask, _lowest_failure

    rng = np.random.default_rng(k)
    passes = rng.random((n, k)) < p
    words = pack_failures(passes)
    for cols in (np.arange(k), np.sort(rng.permutation(k)[: max(1, k // 2)]), np.array([k - 1]),
                 np.array([], dtype=np.int64)):
        got = _lowest_failure(words, _column_mask(cols, k))
        want = [next((int(c) for c in cols if not passes[i, c]), -1) for i in range(n)]
        assert got.tolist() == want


def test_prescreen_draws_batches_as_the_population_draws_them_alone(network):
    """ScreenerSource.prescreen draws every request's candidates and re-measured labs as one frame
    (population.sample_many, Streams): the frames and labs are those `population.sample` and
    `retest_labs` give each request alone, in order, and requests sharing a generator are drawn one
    after the other from it, as `judge` one request at a time would."""
    from hn005_sim import population

    source = candidate_source(network)
    cfg = network.population
    sizes = [300, 1024, 57, 700]
    got = source.prescreen(_requests(source, network, 5, sizes))
    for r, it in zip(_requests(source, network, 5, sizes), got, strict=True):
        frame = population.sample(cfg, r.n, r.rng)
        assert frame.equals(it.frame, null_equal=True)
        rows = np.concatenate([it.first, it.again])
        assert rows.size and it.sub is not None and it.sub_of is not None
        assert population.retest_labs(cfg, frame[rows], r.rng).equals(it.sub, null_equal=True)
    # two requests on one generator (not what the simulation asks): drawn one request after the other,
    # every request's candidates first, then their labs, as before the one-frame path
    shared = [_requests(source, network, 5, [200])[0]] * 2
    rng = _requests(source, network, 5, [200])[0].rng
    got = source.prescreen(shared)
    frames = [population.sample(cfg, 200, rng) for _ in range(2)]
    for frame, it in zip(frames, got, strict=True):
        assert frame.equals(it.frame, null_equal=True) and it.sub_of is None
        rows = np.concatenate([it.first, it.again])
        assert population.retest_labs(cfg, frame[rows], rng).equals(it.sub, null_equal=True)


def test_finish_of_part_of_a_round_equals_finish_of_the_whole_round(network):
    """A round's re-measured labs are one frame (`Prescreened.sub_of`), evaluated whole when all its
    batches are finished together; finishing them in two calls (each evaluating its batches' slices)
    gives the same verdicts."""
    source = candidate_source(network)
    sizes = [300, 1024, 57, 700]
    whole = source.finish(source.prescreen(_requests(source, network, 5, sizes)))
    items = source.prescreen(_requests(source, network, 5, sizes))
    assert len({id(it.sub_of) for it in items}) == 1 and items[0].sub_of is not None
    split = source.finish(items[:1]) + source.finish(items[1:])
    for a, b in zip(whole, split, strict=True):
        _same_batch(a, b)


def test_groups_bound_replicates_and_sites():
    """des._groups against hand-made groupings; a replicate with more sites than the bound is alone."""
    def groups(sizes, together, sites):
        sites_of = [[0] * k for k in sizes]
        return [list(g) for g in des._groups(list(range(len(sizes))), sites_of, together, sites)]

    assert groups([1] * 7, 3, 80) == [[0, 1, 2], [3, 4, 5], [6]]
    assert groups([13] * 11, 50, des.JUDGED_SITES) == [list(range(10)), [10]]
    assert groups([13, 100, 1, 1], 50, 80) == [[0], [1], [2, 3]]
    assert groups([], 5, 5) == []


def test_replicates_grouped_by_sites_give_the_records_of_any_grouping(network):
    """network_south_china replicates judged one group per replicate (a bound of 20 sites) and all
    together: the same records, event traces included."""
    source = candidate_source(network)
    reps = range(3)
    by_sites = des.simulate_recruitment_many(network, source, 3, reps, keep_events=True, sites_together=20)
    together_ = des.simulate_recruitment_many(network, source, 3, reps, keep_events=True)
    for (a, sites_a), (b, sites_b) in zip(by_sites, together_, strict=True):
        _same_record(a, b)
        assert sites_a == sites_b
