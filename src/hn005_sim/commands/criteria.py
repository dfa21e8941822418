"""`hn005-sim criteria SCENARIO [--format table|csv|json]`: every criterion as the scenario reads it."""

from __future__ import annotations

import csv
import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from hn005_sim.commands.common import ScenarioArg, console, print_json
from hn005_sim.eligibility import compile_criteria
from hn005_sim.eligibility.engine import referenced_parameters, sql_literal
from hn005_sim.scenario.errors import ConfigError
from hn005_sim.scenario.load import display, load_scenario


class CriteriaFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def criteria_rows(scenario_path) -> tuple[str, list[dict[str, str]]]:
    sc, raw = load_scenario(scenario_path)
    if sc.criteria is None:
        raise ConfigError.one(display(raw.path), "criteria", "the scenario has no [criteria] section")
    screener = compile_criteria(sc.criteria)
    values = sc.criteria.values()
    rows = []
    for c in screener.compiled:
        crit = c.crit
        rule = crit.active_rule(sc.criteria.readings)
        names = dict.fromkeys(referenced_parameters(rule))
        rows.append({
            "id": crit.id,
            "kind": crit.kind,
            "stage": crit.stage,
            "protocol_text": crit.protocol_text,
            "rule": crit.active_rule(sc.criteria.readings),
            "rule_resolved": c.sql,
            "null": crit.null,
            "reading": "" if crit.reading is None else f"{crit.reading}={sc.criteria.readings[crit.reading]}",
            # the threshold parameters the rule uses, with the values in force (`name=value; ...`)
            "parameters": "; ".join(f"{n}={sql_literal(values[n]).strip(chr(39))}" for n in names),
        })
    return sc.name, rows


def criteria(
    scenario: ScenarioArg,
    fmt: Annotated[CriteriaFormat, typer.Option("--format", help="table, csv or json.")] = CriteriaFormat.table,  # noqa: E501
) -> None:
    """Print every eligibility criterion: id, kind, stage, protocol text and rule (parameters resolved).

    Inclusion rule true = passes; exclusion rule true = excluded. `null` is what a missing value means.
    The table names the threshold parameters each rule uses, with their values in force.

    Example:

    
      hn005-sim criteria scenarios/baseline.toml --format csv > criteria.csv
    """
    name, rows = criteria_rows(scenario)
    if fmt is CriteriaFormat.json:
        print_json(rows)
    elif fmt is CriteriaFormat.csv:
        w = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    else:
        title = f"{name}: {len(rows)} criteria (inclusion rule true = pass; exclusion true = out)"
        table = Table(title=title)
        for col in ("id", "kind", "stage", "protocol_text", "rule", "parameters", "null"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(r["id"], r["kind"], r["stage"], r["protocol_text"], r["rule"], r["parameters"],
                          r["null"])
        console().print(table)
