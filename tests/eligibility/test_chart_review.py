"""Pass / fail / unknown at chart review (eligibility/chart.py) against independent computations:
the model without chart review recovered exactly when every value is known, nobody failing prescreen
when nothing is, a brute-force judgement of a hand-built cohort, binomial figures, and the DES's
prescreen shares beside the `screen` figures."""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from hn005_sim.cli import main
from hn005_sim.eligibility import CriteriaConfig, compile_criteria
from hn005_sim.eligibility.chart import FAIL, PASS, UNKNOWN, ChartModel, ChartReviewConfig, SiteChart
from hn005_sim.eligibility.restrictiveness import analyse
from hn005_sim.population import sample
from hn005_sim.rng import STREAMS, stream
from hn005_sim.scenario.load import load_scenario

BASELINE = "scenarios/baseline.toml"
SRC = "assumption: test figure"


def P(v: float) -> dict:
    return {"value": v, "source": SRC}


def everywhere(p: float) -> ChartReviewConfig:
    """Every column known with probability p, no panels."""
    return ChartReviewConfig.model_validate({"site_type": "t", "default": P(p), "site_types": {"t": {}}})


@pytest.fixture(scope="module")
def base():
    sc, _ = load_scenario(BASELINE)
    frame = sample(sc.population, 20_000, stream(7, 0, "population"))
    screener = compile_criteria(sc.criteria, frame.schema)
    return sc, frame, screener


def _chart(cfg, screener, seed=3, site_type=None):
    model = ChartModel.build(cfg, screener)
    return SiteChart(model, model.probabilities(site_type), model.generators(seed, 0))


def test_every_value_known_recovers_the_model_without_chart_review(base):
    _, frame, screener = base
    old = screener.evaluate(frame)
    known = _chart(everywhere(1.0), screener).draw(frame)
    new = screener.evaluate(frame, known)
    assert np.array_equal(known, np.broadcast_to(screener.stages == "prescreen", known.shape))
    assert np.array_equal(new.prescreen_pass, old.prescreen_pass)
    assert set(np.unique(new.prescreen_outcome)) <= {PASS, FAIL}
    a, b = analyse(old, bootstrap=0).summary, analyse(new, bootstrap=0).summary
    for key in ("eligible_fraction", "prescreen_pass_fraction", "screen_failure_rate"):
        assert a[key] == b[key]
    assert b["prescreen_unknown_fraction"] == 0.0
    # the chart funnel counted on the packed known words equals its closed form from the
    # protocol-order funnel when every prescreen value is known
    assert analyse(new, bootstrap=0).funnel.equals(analyse(old, bootstrap=0).funnel)
    # without chart review the chart funnel splits the protocol-order funnel's drops exactly
    f = analyse(old, bootstrap=0).funnel
    assert np.array_equal(f["prescreen_fail"] + f["screen_fail"], f["dropped"])
    assert np.array_equal(f["prescreen_fail"] > 0, (f["stage"] == "prescreen") & (f["dropped"] > 0))


def test_nothing_known_fails_nobody_at_prescreen(base):
    _, frame, screener = base
    s = screener.evaluate(frame, _chart(everywhere(0.0), screener).draw(frame))
    assert s.prescreen_pass.all()
    pre = screener.stages == "prescreen"
    # every prescreen criterion of this trial reads a column, so every candidate is "unknown"
    assert all(cols for cols, st in zip(screener.columns_read(), screener.stages, strict=True)
               if st == "prescreen")
    assert (s.prescreen_outcome == UNKNOWN).all()
    assert np.all(s.unknown_at_prescreen_rate == 1.0) and pre.any()
    res = analyse(s, bootstrap=0)
    # everybody goes to consent: the screen-failure rate is the exclusion rate
    assert math.isclose(res.summary["screen_failure_rate"], 1 - res.summary["eligible_fraction"])
    assert res.funnel["prescreen_fail"].sum() == 0


def test_eligible_fraction_does_not_depend_on_the_chart(base):
    sc, frame, screener = base
    s0 = screener.evaluate(frame)
    s1 = screener.evaluate(frame, _chart(sc.chart_review, screener).draw(frame))
    assert np.array_equal(s0.eligible, s1.eligible)
    assert (s1.eligible <= s1.prescreen_pass).all()  # an eligible candidate never fails prescreen


# -- a hand-built trial: three criteria, a panel, a screening-stage criterion, a constant rule -------

