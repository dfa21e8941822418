"""`hn005-sim sites PLAN_OR_SCENARIO`: how many sites, where, to reach the target by the deadline."""

from __future__ import annotations

import os
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hn005_sim.commands.common import (
    ForceOpt,
    Format,
    FormatOpt,
    JobsOpt,
    QuietOpt,
    at_most,
    check_out,
    console,
    print_json,
)
from hn005_sim.guards import MAX_REPLICATES
from hn005_sim.io import manifest, output_dir
from hn005_sim.recruitment import planning, search
from hn005_sim.scenario.load import display, read_raw


class SitesMethod(str, Enum):  # noqa: UP042 (typer needs a str Enum)
    analytic = "analytic"
    des = "des"
    both = "both"
    full = "full"


PlanArg = Annotated[
    Path,
    typer.Argument(
        help="Planning file (plans/*.toml, with duration_months) or scenario ([trial], [recruitment]).",
        show_default=False,
    ),
]


def sites(
    plan_or_scenario: PlanArg,
    target: Annotated[
        int | None, typer.Option("--target", help="Patients wanted (overrides the file).")
    ] = None,
    months: Annotated[float | None, typer.Option("--months", help="Deadline in months from start.")] = None,
    probability: Annotated[
        float | None,
        typer.Option(
            "--probability", help="Required P(enrolled >= target by the deadline); scenarios default to 0.8."
        ),
    ] = None,
    method: Annotated[
        SitesMethod | None,
        typer.Option("--method", help="analytic (exact Poisson-gamma), des (confirm by a Poisson-gamma "
                     "simulation), both, or full (scenarios: search with the scenario's own simulation, "
                     "starting from the analytic answer). Default: full for a scenario, analytic for a "
                     "planning file.", show_default=False),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Seed for the simulation and screening draws.")
    ] = 20230901,
    replicates: Annotated[
        int, typer.Option("--replicates", min=100, help="Monte Carlo replicates (des/both).",
                          callback=at_most(MAX_REPLICATES, " (MAX_REPLICATES)"))
    ] = 20000,
    scenario_replicates: Annotated[
        int,
        typer.Option("--scenario-replicates", min=0, callback=at_most(MAX_REPLICATES, " (MAX_REPLICATES)"),
                     help="For a scenario: replicates of the scenario's own simulation (as `run`): the "
                     "full search (method full, at least 20) or the check of the answer (des/both; 0 skips "
                     "it)."),
    ] = 200,
    write_plan: Annotated[
        bool,
        typer.Option("--write-plan", help="For a scenario with --out: also write plan.toml, the planning "
                     "file of the scenario's per-site enrolment rates."),
    ] = False,
    proof_budget: Annotated[
        int,
        typer.Option("--proof-budget", min=0, max=100_000_000,
                     help="Most allocations the exact proof of optimality may evaluate; beyond it the "
                     "greedy + local improvement answer stands, marked not proved."),
    ] = 10_000,
    jobs: JobsOpt = 1,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write summary.json, curve.csv, manifest.json here.", callback=check_out),
    ] = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Minimum sites (one region) or the cost-minimal allocation across regions such that
    P(enrolled >= target by the deadline) >= p, judged on the exact Poisson-gamma distribution.

    A planning file with a fixed `sites` in every region evaluates that allocation. Example:
    `hn005-sim sites plans/china_network.toml --method both --out out/sites_china`.
    """
    from hn005_sim.cli import InputError

    started = time.perf_counter()
    raw = read_raw(plan_or_scenario)
    if planning.is_planning_file(raw.data):
        plan = planning.load_plan(plan_or_scenario)
        kind = "planning file"
        if method == SitesMethod.full:
            raise InputError(f"{display(raw.path)}: --method full needs a scenario (a planning file has no "
                             "simulation of its own); use analytic, des or both")
        if write_plan:
            raise InputError(f"{display(raw.path)}: --write-plan needs a scenario (this is a planning file)")
    else:
        from hn005_sim.scenario.load import load_scenario

        scenario, raw = load_scenario(plan_or_scenario)
        plan = planning.plan_from_scenario(scenario, seed, probability if probability is not None else 0.8)
        kind = "scenario"
    if method is None:
        method = SitesMethod.full if kind == "scenario" else SitesMethod.analytic
    if write_plan and out is None:
        raise InputError("--write-plan: needs --out DIR (plan.toml is written there)")
    if method == SitesMethod.full and scenario_replicates < 20:
        raise InputError(f"--scenario-replicates: --method full needs at least 20, got {scenario_replicates}")
    try:
        plan = planning.with_overrides(plan, target, months, probability)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    try:
        # method full starts from the analytic answer
        answer = planning.plan_sites(plan, "analytic" if method == SitesMethod.full else method.value, seed,
                                     replicates, max_evaluations=proof_budget)
    except ValueError as exc:  # e.g. a distribution too wide for the exact FFT
        raise InputError(f"{display(raw.path)}: {exc}") from None
    summary = {"input": display(raw.path), "input_kind": kind, **answer.summary}
    if kind == "scenario":
        trial = scenario.trial.model_copy(update={"target_enrolled": plan.target,
                                                  "deadline_months": plan.duration_months})
        scenario = scenario.model_copy(update={"trial": trial})
    if kind == "scenario" and method.value in ("des", "both") and scenario_replicates > 0:
        summary["scenario_des"] = planning.scenario_check(
            scenario, answer.summary["allocation"], scenario_replicates,
            seed, jobs, answer.summary["probability_of_success"])
    if method == SitesMethod.full:
        _full(summary, scenario, plan, scenario_replicates, seed, jobs)
    if out is not None:
        with output_dir(out, force=force) as od:
            od.write_json("summary.json", summary)
            if kind == "scenario":
                extends = os.path.relpath(raw.path.resolve(), out.resolve())
                note = (f"hn005-sim sites {display(raw.path)}: {_alloc(summary['allocation'])} "
                        f"({summary['method']}; P(success) {_pct(summary['probability_of_success'])})")
                doc = search.answer_document(raw, scenario, summary["allocation"], extends, note)
                od.file("answer.toml").write_text(search.dumps(doc, f"Written by {note}.\n`hn005-sim run "
                                                                   "answer.toml` runs the answer."))
            if write_plan:
                od.file("plan.toml").write_text(search.dumps(
                    search.plan_document(plan, scenario, raw),
                    f"Per-site enrolment rates of {display(raw.path)}, written by hn005-sim sites "
                    "--write-plan\n(seed {seed}: the screening pass probability is estimated on its "
                    "candidates)".replace("{seed}", str(seed))))
            od.write_rows(
                "curve.csv",
                answer.curve_columns,
                [[r[c] for c in answer.curve_columns] for r in answer.curve],
            )
            od.write_json(
                "manifest.json",
                manifest(
                    "sites",
                    scenario_path=raw.path,
                    scenario_sha256=raw.sha256(),
                    resolved_config=plan.model_dump(mode="json", by_alias=True),
                    seed=seed,
                    replicates=(scenario_replicates if method == SitesMethod.full else
                                replicates if method != SitesMethod.analytic else None),
                    wall_time_s=time.perf_counter() - started,
                    extra={"method": method.value,
                           "scenario_replicates": scenario_replicates, "jobs": jobs,
                           "write_plan": write_plan},
                ),
            )
    if fmt == Format.json:
        if not quiet:
            print_json(summary)
        return
    _print_table(summary, console(quiet), out)


def _full(summary: dict[str, Any], scenario, plan, replicates: int, seed: int, jobs: int) -> None:
    """Method full: the search with the scenario's own simulation leads; the analytic answer moves to
    `analytic`, the search's block is `full_model`."""
    block = search.full_model_search(scenario, plan, summary, replicates, seed, jobs)
    keys = ("allocation", "total_sites", "probability_of_success", "expected_cost", "expected_enrolled",
            "variance_enrolled", "feasible")
    summary["analytic"] = {k: summary[k] for k in keys if k in summary}
    summary["full_model"] = block
    summary.update({k: block[k] for k in keys if k in block})
    summary["feasible"] = block["accepted"]
    summary["method"] = "full"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _alloc(allocation: dict[str, int]) -> str:
    return " + ".join(f"{name} {n}" for name, n in allocation.items())


