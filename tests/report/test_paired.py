"""Paired differences under common random numbers (report/paired.py, `compare`, `sweep`): checked
against independent numpy computations, and identical scenarios differ by exactly 0 with a zero-width
interval."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from hn005_sim.cli import main
from hn005_sim.report import paired as P

ROOT = Path(__file__).resolve().parents[2]

FAST = f"""extends = "{ROOT / 'scenarios' / 'baseline.toml'}"
name = "{{name}}"
[trial]
target_enrolled = 20
[recruitment.funnel]
prescreen_pass = {{{{ value = {{p}}, source = "test: fixed funnel" }}}}
screen_pass = {{{{ value = 0.7, source = "test: fixed funnel" }}}}
bsa_m2 = {{{{ dist = "normal", mean = 1.7, sd = 0.15, source = "test: fixed funnel" }}}}
"""


def scenario(tmp_path: Path, name: str, p: float) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(FAST.format(name=name, p=p))
    return path


def test_paired_mean_is_the_normal_interval_of_the_per_replicate_differences():
    g = np.random.default_rng(4)
    a = (g.uniform(size=300) < 0.6).astype(float)
    b = np.where(g.uniform(size=300) < 0.9, a, 1 - a)  # mostly the same replicates: paired
    d, lo, hi = P.paired_mean(a, b)
    diff = b - a
    z = stats.norm.ppf(0.975)
    half = z * np.std(diff, ddof=1) / np.sqrt(diff.size)
    assert d == pytest.approx(diff.mean()) and lo == pytest.approx(diff.mean() - half)
    assert hi == pytest.approx(diff.mean() + half)
    # pairing narrows the interval against treating the runs as independent
    unpaired = z * np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert hi - lo < 2 * unpaired


def test_paired_bootstrap_against_numpy():
    g = np.random.default_rng(5)
    a = g.gamma(4.0, 5.0, size=120)
    b = a + g.normal(0.5, 1.0, size=120)
    d, lo, hi = P.paired_bootstrap(a, b, 0.5, resamples=500, seed=99)
    assert d == pytest.approx(np.quantile(b, 0.5) - np.quantile(a, 0.5))
    # the same resampled indices for both, numpy's own quantile
    rng = np.random.default_rng(99)
    idx = rng.integers(0, a.size, size=(500, a.size))
    boot = np.quantile(b[idx], 0.5, axis=1) - np.quantile(a[idx], 0.5, axis=1)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(boot, [0.025, 0.975])))
    assert lo < d < hi


def test_quantiles_that_need_an_unreached_run_are_undefined():
    x = np.array([1.0, 2.0, np.inf, np.inf])
    assert P.statistic(x, 0.0) == 1.0
    assert P.statistic(x, 1 / 3) == 2.0  # exactly on the second value
    assert P.statistic(x, 0.5) is None  # between 2 and a run that never reached the target
    assert P.statistic(np.array([1.0, 3.0]), 0.5) == pytest.approx(np.quantile([1.0, 3.0], 0.5))


def test_identical_inputs_differ_by_exactly_zero():
    g = np.random.default_rng(6)
    a = g.normal(size=50)
    assert P.paired_mean(a, a.copy()) == (0.0, 0.0, 0.0)
    assert P.paired_bootstrap(a, a.copy(), 0.9) == (0.0, 0.0, 0.0)
    assert P.Difference("k", 0.0, 0.0, 0.0, "paired mean").within_noise is True
    assert P.Difference("k", 0.1, 0.05, 0.2, "paired mean").within_noise is False


def test_check_paired_names_what_differs():
    assert P.check_paired({"a": {"seed": 1, "replicates": 10}, "b": {"seed": 1, "replicates": 10}}) is None
    msg = P.check_paired({"a": {"seed": 1, "replicates": 10}, "b": {"seed": 2.0, "replicates": 20}})
    assert "seed (a: 1, b: 2)" in msg and "replicates (a: 10, b: 20)" in msg


def test_labels_speak_users_words():
    assert P.figure_label("prob_target_by_deadline") == "Probability of reaching the target by the deadline"
    assert P.figure_label("supply.anlotinib.units_p95") == "anlotinib: packs to make (95th percentile)"
    assert P.figure_label("seed") == "Random seed" and P.figure_kind("seed") == "int"
    assert "_" not in P.figure_label("funnel_mean.prescreen_failures")
    assert P.figure_kind("supply.penpulimab.out_of_stock_probability") == "pct"
    d = P.Difference("prob_target_by_deadline", 0.025, -0.004, 0.054, "paired mean")
    assert P.format_difference(d, "pct") == "+2.5 pp (−0.4 pp to +5.4 pp), within noise"


@pytest.mark.slow
def test_compare_identical_and_changed_scenarios(tmp_path: Path):
    """The same scenario twice: every paired figure differs by exactly 0 with a zero-width interval.
    A changed funnel: the paired interval equals numpy's on the per-replicate figures."""
    a = scenario(tmp_path, "a", 0.5)
    a2 = scenario(tmp_path, "a_again", 0.5)
    b = scenario(tmp_path, "b", 0.6)
    out = tmp_path / "cmp"
    assert main(["compare", str(a), str(a2), str(b), "--replicates", "12", "--seed", "3", "--out", str(out),
                 "--quiet"]) == 0
    with (out / "comparison.csv").open() as fh:
        rows = {r["metric"]: r for r in csv.DictReader(fh)}
    same = [r for r in rows.values() if r["difference_method.a_again"].startswith("paired")]
    assert len(same) >= 20  # recruitment and supply figures
    for r in same:
        if r["difference_vs_first.a_again"] == "":  # undefined (a percentile past the unreached runs)
            continue
        assert float(r["difference_vs_first.a_again"]) == 0.0, r["metric"]
        assert float(r["difference_low.a_again"]) == float(r["difference_high.a_again"]) == 0.0
        assert r["within_noise.a_again"] == "true"
    # the changed scenario's probability of reaching the target, by hand from each run's own record
    per = {}
    for name in ("a", "b"):
        ttt = {int(x["replicate"]): x["time_to_target_months"]
               for x in csv.DictReader((out / "time_to_target.csv").open()) if x["scenario"] == name}
        per[name] = np.array([ttt[i] != "" for i in range(12)], dtype=float)
    d = per["b"] - per["a"]
    half = stats.norm.ppf(0.975) * d.std(ddof=1) / np.sqrt(12)
    r = rows["time_to_target_months.reached_fraction"]
    assert float(r["difference_vs_first.b"]) == pytest.approx(d.mean(), abs=1e-6)
    assert float(r["difference_low.b"]) == pytest.approx(d.mean() - half, abs=1e-6)
    assert float(r["difference_high.b"]) == pytest.approx(d.mean() + half, abs=1e-6)
    html = (out / "report.html").read_text()
    assert "Random seed" in html and "prob_target_by_deadline</td>" not in html
    summaries = json.loads((out / "summaries.json").read_text())
    assert rows["seed"]["a"] == "3" and summaries["a"]["seed"] == 3


def test_compare_refuses_folders_with_other_seeds(tmp_path: Path, capsys):
    from . import report_fixtures as rf

    a = rf.run_folder(tmp_path / "a", seed=2, rate=5.0)
    b = rf.run_folder(tmp_path / "b", seed=3, rate=7.0)
    out = tmp_path / "cmp"
    assert main(["compare", str(a), str(b), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "differ in seed" in err[0] and "--allow-unpaired" in err[0]
    assert not out.exists()