HAND = {
    "criterion": [
        {"id": "lab", "kind": "inclusion", "stage": "prescreen", "protocol_text": "lab ok",
         "rule": "a >= 1 AND b >= 1", "null": "fail"},
        {"id": "history", "kind": "exclusion", "stage": "prescreen", "protocol_text": "no history",
         "rule": "c", "null": "fail"},
        {"id": "mixed", "kind": "inclusion", "stage": "prescreen", "protocol_text": "mixed",
         "rule": "a >= 0 OR c", "null": "fail"},
        {"id": "after_consent", "kind": "inclusion", "stage": "screening", "protocol_text": "agrees",
         "rule": "b < 5", "null": "fail"},
        {"id": "constant", "kind": "inclusion", "stage": "prescreen", "protocol_text": "always",
         "rule": "TRUE", "null": "fail"},
    ],
}
COLUMNS = {"a": pl.Float64, "b": pl.Float64, "c": pl.Boolean}
# brute force, written by hand: the columns each rule reads, and its value on the chart (None: not
# decided by the known values, Kleene's three-valued AND / OR)
READS = {"lab": ("a", "b"), "history": ("c",), "mixed": ("a", "c"), "after_consent": None, "constant": ()}


def _and(x, y):
    return False if x is False or y is False else (None if x is None or y is None else True)


def _or(x, y):
    return True if x is True or y is True else (None if x is None or y is None else False)


def _on_chart(row, known) -> dict[str, bool | None]:
    """Pass value of each criterion on the values in the chart (unknown = None)."""
    a, b, c = (row[k] if known[k] else None for k in ("a", "b", "c"))

    def ge(v, t):
        return None if v is None else v >= t

    return {"lab": _and(ge(a, 1), ge(b, 1)), "history": None if c is None else not c,
            "mixed": _or(ge(a, 0), c), "after_consent": None, "constant": True}


def _passes(row) -> dict[str, bool]:
    a, b, c = row["a"], row["b"], row["c"]
    return {"lab": a >= 1 and b >= 1, "history": not c, "mixed": a >= 0 or c, "after_consent": b < 5,
            "constant": True}


def _hand_frame(n, rng):
    return pl.DataFrame({"a": rng.choice([-1.0, 0.5, 2.0], n), "b": rng.choice([0.0, 2.0, 9.0], n),
                         "c": rng.random(n) < 0.3}, schema=COLUMNS)


def test_brute_force_on_a_hand_built_cohort():
    cfg = ChartReviewConfig.model_validate({
        "site_type": "t", "default": P(0.5), "panels": {"chemistry": {"columns": ["a", "b"]}},
        "known": {"chemistry": P(0.7), "c": P(0.4)}, "site_types": {"t": {}}})
    screener = compile_criteria(CriteriaConfig.model_validate(HAND), COLUMNS)
    model = ChartModel.build(cfg, screener)
    assert model.units == ("c", "chemistry")
    n, seed = 40, 11
    frame = _hand_frame(n, np.random.default_rng(1))
    known = SiteChart(model, model.probabilities(), model.generators(seed, 0)).draw(frame)
    s = screener.evaluate(frame, known)
    # the same uniforms, drawn independently: unit u's generator is keyed by the CRC-32 of its name
    unit_known = {}
    for unit, p in (("chemistry", 0.7), ("c", 0.4)):
        gen = np.random.Generator(np.random.PCG64(np.random.SeedSequence(
            entropy=seed, spawn_key=(0, STREAMS.index("chart"), zlib.crc32(unit.encode())))))
        unit_known[unit] = gen.random(n) < p
    col_known = {"a": unit_known["chemistry"], "b": unit_known["chemistry"], "c": unit_known["c"]}
    unknown_count = dict.fromkeys(READS, 0)
    decided_without_all = 0
    for j, row in enumerate(frame.iter_rows(named=True)):
        passes = _passes(row)
        chart = _on_chart(row, {c: col_known[c][j] for c in col_known})
        outcome = PASS
        for i, cid in enumerate(screener.ids):
            reads = READS[cid]
            k = chart[cid] is not None
            assert known[j, i] == k, (j, cid)
            if k:
                assert chart[cid] == passes[cid]  # decided on the chart = the true verdict
                decided_without_all += not all(col_known[c][j] for c in reads)
            unknown_count[cid] += not k
            if k and not passes[cid]:
                outcome = FAIL
            elif not k and reads is not None and outcome != FAIL:
                outcome = UNKNOWN
        assert s.prescreen_outcome[j] == outcome, j
        assert s.eligible[j] == all(passes.values())
    assert decided_without_all > 0  # the cohort exercises three-valued logic
    res = analyse(s, bootstrap=0)
    rate = dict(zip(res.criteria["criterion_id"], res.criteria["unknown_at_prescreen_rate"], strict=True))
    for cid in READS:
        assert math.isclose(rate[cid], unknown_count[cid] / n), cid
    assert rate["after_consent"] == 1.0 and rate["constant"] == 0.0
    unknown = float(np.mean(s.prescreen_outcome == UNKNOWN))
    assert math.isclose(res.summary["prescreen_unknown_fraction"], unknown)
    # the chart funnel removes every excluded candidate exactly once
    f = res.funnel
    assert f["prescreen_fail"].sum() + f["screen_fail"].sum() == res.summary["excluded"]
    assert f["prescreen_fail"].sum() == int(np.sum(s.prescreen_outcome == FAIL))
    # at each step the candidates still in chart review are split into pass / fail / unknown
    still = n - np.concatenate([[0], np.cumsum(f["prescreen_fail"].to_numpy())[:-1]])
    assert np.array_equal(f["prescreen_pass"] + f["prescreen_fail"] + f["prescreen_unknown"], still)


