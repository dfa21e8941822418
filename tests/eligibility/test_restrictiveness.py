"""Restrictiveness figures against independent computations: brute-force Shapley over all subsets,
row-wise sums, and full re-screening for sweeps and the relaxation plan."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hn005_sim.eligibility import Screening, compile_criteria
from hn005_sim.eligibility.restrictiveness import analyse

from .conftest import candidates, load_cfg


def brute_shapley(fails: np.ndarray) -> np.ndarray:
    """Shapley values of v(S) = #rows failing some criterion in S, by enumerating every subset."""
    k = fails.shape[1]

    def v(s):
        return int(fails[:, list(s)].any(axis=1).sum()) if s else 0

    phi = np.zeros(k)
    for i in range(k):
        others = [j for j in range(k) if j != i]
        for r in range(k):
            for s in itertools.combinations(others, r):
                w = math.factorial(r) * math.factorial(k - r - 1) / math.factorial(k)
                phi[i] += w * (v((*s, i)) - v(s))
    return phi


def _screening(passes: np.ndarray, n_pre: int) -> Screening:
    k = passes.shape[1]
    ids = [f"c{i}" for i in range(k)]
    stages = ["prescreen" if i < n_pre else "screening" for i in range(k)]
    return Screening.from_matrix(passes, ids, ["inclusion"] * k, stages)


matrices = st.integers(1, 5).flatmap(
    lambda k: arrays(bool, st.tuples(st.integers(1, 40), st.just(k)), elements=st.booleans()))


@settings(max_examples=60, deadline=None)
@given(passes=matrices, n_pre=st.integers(0, 5))
def test_figures_match_brute_force(passes, n_pre):
    n, k = passes.shape
    res = analyse(_screening(passes, min(n_pre, k)), bootstrap=0)
    fails = ~passes
    nf = fails.sum(axis=1)
    crit = res.criteria
    assert np.allclose(crit["shapley"].to_numpy(), brute_shapley(fails))
    assert math.isclose(crit["shapley"].sum(), (nf > 0).sum(), abs_tol=1e-9)
    assert np.allclose(crit["fail_rate"].to_numpy(), fails.mean(axis=0))
    assert np.allclose(crit["sole_fail_rate"].to_numpy(), (fails & (nf == 1)[:, None]).mean(axis=0))
    s = res.summary
    assert s["eligible"] == int((nf == 0).sum()) and s["excluded"] == int((nf > 0).sum())
    pre_ok = ~fails[:, : min(n_pre, k)].any(axis=1)
    assert math.isclose(s["prescreen_pass_fraction"], pre_ok.mean())
    expected_sfr = (pre_ok.sum() - (nf == 0).sum()) / pre_ok.sum() if pre_ok.any() else 0.0
    assert math.isclose(s["screen_failure_rate"], expected_sfr)
    # funnel: sequential removal, prescreen first, each in protocol order
    remaining = np.ones(n, bool)
    for row in res.funnel.iter_rows(named=True):
        j = int(row["criterion_id"][1:])
        dropped = remaining & fails[:, j]
        assert row["dropped"] == dropped.sum()
        remaining &= ~dropped
        assert row["remaining"] == remaining.sum()
    assert math.isclose(crit["funnel_drop"].sum() + s["eligible_fraction"], 1.0)
    # co-failure
    for row in res.cofailure.iter_rows(named=True):
        a, b = int(row["criterion_a"][1:]), int(row["criterion_b"][1:])
        both = (fails[:, a] & fails[:, b]).sum()
        assert row["both_fail"] == both
        exp = fails[:, a].sum() * fails[:, b].sum() / n
        assert math.isclose(row["expected_if_independent"], exp)
        assert (row["lift"] is None) == (exp == 0) and (exp == 0 or math.isclose(row["lift"], both / exp))


def test_shapley_hand_computed():
    """Candidate 1 fails a only; candidate 2 fails a and b; candidate 3 fails a, b and c; one passes all."""
    passes = ~np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1], [0, 0, 0]], dtype=bool)
    crit = analyse(_screening(passes, 3), bootstrap=0).criteria
    assert np.allclose(crit["shapley"].to_numpy(), [1 + 1 / 2 + 1 / 3, 1 / 2 + 1 / 3, 1 / 3])
    assert np.allclose(crit["shapley_share"].to_numpy(), np.array([11 / 6, 5 / 6, 1 / 3]) / 3)


