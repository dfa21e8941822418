"""`hn005-sim supply SCENARIO`: drug supply figures alone, and a search over site resupply levels."""

from __future__ import annotations

import concurrent.futures as cf
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from hn005_sim.commands.common import (
    ExecutorOpt,
    ForceOpt,
    Format,
    FormatOpt,
    JobsOpt,
    OutOpt,
    QuietOpt,
    ReplicatesOpt,
    ScenarioArg,
    SeedOpt,
    console,
    print_json,
)
from hn005_sim.scenario.errors import ConfigError
from hn005_sim.scenario.load import display, load_scenario

BoundOpt = Annotated[float, typer.Option(
    "--max-stockout-probability", min=0.0, max=1.0,
    help="Bound for the resupply search: share of replicates with any stock-out.")]
SearchOpt = Annotated[int | None, typer.Option(
    "--search-replicates", min=0,
    help="Replicates used by the resupply-level search (0: no search; default: min(REPLICATES, 50)).")]


def _table(summary: dict[str, Any], best: list[dict], bound: float = 1.0) -> Table:
    t = Table(title=f"supply: {summary['scenario']} ({summary['replicates']} replicates, "
                    f"seed {summary['seed']})")
    cols = ("drug", "packs to make p50 / p90 / p95", "P(any stock-out)", "P(missed at site)",
            "P(out of stock)", "waste p50 (packs)", "patient-days without drug (mean)")
    for col in cols:
        t.add_column(col, justify="left" if col == "drug" else "right")
    for drug, s in summary["supply"].items():
        t.add_row(drug, f"{s['units_p50']:.0f} / {s['units_p90']:.0f} / {s['units_p95']:.0f}",
                  f"{s['stockout_probability']:.1%}", f"{s['missed_dispensing_probability']:.1%}",
                  f"{s['out_of_stock_probability']:.1%}", f"{s['waste_p50']:.1f}",
                  f"{s['patient_days_without_drug_mean']:.1f}")
    first = next(iter(summary["supply"].values()), {})
    if first.get("packs_basis") == "replicates_reaching_target":
        t.caption = (f"packs to make over the {first['replicates_reaching_target']} replicates "
                     "reaching the target")
    elif first.get("packs_basis") == "all_replicates_none_reached_target":
        t.caption = "packs to make over all replicates (none reached the target)"
    for b in best:
        t.caption = (t.caption + "\n" if t.caption else "") + (
            f"tier {b['tier']}: least waste with seeding {b['initial_cycles']:g} cycles, at least "
            f"{b['min_patient_cycles']:g} patient-cycle(s), lead-time cover {b['safety_patient_cycles']:g} "
            f"patient-cycles: waste {b['waste_packs_mean']:.1f} packs (mean), P(any stock-out) "
            f"{b['stockout_probability']:.1%} (95% upper bound {b['stockout_probability_upper']:.1%}"
            + (": not confirmed below the bound, run more --search-replicates)"
               if b['stockout_probability_upper'] > bound else ")"))
    return t