def test_unknown_rates_are_binomial():
    """P(criterion unknown) = 1 - prod over the units it reads of P(known), within Monte Carlo error."""
    cfg = ChartReviewConfig.model_validate({
        "site_type": "t", "default": P(0.9), "known": {"a": P(0.6), "b": P(0.8), "c": P(0.3)},
        "site_types": {"t": {}}})
    screener = compile_criteria(CriteriaConfig.model_validate(HAND), COLUMNS)
    n = 40_000
    frame = _hand_frame(n, np.random.default_rng(2))
    s = screener.evaluate(frame, _chart(cfg, screener, seed=5).draw(frame))
    # lab = a >= 1 AND b >= 1: decided when both are known, or a known one is < 1 (a: 1/3 are >= 1;
    # b: 2/3 are >= 1); mixed = a >= 0 OR c: decided when both are known, or a known a >= 0 (2/3),
    # or a known c that is true (c is true for 30% of the cohort)
    pa, pb, pc = 0.6, 0.8, 0.3
    lab = 1 - (pa * pb + pa * (1 - pb) * (2 / 3) + (1 - pa) * pb * (1 / 3))
    mixed = 1 - (pa * pc + pa * (1 - pc) * (2 / 3) + (1 - pa) * pc * 0.3)
    expect = {"lab": lab, "history": 1 - pc, "mixed": mixed, "after_consent": 1.0, "constant": 0.0}
    for cid, rate in zip(screener.ids, s.unknown_at_prescreen_rate, strict=True):
        p = expect[cid]
        assert abs(rate - p) <= 4 * math.sqrt(p * (1 - p) / n) + 1e-12, (cid, rate, p)


def test_probability_resolution_order():
    cfg = ChartReviewConfig.model_validate({
        "site_type": "a", "default": P(0.1), "known": {"x": P(0.5), "y": P(0.6)},
        "site_types": {"a": {}, "b": {"default": P(0.2), "known": {"x": P(0.7)}}}})
    from hn005_sim.scenario.base import Probability

    assert cfg.probability("x") == 0.5 and cfg.probability("z") == 0.1
    assert cfg.probability("x", "b") == 0.7 and cfg.probability("y", "b") == 0.6
    assert cfg.probability("z", "b") == 0.2
    assert cfg.probability("x", "b", {"x": Probability(value=0.9, source=SRC)}) == 0.9


# -- the recruitment DES ---------------------------------------------------------------------------


def _des_counts(sc, replicates, seed):
    from hn005_sim.recruitment.candidates import candidate_source
    from hn005_sim.recruitment.des import simulate_recruitment

    source = candidate_source(sc)
    recs = [simulate_recruitment(sc, source, seed, r)[0] for r in range(replicates)]
    return recs


