"""report.html of `hn005-sim forecast`: observed curve with the predictive fan, and the site ranking."""

from __future__ import annotations

from typing import Any

import altair as alt
import polars as pl

from hn005_sim.report.charts import WIDTH, Chart, _Data, _finish, _rule_layers
from hn005_sim.report.html import Section, Table, render_page


def fan_chart(observed: list[dict], curve: list[dict], target: int, deadline: float, method: str) -> Chart:
    data = _Data()
    obs = data.add(
        "observed",
        pl.DataFrame(observed, schema={"month": pl.Float64, "enrolled": pl.Int64}),
        "observed file / --log",
        why="enrolled so far",
    )
    rows = [r for r in curve if r["method"] == method]
    fan = data.add(
        "forecast",
        pl.DataFrame(rows).select("month", "p05", "p10", "p25", "p50", "p75", "p90", "p95"),
        "forecast.csv",
        rows=f"method = {method}",
    )
    x = alt.X("month:Q", title="Months since the trial started")
    y = "Patients enrolled (cumulative)"
    base = alt.Chart(fan).encode(x=x)
    layers = [
        base.mark_area(color="#c6dbef").encode(y=alt.Y("p05:Q", title=y), y2="p95:Q"),
        base.mark_area(color="#9ecae1").encode(y="p10:Q", y2="p90:Q"),
        base.mark_area(color="#4292c6").encode(y="p25:Q", y2="p75:Q"),
        base.mark_line(color="#08306b", strokeWidth=2.5).encode(
            y="p50:Q",
            tooltip=[
                alt.Tooltip("month:Q", format=".1f"),
                alt.Tooltip("p50:Q", title="median"),
                alt.Tooltip("p10:Q"),
                alt.Tooltip("p90:Q"),
            ],
        ),
        alt.Chart(obs)
        .mark_line(color="black", point=True, strokeWidth=2)
        .encode(x="month:Q", y="enrolled:Q", tooltip=["month:Q", "enrolled:Q"]),
    ]
    chart = alt.layer(*layers, *_rule_layers([target], [deadline])).properties(width=WIDTH, height=320)
    return _finish(
        "forecast",
        "Where will enrolment go from here?",
        f"Black: enrolled so far; blue: predictive median, bands holding 50%, 80%, 90% ({method})",
        "The black line is what the sites have enrolled. From the forecast month on, the dark line is "
        "the median predicted cumulative enrolment and the bands hold 50%, 80% and 90% of the "
        "predictive distribution (5th-95th percentiles outermost). Where the bands cross the red "
        "target line shows when the target is likely reached; the dotted line is the deadline.",
        chart,
        data,
    )


def ranking_chart(sites: list[dict], plan_rates: dict[str, float]) -> Chart:
    data = _Data()
    rows = [
        {
            **{k: s[k] for k in ("site", "region", "enrolled", "months_open", "flag")},
            "mean": s["posterior_rate_mean"],
            "lo": max(0.0, s["posterior_rate_mean"] - s["posterior_rate_sd"]),
            "hi": s["posterior_rate_mean"] + s["posterior_rate_sd"],
            "plan": plan_rates[s["region"]],
        }
        for s in sites
    ]
    src = data.add("sites", pl.DataFrame(rows), "summary.json", rows="sites")
    order = [r["site"] for r in rows]
    y = alt.Y("site:N", sort=order, title=None)
    colour = alt.Color(
        "flag:N",
        title="flag",
        scale=alt.Scale(
            domain=["behind", "on plan", "ahead", "not open"],
            range=["#b2182b", "#636363", "#2166ac", "#bdbdbd"],
        ),
    )
    base = alt.Chart(src).encode(y=y)
    chart = alt.layer(
        base.mark_rule().encode(
            x=alt.X("lo:Q", title="Counted enrolments per site per month (posterior)"),
            x2="hi:Q",
            color=colour,
        ),
        base.mark_point(filled=True, size=60).encode(
            x="mean:Q",
            color=colour,
            tooltip=[
                "site:N",
                "region:N",
                "enrolled:Q",
                alt.Tooltip("months_open:Q", format=".1f"),
                alt.Tooltip("mean:Q", format=".2f"),
                "flag:N",
            ],
        ),
        base.mark_tick(color="firebrick", thickness=2).encode(x="plan:Q"),
    ).properties(width=WIDTH, height=max(60, 18 * len(rows)))
    return _finish(
        "site_ranking",
        "Which sites fall behind?",
        "Posterior mean rate ± 1 sd; red tick: the plan's rate for the site's region",
        "Each site's rate after what it has enrolled in the months it has been open (gamma posterior): "
        "the dot is its mean and the bar one standard deviation either side. Sites are ranked from the "
        "fastest; `behind` means a probability of at least 90% that its rate is below the plan's.",
        chart,
        data,
    )


def page(
    summary: dict[str, Any], observed: list[dict], curve: list[dict], plan_rates: dict[str, float]
) -> str:
    method = "analytic" if summary["method"] in ("analytic", "both") else "des"
    charts = [
        fan_chart(observed, curve, summary["target"], summary["deadline_months"], method),
        ranking_chart(summary["sites"], plan_rates),
    ]
    t = summary["time_to_target_months"]
    e = summary["enrolled_by_deadline"]

    def f(x):
        return "-" if x is None else f"{x:.1f}"

    key = Table(
        ["figure", "value"],
        [
            ["enrolled so far", str(summary["enrolled_so_far"])],
            ["target / deadline", f"{summary['target']} by month {summary['deadline_months']:g}"],
            ["P(target by deadline)", f"{100 * summary['prob_target_by_deadline']:.1f}%"],
            ["time to target p10 / p50 / p90 (months)", f"{f(t['p10'])} / {f(t['p50'])} / {f(t['p90'])}"],
            ["enrolled by deadline p10 / p50 / p90", f"{e['p10']} / {e['p50']} / {e['p90']}"],
            [
                "additional sites for P >= " + f"{summary['required_probability']:g}",
                ", ".join(f"{k} {v}" for k, v in summary["additional_sites"].items()) or "-",
            ],
        ],
        caption="summary.json",
    )
    table = Table(
        ["site", "region", "enrolled", "months open", "posterior rate", "sd", "P(rate < plan)", "flag"],
        [
            [
                s["site"],
                s["region"],
                str(s["enrolled"]),
                f"{s['months_open']:.1f}",
                f"{s['posterior_rate_mean']:.3f}",
                f"{s['posterior_rate_sd']:.3f}",
                "-" if s["prob_rate_below_plan"] is None else f"{s['prob_rate_below_plan']:.3f}",
                s["flag"],
            ]
            for s in summary["sites"]
        ],
        caption="summary.json sites",
    )
    subtitle = (
        f"hn005-sim forecast · {summary['input']} · observed {summary['observed']} · as of month "
        f"{summary['as_of_month']:g} · method {summary['method']}"
    )
    return render_page(
        "Forecast from the sites' enrolment so far",
        subtitle,
        [
            Section("key", "Key figures", "", [key]),
            Section("fan", "Observed and predicted enrolment", "", [charts[0]]),
            Section("sites", "Site ranking", "", [charts[1], table]),
        ],
    )