def _print_table(s: dict[str, Any], con, out: Path | None) -> None:
    costed = any(r["expected_cost_per_site"] for r in s["regions"].values())
    if s["question"] == "evaluate":
        verb = "Evaluated"
    else:
        verb = "Cheapest allocation found" if costed else "Fewest sites found (no costs given)"
    con.print(
        f"[bold]{s['plan'] or s['input']}[/bold]: {s['target']} patients in {s['duration_months']:g} months, "
        f"required P >= {s['required_probability']:g} ({s['method']})"
    )
    t = Table(show_edge=False)
    cols = ["region", "sites", "bounds", "enrolments/site/month", "enrolled/site by deadline"]
    unit = f" {s['currency']}" if s.get("currency") else ""
    for col in cols + ([f"cost/site{unit}"] if costed else []):
        t.add_column(col, justify="left" if col == "region" else "right")
    for name, r in s["regions"].items():
        cells = [name, str(s["allocation"][name]), f"{r['sites_min']}-{r['sites_max']}",
                 f"{r['rate_mean']:.3g}",
                 f"{r['expected_counted_per_site']:.1f}"]
        t.add_row(*cells, *([f"{r['expected_cost_per_site']:,.0f}"] if costed else []))
    con.print(t)
    ttt = s["time_to_target_months"]
    if "full_model" in s:
        _print_full(s, con, costed, unit)
        if out is not None:
            con.print(f"Wrote {out}/summary.json, curve.csv, answer.toml, manifest.json"
                      + (" and plan.toml" if (out / "plan.toml").exists() else ""))
        return
    con.print(
        f"{verb}: {s['total_sites']} site{'' if s['total_sites'] == 1 else 's'}; "
        f"P(enrolled >= {s['target']}) = {_pct(s['probability_of_success'])} "
        + (f"(exact; P(more than {s['target']}) = {_pct(s['probability_more_than_target'])}, the figure "
           "ClinicalTrialOptm.jl reports)" if s.get("probability_more_than_target") is not None and
           "analytic" not in s else "(simulated)")
        + f", expected enrolled {s['expected_enrolled']:.1f} (sd {s['variance_enrolled'] ** 0.5:.1f})"
        + (f", expected cost {s['expected_cost']:,.0f}{unit}" if costed else "")
    )
    if s["question"] != "evaluate" and not s["search"]["proved_optimal"]:
        con.print(f"Optimality not proved within --proof-budget {s['search']['proof_budget_evaluations']:,} "
                  "evaluations: the best allocation greedy + local improvement found.")
    if s["question"] != "evaluate":
        con.print("Each added site is like the region's configured ones (rate above); bounds: the plan's "
                  "limits or max_sites.")
    if s.get("analytic") is None:
        fmt = [("-" if v is None else f"{v:.1f}") for v in (ttt["p10"], ttt["p50"], ttt["p90"])]
        con.print(f"Months to target p10/p50/p90: {' / '.join(fmt)}")
    if not s["feasible"]:
        why = (
            "this allocation falls short of the required probability"
            if s["question"] == "evaluate"
            else "even the most sites allowed fall short of the required probability"
        )
        con.print(f"[red]Not feasible[/red]: {why}.")
    normal = s["approximations"]["normal"]
    if "allocation" in normal and normal["allocation"] != s["allocation"]:
        con.print(
            f"Normal approximation would choose {_alloc(normal['allocation'])} "
            f"(exact P = {_pct(normal['exact_probability_of_that_allocation'])})."
        )
    if "des" in s:
        d = s["des"]
        con.print(
            f"Simulation ({d['replicates']} replicates): P(success) = {_pct(d['probability_of_success'])} "
            f"+/- {_pct(d['standard_error'])}; analytic - simulated = "
            f"{d['analytic_minus_des_in_standard_errors']:+.1f} SE"
        )
    if "scenario_des" in s:
        d = s["scenario_des"]
        con.print(
            f"Full scenario simulation ({d['replicates']} replicates, as `run`): P(success) = "
            f"{_pct(d['probability_of_success'])} +/- {_pct(d['standard_error'])}; it also models "
            "screening time, capacity, seasonal dips, lab re-tests and re-screening, which the closed "
            "form leaves out"
        )
    if "scenario_network" in s:
        sn = s["scenario_network"]
        con.print(
            f"The scenario's own network ({_alloc(sn['allocation'])}): "
            f"P(success) = {_pct(sn['probability_of_success'])}"
        )
    if out is not None:
        extra = [f for f in ("answer.toml", "plan.toml") if (out / f).exists()]
        con.print(f"Wrote {out}/summary.json, curve.csv, manifest.json" + "".join(f", {f}" for f in extra))