@pytest.mark.slow
def test_des_with_every_value_known_is_the_model_without_chart_review():
    """The chart's uniforms come from their own stream: knowing everything changes no other draw."""
    sc, _ = load_scenario(BASELINE)
    a = _des_counts(sc.model_copy(update={"chart_review": everywhere(1.0)}), 2, 3)
    b = _des_counts(sc.model_copy(update={"chart_review": None}), 2, 3)
    for x, y in zip(a, b, strict=True):
        for key in ("candidates", "prescreen_failures", "consented", "screen_failures", "enrolled"):
            assert getattr(x, key) == getattr(y, key), key
        assert np.array_equal(x.enrol_day, y.enrol_day)
        assert np.array_equal(x.prescreen_reasons, y.prescreen_reasons)
        assert np.array_equal(x.screen_reasons, y.screen_reasons)
        assert x.prescreen_unknown == 0


@pytest.mark.slow
def test_des_prescreen_shares_match_the_screen_figures():
    sc, raw = load_scenario(BASELINE)
    from hn005_sim.eligibility.analysis import analyse_scenario

    _, _, _, res = analyse_scenario(sc, raw, 40_000, 9)
    recs = _des_counts(sc, 4, 9)
    cand = sum(r.candidates for r in recs)
    for key, des in (("prescreen_fail_fraction", sum(r.prescreen_failures for r in recs)),
                     ("prescreen_unknown_fraction", sum(r.prescreen_unknown for r in recs))):
        p = res.summary[key]
        tol = 4 * math.sqrt(p * (1 - p) * (1 / cand + 1 / 40_000))
        assert abs(des / cand - p) <= tol, (key, des / cand, p, tol)
    # every consented candidate came through prescreen; failures at screening have a reason
    for r in recs:
        assert r.screen_reasons.sum() == r.screen_failures
        assert r.prescreen_reasons.sum() == r.prescreen_failures


# -- command line and bad input --------------------------------------------------------------------


