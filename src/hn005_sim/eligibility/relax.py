"""What moving a threshold or relaxing a criterion buys: threshold sweeps and a greedy relaxation plan.

Both re-evaluate only the criteria a change touches. A candidate is eligible under the change when
every untouched criterion passes (read from the failure-pattern keys of the screening) and every
touched criterion passes under its new rule. Only candidates failing at most as many criteria as the
change touches can become eligible, so the others are filtered out before any rule is re-run.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from hn005_sim.eligibility.config import ParamValue
from hn005_sim.eligibility.engine import Screener, Screening, bitmask, key_names


def _subset(screening: Screening, frame: pl.DataFrame, touched: set[int], columns: set[str]) -> pl.DataFrame:
    """Rows whose failures all lie in `touched` (only they can become eligible), with the columns the
    touched rules read and the pattern keys; materialised once and shared by every change."""
    names = key_names(screening.k)
    keys = screening.table.select(names)
    data = frame.select(sorted(columns)).hstack(keys) if columns else keys
    return data.filter(_untouched_pass(sorted(touched), screening.k))


def _untouched_pass(touched: list[int], k: int) -> pl.Expr:
    masks = bitmask(touched, k)
    full = (1 << 64) - 1
    return pl.all_horizontal(
        [(pl.col(c) & pl.lit(full ^ m, dtype=pl.UInt64)) == 0
         for c, m in zip(key_names(k), masks, strict=True)]
    )


def _eligible_count(changed: Mapping[int, pl.Expr], k: int) -> pl.Expr:
    parts = [_untouched_pass(list(changed), k), *changed.values()]
    return pl.all_horizontal(parts).sum()


def evaluate_changes(
    screener: Screener,
    screening: Screening,
    frame: pl.DataFrame,
    changes: list[tuple[dict[str, ParamValue], dict[str, str]]],
    rows: pl.DataFrame | None = None,
) -> np.ndarray:
    """Eligible count under each (overrides, readings) change, in one polars pass over the rows that
    could become eligible under any of them (`rows`: a `_subset` covering every change, if known)."""
    if not changes:
        return np.zeros(0, dtype=np.int64)
    exprs = [screener.changed_exprs(o, r) for o, r in changes]
    eligible_now = int(screening.patterns.count[~screening.patterns.fails.any(axis=1)].sum())
    out = np.full(len(changes), eligible_now, dtype=np.int64)
    todo = [(j, e) for j, e in enumerate(exprs) if e]
    if todo:
        touched = {i for _, e in todo for i in e}
        columns = {c for _, e in todo for x in e.values() for c in x.meta.root_names()}
        if rows is None:
            rows = _subset(screening, frame, touched, columns)
        res = rows.select([_eligible_count(e, screening.k).alias(f"c{j}") for j, e in todo])
        for j, _ in todo:
            out[j] = int(res[f"c{j}"][0] or 0)
    return out


def threshold_sweeps(screener: Screener, screening: Screening, frame: pl.DataFrame) -> pl.DataFrame:
    """Eligible fraction as each numeric threshold moves over its sweep range (others fixed).

    Columns: parameter, value, eligible_fraction, is_current, unit (the parameter's unit, "" if none).
    The current value is always a row.
    """
    values = screener.cfg.values()
    rows: list[tuple[str, float, bool]] = []
    units: list[str] = []
    changes: list[tuple[dict[str, ParamValue], dict[str, str]]] = []
    for name, param in screener.cfg.parameters.items():
        current = values[name]
        if param.sweep is None or isinstance(current, bool | str) or not screener.uses(name):
            continue
        grid = sorted(set(param.sweep.grid()) | {float(current)})
        for v in grid:
            is_current = v == float(current)
            value: ParamValue = int(v) if isinstance(param.value, int) and float(v).is_integer() else float(v)
            rows.append((name, float(v), is_current))
            units.append(param.unit or "")
            changes.append(({} if is_current else {name: value}, {}))
    counts = evaluate_changes(screener, screening, frame, changes)
    n = max(screening.n, 1)
    return pl.DataFrame(
        {
            "parameter": [r[0] for r in rows],
            "value": [r[1] for r in rows],
            "eligible_fraction": counts / n,
            "is_current": [r[2] for r in rows],
            "unit": units,
        },
        schema={"parameter": pl.String, "value": pl.Float64, "eligible_fraction": pl.Float64,
                "is_current": pl.Boolean, "unit": pl.String},
    )


def relaxation_plan(
    screener: Screener, screening: Screening, frame: pl.DataFrame, target_fraction: float | None = None
) -> tuple[pl.DataFrame, dict]:
    """Greedy plan over the configured relaxation menu: at each step apply the relaxation with the
    largest gain in eligible fraction, until the target is reached (or, without a target, until no
    relaxation gains anything). Greedy by gain approximates the smallest reaching set (set-cover-like
    problem; exact search is exponential in the menu size).

    Columns: step (0 = as configured), relaxation, description, eligible_fraction, gain.
    """
    cfg = screener.cfg
    target = target_fraction if target_fraction is not None else cfg.target_eligible_fraction
    n = max(screening.n, 1)
    frac = float(screening.patterns.count[~screening.patterns.fails.any(axis=1)].sum()) / n
    steps = [(0, "(as configured)", "criteria as configured", frac, 0.0)]
    applied_o: dict[str, ParamValue] = {}
    applied_r: dict[str, str] = {}
    remaining = list(cfg.relaxations)
    # every row that any combination of the menu could make eligible, with the columns it reads
    menu = [screener.changed_exprs(r.overrides, r.readings) for r in remaining]
    touched = {i for e in menu for i in e}
    columns = {c for e in menu for x in e.values() for c in x.meta.root_names()}
    rows = _subset(screening, frame, touched, columns) if touched else None
    while remaining and (target is None or frac < target):
        changes = [({**applied_o, **r.overrides}, {**applied_r, **r.readings}) for r in remaining]
        fracs = evaluate_changes(screener, screening, frame, changes, rows) / n
        best = int(np.argmax(fracs))  # first in menu order on ties
        gain = float(fracs[best]) - frac
        if gain <= 0:
            break
        rel = remaining.pop(best)
        applied_o, applied_r = changes[best]
        frac = float(fracs[best])
        steps.append((len(steps), rel.id, rel.description, frac, gain))
    table = pl.DataFrame(
        steps,
        schema={"step": pl.Int64, "relaxation": pl.String, "description": pl.String,
                "eligible_fraction": pl.Float64, "gain": pl.Float64},
        orient="row",
    )
    plan = {
        "target_eligible_fraction": target,
        "reached": None if target is None else frac >= target,
        "steps": [s[1] for s in steps[1:]],
        "eligible_fraction": frac,
        "overrides": applied_o,
        "readings": applied_r,
    }
    return table, plan