def _print_full(s: dict[str, Any], con, costed: bool, unit: str) -> None:
    f, a = s["full_model"], s["analytic"]
    lo, hi = f["interval_90"]
    start = f["analytic_start"]
    con.print(
        f"Analytic start (exact Poisson-gamma): {_alloc(start['allocation'])}, P = "
        f"{_pct(start['analytic_probability'])}; the scenario's own simulation gives it "
        f"{_pct(start['simulated_probability'])}"
    )
    verdict = "[green]accepted[/green]" if f["accepted"] else "[red]not accepted[/red]"
    con.print(
        f"Recommended by the scenario's own simulation ({f['replicates']} replicates, seed {f['seed']}, "
        f"common random numbers): {_alloc(f['allocation'])} = {f['total_sites']} sites; "
        f"P(enrolled >= {s['target']} by month {s['duration_months']:g}) = "
        f"{_pct(f['probability_of_success'])} "
        f"(90% interval {_pct(lo)}-{_pct(hi)}), {verdict}"
        + (f"; expected cost {f['expected_cost']:,.0f}{unit}" if costed else "")
    )
    con.print(f"Rule: {f['rule']}. Analytic P of this allocation: "
              f"{_pct(f['analytic_probability_of_that_allocation'])} (the closed form leaves out screening "
              "time, capacity, seasonal dips and re-tests).")
    if a["allocation"] == f["allocation"] and f["accepted"]:
        con.print("The analytic answer is confirmed by the simulation.")
    if not f["accepted"]:
        con.print("[red]Not feasible[/red]: even the most sites allowed fall short under the rule.")
    if "scenario_network" in s:
        sn = s["scenario_network"]
        con.print(f"The scenario's own network ({_alloc(sn['allocation'])}): analytic P = "
                  f"{_pct(sn['probability_of_success'])}")
