"""`hn005-sim sensitivity`: SALib wired to the right figures and outputs, known answers, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hn005_sim import sensitivity as sa
from hn005_sim.cli import main
from hn005_sim.scenario.draws import UncertainScenario
from hn005_sim.scenario.load import RawScenario, load_scenario, validate_raw

ROOT = Path(__file__).resolve().parents[1]
BASELINE = (ROOT / "scenarios" / "baseline.toml").as_posix()
NAMES = ["x0", "x1", "x2"]


def _linear(x: np.ndarray) -> np.ndarray:
    """y = 4 x0 + 0 x1 + x2 on the unit cube: Var = 16/12 + 1/12, so S1 = ST = 16/17, 0, 1/17."""
    return 4 * x[:, 0] + x[:, 2]


def test_sobol_indices_of_a_linear_function():
    x = sa.design("sobol", NAMES, 512, seed=1)
    assert x.shape == (512 * (3 + 2), 3)
    idx = sa.analyse("sobol", NAMES, x, _linear(x), seed=1)
    expected = np.array([16 / 17, 0.0, 1 / 17])
    for key in ("S1", "ST"):
        est, conf = idx[key], idx[f"{key}_conf"]
        # the estimators' error at N = 512 is a few hundredths; SALib's bootstrap interval measures it
        assert np.all(np.abs(est - expected) <= np.maximum(3 * conf, 0.05)), (key, est, conf)
    # x1 changes nothing: f(A_B^1) = f(A) exactly, so both estimators give exactly 0 inside its interval
    assert idx["ST"][1] == 0 and idx["S1"][1] == 0
    assert idx["ST"][0] > idx["ST"][2] > idx["ST"][1]
    # the tornado's bars: a linear function's fit is exact, each bar spans its slope
    low, high, r2 = sa.swings(x, _linear(x))
    assert np.allclose(high - low, [4, 0, 1]) and r2 == pytest.approx(1.0)


def test_morris_elementary_effects_of_a_linear_function_are_its_slopes():
    x = sa.design("morris", NAMES, 20, seed=2)
    idx = sa.analyse("morris", NAMES, x, _linear(x), seed=2)
    # every elementary effect of a linear function is its coefficient: mu* = |slope|, sigma = 0
    assert np.allclose(idx["mu_star"], [4, 0, 1]) and np.allclose(idx["sigma"], 0, atol=1e-9)


def test_a_constant_output_has_zero_indices():
    x = sa.design("sobol", NAMES, 8, seed=1)
    idx = sa.analyse("sobol", NAMES, x, np.ones(len(x)), seed=1)
    assert all(np.all(v == 0) for v in idx.values())


FIGURES = ["recruitment.regions[0].referral_rate_mean.value", "recruitment.consent.value",
           "recruitment.regions[0].close_month.value"]


def _small(tmp_path: Path) -> UncertainScenario:
    """The sponsor's site for 12 months (target 24, about its median enrolment by then), no supply chain.
    Uncertain: the referral rate (x0.5-1.5), consent (0.65-0.75) and a closing month beyond the horizon,
    which provably changes nothing (the site closes at min(horizon, close_month))."""
    path = tmp_path / "small.toml"
    unc = 'uncertainty = {{ dist = "uniform", low = {}, high = {}, {}source = "assumption: test range" }}'
    path.write_text("\n".join([
        f'extends = "{BASELINE}"', 'name = "small"',
        "[trial]", "target_enrolled = 24", "deadline_months = 12",
        "[recruitment]",
        'horizon_months = { value = 12, source = "assumption: a short test run" }',
        f'consent = {{ value = 0.70, source = "assumption: test", {unc.format(0.65, 0.75, "")} }}',
        "[[recruitment.regions]]", 'name = "sponsor"', "sites = 1",
        'referral_rate_mean = { value = 32.0, source = "assumption: test", '
        f'{unc.format(0.5, 1.5, "relative = true, ")} }}',
        'referral_rate_variance = { value = 64.0, source = "assumption: test" }',
        'activation_delay_days = { dist = "constant", value = 0.0, source = "assumption: test" }',
        'never_activate = { value = 0.0, source = "assumption: test" }',
        f'close_month = {{ value = 18.0, source = "assumption: test", {unc.format(13.0, 24.0, "")} }}',
    ]) + "\n")
    _, raw = load_scenario(path)
    raw = RawScenario(raw.path, {k: v for k, v in raw.data.items() if k not in ("supply", "regimen")},
                      raw.origins, raw.files)
    return UncertainScenario.from_scenario(validate_raw(raw), raw).only(FIGURES)


def test_the_referral_rate_dominates_and_a_figure_without_effect_gets_zero(tmp_path):
    u = _small(tmp_path)
    res = sa.sensitivity(u, "sobol", 16, 2, seed=4)
    t = {(r["parameter"], r["output"]): r for r in res.table.iter_rows(named=True)}
    rate, consent, closing = FIGURES
    for output in ("prob_target_by_deadline", "enrolled_by_deadline_mean", "time_to_target_p50"):
        assert t[(rate, output)]["ST"] > t[(consent, output)]["ST"], output
        assert t[(rate, output)]["ST"] > 0.5 and t[(rate, output)]["ST_ci_low"] > 0, output
        row = t[(closing, output)]
        assert row["ST"] == 0 and row["S1"] == 0 and row["ST_ci_low"] <= 0 <= row["ST_ci_high"], output
    # the rate raises enrolment: the tornado bar runs upwards
    up = t[(rate, "enrolled_by_deadline_mean")]
    assert up["output_at_high"] > up["output_at_low"]
    # the file ranks figures by ST within each output
    first = res.table.filter(res.table["output"] == "enrolled_by_deadline_mean")["parameter"][0]
    assert first == rate
    assert res.summary["design_points"] == 16 * (3 + 2) and res.summary["replicates_total"] == 160


def test_uncertain_run_and_sensitivity_are_identical_for_any_jobs(tmp_path):
    """jobs=1 inline against a pool of two spawned processes (the parameter sets travel pickled)."""
    import concurrent.futures as cf
    import multiprocessing

    from hn005_sim.montecarlo import run_scenario

    u = _small(tmp_path)
    sc = u.scenario_with([f.value for f in u.figures])
    inline_run = run_scenario(sc, 10, 3, jobs=1, uncertain=u)
    inline_sens = sa.sensitivity(u, "morris", 2, 1, seed=5, jobs=1)
    with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as ex:
        pool_run = run_scenario(sc, 10, 3, jobs=2, executor=ex, uncertain=u)
        pool_sens = sa.sensitivity(u, "morris", 2, 1, seed=5, jobs=2, executor=ex)
    assert inline_run.summary == pool_run.summary
    for name, frame in inline_run.frames.items():
        assert frame.equals(pool_run.frames[name]), name
    assert run_scenario(sc, 10, 3, jobs=1).summary != inline_run.summary  # the draws did change the runs
    assert inline_sens.table.equals(pool_sens.table) and inline_sens.summary == pool_sens.summary
    rate, _, closing = FIGURES
    t = {(r["parameter"], r["output"]): r for r in inline_sens.table.iter_rows(named=True)}
    assert t[(closing, "enrolled_by_deadline_mean")]["mu_star"] == 0
    assert t[(rate, "enrolled_by_deadline_mean")]["mu_star"] > 0


def test_bad_requests_are_one_line(tmp_path, capsys):
    assert main(["sensitivity", "scenarios/baseline.toml", "--samples", "12",
                 "--out", str(tmp_path / "x")]) == 2
    assert "power of 2" in capsys.readouterr().err
    plain = tmp_path / "plain.toml"
    plain.write_text('extends = "../configs/alter_hn005/base.toml"\nname = "p"\n')
    # a scenario without uncertain figures: copy the base without its uncertainty tables
    base = tmp_path / "cfg"
    base.mkdir()
    for f in (ROOT / "configs" / "alter_hn005").glob("*.toml"):
        text = "\n".join(line.split(", uncertainty = ")[0] + (" }" if ", uncertainty = " in line else "")
                         for line in f.read_text().splitlines())
        (base / f.name).write_text(text)
    plain.write_text('extends = "cfg/base.toml"\nname = "p"\n')
    assert main(["sensitivity", str(plain), "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no figure with an `uncertainty`" in err[0]
    assert not (tmp_path / "y").exists()
