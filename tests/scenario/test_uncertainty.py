"""The uncertainty of a figure: schema, validation messages, drawing, and second-order Monte Carlo runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from hn005_sim.cli import main
from hn005_sim.scenario.draws import UncertainScenario
from hn005_sim.scenario.load import RawScenario, load_scenario, validate_raw
from hn005_sim.scenario.uncertainty import uncertain_figures

ROOT = Path(__file__).resolve().parents[2]
BASELINE = (ROOT / "scenarios" / "baseline.toml").as_posix()


def _scenario(tmp_path: Path, body: str, name: str = "u.toml") -> Path:
    path = tmp_path / name
    path.write_text(f'extends = "{BASELINE}"\nname = "u"\n{body}\n')
    return path


# a probability without an uncertainty in the base (a table overriding one merges key by key with it)
FIGURE = 'sterilised_female = {{ value = 0.70, source = "assumption: central figure", {u} }}'
KEY = "population.demographics.sterilised_female"


@pytest.mark.parametrize(("unc", "key", "message"), [
    ('uncertainty = { dist = "uniform", low = 0.75, high = 0.9, source = "assumption: test" }',
     KEY, "range [0.75, 0.9] does not contain the value 0.7"),
    ('uncertainty = { dist = "uniform", low = 0.5, high = 0.9, sorce = "assumption: test" }',
     f"{KEY}.uncertainty.sorce", "unknown key"),
    ('uncertainty = { dist = "uniform", low = 0.5, high = 0.9 }',
     f"{KEY}.uncertainty.source", "required key is missing"),
    ('uncertainty = { dist = "normal", low = 0.5, high = 0.9, source = "assumption: test" }',
     f"{KEY}.uncertainty", 'unknown distribution "normal"'),
    ('uncertainty = { dist = "triangular", low = 0.5, high = 0.9, source = "assumption: test" }',
     f"{KEY}.uncertainty.mode", "required key is missing"),
    ('uncertainty = { dist = "uniform", low = 0.9, high = 0.5, source = "assumption: test" }',
     f"{KEY}.uncertainty", "low must be < high"),
    ('uncertainty = { dist = "uniform", low = 0.5, high = 1.2, source = "assumption: test" }',
     KEY, "a probability's range must lie within [0, 1]"),
    ('uncertainty = { dist = "uniform", low = "a", high = 0.9, source = "assumption: test" }',
     f"{KEY}.uncertainty.low", 'must be a number, got "a"'),
    ('uncertainty = { dist = "uniform", low = 1.1, high = 1.3, relative = true, source = "assumption: x" }',
     KEY, "a relative range must contain 1"),
])
def test_bad_uncertainty_is_one_line_naming_file_and_key(tmp_path, capsys, unc, key, message):
    path = _scenario(tmp_path, "[population.demographics]\n" + FIGURE.format(u=unc))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    # one line per problem, each naming the file; a misspelt key is also a missing one (two problems)
    assert 1 <= len(err) <= 2 and all(line.startswith(f"{path}: ") for line in err), err
    assert any(line.startswith(f"{path}: {key}: ") and message in line for line in err), err


@pytest.mark.parametrize(("body", "key", "message"), [
    ('[recruitment]\nscreening_days = { dist = "gamma", mean = 8.0, sd = 4.0, source = "assumption: test", '
     'uncertainty = { shape = { dist = "uniform", low = 1, high = 9, source = "assumption: test" } } }',
     "recruitment.screening_days", "uncertainty.shape: not a numeric parameter of this gamma distribution; "
     "expected one of: mean, sd"),
    ('[recruitment]\nhorizon_months = { value = 60, source = "assumption: test", '
     'uncertainty = { dist = "uniform", low = 50, high = 70, source = "assumption: test" } }',
     "recruitment.horizon_months.uncertainty", "cannot be uncertain"),
])
def test_uncertainty_on_the_wrong_figure_is_refused(tmp_path, capsys, body, key, message):
    path = _scenario(tmp_path, body)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f": {key}" in err[0] and message in err[0], err


def test_baseline_figures_carry_sourced_ranges_that_contain_their_values():
    sc, _ = load_scenario(BASELINE)
    figures = uncertain_figures(sc)
    assert 10 <= len(figures) <= 25
    for f in figures:
        lo, hi = f.bounds()
        assert lo <= f.value <= hi, f.name
        assert len(f.spec.source) > 10, f.name


def test_draws_follow_the_ranges(tmp_path):
    body = ("[population.demographics]\n" + FIGURE.format(
        u='uncertainty = { dist = "beta", a = 71.0, b = 31.0, source = "assumption: 70 of 100" }') + "\n"
        "[recruitment]\n"
        'screening_days = { dist = "gamma", mean = 8.0, sd = 4.0, source = "assumption: test", uncertainty = '
        '{ sd = { dist = "uniform", low = 0.5, high = 1.5, relative = true, source = "assumption: x" } } }\n'
        "[[recruitment.regions]]\nname = 'r'\nsites = 1\n"
        'referral_rate_mean = { value = 30.0, source = "assumption: test" }\n'
        'referral_rate_variance = { value = 60.0, source = "assumption: test" }\n'
        'activation_delay_days = { dist = "constant", value = 0.0, source = "assumption: test" }\n'
        'never_activate = { value = 0.0, source = "assumption: test" }\n'
        'screening_capacity = { value = 6, source = "assumption: test", uncertainty = { dist = "uniform", '
        'low = 3.5, high = 8.5, source = "assumption: four to eight" } }\n')
    sc, raw = load_scenario(_scenario(tmp_path, body))
    mine = [f"{KEY}.value", "recruitment.screening_days.sd",
            "recruitment.regions[0].screening_capacity.value"]
    full = UncertainScenario.from_scenario(sc, raw)
    assert set(mine) < set(full.names)  # with the base's own uncertain figures
    u = full.only(mine)
    assert u.names == mine
    draws = np.array([u.draw(7, r) for r in range(4000)])
    # the same (seed, replicate) gives the same parameter set
    assert u.draw(7, 3) == list(draws[3])
    # Beta(71, 31) truncated to its central 99%: Kolmogorov-Smirnov against the exact distribution
    beta = stats.beta(71, 31)
    lo, hi = beta.ppf(0.005), beta.ppf(0.995)
    assert draws[:, 0].min() >= lo and draws[:, 0].max() <= hi
    assert stats.kstest(draws[:, 0], lambda v: (beta.cdf(v) - 0.005) / 0.99).pvalue > 1e-3
    # sd relative to 4.0: uniform on [2, 6]
    assert draws[:, 1].min() >= 2.0 and draws[:, 1].max() <= 6.0
    assert abs(draws[:, 1].mean() - 4.0) < 4 * (4 / math.sqrt(12)) / math.sqrt(4000)
    # capacity: whole candidates, 4..8 equally likely (uniform on [3.5, 8.5] rounded)
    values, counts = np.unique(draws[:, 2], return_counts=True)
    assert list(values) == [4, 5, 6, 7, 8]
    assert stats.chisquare(counts).pvalue > 1e-3
    drawn = u.scenario_for(7, 3)
    assert drawn.recruitment.regions[0].screening_capacity.value == int(draws[3, 2])
    assert isinstance(drawn.recruitment.regions[0].screening_capacity.value, int)


def _small(tmp_path: Path, extra: str = "") -> tuple[object, RawScenario]:
    """A quick scenario: the sponsor's site for 12 months, no treatment or supply simulation."""
    body = ("[trial]\ntarget_enrolled = 200\ndeadline_months = 12\n"
            "[recruitment]\nhorizon_months = { value = 12, source = \"assumption: a short test run\" }\n"
            + extra)
    _, raw = load_scenario(_scenario(tmp_path, body))
    data = {k: v for k, v in raw.data.items() if k not in ("supply", "regimen")}
    raw = RawScenario(raw.path, data, raw.origins, raw.files)
    return validate_raw(raw), raw


