"""`sites SCENARIO` by the full model: the search with the scenario's own simulation (common random numbers),
the acceptance rule, answer.toml that `run` reproduces, plan.toml that gives the scenario route's answer,
costs in a scenario."""

from __future__ import annotations

import itertools
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from hn005_sim.cli import main
from hn005_sim.recruitment import planning as P
from hn005_sim.recruitment import search as S
from hn005_sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]
NETWORK = ROOT / "scenarios" / "network_guangdong.toml"

# the Guangdong network judged by fixed funnel probabilities (fast: no population model), smaller target;
# costs on the regions, in a currency
FAST = """
extends = "{network}"
name = "fast_network"
[trial]
target_enrolled = 40
deadline_months = 20.0
[recruitment]
currency = "USD"
[recruitment.funnel]
prescreen_pass = {{ value = 0.4, source = "assumption: test" }}
screen_pass = {{ value = 0.6, source = "assumption: test" }}
bsa_m2 = {{ dist = "constant", value = 1.7, source = "assumption: test" }}
"""


def fast(tmp_path: Path, extra: str = "") -> Path:
    p = tmp_path / "fast.toml"
    p.write_text(FAST.format(network=NETWORK) + extra)
    return p


def test_wilson_interval_matches_the_closed_form():
    lo, hi = S.wilson_interval(0.8, 400)
    z = S.Z
    centre = (0.8 + z * z / 800) / (1 + z * z / 400)
    half = z * np.sqrt(0.8 * 0.2 / 400 + z * z / (4 * 400**2)) / (1 + z * z / 400)
    assert float(lo) == pytest.approx(centre - half) and float(hi) == pytest.approx(centre + half)
    assert float(lo) < 0.8 < float(hi)


