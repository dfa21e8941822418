"""Site planning: the planning file, the exact search against brute force, the Monte Carlo against the
closed form, and the `sites` command."""

from __future__ import annotations

import itertools
import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from hn005_sim.cli import main
from hn005_sim.recruitment import analytic as A
from hn005_sim.recruitment import planning as P
from hn005_sim.scenario.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
PLANS = sorted((ROOT / "plans").glob("*.toml"))

SMALL = """
duration_months = 18
target = 60
probability = 0.8
startup = { dist = "uniform", low = 1, high = 5, source = "assumption: test plan" }
[[regions]]
name = "north"
rate_mean = 0.8
rate_variance = 0.5
dropout = 0.1
sites_min = 1
sites_max = 9
cost_startup = 20000
cost_per_month = 2500
cost_per_patient = 1500
[[regions]]
name = "south"
rate_mean = 0.5
rate_variance = 0.2
never_open = 0.1
sites_min = 0
sites_max = 8
cost_startup = 9000
cost_per_month = 1000
cost_per_patient = 1500
[[regions]]
name = "west"
rate_mean = 0.3
rate_variance = 0.0
sites_min = 0
sites_max = 7
cost_startup = 4000
cost_per_month = 900
cost_per_patient = 1000
"""


def write(tmp_path: Path, text: str, name: str = "plan.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_example_plans_load_and_every_figure_has_a_source():
    assert any(p.name == "china_network.toml" for p in PLANS)
    for path in PLANS:
        plan = P.load_plan(path)
        doc = tomllib.loads(path.read_text())
        missing = [k for k in ("duration_months", "target", "probability") if k not in doc.get("sources", {})]
        for i, region in enumerate(doc["regions"]):
            figures = [k for k in P._REGION_FIGURES if k in region and k != "startup"]
            missing += [
                f"regions[{i}].{k}" for k in figures if not region.get("sources", {}).get(k, "").strip()
            ]
        assert not missing, f"{path.name}: figures without a source: {missing}"
        assert plan.startup is None or plan.startup.source


def test_planning_file_errors_name_the_file_the_key_and_what_was_expected(tmp_path):
    bad = SMALL.replace("rate_mean = 0.8", "rate_mean = -1").replace("sites_max = 8", "sites_max = -2")
    bad = bad.replace("cost_per_patient = 1000", "cost_per_patient = 1000\ncolour = 3")
    with pytest.raises(ConfigError) as err:
        P.load_plan(write(tmp_path, bad))
    lines = [str(p) for p in err.value.problems]
    assert any("regions[0].rate_mean: must be > 0, got -1" in line for line in lines), lines
    assert any("regions[1].sites_max: must be >= 0" in line for line in lines), lines
    assert any("regions[2].colour: unknown key" in line for line in lines), lines
    assert all(line.startswith(str(tmp_path / "plan.toml")) or "plan.toml" in line for line in lines)


def test_bounds_must_be_ordered_and_present(tmp_path):
    with pytest.raises(ConfigError, match="sites_max must be >= sites_min"):
        P.load_plan(write(tmp_path, SMALL.replace("sites_max = 9", "sites_max = 0")))
    with pytest.raises(ConfigError, match="give sites_max"):
        P.load_plan(write(tmp_path, SMALL.replace("sites_max = 9\n", "")))


def _brute_force(prob, lo, hi, cost, p):
    allocs = np.array(list(itertools.product(*[range(a, b + 1) for a, b in zip(lo, hi, strict=True)])))
    pr = prob(allocs)
    ci = np.round(np.asarray(cost) * 1e4).astype(np.int64)
    feasible = [(int(ci @ x), int(x.sum()), tuple(x)) for x, q in zip(allocs, pr, strict=True) if q >= p]
    return np.array(min(feasible)[2]) if feasible else None


@pytest.mark.parametrize(("target", "p"), [(60, 0.8), (90, 0.9), (40, 0.5), (120, 0.95)])
def test_search_finds_the_brute_force_optimum(tmp_path, target, p):
    plan = P.load_plan(write(tmp_path, SMALL))
    groups = P.site_groups(plan)
    cost = [c.per_site for c in P.site_costs(plan, groups)]
    lo, hi = np.array([1, 0, 0]), np.array([9, 8, 7])
    ev = A.Evaluator(tuple(groups), target, plan.duration_months, tuple(hi))
    res = P.optimise(ev.probability, lo, hi, cost, ev.site_moments[:, 0], p)
    want = _brute_force(ev.probability, lo, hi, cost, p)
    if want is None:
        assert not res.feasible
    else:
        assert res.feasible and res.proved_optimal
        ci = np.round(np.asarray(cost) * 1e4).astype(np.int64)
        assert (int(ci @ res.allocation), int(res.allocation.sum())) == (int(ci @ want), int(want.sum()))
        assert res.probability >= p


def test_one_region_minimum_sites_is_the_negative_binomial_answer(tmp_path):
    """Sites open from the start: the smallest n with NB(n a, b/(b+T)).sf(N-1) >= p."""
    text = """duration_months = 12\ntarget = 80\nprobability = 0.9\n[[regions]]\nname = "only"
rate_mean = 0.7\nrate_variance = 0.4\nsites_max = 40\n"""
    ans = P.plan_sites(P.load_plan(write(tmp_path, text)))
    want = next(n for n in range(1, 41) if A.negative_binomial(n, 0.7, 0.4, 12.0).sf(79) >= 0.9)
    assert ans.summary["allocation"] == {"only": want}
    assert ans.summary["total_sites"] == want
    curve = {r["sites"]: r["probability_of_success"] for r in ans.curve}
    assert curve[want] >= 0.9 > curve[want - 1]
    assert curve[want] == pytest.approx(A.negative_binomial(want, 0.7, 0.4, 12.0).sf(79), abs=1e-10)


def test_expected_cost_follows_the_formula(tmp_path):
    plan = P.load_plan(write(tmp_path, SMALL))
    ans = P.plan_sites(plan)
    s = ans.summary
    # uniform(1, 5) start-up over 18 months: E[months open] = 18 - 3 = 15; north pays for the 90%
    # retained after its 10% dropout (the default basis, ClinicalTrialOptm.jl's)
    north = 20000 + 2500 * 15 + 1500 * 0.8 * 15 * 0.9
    south = 9000 + 1000 * 15 * 0.9 + 1500 * 0.5 * 15 * 0.9
    west = 4000 + 900 * 15 + 1000 * 0.3 * 15
    a = s["allocation"]
    assert s["patient_cost_basis"] == "retained"
    assert s["expected_cost"] == pytest.approx(a["north"] * north + a["south"] * south + a["west"] * west)
    assert s["probability_of_success"] >= 0.8
    # every enrolment paid for, dropouts included
    text = 'patient_cost_basis = "enrolled"\n' + SMALL
    enrolled = P.plan_sites(P.load_plan(write(tmp_path, text, "e.toml")))
    north_all = 20000 + 2500 * 15 + 1500 * 0.8 * 15
    r = enrolled.summary["regions"]["north"]
    assert r["expected_cost_per_site"] == pytest.approx(north_all)
    assert r["expected_paid_patients_per_site"] == pytest.approx(0.8 * 15)


def test_monte_carlo_agrees_with_the_closed_form(tmp_path):
    """The vectorised simulation of the same plan: P(success), mean and time to target within 4.5 SE."""
    plan = P.load_plan(write(tmp_path, SMALL))
    groups = P.site_groups(plan)
    allocs = np.array([[1, 0, 0], [3, 2, 1], [6, 4, 5]])
    sim = P.simulate(groups, allocs, 60, 18.0, 40_000, seed=11)
    for row, p_mc, se, mean in zip(allocs, sim.probability, sim.standard_error, sim.mean, strict=True):
        full = [g.with_sites(int(n)) for g, n in zip(groups, row, strict=True)]
        assert abs(A.success_probability(full, 60, 18.0) - p_mc) < 4.5 * se
        m, v = A.moments(full, 18.0)
        assert abs(mean - m) < 4.5 * math.sqrt(v / sim.replicates)
    full = [g.with_sites(int(n)) for g, n in zip(groups, allocs[-1], strict=True)]
    for t in (8.0, 12.0, 16.0):
        mc = float((sim.time_to_target <= t).mean())
        assert (
            abs(A.success_probability(full, 60, t) - mc)
            < 4.5 * math.sqrt(mc * (1 - mc) / sim.replicates) + 1e-4
        )
    # a site more never lowers a replicate's count (common random numbers): the curve is monotone
    assert np.all(np.diff(sim.probability) >= 0)


def test_sites_command_writes_the_contract(tmp_path):
    out = tmp_path / "out"
    code = main(
        [
            "sites",
            str(write(tmp_path, SMALL)),
            "--method",
            "both",
            "--replicates",
            "4000",
            "--seed",
            "3",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    s = json.loads((out / "summary.json").read_text())
    for key in (
        "allocation",
        "expected_enrolled",
        "variance_enrolled",
        "probability_of_success",
        "expected_cost",
        "method",
        "des",
        "approximations",
    ):
        assert key in s
    assert s["method"] == "both" and s["probability_of_success"] >= 0.8
    assert s["des"]["agrees_within_4_standard_errors"]
    header = (out / "curve.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["total_sites", "sites_north", "sites_south", "sites_west"]
    assert {"probability_of_success", "expected_enrolled", "method"} <= set(header)
    m = json.loads((out / "manifest.json").read_text())
    assert m["command"] == "sites" and m["seed"] == 3
    # same seed, same outputs
    out2 = tmp_path / "out2"
    main(
        [
            "sites",
            str(tmp_path / "plan.toml"),
            "--method",
            "both",
            "--replicates",
            "4000",
            "--seed",
            "3",
            "--out",
            str(out2),
            "--quiet",
        ]
    )
    assert (out2 / "summary.json").read_text() == (out / "summary.json").read_text()
    assert (out2 / "curve.csv").read_text() == (out / "curve.csv").read_text()


def test_fixed_allocation_is_evaluated_and_flags_override(tmp_path, capsys):
    text = (
        SMALL.replace("sites_min = 1\nsites_max = 9", "sites = 4")
        .replace("sites_min = 0\nsites_max = 8", "sites = 2")
        .replace("sites_min = 0\nsites_max = 7", "sites = 0")
    )
    path = write(tmp_path, text)
    assert main(["sites", str(path), "--format", "json", "--target", "30", "--months", "20"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["question"] == "evaluate" and s["allocation"] == {"north": 4, "south": 2, "west": 0}
    assert s["target"] == 30 and s["duration_months"] == 20
    groups = [g.with_sites(n) for g, n in zip(P.site_groups(P.load_plan(path)), (4, 2, 0), strict=True)]
    assert s["probability_of_success"] == pytest.approx(A.success_probability(groups, 30, 20.0), abs=1e-12)


def test_bad_input_is_one_line_and_exit_2_with_nothing_written(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sites", str(write(tmp_path, SMALL)), "--probability", "1.5", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--probability" in err[0]
    assert not out.exists()
    bad = write(tmp_path, SMALL.replace("target = 60", 'target = "sixty"'), "bad.toml")
    assert main(["sites", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "target: must be an integer" in err[0] and "bad.toml" in err[0]
    assert not out.exists()


@pytest.mark.parametrize(("flag", "value", "needle"), [
    ("--target", "100000000", "less than or equal to 100000"),
    ("--months", "1e9", "less than or equal to 600"),
    ("--months", "inf", "finite number"),
])
def test_absurd_command_line_values_are_one_line_before_any_work(flag, value, needle, tmp_path, capsys):
    assert main(["sites", str(write(tmp_path, SMALL)), flag, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0] and needle in err[0]


def test_infeasible_plan_says_so(tmp_path, capsys):
    path = write(tmp_path, SMALL.replace("target = 60", "target = 5000"))
    assert main(["sites", str(path), "--format", "json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["feasible"] is False and s["allocation"] == {"north": 9, "south": 8, "west": 7}


FUNNEL_SCENARIO = """
extends = "{base}"
name = "funnel_test"
[recruitment.funnel]
prescreen_pass = {{ value = 0.5, source = "assumption: test" }}
screen_pass = {{ value = 0.6, source = "assumption: test" }}
bsa_m2 = {{ dist = "constant", value = 1.7, source = "assumption: test" }}
"""


def test_plan_from_scenario_thins_referral_rates(tmp_path):
    """Enrolment rate = referral rate x prescreen x screening x consent x (1 - withdrawal)."""
    from hn005_sim.scenario.load import load_scenario

    base = ROOT / "configs" / "alter_hn005" / "base.toml"
    path = write(tmp_path, FUNNEL_SCENARIO.format(base=base), "scenario.toml")
    scenario, _ = load_scenario(path)
    rec = scenario.recruitment
    plan = P.plan_from_scenario(scenario, seed=1)
    q = 0.5 * 0.6 * rec.consent.value * (1 - rec.withdrawal_before_dose.value)
    for region, r in zip(rec.regions, plan.regions, strict=True):
        assert r.rate_mean == pytest.approx(region.referral_rate_mean.value * q)
        assert r.rate_variance == pytest.approx(region.referral_rate_variance.value * q * q)
    assert plan.target == scenario.trial.target_enrolled
    assert plan.duration_months == scenario.trial.deadline_months
    ans = P.plan_sites(plan)
    # one site open from day 0 (the sponsor, max_sites = 1): P(success) is the Poisson-gamma
    # (negative binomial) tail at the deadline, in closed form
    (r,) = plan.regions
    a, b = r.rate_mean**2 / r.rate_variance, r.rate_mean / r.rate_variance
    p = stats.nbinom.sf(plan.target - 1, a, b / (b + plan.duration_months))
    assert ans.summary["probability_of_success"] == pytest.approx(p, rel=1e-6, abs=1e-9)
    assert "scenario_network" in ans.summary


def doc_commands() -> list[str]:
    text = (ROOT / "docs" / "recruitment_analytic.md").read_text()
    block = text.split("## Command", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [ln.strip() for ln in block.splitlines() if ln.strip().startswith("hn005-sim ")]


@pytest.mark.slow
@pytest.mark.parametrize("command", doc_commands())
def test_documented_commands_run(command, tmp_path, monkeypatch, capsys):
    """Every example in docs/recruitment_analytic.md runs (outputs to a temporary folder)."""
    import shlex

    monkeypatch.chdir(ROOT)
    args = [str(tmp_path / a) if a.startswith("out/") else a for a in shlex.split(command)[1:]]
    if "--method" in args and "both" in args:
        args += ["--replicates", "2000"]
    assert main(args) == 0, command
    if "--out" in args:
        assert (Path(args[args.index("--out") + 1]) / "summary.json").is_file()


def test_max_sites_bounds_a_region_and_must_cover_its_sites(tmp_path):
    """The sponsor's own site cannot be repeated: with max_sites = 1 the search adds sites elsewhere."""
    from hn005_sim.scenario.errors import ConfigError
    from hn005_sim.scenario.load import load_scenario

    scenario, _ = load_scenario(ROOT / "scenarios" / "network_guangdong.toml")
    plan = P.plan_from_scenario(scenario, seed=20230901)  # the `sites` default seed
    bounds = {r.name: r.bounds for r in plan.regions}
    assert bounds["sponsor"] == (0, 1)
    assert bounds["guangdong"] == (0, max(10, 3 * 5))
    ans = P.plan_sites(plan)
    # the answer the README quotes: with the registry's 12-month deadline and 0.45 enrolments per
    # Guangdong site-month even 15 more sites (the bound) fall short; the sponsor is not repeated
    assert ans.summary["allocation"] == {"sponsor": 1, "guangdong": 15}
    assert ans.summary["feasible"] is False
    assert ans.summary["probability_of_success"] == pytest.approx(0.026, abs=0.001)
    text = (ROOT / "scenarios" / "network_guangdong.toml").read_text()
    text = text.replace("max_sites = 1", "max_sites = 0")
    bad = tmp_path / "scenarios" / "bad.toml"
    bad.parent.mkdir()
    bad.write_text(text)
    (tmp_path / "scenarios" / "baseline.toml").symlink_to(ROOT / "scenarios" / "baseline.toml")
    with pytest.raises(ConfigError) as err:
        load_scenario(bad)
    assert any("max_sites must be >= sites (1), got 0" in str(p) for p in err.value.problems)


def test_scenario_check_runs_the_answer_through_the_scenario_simulation(tmp_path, capsys):
    """`sites SCENARIO --method both` runs the answer's allocation through the scenario's own DES: the
    same figure as `run` on the scenario with those site counts written in."""
    from hn005_sim.montecarlo import run_scenario
    from hn005_sim.scenario.load import load_scenario

    scenario, _ = load_scenario(ROOT / "scenarios" / "network_guangdong.toml")
    alloc = {"sponsor": 1, "guangdong": 3}
    sc = P.scenario_with_allocation(scenario, alloc)
    assert [(r.name, r.sites, r.site_names is None) for r in sc.recruitment.regions] == [
        ("sponsor", 1, False), ("guangdong", 3, True)]
    check = P.scenario_check(scenario, alloc, 30, seed=4, analytic_probability=0.5)
    direct = run_scenario(sc.model_copy(update={"supply": None}), 30, 4)
    assert check["probability_of_success"] == direct.summary["prob_target_by_deadline"]
    assert check["analytic_minus_scenario_des"] == pytest.approx(0.5 - check["probability_of_success"])
    out = tmp_path / "out"
    assert main(["sites", str(ROOT / "scenarios" / "network_guangdong.toml"), "--method", "both",
                 "--replicates", "200", "--scenario-replicates", "20", "--out", str(out)]) == 0
    assert "Full scenario simulation (20 replicates" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario_des"]["allocation"] == summary["allocation"]
    assert summary["scenario_des"]["replicates"] == 20


def test_scenario_check_simulates_at_least_to_the_deadline(monkeypatch):
    """A deadline beyond the scenario's horizon (--months) extends the simulation instead of cutting it."""
    import hn005_sim.montecarlo as mc
    from hn005_sim.scenario.load import load_scenario

    scenario, _ = load_scenario(ROOT / "scenarios" / "network_guangdong.toml")
    trial = scenario.trial.model_copy(update={"deadline_months": 90.0})
    seen = {}
    real = mc.run_scenario

    def spy(sc, *args, **kw):
        seen["horizon"] = sc.recruitment.horizon_months.value
        return real(sc, *args, **kw)

    monkeypatch.setattr(mc, "run_scenario", spy)
    P.scenario_check(scenario.model_copy(update={"trial": trial}), {"sponsor": 1, "guangdong": 1}, 2, seed=1)
    assert seen["horizon"] == 90.0 > scenario.recruitment.horizon_months.value
