"""`hn005-sim forecast PLAN_OR_SCENARIO --observed FILE.csv --as-of MONTH`: re-forecast a running trial."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hn005_sim.commands.common import (
    Format,
    FormatOpt,
    JobsOpt,
    PlanArg,
    QuietOpt,
    check_out,
    console,
    print_json,
)
from hn005_sim.io import manifest, output_dir
from hn005_sim.recruitment import forecast as F
from hn005_sim.recruitment import planning
from hn005_sim.scenario.load import display, read_raw


class ForecastMethod(str, Enum):  # noqa: UP042 (typer needs a str Enum)
    analytic = "analytic"
    des = "des"
    both = "both"


def forecast(
    plan_or_scenario: PlanArg,
    observed: Annotated[
        Path,
        typer.Option(
            "--observed",
            help="CSV, one row per site: site, region, opened_month (empty: not open), "
            "enrolled [, screened, screen_failed].",
            show_default=False,
        ),
    ],
    as_of: Annotated[
        float, typer.Option("--as-of", min=0.0, help="Months since the trial started.", show_default=False)
    ],
    target: Annotated[
        int | None, typer.Option("--target", help="Patients wanted (overrides the file).")
    ] = None,
    deadline: Annotated[
        float | None, typer.Option("--deadline", help="Deadline, months since the start.")
    ] = None,
    probability: Annotated[
        float | None,
        typer.Option(
            "--probability",
            help="P(target by deadline) that additional_sites must restore; scenarios default to 0.8.",
        ),
    ] = None,
    method: Annotated[
        ForecastMethod,
        typer.Option(
            "--method",
            help="analytic (exact Poisson-gamma posterior), des (continue the scenario's "
            "simulation) or both.",
        ),
    ] = ForecastMethod.analytic,
    replicates: Annotated[int, typer.Option("--replicates", min=1, help="DES replicates (des/both).")] = 200,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Seed for the DES and screening draws.")
    ] = 20230901,
    jobs: JobsOpt = 1,
    log: Annotated[
        Path | None,
        typer.Option(
            "--log",
            help="CSV, one row per candidate: site, month, outcome "
            "(prescreen_fail|no_consent|screen_fail|withdrawn|enrolled), criterion.",
        ),
    ] = None,
    refit: Annotated[
        bool,
        typer.Option(
            "--refit",
            help=f"Re-estimate each region's prior by maximum likelihood from its "
            f"open sites (at least {F.MIN_REFIT_SITES}).",
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write summary.json, forecast.csv, report.html, manifest.json here.",
            callback=check_out,
        ),
    ] = None,
    quiet: QuietOpt = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """When will the running trial reach its target, with what probability by the deadline, which sites
    fall behind, and how many new sites (where) bring it back to --probability.

    Each open site's rate posterior is Gamma(a + k, b + t) from its region's prior; the predictive
    distribution is exact (FFT). Example: `hn005-sim forecast plans/alter_hn005_one_site.toml
    --observed plans/observed/alter_hn005_month12.csv --as-of 12 --out out/forecast`.
    """
    from hn005_sim.errors import InputError

    started = time.perf_counter()
    raw = read_raw(plan_or_scenario)
    scenario = None
    if planning.is_planning_file(raw.data):
        plan = planning.load_plan(plan_or_scenario)
        kind = "planning file"
    else:
        from hn005_sim.scenario.load import load_scenario

        scenario, raw = load_scenario(plan_or_scenario)
        plan = planning.plan_from_scenario(scenario, seed, probability if probability is not None else 0.8)
        kind = "scenario"
    if method != ForecastMethod.analytic and scenario is None:
        raise InputError(
            f"{display(raw.path)}: --method {method.value} continues a scenario's own simulation; "
            "a planning file has none (use --method analytic, or give a scenario)"
        )
    try:
        plan = planning.with_overrides(plan, target, deadline, probability)
    except ValueError as exc:
        raise InputError(str(exc).replace("--months", "--deadline")) from None
    if as_of >= plan.duration_months:
        raise InputError(
            f"--as-of: expected a month before the deadline ({plan.duration_months:g}), got {as_of:g}"
        )
    regions = [r.name for r in plan.regions]
    try:
        obs = F.read_observed(observed, regions, as_of)
        log_rows = None
        funnel = None
        if log is not None:
            log_rows = F.read_log(log, [o.site for o in obs], as_of)
            F.check_log_against_observed(log_rows, obs, str(log))
            funnel = F.funnel_from_log(log_rows)
    except F.ObservedError as exc:
        raise InputError(str(exc)) from None
    try:
        fc = F.build(plan, obs, as_of, refit)
        answer = F.analytic_answer(fc)
        extra = F.additional_sites(fc, plan, obs, plan.probability)
    except ValueError as exc:  # e.g. a distribution too wide for the exact FFT
        raise InputError(f"{display(raw.path)}: {exc}") from None
    t95 = answer["time_to_target_months"]["p95"]
    months = F.curve_months(fc, t95)
    curve_rows = F.analytic_curve(fc, months) if method != ForecastMethod.des else []
    summary: dict[str, Any] = {
        "input": display(raw.path),
        "input_kind": kind,
        "observed": display(Path(observed)),
        "as_of_month": as_of,
        "enrolled_so_far": fc.enrolled,
        "target": plan.target,
        "deadline_months": plan.duration_months,
        "required_probability": plan.probability,
        **answer,
        "sites": F.site_rows(fc),
        "additional_sites": extra["additional_sites"],
        "additional_sites_detail": {k: v for k, v in extra.items() if k != "additional_sites"},
        "method": method.value,
        "currency": plan.currency,
        "priors": {
            name: {
                "rate_mean": p.mean,
                "rate_variance": p.variance,
                "dropout": p.dropout,
                "counted": "rates are counted enrolments (after dropout) per site per month",
                **({"refit": p.refit} if p.refit is not None else {}),
            }
            for name, p in fc.priors.items()
        },
        "model": "Poisson-gamma: open site i's rate ~ Gamma(a_r + k_i, b_r + t_i); sites not open keep the "
        "prior "
        "and their start-up given not open by as_of; exact FFT of the sum of negative binomials",
    }
    if funnel is not None:
        summary["funnel"] = funnel
    screening = F.observed_screening(obs)
    if screening is not None:
        summary["screening_observed"] = screening
    if method != ForecastMethod.analytic:
        from hn005_sim.recruitment import forecast_des as FD

        q = plan.derivation["enrol_probability"]  # the static P(enrol) the priors were built on
        # simulate to 1.5 x the analytic p95 time to target, so the DES's upper quantiles are seen
        until = None if t95 is None else as_of + 1.5 * (t95 - as_of)
        sim = FD.simulate(scenario, fc, q, replicates, seed, jobs, funnel, until)
        des, des_rows = FD.summarise(fc, sim, months)
        des["enrol_probability"] = sim["des_enrol_probability"]
        des["plan_enrol_probability"] = q
        des["differences_from_analytic"] = [
            *planning.DIFFERENCES[1:],
            "the DES stops recruiting at the target, so its cumulative enrolment never exceeds it",
            "candidates in screening at --as-of are not carried over; a site in ramp-up restarts its ramp",
        ]
        curve_rows += des_rows
        if method == ForecastMethod.des:
            summary["analytic"] = answer
            summary.update(
                {
                    k: des[k]
                    for k in ("time_to_target_months", "prob_target_by_deadline", "enrolled_by_deadline")
                }
            )
        summary["des"] = des
    curve = [dict(zip(F.CURVE_COLUMNS, r, strict=True)) for r in curve_rows]
    if out is not None:
        from hn005_sim.report.forecast import page

        html = page(
            summary,
            F.observed_curve(log_rows, obs, as_of),
            curve,
            {r.name: fc.priors[r.name].plan_counted for r in plan.regions},
        )
        with output_dir(out) as od:
            od.write_json("summary.json", summary)
            od.write_rows("forecast.csv", F.CURVE_COLUMNS, curve_rows)
            od.file("report.html").write_text(html, encoding="utf-8")
            od.write_json(
                "manifest.json",
                manifest(
                    "forecast",
                    scenario_path=raw.path,
                    scenario_sha256=raw.sha256(),
                    resolved_config=plan.model_dump(mode="json", by_alias=True),
                    seed=seed,
                    replicates=replicates if method != ForecastMethod.analytic else None,
                    wall_time_s=time.perf_counter() - started,
                    extra={
                        "method": method.value,
                        "jobs": jobs,
                        "observed": display(Path(observed)),
                        "log": None if log is None else display(Path(log)),
                        "as_of_month": as_of,
                        "refit": refit,
                    },
                ),
            )
    if fmt == Format.json:
        if not quiet:
            print_json(summary)
        return
    _print(summary, console(quiet), out)


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def _print(s: dict[str, Any], con, out: Path | None) -> None:
    con.print(
        f"[bold]{s['input']}[/bold] at month {s['as_of_month']:g}: {s['enrolled_so_far']} of {s['target']} "
        f"enrolled; deadline month {s['deadline_months']:g} ({s['method']})"
    )
    t = s["time_to_target_months"]
    e = s["enrolled_by_deadline"]
    con.print(
        f"P(target by deadline) = {100 * s['prob_target_by_deadline']:.1f}%; months to target p10/p50/p90: "
        f"{_f(t['p10'])} / {_f(t['p50'])} / {_f(t['p90'])}; enrolled by deadline p10/p50/p90: "
        f"{e['p10']} / {e['p50']} / {e['p90']}"
    )
    tab = Table(show_edge=False)
    for col in ("site", "region", "enrolled", "months open", "rate (posterior)", "P(rate < plan)", "flag"):
        tab.add_column(col, justify="left" if col in ("site", "region", "flag") else "right")
    for r in s["sites"][:40]:
        tab.add_row(
            r["site"],
            r["region"],
            str(r["enrolled"]),
            f"{r['months_open']:.1f}",
            f"{r['posterior_rate_mean']:.2f} ± {r['posterior_rate_sd']:.2f}",
            "-" if r["prob_rate_below_plan"] is None else f"{r['prob_rate_below_plan']:.2f}",
            r["flag"],
        )
    con.print(tab)
    d = s["additional_sites_detail"]
    add = ", ".join(f"{k} {v}" for k, v in s["additional_sites"].items() if v)
    if d["feasible"] and not add:
        con.print(f"No additional sites needed for P >= {s['required_probability']:g}.")
    elif d["feasible"]:
        cost = (
            f", expected cost {d['expected_cost']:,.0f} {s['currency'] or ''}".rstrip()
            if d.get("expected_cost")
            else ""
        )
        con.print(
            f"Additional sites for P >= {s['required_probability']:g}: {add} (P = "
            f"{100 * d['probability']:.1f}%{cost})"
        )
    else:
        con.print(f"[red]Out of reach[/red]: {d.get('why', '')} (P now {100 * d['probability_now']:.1f}%).")
    if "des" in s:
        d = s["des"]
        con.print(
            f"DES continuation ({d['replicates']} replicates): P(target by deadline) = "
            f"{100 * d['prob_target_by_deadline']:.1f}% ± {100 * d['prob_target_by_deadline_se']:.1f}%, "
            f"{d['seconds_per_replicate'] * 1000:.1f} ms per replicate"
        )
    if out is not None:
        con.print(f"Wrote {out}/summary.json, forecast.csv, report.html, manifest.json")