def test_full_search_answer_is_reproduced_by_run_and_is_the_cheapest_accepted(tmp_path, capsys):
    path = fast(tmp_path)
    out = tmp_path / "out"
    assert (
        main(
            [
                "sites",
                str(path),
                "--scenario-replicates",
                "60",
                "--seed",
                "7",
                "--out",
                str(out),
                "--format",
                "json",
            ]
        )
        == 0
    )
    s = json.loads(capsys.readouterr().out)
    f = s["full_model"]
    assert s["method"] == "full" and s["allocation"] == f["allocation"]
    assert f["replicates"] == 60 and f["seed"] == 7
    # the rule: lower end of the 90% Wilson interval >= p - 0.01
    lo, _ = S.wilson_interval(f["probability_of_success"], 60)
    assert f["accepted"] and float(lo) >= 0.8 - 0.01 - 1e-12
    assert f["interval_90"][0] == pytest.approx(float(lo))
    # answer.toml: extends the input by a path relative to the output folder, every region with its count
    doc = tomllib.loads((out / "answer.toml").read_text())
    assert (out / doc["extends"]).resolve() == path.resolve()
    assert {r["name"]: r["sites"] for r in doc["recruitment"]["regions"]} == f["allocation"]
    # `run answer.toml` with the same seed and replicates gives the same P(target by deadline)
    code = main(
        [
            "run",
            str(out / "answer.toml"),
            "--replicates",
            "60",
            "--seed",
            "7",
            "--format",
            "json",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert code == 0
    run = json.loads(capsys.readouterr().out)
    assert run["prob_target_by_deadline"] == pytest.approx(f["probability_of_success"], abs=1e-9)
    # brute force over every allocation under the simulated caps, on the same replicates: none accepted
    # is cheaper (costs come from the regions' figures, none given here: fewest sites)
    scenario, _ = load_scenario(path)
    caps = np.array(list(f["search"]["simulated_sites_per_region"].values()))
    sim = S.SimulatedProbability(S.simulate_site_counts(scenario, caps, 60, 7), 40)
    lo_b = np.array([0, 0])
    allocs = np.array(list(itertools.product(*[range(a, b + 1) for a, b in zip(lo_b, caps, strict=True)])))
    ok = sim.score(allocs) >= 0.8
    assert ok.any()
    assert f["total_sites"] == int(allocs[ok].sum(axis=1).min())


def test_common_random_numbers_one_simulation_judges_every_allocation(tmp_path):
    """P of an allocation from the site table equals the scenario DES of that allocation (as `run`)."""
    scenario, _ = load_scenario(fast(tmp_path))
    sim = S.SimulatedProbability(S.simulate_site_counts(scenario, np.array([1, 6]), 30, 3), 40)
    for alloc in (
        {"sponsor": 1, "guangdong": 2},
        {"sponsor": 1, "guangdong": 5},
        {"sponsor": 0, "guangdong": 6},
    ):
        direct = P.scenario_check(scenario, alloc, 30, 3)["probability_of_success"]
        assert sim.estimate(np.array([list(alloc.values())]))[0] == pytest.approx(direct, abs=1e-12)


def test_write_plan_gives_the_scenario_routes_answer(tmp_path, capsys):
    """plan.toml (the scenario's per-site rates) and the scenario give the same analytic answer."""
    path = fast(
        tmp_path,
        """
[[recruitment.regions]]
name = "sponsor"
sites = 1
max_sites = 1
referral_rate_mean = { value = 32.0, source = "assumption: test" }
referral_rate_variance = { value = 64.0, source = "assumption: test" }
activation_delay_days = { dist = "constant", value = 0.0, source = "assumption: test" }
never_activate = { value = 0.0, source = "assumption: test" }
cost_startup = { value = 1000.0, source = "assumption: test" }
[[recruitment.regions]]
name = "guangdong"
sites = 5
referral_rate_mean = { value = 8.0, source = "assumption: test" }
referral_rate_variance = { value = 42.67, source = "assumption: test" }
activation_delay_days = { dist = "gamma", mean = 206.0, sd = 64.0, source = "assumption: test" }
never_activate = { value = 0.11, source = "assumption: test" }
ramp_up_months = { value = 3.0, source = "assumption: test" }
close_month = { value = 18.0, source = "assumption: test" }
cost_startup = { value = 25000.0, source = "assumption: test" }
cost_per_month = { value = 2000.0, source = "assumption: test" }
cost_per_patient = { value = 9000.0, source = "assumption: test" }
""",
    )
    out = tmp_path / "o"
    assert (
        main(
            [
                "sites",
                str(path),
                "--method",
                "analytic",
                "--write-plan",
                "--out",
                str(out),
                "--format",
                "json",
            ]
        )
        == 0
    )
    by_scenario = json.loads(capsys.readouterr().out)
    plan = P.load_plan(out / "plan.toml")
    assert plan.currency == "USD" and plan.regions[1].cost_per_patient == 9000.0
    assert plan.regions[1].close_month == 18.0 and plan.regions[1].ramp_up_months == 3.0
    assert main(["sites", str(out / "plan.toml"), "--format", "json"]) == 0
    by_plan = json.loads(capsys.readouterr().out)
    for key in (
        "allocation",
        "probability_of_success",
        "expected_cost",
        "expected_enrolled",
        "variance_enrolled",
    ):
        assert by_plan[key] == pytest.approx(by_scenario[key], rel=1e-12), key
    assert by_scenario["expected_cost"] > 0 and by_scenario["currency"] == "USD"


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ('[recruitment.regions.cost_startup]\nvalue = -5.0\nsource = "assumption: test"\n', "cost_startup"),
        ("[recruitment]\nreferral_multiplier = 0\n", "referral_multiplier"),
    ],
)
def test_bad_costs_are_one_line_exit_2(tmp_path, capsys, extra, needle):
    text = FAST.format(network=NETWORK)
    if "regions" in extra:
        text += (
            '[[recruitment.regions]]\nname = "only"\nsites = 1\n'
            'referral_rate_mean = { value = 8.0, source = "assumption: test" }\n'
            'referral_rate_variance = { value = 4.0, source = "assumption: test" }\n'
            'activation_delay_days = { dist = "constant", value = 0.0, source = "assumption: test" }\n'
            'never_activate = { value = 0.0, source = "assumption: test" }\n' + extra
        )
        text = text.replace("[recruitment]\ncurrency", "[recruitment]\ncurrency")
    else:
        text = text.replace(
            '[recruitment]\ncurrency = "USD"\n', '[recruitment]\ncurrency = "USD"\n' + extra.split("\n", 1)[1]
        )
    p = tmp_path / "bad.toml"
    p.write_text(text)
    out = tmp_path / "nothing"
    assert main(["sites", str(p), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not out.exists()


def test_full_needs_a_scenario_and_write_plan_needs_out(tmp_path, capsys):
    plan = ROOT / "plans" / "china_network.toml"
    assert main(["sites", str(plan), "--method", "full"]) == 2
    assert "needs a scenario" in capsys.readouterr().err
    assert main(["sites", str(fast(tmp_path)), "--write-plan", "--method", "analytic"]) == 2
    assert "--out" in capsys.readouterr().err
