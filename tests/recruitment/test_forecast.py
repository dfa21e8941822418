"""`forecast`: the posterior predictive against closed forms, Monte Carlo written here, the scenario DES,
maximum likelihood, a calibration back-test, and the command's contract."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, stats

from hn005_sim.cli import main
from hn005_sim.recruitment import analytic as A
from hn005_sim.recruitment import forecast as F
from hn005_sim.recruitment import planning as P

ROOT = Path(__file__).resolve().parents[2]


def plan(text: str = "", *, target=60, months=24.0, regions=None) -> P.Plan:
    regions = regions or [
        {"name": "r", "sites_max": 20, "rate_mean": 1.2, "rate_variance": 0.72},
    ]
    return P.Plan.model_validate(
        {"name": "t", "duration_months": months, "target": target, "probability": 0.8, "regions": regions}
    )


def obs(*rows) -> list[F.ObservedSite]:
    return [F.ObservedSite(s, r, o, k) for s, r, o, k in rows]


# --- one site: closed forms ------------------------------------------------------------------------------


def test_one_site_count_by_a_date_is_negative_binomial():
    """Prior Gamma(a, b), k enrolled in t months: the count over the next h months is
    NB(a + k, (b + t) / (b + t + h)) (scipy.stats.nbinom)."""
    pl_ = plan(target=200)
    a, b = A.gamma_params(1.2, 0.72)
    fc = F.build(pl_, obs(("s1", "r", 0.0, 7)), as_of=9.0)
    for month in (12.0, 18.0, 24.0):
        h = month - 9.0
        nb = stats.nbinom(a + 7, (b + 9) / (b + 9 + h))
        q, mean = fc.count_quantiles(month, (0.05, 0.5, 0.95))
        assert q == [7 + int(nb.ppf(p)) for p in (0.05, 0.5, 0.95)]
        assert mean == pytest.approx(7 + nb.mean(), rel=1e-9)
        for n in (20, 30, 45):
            fc2 = F.build(plan(target=n), obs(("s1", "r", 0.0, 7)), as_of=9.0)
            assert fc2.prob_by(month) == pytest.approx(nb.sf(n - 7 - 1), abs=1e-10)


def test_one_site_time_to_target_is_a_scaled_f_and_the_fft_inversion_agrees():
    """Remaining R = N - k at rate lambda ~ Gamma(a', b'): tau = Gamma(R, 1) / lambda, so
    tau a' / (b' R) ~ F(2R, 2a'). The forecast's quantiles (closed form) and the inversion of the exact
    count distribution over time (the many-site path) both match scipy's F."""
    pl_ = plan(target=40)
    a, b = A.gamma_params(1.2, 0.72)
    fc = F.build(pl_, obs(("s1", "r", 2.0, 9)), as_of=8.0)  # open since month 2: 6 months
    ap, bp, r = a + 9, b + 6.0, 31
    probs = F.TIME_PROBS
    expected = [8.0 + stats.f.ppf(q, 2 * r, 2 * ap) * bp * r / ap for q in probs]
    assert fc.time_quantiles() == pytest.approx(expected, rel=1e-9)
    fft = A.time_to_target_quantiles(fc.groups, r, probs)
    assert [8.0 + x for x in fft] == pytest.approx(expected, abs=2e-3)  # brentq xtol 1e-3
    # mean: E[G_R] E[1/lambda] = R b' / (a' - 1)
    assert fc.time_mean() == pytest.approx(8.0 + r * bp / (ap - 1), rel=1e-12)


def test_mean_time_by_integration_equals_the_closed_form():
    """The many-site mean (integral of P(not yet reached)) reduces to R b'/(a'-1) when the second site
    never opens."""
    regions = [
        {"name": "r", "sites_max": 20, "rate_mean": 1.2, "rate_variance": 0.72},
        {"name": "q", "sites_max": 5, "rate_mean": 1.0, "rate_variance": 1.0, "never_open": 1.0},
    ]
    fc = F.build(plan(target=40, regions=regions), obs(("s1", "r", 2.0, 9), ("s2", "q", None, 0)), 8.0)
    a, b = A.gamma_params(1.2, 0.72)
    assert fc.time_mean() == pytest.approx(8.0 + 31 * (b + 6) / (a + 9 - 1), rel=1e-4)


# --- many sites: Monte Carlo written here ----------------------------------------------------------------


def test_many_sites_agree_with_a_monte_carlo_of_the_posterior_model():
    """Two regions (one with dropout), sites open at different months, two not open (gamma start-up given
    not open by as_of, never-open share): P(target by deadline), P(reached by an earlier month) and the
    deadline count quantiles against a direct simulation, within 4.5 SE."""
    regions = [
        {"name": "r", "sites_max": 20, "rate_mean": 1.2, "rate_variance": 0.72},
        {
            "name": "q",
            "sites_max": 20,
            "rate_mean": 0.6,
            "rate_variance": 0.36,
            "dropout": 0.1,
            "never_open": 0.2,
            "startup": {"dist": "gamma", "mean": 7.0, "sd": 3.0},
        },
    ]
    pl_ = plan(target=70, months=24.0, regions=regions)
    rows = obs(
        ("a", "r", 0.0, 14), ("b", "r", 3.0, 4), ("c", "q", 5.0, 2), ("d", "q", None, 0), ("e", "q", None, 0)
    )
    as_of = 9.0
    fc = F.build(pl_, rows, as_of)
    rng = np.random.default_rng(11)
    n = 200_000
    total = np.zeros(n)
    total_early = np.zeros(n)
    for s in rows:
        r = next(x for x in regions if x["name"] == s.region)
        d = r.get("dropout", 0.0)
        m, v = r["rate_mean"] * (1 - d), r["rate_variance"] * (1 - d) ** 2
        a, b = m * m / v, m / v
        if s.opened_month is not None:
            t = as_of - s.opened_month
            lam = rng.gamma(a + s.enrolled, 1 / (b + t), n)
            e_d, e_e = 24.0 - as_of, 18.0 - as_of
        else:
            lam = rng.gamma(a, 1 / b, n)
            k, theta = (7.0 / 3.0) ** 2, 9.0 / 7.0
            u = rng.gamma(k, theta, 8 * n)
            u = u[u > as_of][:n]  # start-up given not open by as_of (rejection)
            assert u.size == n
            p_never = 0.2 / (0.2 + 0.8 * stats.gamma.sf(as_of, k, scale=theta))
            u = np.where(rng.random(n) < p_never, np.inf, u)
            e_d, e_e = np.maximum(24.0 - u, 0), np.maximum(18.0 - u, 0)
        total += rng.poisson(lam * e_d)
        total_early += rng.poisson(lam * e_e)
    remaining = 70 - sum(s.enrolled for s in rows)
    for month, sim in ((24.0, total), (18.0, total_early)):
        p_mc = float((sim >= remaining).mean())
        se = math.sqrt(p_mc * (1 - p_mc) / n)
        assert abs(fc.prob_by(month) - p_mc) < 4.5 * se + 1e-4, month
    # quantiles of the deadline count: the analytic CDF at the MC quantile is within 4.5 SE of q
    pmf = A.enrolled_pmf(fc.groups, 24.0 - as_of)
    cdf = np.cumsum(pmf)
    for q in (0.1, 0.5, 0.9):
        j = int(np.quantile(total, q))
        p_mc = float((total <= j).mean())
        assert abs(cdf[j] - p_mc) < 4.5 * math.sqrt(p_mc * (1 - p_mc) / n)


# --- refit ---------------------------------------------------------------------------------------------


def test_refit_recovers_known_parameters_within_their_standard_errors():
    """400 sites with rates ~ Gamma(2, 4) (mean 0.5, variance 0.125) open 3-24 months: the maximum-
    likelihood mean and variance lie within 4 standard errors (observed information of the NB likelihood,
    computed here from scipy's nbinom) of the truth."""
    rng = np.random.default_rng(5)
    n, a, b = 400, 2.0, 4.0
    t = rng.uniform(3, 24, n)
    k = rng.poisson(rng.gamma(a, 1 / b, n) * t)
    m, v, poisson = F.refit_prior(k, t)
    assert not poisson

    def nll(x):  # (mean, variance)
        mm, vv = x
        aa, bb = mm * mm / vv, mm / vv
        return -stats.nbinom.logpmf(k, aa, bb / (bb + t)).sum()

    x0 = np.array([m, v])
    # the MLE is a stationary point of scipy's likelihood too
    grad = optimize.approx_fprime(x0, nll, 1e-6)
    assert np.all(np.abs(grad) < 0.05 * n)
    h = np.zeros((2, 2))
    eps = np.array([1e-3 * m, 1e-3 * v])
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * eps[i], np.eye(2)[j] * eps[j]
            h[i, j] = (nll(x0 + ei + ej) - nll(x0 + ei - ej) - nll(x0 - ei + ej) + nll(x0 - ei - ej)) / (
                4 * eps[i] * eps[j]
            )
    se = np.sqrt(np.diag(np.linalg.inv(h)))
    assert abs(m - 0.5) < 4 * se[0]
    assert abs(v - 0.125) < 4 * se[1]


def test_refit_needs_enough_open_sites_and_reports_it():
    pl_ = plan()
    few = obs(("a", "r", 0.0, 3), ("b", "r", 1.0, 9), ("c", "r", None, 0))
    fc = F.build(pl_, few, 10.0, refit=True)
    assert fc.priors["r"].refit["refitted"] is False and fc.priors["r"].mean == pytest.approx(1.2)
    many = obs(*[(f"s{i}", "r", float(i % 4), k) for i, k in enumerate([2, 3, 1, 4, 0, 2, 6, 3])])
    fc = F.build(pl_, many, 10.0, refit=True)
    info = fc.priors["r"].refit
    assert info["refitted"] is True and info["open_sites"] == 8
    assert fc.priors["r"].mean == pytest.approx(
        sum(s.enrolled for s in many) / sum(10.0 - s.opened_month for s in many), rel=0.05
    )


# --- calibration back-test -----------------------------------------------------------------------------


def backtest(trials: int, seed: int, a=3.0, b=3.0, t0=6.0, target=40):
    """Synthetic one-site trials drawn from the prior: lambda ~ Gamma(a, b), k ~ Poisson(lambda t0), the true
    remaining time to `target` ~ Gamma(R, lambda). Returns coverage of the central 50/80/95% predictive
    intervals (posterior, scaled F) and of the plug-in intervals (Gamma(R, k / t0))."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(a, 1 / b, trials)
    k = rng.poisson(lam * t0)
    keep = (k < target) & (k > 0)  # k = 0: the plug-in rate is 0 and its interval infinite
    lam, k = lam[keep], k[keep]
    r = target - k
    truth = rng.gamma(r, 1 / lam)
    out = {}
    for level in (0.5, 0.8, 0.95):
        lo_q, hi_q = (1 - level) / 2, (1 + level) / 2
        lo = F.one_site_remaining_time(a + k, b + t0, r, lo_q)
        hi = F.one_site_remaining_time(a + k, b + t0, r, hi_q)
        plo = stats.gamma.ppf(lo_q, r, scale=t0 / k)
        phi = stats.gamma.ppf(hi_q, r, scale=t0 / k)
        out[level] = (
            float(((truth >= lo) & (truth <= hi)).mean()),
            float(((truth >= plo) & (truth <= phi)).mean()),
            int(keep.sum()),
        )
    return out


def test_predictive_intervals_cover_at_their_rates_and_plug_in_intervals_under_cover():
    """>= 1,000 synthetic trials from the prior (here 4,000): posterior predictive intervals of the remaining
    time cover the truth at 50/80/95% within 4.5 binomial SE; plug-in (ML rate) intervals cover less, by
    more than 4.5 SE (Mountain & Sherlock, Biometrics 2022)."""
    res = backtest(4000, seed=2022)
    for level, (cov, plug, n) in res.items():
        assert n >= 1000
        se = math.sqrt(level * (1 - level) / n)
        assert abs(cov - level) < 4.5 * se, (level, cov)
        assert plug < level - 4.5 * se, (level, plug)


# --- DES continuation ----------------------------------------------------------------------------------


def _scenario(**kw):
    from tests.recruitment.test_des import scenario

    return scenario(**kw)


def test_des_continuation_agrees_with_the_analytic_forecast_without_capacity_limits():
    """A funnel scenario with no capacity, instant screening and no dips is the Poisson-gamma model itself:
    the DES continued from the observed state (posterior rates, a site given not open) gives P(target by
    deadline) and P(count by month 8 >= x) within 4.5 SE of the exact forecast."""
    from hn005_sim.recruitment import forecast_des as FD

    sc = _scenario(
        target=45,
        horizon=12.0,
        sites=3,
        rate_mean=3.0,
        rate_var=4.5,
        pre=0.5,
        activation={"dist": "gamma", "mean": 150.0, "sd": 50.0},
        batch=64,
    )
    pl_ = P.plan_from_scenario(sc, 1)
    assert pl_.derivation["enrol_probability"] == pytest.approx(0.5)
    rows = obs(("A", "r", 0.0, 8), ("B", "r", 2.0, 3), ("C", "r", None, 0))
    fc = F.build(pl_, rows, 4.0)
    reps = 600
    sim = FD.simulate(sc, fc, 0.5, reps, seed=3)
    des, _ = FD.summarise(fc, sim, [4.0, 8.0, 12.0])
    p_an = fc.prob_by(12.0)
    se = math.sqrt(max(p_an * (1 - p_an), 0.01) / reps)
    assert abs(des["prob_target_by_deadline"] - p_an) < 4.5 * se
    counts8 = np.array(
        [fc.enrolled + int(np.searchsorted(d, 4.0 * 30.4375, side="right")) for d in sim["enrol_days"]]
    )
    pmf = A.enrolled_pmf(fc.groups, 4.0)
    for x in (4, 8, 12):
        p_x = float(pmf[x:].sum())
        p_sim = float((counts8 - fc.enrolled >= x).mean())
        assert abs(p_sim - p_x) < 4.5 * math.sqrt(max(p_x * (1 - p_x), 0.01) / reps), x


def test_des_default_sites_are_unchanged_by_the_hook():
    """simulate_recruitment with the sites the config draws gives the same record as without them."""
    from hn005_sim.recruitment.candidates import FunnelSource
    from hn005_sim.recruitment.des import simulate_recruitment
    from hn005_sim.recruitment.sites import draw_sites

    sc = _scenario(target=20, capacity=2, pre=0.6, screen=0.5)
    src = FunnelSource(sc.recruitment.funnel)
    a, _ = simulate_recruitment(sc, src, 9, 3)
    b, _ = simulate_recruitment(sc, src, 9, 3, sites=draw_sites(sc.recruitment, 9, 3))
    assert np.array_equal(a.enrol_day, b.enrol_day) and a.screened == b.screened


# --- the command ---------------------------------------------------------------------------------------

PLAN = ROOT / "plans" / "alter_hn005_one_site.toml"
OBSERVED = ROOT / "plans" / "observed"


def test_command_writes_the_contract(tmp_path):
    out = tmp_path / "fc"
    assert (
        main(
            [
                "forecast",
                str(PLAN),
                "--observed",
                str(OBSERVED / "alter_hn005_month6.csv"),
                "--as-of",
                "6",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    s = json.loads((out / "summary.json").read_text())
    for key in (
        "as_of_month",
        "enrolled_so_far",
        "target",
        "deadline_months",
        "time_to_target_months",
        "prob_target_by_deadline",
        "enrolled_by_deadline",
        "sites",
        "additional_sites",
        "method",
    ):
        assert key in s, key
    assert set(s["time_to_target_months"]) == {"p05", "p10", "p25", "p50", "p75", "p90", "p95", "mean"}
    assert set(s["enrolled_by_deadline"]) == {"p05", "p10", "p50", "p90", "p95", "mean"}
    site = s["sites"][0]
    assert set(site) == {
        "site",
        "region",
        "enrolled",
        "months_open",
        "posterior_rate_mean",
        "posterior_rate_sd",
        "prob_rate_below_plan",
        "flag",
    }
    header = (out / "forecast.csv").read_text().splitlines()[0].split(",")
    assert header == F.CURVE_COLUMNS
    html = (out / "report.html").read_text()
    assert "site_ranking" in html and "hn005-spec" in html
    man = json.loads((out / "manifest.json").read_text())
    assert man["command"] == "forecast" and man["as_of_month"] == 6.0


def test_the_real_case_months_6_12_18(tmp_path):
    """The one-site plan with the registry's pace (59 in 28 months): what the tool says at months 6, 12, 18
    (docs/forecast.md quotes these figures)."""
    seen = {}
    for m in (6, 12, 18):
        out = tmp_path / f"m{m}"
        assert (
            main(
                [
                    "forecast",
                    str(PLAN),
                    "--observed",
                    str(OBSERVED / f"alter_hn005_month{m}.csv"),
                    "--as-of",
                    str(m),
                    "--out",
                    str(out),
                    "--quiet",
                ]
            )
            == 0
        )
        seen[m] = json.loads((out / "summary.json").read_text())
    # the site is behind plan from month 6 and 110 by month 30 out of reach at month 12
    assert seen[6]["sites"][0]["flag"] == "behind"
    assert seen[12]["prob_target_by_deadline"] < 0.01
    for m in (6, 12):
        assert seen[m]["additional_sites_detail"]["feasible"] and seen[m]["additional_sites"]["guangdong"] > 0
    # sites asked for grow as the deadline approaches
    assert seen[12]["additional_sites"]["guangdong"] > seen[6]["additional_sites"]["guangdong"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("site,region,enrolled\nx,sponsor,1\n", "missing column 'opened_month'"),
        (
            "site,region,opened_month,enrolled\nx,nowhere,0,1\n",
            "row 2, column 'region': expected one of sponsor",
        ),
        (
            "site,region,opened_month,enrolled\nx,sponsor,0,two\n",
            "row 2, column 'enrolled': expected a whole",
        ),
        (
            "site,region,opened_month,enrolled\nx,sponsor,9,1\n",
            "row 2, column 'opened_month': expected a month <=",
        ),
        ("site,region,opened_month,enrolled\nx,sponsor,,3\n", "expected 0 for a site not open yet"),
        (
            "site,region,opened_month,enrolled\nx,sponsor,0,1\nx,sponsor,0,1\n",
            "row 3, column 'site': 'x' is listed twice",
        ),
        (
            "site,region,opened_month,enrolled,screened,screen_failed\nx,sponsor,0,2,5,4\n",
            "row 2, column 'screen_failed': expected at most screened - enrolled = 3",
        ),
        (
            "site,region,opened_month,enrolled,screened\nx,sponsor,0,2,1\n",
            "column 'screened': expected at least",
        ),
        ("site,region,opened_month,enrolled,colour\nx,sponsor,0,1,red\n", "unknown column 'colour'"),
    ],
)
def test_bad_observed_file_is_one_line_naming_file_row_column_exit_2(tmp_path, capsys, content, needle):
    bad = tmp_path / "obs.csv"
    bad.write_text(content)
    out = tmp_path / "out"
    assert main(["forecast", str(PLAN), "--observed", str(bad), "--as-of", "6", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and needle in err, err
    assert not out.exists()


def test_log_updates_the_funnel_and_must_match_the_observed_counts(tmp_path, capsys):
    o = tmp_path / "obs.csv"
    o.write_text("site,region,opened_month,enrolled\nS,sponsor,0,2\n")
    log = tmp_path / "log.csv"
    log.write_text(
        "site,month,outcome,criterion\nS,1,prescreen_fail,age\nS,1.5,screen_fail,crcl\nS,2,enrolled,\n"
        "S,3,no_consent,\nS,4,enrolled,\n"
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "forecast",
                str(PLAN),
                "--observed",
                str(o),
                "--log",
                str(log),
                "--as-of",
                "5",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    f = json.loads((out / "summary.json").read_text())["funnel"]
    assert f["counts"]["enrolled"] == 2 and f["candidates"] == 5
    assert f["prescreen_pass"] == pytest.approx((4 + 1) / (5 + 2))  # Beta(1, 1) posterior mean
    assert f["criterion_failure_shares"]["screen_fail"] == {"crcl": 1.0}
    log.write_text("site,month,outcome,criterion\nS,1,enrolled,\n")
    assert main(["forecast", str(PLAN), "--observed", str(o), "--log", str(log), "--as-of", "5"]) == 2
    assert "expected 2 rows with outcome 'enrolled'" in capsys.readouterr().err


def test_des_continuation_is_identical_whatever_jobs():
    from hn005_sim.recruitment import forecast_des as FD

    sc = _scenario(
        target=30,
        horizon=12.0,
        sites=2,
        capacity=2,
        pre=0.5,
        screening={"dist": "gamma", "mean": 8.0, "sd": 4.0},
    )
    fc = F.build(P.plan_from_scenario(sc, 1), obs(("A", "r", 0.0, 5), ("B", "r", None, 0)), 3.0)
    one = FD.simulate(sc, fc, 0.5, 12, seed=4, jobs=1)
    two = FD.simulate(sc, fc, 0.5, 12, seed=4, jobs=2)
    assert np.array_equal(one["time_to_target"], two["time_to_target"])
    assert all(np.array_equal(a, b) for a, b in zip(one["enrol_days"], two["enrol_days"], strict=True))


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--as-of", "30"], "--as-of: expected a month before the deadline (30)"),
        (["--as-of", "6", "--method", "des"], "a planning file has none"),
        (["--as-of", "6", "--deadline", "-3"], "--deadline"),
    ],
)
def test_bad_command_line_is_one_line_exit_2(tmp_path, capsys, extra, needle):
    out = tmp_path / "out"
    args = [
        "forecast",
        str(PLAN),
        "--observed",
        str(OBSERVED / "alter_hn005_month6.csv"),
        *extra,
        "--out",
        str(out),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not out.exists()


def test_season_exposure_counts_dips_and_the_ramp():
    """Hand-computed: a 5-day dip to 0.4 inside two open months removes 5 x 0.6 = 3 days; a 1-month ramp
    costs half a month."""
    import datetime as dt

    from hn005_sim.recruitment import forecast_des as FD
    from tests.recruitment.test_des import START

    dip = {
        "name": "d",
        "dates": [START + dt.timedelta(days=10)],
        "days_before": 0.0,
        "days_after": 5.0,
        "multiplier": {"value": 0.4, "source": "assumption: test"},
    }
    sc = _scenario(dips=[dip])
    assert FD.season_exposure(sc, 0.0, 2.0, 0.0) == pytest.approx(2.0 - 3.0 / 30.4375, rel=1e-12)
    assert FD.season_exposure(_scenario(), 0.0, 2.0, 1.0) == pytest.approx(1.5, rel=1e-9)
    assert FD.season_exposure(_scenario(), 0.5, 2.0, 0.0) == pytest.approx(1.5, rel=1e-9)


def test_des_enrol_probability_is_what_the_des_enrols_per_referral():
    """Funnel with consent, withdrawal, lab re-tests (screening outlasts the window) and re-screening: the
    closed form pre x consent x (p + (1 - p) r p) x (1 - w) against enrolled / decided candidates of a long
    DES replicate, within 4.5 SE."""
    from hn005_sim.recruitment import forecast_des as FD
    from hn005_sim.recruitment.candidates import FunnelSource
    from hn005_sim.recruitment.des import simulate_recruitment

    sc = _scenario(
        sites=2,
        rate_mean=200.0,
        rate_var=1.0,
        horizon=24.0,
        pre=0.6,
        screen=0.5,
        consent=0.8,
        withdrawal=0.1,
        rescreen=0.3,
        screening={"dist": "gamma", "mean": 8.0, "sd": 4.0},
        batch=512,
    )
    q = FD.des_enrol_probability(sc, 1)
    assert q == pytest.approx(0.6 * 0.8 * (0.5 + 0.5 * 0.3 * 0.5) * 0.9)
    rec, _ = simulate_recruitment(sc, FunnelSource(sc.recruitment.funnel), 5, 0)
    n = rec.candidates - rec.pending
    assert n > 5000
    assert abs(rec.enrolled / n - q) < 4.5 * math.sqrt(q * (1 - q) / n)


def test_screened_columns_are_summed_into_screening_observed(tmp_path):
    o = tmp_path / "obs.csv"
    o.write_text("site,region,opened_month,enrolled,screened,screen_failed\nS,sponsor,0,4,10,5\n")
    out = tmp_path / "out"
    assert (
        main(["forecast", str(PLAN), "--observed", str(o), "--as-of", "3", "--out", str(out), "--quiet"]) == 0
    )
    s = json.loads((out / "summary.json").read_text())
    assert s["screening_observed"]["screened"] == 10
    assert s["screening_observed"]["screen_failure_rate"] == pytest.approx(6 / 12)


def test_des_with_a_log_uses_the_logs_funnel():
    """With a --log the continued DES judges candidates by the log's stage probabilities, and converts rates
    by the P(enrol) of that funnel: pre x consent x screen x no withdrawal (no re-screen here)."""
    from hn005_sim.recruitment import forecast_des as FD

    sc = _scenario(target=30, horizon=12.0, sites=1, pre=0.5)
    log = [
        F.LogRow("A", 0.5, o, None)
        for o in ["prescreen_fail"] * 5
        + ["no_consent"] * 2
        + ["screen_fail"] * 3
        + ["withdrawn"]
        + ["enrolled"] * 4
    ]
    funnel = F.funnel_from_log(log)
    fc = F.build(P.plan_from_scenario(sc, 1), obs(("A", "r", 0.0, 4)), 2.0)
    sim = FD.simulate(sc, fc, 0.5, 3, seed=2, funnel=funnel)
    expected = funnel["prescreen_pass"] * funnel["consent"] * funnel["screen_pass"] * funnel["no_withdrawal"]
    assert sim["des_enrol_probability"] == pytest.approx(expected)
    assert funnel["prescreen_pass"] == pytest.approx(11 / 17) and funnel["no_withdrawal"] == pytest.approx(
        5 / 7
    )


def test_at_month_0_with_no_site_open_the_forecast_is_the_plan():
    """Twelve Guangdong sites selected, none open at month 0: the forecast's P(target by deadline) and
    expected enrolment equal `sites`' closed form for 12 sites of the region (start-up given not open by
    month 0 is the start-up itself)."""
    pl_ = P.load_plan(ROOT / "plans" / "guangdong_only.toml")
    rows = obs(*[(f"g{i}", "guangdong", None, 0) for i in range(12)])
    fc = F.build(pl_, rows, 0.0)
    g = P.site_groups(pl_)[0].with_sites(12)
    assert fc.prob_by(24.0) == pytest.approx(A.success_probability([g], 110, 24.0), abs=1e-9)
    assert fc.count_quantiles(24.0, (0.5,))[1] == pytest.approx(A.moments([g], 24.0)[0], rel=1e-9)


def test_prob_rate_below_plan_compares_with_the_plans_rate_even_after_refit():
    """P(lambda_i < the plan's counted rate) under the site's posterior (scipy gamma cdf), with and without
    --refit (the refit changes the posterior, not the plan's rate it is compared with)."""
    pl_ = plan()
    rows = obs(*[(f"s{i}", "r", 0.0, k) for i, k in enumerate([2, 3, 1, 4, 0, 2])])
    for refit in (False, True):
        fc = F.build(pl_, rows, 6.0, refit=refit)
        pr = fc.priors["r"]
        a, b = pr.shape_rate
        for s, o in zip(fc.sites, rows, strict=True):
            expected = stats.gamma.cdf(1.2, a + o.enrolled, scale=1 / (b + 6.0))
            assert s.prob_rate_below_plan == pytest.approx(expected, rel=1e-12)


def docs_forecast_commands() -> list[str]:
    text = (Path(__file__).resolve().parents[2] / "docs" / "forecast.md").read_text()
    return [ln.strip() for ln in text.splitlines() if ln.strip().startswith("hn005-sim forecast ")]


@pytest.mark.parametrize("command", docs_forecast_commands(), ids=lambda c: c.split()[2])
def test_docs_forecast_commands_run(command, tmp_path, monkeypatch):
    """The commands docs/forecast.md shows run as written (fewer replicates: the check is that they are
    valid, e.g. an --as-of before the scenario's deadline)."""
    import shlex

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    args = shlex.split(command)[1:]
    args = [str(tmp_path / a) if a.startswith("out/") else a for a in args]
    if "--replicates" in args:
        args[args.index("--replicates") + 1] = "4"
    if "--jobs" in args:
        args[args.index("--jobs") + 1] = "1"
    assert main([*args, "-q"] if "-q" not in args else args) == 0, command
