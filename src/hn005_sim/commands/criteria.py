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
    rows = []
    for c in screener.compiled:
        crit = c.crit
        rows.append({
            "id": crit.id,
            "kind": crit.kind,
            "stage": crit.stage,
            "protocol_text": crit.protocol_text,
            "rule": crit.active_rule(sc.criteria.readings),
            "rule_resolved": c.sql,
            "null": crit.null,
            "reading": "" if crit.reading is None else f"{crit.reading}={sc.criteria.readings[crit.reading]}",
        })
    return sc.name, rows


def criteria(
    scenario: ScenarioArg,
    fmt: Annotated[CriteriaFormat, typer.Option("--format", help="table, csv or json.")] = CriteriaFormat.table,  # noqa: E501
) -> None:
    """Print every eligibility criterion: id, kind, stage, protocol text and rule (parameters resolved).

    Inclusion rule true = passes; exclusion rule true = excluded. `null` is what a missing value means.
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
        for col in ("id", "kind", "stage", "protocol_text", "rule_resolved", "null"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(r["id"], r["kind"], r["stage"], r["protocol_text"], r["rule_resolved"], r["null"])
        console().print(table)