def test_bootstrap_intervals_cover_and_scale_with_binomial_error():
    rng = np.random.default_rng(7)
    n = 20_000
    passes = rng.random((n, 4)) > np.array([0.1, 0.2, 0.05, 0.3])
    res = analyse(_screening(passes, 2), bootstrap=400, rng=np.random.default_rng(1))
    lo, hi = res.summary["intervals"]["eligible_fraction"]
    p = res.summary["eligible_fraction"]
    assert lo < p < hi
    se = math.sqrt(p * (1 - p) / n)
    # width of a 95% interval is 2 x 1.96 SE; the bootstrap estimate is within 15% for 400 replicates
    assert abs((hi - lo) / (2 * 1.96 * se) - 1) < 0.15
    crit = res.criteria
    assert (crit["fail_rate_lo"] <= crit["fail_rate"]).all()
    assert (crit["fail_rate"] <= crit["fail_rate_hi"]).all()


def _cohort(rng: np.random.Generator, n: int) -> pl.DataFrame:
    """Hand-made candidates with the swept columns spread around their thresholds."""
    rows = []
    for _ in range(n):
        rows.append({
            "age_years": float(rng.uniform(40, 80)), "crcl_ml_min": float(rng.uniform(35, 100)),
            "hb_g_l": float(rng.uniform(80, 140)), "ecog": int(rng.integers(0, 3)),
            "creatinine_umol_l": float(rng.uniform(60, 180)),
            "prior_ici": str(rng.choice(["none", "pd1", "bispecific"])),
            "prior_ici_types": int(rng.integers(0, 3)),
            "tsh_miu_l": float(rng.uniform(1, 10)), "ft3_pmol_l": 2.0, "ft4_pmol_l": 15.0,
            "stage_at_diagnosis": str(rng.choice(["II", "III", "IVA"])),
        })
    return candidates(*rows)


def test_sweeps_equal_full_rescreening():
    cfg = load_cfg()
    screener = compile_criteria(cfg)
    frame = _cohort(np.random.default_rng(3), 400)
    res = analyse(screener.evaluate(frame), screener=screener, frame=frame, bootstrap=0)
    sweeps = res.sweeps
    for name in ("crcl_min_ml_min", "age_max_years", "hb_min_g_l", "ecog_max", "tsh_max_uln"):
        rows = sweeps.filter(pl.col("parameter") == name)
        assert rows.height >= 3 and rows["is_current"].sum() == 1
        for value, frac in zip(rows["value"], rows["eligible_fraction"], strict=True):
            full = compile_criteria(load_cfg({"overrides": {name: value}})).evaluate(frame)
            assert math.isclose(frac, full.eligible.mean()), (name, value)


def test_relaxation_plan_equals_greedy_by_full_rescreening():
    cfg = load_cfg()
    screener = compile_criteria(cfg)
    frame = _cohort(np.random.default_rng(4), 400)
    res = analyse(screener.evaluate(frame), screener=screener, frame=frame, bootstrap=0,
                  target_fraction=0.99)
    # independent greedy: re-screen the whole cohort with every candidate set of relaxations
    applied_o: dict = {}
    applied_r: dict = {}
    menu = list(cfg.relaxations)
    base = compile_criteria(cfg).evaluate(frame).eligible.mean()
    expected = [("(as configured)", base)]
    while menu:
        scores = []
        for r in menu:
            c = load_cfg({"overrides": {**applied_o, **r.overrides}, "readings": {**cfg.readings, **applied_r,
                                                                                 **r.readings}})
            scores.append(compile_criteria(c).evaluate(frame).eligible.mean())
        j = int(np.argmax(scores))
        if scores[j] <= expected[-1][1]:
            break
        r = menu.pop(j)
        applied_o, applied_r = {**applied_o, **r.overrides}, {**applied_r, **r.readings}
        expected.append((r.id, scores[j]))
    got = list(zip(res.relaxation["relaxation"], res.relaxation["eligible_fraction"], strict=True))
    assert [g[0] for g in got] == [e[0] for e in expected]
    assert np.allclose([g[1] for g in got], [e[1] for e in expected])
    assert np.allclose(res.relaxation["gain"].to_numpy()[1:], np.diff([e[1] for e in expected]))


def test_exact_bootstrap_variance_matches_resampling():
    """The normal intervals used for large cohorts agree with a resampling bootstrap."""
    from hn005_sim.eligibility.restrictiveness import normal_intervals

    rng = np.random.default_rng(11)
    passes = rng.random((5000, 5)) > np.array([0.1, 0.2, 0.05, 0.3, 0.15])
    scr = _screening(passes, 2)
    boot = analyse(scr, bootstrap=2000, rng=np.random.default_rng(2))
    assert boot.summary["interval_method"].startswith("percentile")
    bands = normal_intervals(scr.patterns, np.array([0, 1]), 1.959963984540054)
    for key in ("eligible_fraction", "prescreen_pass_fraction", "screen_failure_rate"):
        lo, hi = boot.summary["intervals"][key]
        # widths agree within the Monte Carlo error of 2000 replicates' quantiles (about 5%)
        assert abs((bands[key][1] - bands[key][0]) / (hi - lo) - 1) < 0.08, key
    for key in ("fail_rate", "sole_fail_rate", "shapley_share"):
        w_boot = boot.criteria[f"{key}_hi"].to_numpy() - boot.criteria[f"{key}_lo"].to_numpy()
        assert np.allclose(bands[key][1] - bands[key][0], w_boot, rtol=0.1), key