RATE = ('[[recruitment.regions]]\nname = "sponsor"\nsites = 1\n'
        'referral_rate_mean = { value = 32.0, source = "assumption: test", uncertainty = { dist = "uniform", '
        'low = 0.4, high = 1.6, relative = true, source = "assumption: test range" } }\n'
        'referral_rate_variance = { value = 64.0, source = "assumption: test" }\n'
        'activation_delay_days = { dist = "constant", value = 0.0, source = "assumption: test" }\n'
        'never_activate = { value = 0.0, source = "assumption: test" }\n'
        'screening_capacity = { value = 6, source = "assumption: test" }\n')


RATE_KEY = "recruitment.regions[0].referral_rate_mean.value"


def _enrolled(sc, uncertain, n: int) -> np.ndarray:
    from hn005_sim.montecarlo import run_scenario

    out: list[int] = []
    run_scenario(sc, n, 11, uncertain=uncertain, on_record=lambda r: out.append(r.enrolled))
    return np.array(out, float)


def test_uncertainty_widens_the_interval_of_an_output_it_drives(tmp_path):
    """Enrolled by month 12 at one site is Poisson-gamma; multiplying the site's mean rate by M ~ U(0.4, 1.6)
    adds Var = mu^2 ((1 + c^2)(1 + Var M) - 1 - c^2) without moving the mean (E M = 1)."""
    sc, raw = _small(tmp_path, RATE)
    u = UncertainScenario.from_scenario(sc, raw).only([RATE_KEY])
    n = 160
    without, with_ = _enrolled(sc, None, n), _enrolled(sc, u, n)
    mu, c2, var_m = without.mean(), 64.0 / 32.0**2, 1.2**2 / 12
    sd_without = without.std(ddof=1)
    expected_sd = math.sqrt(sd_without**2 + mu**2 * ((1 + c2) * (1 + var_m) - 1 - c2))
    # the standard deviation of a sample SD is about sd * sqrt((kurtosis - 1) / 4n); 4 of them is the margin
    se = expected_sd * math.sqrt(2.5 / (4 * n))
    assert with_.std(ddof=1) > sd_without + 4 * sd_without * math.sqrt(2.5 / (4 * n))
    assert abs(with_.std(ddof=1) - expected_sd) < 4 * se
    p10, p90 = np.quantile(without, [0.1, 0.9]), np.quantile(with_, [0.1, 0.9])
    assert p90[1] - p90[0] > 1.2 * (p10[1] - p10[0])
    assert abs(with_.mean() - mu) < 4 * math.sqrt((with_.var() + without.var()) / n)


def test_other_streams_are_unchanged_common_random_numbers(tmp_path):
    """A parameter set at the central values reproduces the run without uncertainty, draw for draw."""
    from hn005_sim.montecarlo import run_replicate

    sc, raw = _small(tmp_path, RATE)
    u = UncertainScenario.from_scenario(sc, raw).only([RATE_KEY])
    central = u.scenario_with([f.value for f in u.figures])
    for r in range(3):
        a, b = run_replicate(sc, 5, r), run_replicate(central, 5, r)
        assert np.array_equal(a.enrol_day, b.enrol_day) and a.screened == b.screened