def test_screen_site_type_and_bad_input(tmp_path, capsys):
    out = tmp_path / "g"
    assert main(["screen", BASELINE, "--patients", "4000", "--seed", "2", "--site-type", "general_hospital",
                 "--out", str(out), "-q"]) == 0
    g = json.loads((out / "summary.json").read_text())
    out2 = tmp_path / "c"
    assert main(["screen", BASELINE, "--patients", "4000", "--seed", "2", "--out", str(out2), "-q"]) == 0
    c = json.loads((out2 / "summary.json").read_text())
    assert g["site_type"] == "general_hospital" and c["site_type"] == "cancer_centre"
    assert g["eligible_fraction"] == c["eligible_fraction"]
    # charts that hold less: fewer fail at prescreen, more fail at screening
    assert g["prescreen_pass_fraction"] > c["prescreen_pass_fraction"]
    assert g["screen_failure_rate"] > c["screen_failure_rate"]
    assert main(["screen", BASELINE, "--patients", "100", "--site-type", "clinic",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--site-type must be one of" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("text, message", [
    ('[chart_review.panels.labs]\ncolumns = ["hb_gl"]\n',
     'chart_review.panels.labs.columns: unknown column "hb_gl"'),
    ('[chart_review.known]\nhb_g_l = { value = 0.5, source = "assumption: test figure" }\n',
     'chart_review.known.hb_g_l: column "hb_g_l" is in panel "blood_count"'),
    ('[chart_review]\nsite_type = "clinic"\n', 'site_type "clinic" is not one of the site_types'),
    ('[chart_review.known]\nblood_count = { value = 1.5, source = "assumption: test figure" }\n',
     "chart_review.known.blood_count.value"),
])
def test_bad_chart_review_exits_2(tmp_path, capsys, text, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(f'extends = "{Path(BASELINE).resolve()}"\nname = "bad"\n{text}')
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert message in err and "bad.toml" in err and "Traceback" not in err


def test_region_site_type_is_checked(tmp_path, capsys):
    import tomllib

    sites = tomllib.loads(Path("configs/alter_hn005/sites.toml").read_text())
    region = sites["recruitment"]["regions"][0]
    assert "site_type" not in region
    bad = tmp_path / "bad.toml"
    bad.write_text(f'extends = "{Path(BASELINE).resolve()}"\nname = "bad"\n'
                   '[[recruitment.regions]]\nname = "r"\nsites = 1\nsite_type = "clinic"\n'
                   'referral_rate_mean = { value = 3.0, source = "assumption: test figure" }\n'
                   'referral_rate_variance = { value = 1.0, source = "assumption: test figure" }\n'
                   'activation_delay_days = { dist = "constant", value = 0.0,'
                   ' source = "assumption: test figure" }\n'
                   'never_activate = { value = 0.0, source = "assumption: test figure" }\n')
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "recruitment.regions[0].site_type: must be one of chart_review.site_types" in err
    bad.write_text(bad.read_text().replace('site_type = "clinic"\n', 'chart_known.hb_g_l = '
                                           '{ value = 0.5, source = "assumption: test figure" }\n'))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert 'recruitment.regions[0].chart_known.hb_g_l: column "hb_g_l" is in panel "blood_count"' in err
    assert "bad.toml" in err


# -- three-valued judgement of the protocol's own rules ----------------------------------------------


def test_decided_sql_rewrites_is_null_and_refuses_null_sensitive_constructs():
    from hn005_sim.eligibility.chart import decided_sql

    assert decided_sql("t <= 14 OR l IS NOT NULL", ["t", "l"]) == \
        "(CASE WHEN _chart_known_t THEN t END) <= 14 OR (CASE WHEN _chart_known_l THEN l IS NOT NULL END)"
    assert decided_sql("sex = 'IS NULL' AND NOT a", ["sex", "a"]) == \
        "(CASE WHEN _chart_known_sex THEN sex END) = 'IS NULL' AND NOT (CASE WHEN _chart_known_a THEN a END)"
    assert decided_sql("COALESCE(a, 0) > 1", ["a"]) is None
    assert decided_sql("CASE WHEN a THEN b END", ["a", "b"]) is None


def test_known_values_decide_the_protocol_rules():
    from tests.eligibility.conftest import candidates, load_cfg

    screener = compile_criteria(load_cfg())
    frame = candidates(
        {},                                                       # HBsAg-negative, troponin normal
        {"hbsag_positive": True, "hbv_dna_copies_ml": 5e5},        # HBsAg-positive
        {"troponin_ng_l": 30.0},                                   # abnormal troponin, no echo yet
    )
    cfg = ChartReviewConfig.model_validate({
        "site_type": "t", "default": P(1.0),
        "known": {"hbv_dna_copies_ml": P(0.0), "lvef_pct": P(0.0)}, "site_types": {"t": {}}})
    known = _chart(cfg, screener).draw(frame)
    col = {cid: i for i, cid in enumerate(screener.ids)}
    assert known[:, col["hepatitis_b"]].tolist() == [True, False, True]
    assert known[:, col["troponin"]].tolist() == [True, True, False]
    assert not known[:, col["lvef"]].any()  # "LVEF < 60%" waits for an echocardiogram
    s = screener.evaluate(frame, known)
    # nobody fails on known values: all three go to consent, screening decides
    assert s.prescreen_pass.all() and (s.prescreen_outcome == UNKNOWN).all()
    assert s.eligible.tolist() == [True, False, False]


@pytest.mark.slow
def test_des_site_types_per_region_and_identical_for_any_jobs():
    from hn005_sim.montecarlo import run_scenario
    from hn005_sim.recruitment.candidates import ScreenerSource
    from hn005_sim.recruitment.des import simulate_recruitment

    sc, _ = load_scenario(BASELINE)
    rec = sc.recruitment
    sponsor = rec.regions[0]
    gh = sponsor.model_copy(update={"name": "gh", "site_names": ["GH-1"], "max_sites": None,
                                    "site_type": "general_hospital"})
    sc2 = sc.model_copy(update={"recruitment": rec.model_copy(update={"regions": [sponsor, gh]})})
    source = ScreenerSource(sc2)
    _, sites = simulate_recruitment(sc2, source, 4, 0)
    charts = [source.site_chart(4, 0, s) for s in sites]
    units = charts[0].model.units
    p = {u: (a, b) for u, a, b in zip(units, charts[0].probabilities, charts[1].probabilities, strict=True)}
    assert p["tumour_imaging"] == (0.5, 0.3) and p["blood_count"] == (0.9, 0.9)
    # each site's chart draws are its own: same seed, other site, other uniforms
    assert not np.array_equal(charts[0].generators[0].random(8), charts[1].generators[0].random(8))
    one = run_scenario(sc2, 3, seed=4, jobs=1)
    two = run_scenario(sc2, 3, seed=4, jobs=2)
    assert one.summary == two.summary and one.summary["funnel_mean"]["prescreen_unknown"] > 0
    for k in one.frames:
        assert one.frames[k].equals(two.frames[k]), k
