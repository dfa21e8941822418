"""Monte Carlo runner: same results for any jobs/executor, streaming aggregates equal raw computations."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import polars as pl
import pytest

from hn005_sim.cli import main
from hn005_sim.montecarlo import IntHistogram, hist_quantile, parse_executor, run_scenario
from hn005_sim.recruitment.config import MONTH_DAYS
from hn005_sim.scenario.schema import Scenario

SRC = "assumption: test"


def P(v):
    return {"value": v, "source": SRC}


def small(target=15, sites=3, horizon=18.0, deadline=9.0) -> Scenario:
    return Scenario.model_validate({
        "name": "small",
        "trial": {"target_enrolled": target, "start_date": dt.date(2024, 1, 1), "deadline_months": deadline},
        "recruitment": {
            "horizon_months": P(horizon), "lab_window_days": P(7.0), "consent": P(0.8),
            "withdrawal_before_dose": P(0.05),
            "screening_days": {"dist": "gamma", "mean": 9.0, "sd": 4.0},
            "rescreen": {"probability": P(0.3), "delay_days": {"dist": "constant", "value": 10.0}},
            "seasonal_dips": [{"name": "sf", "dates": [dt.date(2024, 2, 10)], "days_before": 7.0,
                               "days_after": 14.0, "multiplier": P(0.4)}],
            "regions": [{
                "name": "r", "sites": sites, "referral_rate_mean": P(2.0), "referral_rate_variance": P(2.0),
                "activation_delay_days": {"dist": "gamma", "mean": 60.0, "sd": 30.0},
                "never_activate": P(0.2), "screening_capacity": {"value": 2, "source": SRC},
                "ramp_up_months": P(2.0),
            }],
            "funnel": {"prescreen_pass": P(0.5), "screen_pass": P(0.7),
                       "bsa_m2": {"dist": "normal", "mean": 1.7, "sd": 0.15}},
            "candidate_batch": 16,
        },
    })


def _same(a, b):
    assert a.summary == b.summary
    assert a.frames.keys() == b.frames.keys()
    for k in a.frames:
        assert a.frames[k].equals(b.frames[k]), k


def test_hist_quantile_equals_numpy_linear():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 100, 1001):
        x = rng.integers(0, 40, n)
        counts = np.bincount(x)
        for q in (0, 0.025, 0.1, 0.37, 0.5, 0.9, 0.975, 1):
            assert hist_quantile(counts, q) == pytest.approx(np.quantile(x, q), abs=1e-12)
    h = IntHistogram(2)
    for v in [5, 0, 300, 2, 2]:
        h.add(v)
    assert h.quantile(0.5) == 2 and h.mean() == pytest.approx(309 / 5)


def test_summary_equals_direct_computation_from_records():
    """Every streamed figure recomputed from the raw per-replicate records with numpy."""
    sc = small()
    recs = []
    approx = lambda x, abs=1e-6: pytest.approx(x, abs=abs)  # noqa: E731 - summary figures are rounded to 1e-6
    res = run_scenario(sc, 60, seed=3, on_record=recs.append)
    assert [r.replicate for r in recs] == list(range(60))
    s = res.summary
    target, deadline_day = 15, 9.0 * MONTH_DAYS
    ttt = np.array([r.time_to_target_day for r in recs]) / MONTH_DAYS
    reached = np.isfinite(ttt)
    assert s["time_to_target_months"]["reached_fraction"] == approx(reached.mean())
    if reached.any():
        assert s["time_to_target_months"]["mean"] == approx(ttt[reached].mean(), abs=1e-6)
    by_deadline = np.array([np.searchsorted(r.enrol_day, deadline_day, side="right") for r in recs])
    assert s["prob_target_by_deadline"] == approx((by_deadline >= target).mean())
    for q in (10, 50, 90):
        assert s["enrolled_by_deadline"][f"p{q}"] == approx(np.quantile(by_deadline, q / 100))
        assert s["screened"][f"p{q}"] == approx(np.quantile([r.screened for r in recs], q / 100))
        rates = [r.screen_failures / max(r.screen_failures + r.withdrawn + r.enrolled, 1) for r in recs]
        assert s["screen_failure_rate"][f"p{q}"] == approx(np.quantile(rates, q / 100), abs=1e-4)
        finite = np.sort(np.where(reached, ttt, np.inf))
        expect = np.quantile(finite, q / 100) if reached.mean() > q / 100 + 0.05 else None
        got = s["time_to_target_months"][f"p{q}"]
        assert (got is None) == (expect is None or not math.isfinite(expect))
        if got is not None:
            assert got == approx(expect, abs=1e-5)
    zero = np.mean([np.mean(r.site_enrolled == 0) for r in recs])
    assert s["sites_zero_enrolled_fraction"] == approx(zero)

    curve = res.frames["enrollment_curve"]
    assert curve.columns == ["month", "enrolled_mean", "p025", "p10", "p25", "p50", "p75", "p90", "p975"]
    for m in (3, 9, 18):
        at = np.array([np.searchsorted(r.enrol_day, m * MONTH_DAYS, side="right") for r in recs])
        row = curve.filter(pl.col("month") == m).row(0, named=True)
        assert row["enrolled_mean"] == approx(at.mean())
        assert row["p025"] == approx(np.quantile(at, 0.025))
        assert row["p90"] == approx(np.quantile(at, 0.9))

    sf = res.frames["screen_failures"]
    assert sf.columns == ["stage", "criterion_id", "failures_mean", "failures_p10", "failures_p90", "share"]
    pre = sf.filter(pl.col("stage") == "prescreen").row(0, named=True)
    assert pre["failures_mean"] == approx(np.mean([r.prescreen_failures for r in recs]))
    sites = res.frames["sites"]
    assert sites.columns == ["site", "region", "activation_month_mean", "never_activated_fraction",
                             "enrolled_mean", "enrolled_p10", "enrolled_p90", "zero_enrolled_fraction"]
    act = np.array([r.site_activation_day[0] for r in recs])
    assert sites["never_activated_fraction"][0] == approx(np.isnan(act).mean())
    assert sites["activation_month_mean"][0] == approx(np.nanmean(act) / MONTH_DAYS)
    assert sites["enrolled_mean"].sum() == approx(np.mean([r.enrolled for r in recs]))
    t = res.frames["time_to_target"]
    assert t["time_to_target_months"].null_count() == int((~reached).sum())


@pytest.mark.slow
def test_identical_for_any_jobs_and_executor():
    sc = small()
    one = run_scenario(sc, 40, seed=5, jobs=1)
    _same(one, run_scenario(sc, 40, seed=5, jobs=2))
    _same(one, run_scenario(sc, 40, seed=5, jobs=3, executor="thread"))


@pytest.mark.slow
def test_identical_on_a_local_dask_cluster():
    sc = small()
    _same(run_scenario(sc, 30, seed=9, jobs=1), run_scenario(sc, 30, seed=9, executor="dask-local:2"))


def test_different_seeds_differ():
    sc = small()
    assert run_scenario(sc, 10, seed=1).summary != run_scenario(sc, 10, seed=2).summary


@pytest.mark.parametrize("spec, ok", [
    ("process", True), ("thread", True), ("dask-local", True), ("dask-local:3", True),
    ("dask://127.0.0.1:8786", True), ("dask-local:0", False), ("dask-local:x", False), ("dask://host", False),
    ("mpi", False),
])
def test_parse_executor(spec, ok):
    if ok:
        parse_executor(spec)
    else:
        with pytest.raises(ValueError, match="--executor"):
            parse_executor(spec)


# --- the command ---------------------------------------------------------------------------------------

SCENARIO_TOML = """
name = "cli"
[trial]
target_enrolled = 12
start_date = 2024-01-01
deadline_months = 10
[recruitment]
horizon_months = {value = 20, source = "assumption: test"}
lab_window_days = {value = 7, source = "assumption: test"}
consent = {value = 0.8, source = "assumption: test"}
withdrawal_before_dose = {value = 0.05, source = "assumption: test"}
screening_days = {dist = "gamma", mean = 9.0, sd = 4.0}
[recruitment.funnel]
prescreen_pass = {value = 0.5, source = "assumption: test"}
screen_pass = {value = 0.7, source = "assumption: test"}
bsa_m2 = {dist = "constant", value = 1.7}
[[recruitment.regions]]
name = "guangdong"
sites = 2
referral_rate_mean = {value = 3.0, source = "assumption: test"}
referral_rate_variance = {value = 2.0, source = "assumption: test"}
activation_delay_days = {dist = "uniform", low = 0.0, high = 60.0}
never_activate = {value = 0.1, source = "assumption: test"}
"""


def test_run_command_writes_the_contract_files(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO_TOML)
    out = tmp_path / "out"
    code = main(["run", str(path), "--replicates", "20", "--seed", "4", "--out", str(out),
                 "--format", "json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    summary = json.loads((out / "summary.json").read_text())
    assert printed == summary
    for key in ("replicates", "seed", "target_enrolled", "deadline_months", "time_to_target_months",
                "prob_target_by_deadline", "enrolled_by_deadline", "screened", "screen_failure_rate",
                "sites_zero_enrolled_fraction"):
        assert key in summary, key
    assert summary["replicates"] == 20 and summary["seed"] == 4 and summary["target_enrolled"] == 12
    assert set(summary["time_to_target_months"]) == {"p10", "p50", "p90", "mean", "reached_fraction"}
    for name in ("enrollment_curve", "time_to_target", "screen_failures", "sites"):
        assert (out / f"{name}.csv").is_file()
    assert pl.read_csv(out / "time_to_target.csv").height == 20
    assert pl.read_csv(out / "sites.csv")["site"].to_list() == ["guangdong-1", "guangdong-2"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 4 and manifest["replicates"] == 20 and manifest["command"] == "run"
    # same seed, same outputs
    out2 = tmp_path / "out2"
    assert main(["run", str(path), "--replicates", "20", "--seed", "4", "--out", str(out2), "--quiet",
                 "--png"]) == 0
    assert (out2 / "summary.json").read_text() == (out / "summary.json").read_text()
    assert (out2 / "enrollment_curve.csv").read_text() == (out / "enrollment_curve.csv").read_text()
    # charts: SVG by default, PNG beside each SVG with --png
    svgs = sorted(p.stem for p in (out / "charts").glob("*.svg"))
    assert "enrolment" in svgs and list((out / "charts").glob("*.png")) == []
    assert sorted(p.stem for p in (out2 / "charts").glob("*.png")) == svgs


def test_run_command_bad_input_writes_nothing(tmp_path, capsys):
    path = tmp_path / "s.toml"
    bad = SCENARIO_TOML.replace("referral_rate_mean = {value = 3.0", "referral_rate_mean = {value = -3.0")
    path.write_text(bad)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "recruitment.regions[0]" in err[0] and "referral_rate_mean" in err[0]
    assert not out.exists()
    path.write_text(SCENARIO_TOML)
    assert main(["run", str(path), "--out", str(out), "--executor", "mpi"]) == 2
    assert "--executor" in capsys.readouterr().err
    assert not out.exists()


def test_enrolled_baseline_equals_the_enrolled_patients_and_obeys_the_criteria():
    """The report's enrolled-patient baseline: streamed figures equal numpy on the enrolled patients of
    every replicate, and every enrolled patient meets the criteria the traits can show."""
    from pathlib import Path

    from hn005_sim.scenario.load import load_scenario

    sc, _ = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "baseline.toml")
    recs = []
    res = run_scenario(sc, 12, seed=5, on_record=recs.append)
    traits = {k: np.concatenate([r.enrol_traits[k] for r in recs]) for k in recs[0].enrol_traits}
    assert all(r.enrol_traits["age_years"].size == r.enrolled for r in recs)
    age = traits["age_years"]
    eb = res.summary["enrolled_baseline"]
    assert eb["patients"] == age.size == sum(r.enrolled for r in recs) > 0
    # age from 0.1-year bins: within half a bin of numpy on the raw ages
    assert eb["median_age_years"] == pytest.approx(np.median(age), abs=0.05 + 1e-9)
    assert eb["age_iqr_years"][0] == pytest.approx(np.quantile(age, 0.25), abs=0.05 + 1e-9)
    assert eb["age_iqr_years"][1] == pytest.approx(np.quantile(age, 0.75), abs=0.05 + 1e-9)
    for name in ("female", "ecog0", "liver_metastasis", "hbsag_positive"):
        assert eb[f"{name}_fraction"] == pytest.approx(traits[name].mean(), abs=1e-6)
    # the protocol admits 18-65 year-olds with recurrence after curative treatment, ECOG 0-1
    assert age.min() >= 18 and np.floor(age).max() <= 65  # aged 65 = up to the 66th birthday
    assert eb["de_novo_metastatic_fraction"] == 0.0
    assert 0.3 < eb["ecog0_fraction"] < 0.8  # ECOG 0 or 1 only: 0 is about half of them