def test_shapley_and_normal_intervals_are_exact_sums_in_a_fixed_order(monkeypatch):
    """The Shapley values and the normal intervals' means come from integer sums (exact in any order):
    the Shapley values equal the exact rational sum of 1/|F| over the candidates failing each criterion
    (fractions.Fraction, an independent computation) rounded once per |F| term, and the interval means
    equal the exact fractions of candidates, to the last bit."""
    from fractions import Fraction

    from hn005_sim.eligibility import restrictiveness as r

    monkeypatch.setattr(r, "RESAMPLE_LIMIT", 0)  # normal intervals whatever the size
    rng = np.random.default_rng(5)
    # 40,000 rows over 12 criteria: thousands of patterns, products large enough for BLAS's threads
    passes = rng.random((40_000, 12)) > rng.uniform(0.02, 0.4, 12)
    scr = _screening(passes, 4)
    res = analyse(scr, bootstrap=200)
    assert res.summary["interval_method"].startswith("normal")
    fails = ~passes
    nf = fails.sum(axis=1)
    for j in range(12):
        # sum over f of (number failing j with |F| = f) / f, each term rounded once, added in order of f
        expected = 0.0
        for f in range(1, 13):
            expected += float(Fraction(int((fails[:, j] & (nf == f)).sum()), f))
        assert res.shapley[j] == expected, j
    n = passes.shape[0]
    pat, prescreen = scr.patterns, np.flatnonzero(scr.stages == "prescreen")
    bands = r.normal_intervals(pat, prescreen, 1.959963984540054)
    m_el = (nf == 0).sum() / n
    sd = np.sqrt(m_el * (1 - m_el) / n)
    z = 1.959963984540054
    assert res.summary["intervals"]["eligible_fraction"] == [float(np.clip(m_el - z * sd, 0, 1)),
                                                             float(np.clip(m_el + z * sd, 0, 1))]
    p = fails.sum(axis=0) / n
    half = 1.959963984540054 * np.sqrt(p * (1 - p) / n)
    assert np.array_equal(bands["fail_rate"][0], np.clip(p - half, 0, 1))
    rowwise = (fails[nf > 0] / nf[nf > 0, None]).sum(axis=0)
    assert np.allclose(res.shapley, rowwise, rtol=1e-12, atol=0)


def test_screen_figures_do_not_depend_on_the_blas_thread_count(tmp_path):
    """`screen` writes the same bytes with one OpenBLAS thread and with four (a float BLAS product's
    last bits follow its thread split; the figures use none)."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    outs = []
    for threads in ("1", "4"):
        out = tmp_path / f"t{threads}"
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        subprocess.run([sys.executable, "-c", "import sys; from hn005_sim.cli import main; sys.exit(main())",
                        "screen", str(root / "scenarios" / "baseline.toml"), "--patients", "60000",
                        "--seed", "3", "--out", str(out), "-q"], check=True, env=env, cwd=root)
        outs.append({f.name: f.read_bytes() for f in sorted(out.iterdir()) if f.suffix in (".csv", ".json")
                     and f.name != "manifest.json"})
    assert outs[0].keys() == outs[1].keys() and "criteria.csv" in outs[0]
    assert [k for k in outs[0] if outs[0][k] != outs[1][k]] == []


def test_bootstrap_draw_figures_equal_the_row_products():
    """For (b, u) bootstrap weights, the fail, sole-fail and Shapley figures taken from the by-failed
    table equal the plain products: each draw's counts times the 0/1 pattern matrix, and 1/|F| summed
    over the failing patterns (integer sums and one division per |F|, so compared exactly for fail and
    sole-fail, to 1e-12 for Shapley)."""
    from hn005_sim.eligibility.restrictiveness import figures

    rng = np.random.default_rng(8)
    passes = rng.random((3_000, 9)) > 0.25
    s = Screening.from_matrix(passes, [f"c{i}" for i in range(9)], ["inclusion"] * 9,
                              ["prescreen"] * 5 + ["screening"] * 4)
    pat = s.patterns
    draws = rng.multinomial(3_000, pat.count / 3_000, size=40).astype(np.float64)
    got = figures(pat, draws, np.arange(5))
    f = pat.fails.astype(np.float64)
    nf = pat.failed
    assert np.array_equal(got.fail, draws @ f)
    assert np.array_equal(got.sole, draws[:, nf == 1] @ f[nf == 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.where(nf[:, None] > 0, f / np.maximum(nf, 1)[:, None], 0.0)
    assert np.allclose(got.shapley, draws @ per, rtol=1e-12, atol=0)
    assert np.array_equal(got.eligible, draws @ (nf == 0))