def supply(
    scenario: ScenarioArg,
    out: OutOpt,
    force: ForceOpt = False,
    replicates: ReplicatesOpt = 200,
    seed: SeedOpt = 20230901,
    jobs: JobsOpt = 1,
    executor: ExecutorOpt = "process",
    max_stockout_probability: BoundOpt = 0.05,
    search_replicates: SearchOpt = None,
    quiet: QuietOpt = False,
    format: FormatOpt = Format.table,
) -> None:
    """Treatment courses and drug supply for REPLICATES recruitment replicates: packs to make at
    P50/P90/P95, waste, stock-outs; and the site resupply levels (per tier) with the least waste whose
    stock-out probability is at most --max-stockout-probability.

    Writes supply.csv, drug_demand.csv, inventory.csv, resupply_search.csv, summary.json and
    manifest.json into OUT. Same scenario and seed give the same outputs whatever --jobs.
    """
    from hn005_sim.cli import InputError
    from hn005_sim.io import manifest, output_dir
    from hn005_sim.montecarlo import _batches, open_executor, parse_executor, sigint_held
    from hn005_sim.supply.aggregate import SupplyAggregate
    from hn005_sim.supply.search import SearchTally, candidates, drugs_of, replicate_task

    try:
        parse_executor(executor)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    sc, raw = load_scenario(scenario)
    for section in ("recruitment", "regimen", "supply"):
        if getattr(sc, section, None) is None:
            raise ConfigError.one(display(raw.path), section,
                                  f"missing section: `supply` needs [{section}] "
                                  "(recruitment, regimen, supply)")
    from hn005_sim.recruitment.candidates import candidate_source

    candidate_source(sc)  # a scenario that cannot recruit fails here, before any work
    n_search = min(replicates, 50) if search_replicates is None else min(search_replicates, replicates)
    cands = candidates(sc) if n_search > 0 else []
    started = time.perf_counter()
    agg = SupplyAggregate(sc, replicates)
    tally = SearchTally(cands, drugs_of(sc))

    def fold(results) -> None:
        for _r, base, stats in results:
            agg.add(base)
            tally.add(stats)

    try:
        with open_executor(executor, jobs) as (ex, workers):
            batches = _batches(replicates, workers)
            if ex is None:
                for a, b in batches:
                    fold(replicate_task(sc, seed, a, b, cands, n_search))
            else:
                with sigint_held():  # submit may start a worker process
                    futures = [ex.submit(replicate_task, sc, seed, a, b, cands, n_search)
                               for a, b in batches]
                done: dict[int, Any] = {}
                nxt = 0
                index = {f: i for i, f in enumerate(futures)}
                for fut in cf.as_completed(futures):
                    done[index[fut]] = fut.result()
                    while nxt in done:  # fold in replicate order: identical sums for any --jobs
                        fold(done.pop(nxt))
                        nxt += 1
    except ValueError as exc:
        raise InputError(str(exc)) from None
    search = tally.frame(sc, max_stockout_probability) if cands else None
    best = search.filter(search["best"]).to_dicts() if search is not None else []
    summary = {
        "scenario": sc.name,
        "replicates": replicates,
        "seed": seed,
        "supply": agg.summary(),
        "end_reasons": dict(sorted(agg.end_reasons.items())),
        "cycles_per_replicate_mean": (sum(k * v for k, v in agg.cycles.items()) / max(agg.replicates, 1)),
        "resupply_search": {
            "replicates": tally.n,
            "max_stockout_probability": max_stockout_probability,
            "best": {b["tier"]: {k: b[k] for k in (
                "forecast_days", "floor_scale", "trigger_cycles", "max_cycles", "initial_cycles",
                "min_patient_cycles", "safety_patient_cycles", "waste_packs_mean", "stockout_probability",
                "stockout_probability_upper", "confirmed",
                *(f"{d}_stockout_probability" for d in drugs_of(sc)))}
                     for b in best},
            "feasible": not cands or len(best) == len(sc.supply.tiers),
        },
    }
    frames = agg.frames()
    with output_dir(out, force=force) as o:
        o.write_json("summary.json", summary)
        for name, frame in frames.items():
            o.write_csv(f"{name}.csv", frame)
        files = ["summary.json", *(f"{n}.csv" for n in frames)]
        if search is not None:
            o.write_csv("resupply_search.csv", search)
            files.append("resupply_search.csv")
        o.write_json("manifest.json", manifest(
            "supply", scenario_path=display(raw.path), scenario_sha256=raw.sha256(),
            resolved_config=sc.model_dump(mode="json", by_alias=True), seed=seed, replicates=replicates,
            wall_time_s=time.perf_counter() - started,
            extra={"jobs": jobs, "executor": executor, "search_replicates": tally.n,
                   "files": sorted(files)},
        ))
    if quiet:
        return
    if format is Format.json:
        print_json(summary)
    else:
        con = console(quiet)
        con.print(_table(summary, best, max_stockout_probability))
        found = {b["tier"] for b in best}
        for tier in sc.supply.tiers if search is not None else []:
            if tier.name not in found:
                lowest = float(search.filter(search["tier"] == tier.name)["stockout_probability"].min())
                con.print(f"[yellow]resupply search[/yellow], tier {tier.name}: no candidate kept P(any "
                          f"stock-out) <= {max_stockout_probability:g} over {tally.n} replicates (lowest "
                          f"{lowest:.3f}); see resupply_search.csv")
