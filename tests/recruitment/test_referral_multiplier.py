"""`recruitment.referral_multiplier` m: every site's referral rate x m, so the gamma rate's mean x m and its
variance x m^2 (the same draw scaled). Checked against the analytic Poisson-gamma distribution."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from hn005_sim.cli import main
from hn005_sim.recruitment import analytic as A
from hn005_sim.recruitment import planning as P
from hn005_sim.recruitment.config import MONTH_DAYS
from hn005_sim.recruitment.sites import arrival_days, draw_sites
from hn005_sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "configs" / "alter_hn005" / "base.toml"

SCENARIO = """
extends = "{base}"
name = "multiplier_test"
[recruitment]
referral_multiplier = {mult}
[recruitment.funnel]
prescreen_pass = {{ value = 0.5, source = "assumption: test" }}
screen_pass = {{ value = 0.6, source = "assumption: test" }}
bsa_m2 = {{ dist = "constant", value = 1.7, source = "assumption: test" }}
"""


def scenario(tmp_path: Path, mult: str):
    p = tmp_path / f"s{abs(hash(mult))}.toml"
    p.write_text(SCENARIO.format(base=BASE, mult=mult))
    return load_scenario(p)[0]


def test_the_same_draw_is_scaled_by_m(tmp_path):
    one, low = scenario(tmp_path, "1.0"), scenario(tmp_path, "0.7")
    for rep in range(20):
        a, b = draw_sites(one.recruitment, 5, rep), draw_sites(low.recruitment, 5, rep)
        for s1, s2 in zip(a, b, strict=True):
            assert s2.rate_per_day == pytest.approx(0.7 * s1.rate_per_day, rel=1e-12)
            assert s2.activation_day == s1.activation_day


def test_arrivals_follow_the_scaled_negative_binomial(tmp_path):
    """A site open from day 0 (no dips): referrals by T ~ NB with the rate's mean m mu and variance m^2 v.
    The empirical pmf over 4,000 replicates matches it (chi-square), and the mean within 4.5 SE."""
    sc = scenario(tmp_path, '{ value = 0.7, source = "assumption: referrals 30% lower, a what-if" }')
    rec = sc.recruitment.model_copy(update={"seasonal_dips": []})
    region = rec.regions[0]
    assert region.activation_delay_days.dist == "constant" and region.activation_delay_days.value == 0
    horizon_days = 6 * MONTH_DAYS
    counts = []
    for rep in range(4000):
        (site,) = draw_sites(rec, 9, rep)
        rng = np.random.default_rng(rep)
        counts.append(arrival_days(site, np.ones(int(horizon_days) + 2), horizon_days, rng).size)
    counts = np.array(counts)
    mu, v = region.referral_rate_mean.value, region.referral_rate_variance.value
    nb = A.negative_binomial(1, 0.7 * mu, 0.49 * v, 6.0)
    assert abs(counts.mean() - nb.mean()) < 4.5 * math.sqrt(nb.var() / counts.size)
    edges = np.unique(nb.ppf(np.linspace(0.05, 0.95, 10)).astype(int))
    bins = np.concatenate(([-1], edges, [np.inf]))
    observed = np.histogram(counts, bins=bins)[0]
    expected = np.diff(np.concatenate(([0.0], nb.cdf(edges), [1.0]))) * counts.size
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < stats.chi2.ppf(0.999, len(expected) - 1)


def test_plan_from_scenario_scales_mean_by_m_and_variance_by_m_squared(tmp_path):
    one, low = scenario(tmp_path, "1.0"), scenario(tmp_path, "0.7")
    p1, p7 = P.plan_from_scenario(one, 1), P.plan_from_scenario(low, 1)
    for r1, r7 in zip(p1.regions, p7.regions, strict=True):
        assert r7.rate_mean == pytest.approx(0.7 * r1.rate_mean)
        assert r7.rate_variance == pytest.approx(0.49 * r1.rate_variance)
    # one site open from the start: the plan's P(success) is the NB closed form at the scaled figures
    s7 = P.plan_sites(p7.model_copy(update={"target": 20, "duration_months": 24.0})).summary
    r = p7.regions[0]
    want = A.negative_binomial(1, r.rate_mean, r.rate_variance, 24.0).sf(19)
    assert s7["probability_of_success"] == pytest.approx(want, abs=1e-10)
    assert s7["derivation"]["referral_multiplier"] == 0.7


@pytest.mark.parametrize("bad", ["0", "-1", '"high"', "1e9"])
def test_bad_multiplier_is_one_line_exit_2(tmp_path, capsys, bad):
    p = tmp_path / "bad.toml"
    p.write_text(SCENARIO.format(base=BASE, mult=bad))
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert any("referral_multiplier" in line for line in err), err


def test_sweep_sets_the_multiplier(tmp_path, capsys):
    p = tmp_path / "s.toml"
    p.write_text(SCENARIO.format(base=BASE, mult="1.0"))
    out = tmp_path / "sweep"
    code = main(["sweep", str(p), "--set", "recruitment.referral_multiplier=0.7,1", "--replicates", "20",
                 "--seed", "3", "--out", str(out), "--quiet"])
    assert code == 0
    import csv

    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [r["recruitment.referral_multiplier"] for r in rows] == ["0.7", "1"]
    # common random numbers: the same sites and candidates, 30% fewer referrals -> later to the target
    low, full = (float(r["time_to_target_p50"]) for r in rows)
    assert low > full
