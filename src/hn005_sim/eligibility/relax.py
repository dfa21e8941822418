"""What moving a threshold or relaxing a criterion buys: threshold sweeps and a greedy relaxation plan.

Both re-evaluate only the criteria a change touches. A candidate is eligible under the change when
every untouched criterion passes (read from the failure-pattern words of the screening) and every
touched criterion passes under its new rule. Only candidates whose failures all lie among the touched
criteria can become eligible, so the others are set aside before any rule is re-run.

Every distinct changed rule (criterion, rule text) is evaluated once, in one polars select over those
candidates, and kept as a bitmap; a change's eligible count is then the popcount of the AND of the
bitmaps of its rules and of the candidates whose failures lie among the criteria it touches
(eligibility/bits.py). Sweep points, and the relaxation plan's greedy steps (which ask for the same
rules again and again), share them.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import polars as pl

from hn005_sim.eligibility import bits
from hn005_sim.eligibility.config import ParamValue
from hn005_sim.eligibility.engine import Screener, Screening

Rule = tuple[int, str]
"""A criterion's index and its rule text after substitution."""


class _Rows:
    """The candidates any change of a set could make eligible (failures all among the criteria the
    changes touch), with the columns the changed rules read, and the pass bitmap of each changed rule
    on them (evaluated on first request, then reused)."""

    def __init__(self, screener: Screener, screening: Screening, frame: pl.DataFrame, touched: set[int],
                 columns: set[str]):
        self.screener = screener
        self.k = screening.k
        words = screening._keys()
        outside = ~bits.mask_words(sorted(touched), self.k)
        keep = ~bits.any_set(words, outside)
        self.index = np.flatnonzero(keep)
        self.touched = bits.mask_words(sorted(touched), self.k)
        # each word as its own contiguous column; a row here fails only criteria in `touched`
        self.words = [np.ascontiguousarray(words[self.index, c]) for c in range(words.shape[1])]
        self.m = len(self.index)
        self.m_bytes = (self.m + 7) // 8
        # a frame of the right height even when every changed rule reads no column; a boolean filter
        # (measured 17 ms against 25 ms for a gather by index, 250,000 of 1,000,000 rows, 45 columns)
        data = frame.select(sorted(columns)) if columns else pl.DataFrame({"_row": np.zeros(frame.height)})
        self.data = data.filter(pl.Series(keep))
        self.passes: dict[Rule, np.ndarray] = {}
        self.clear: dict[frozenset[int], np.ndarray] = {}
        # each touched criterion's failures over these rows as a bitmap of whole words (bits past m 0)
        self.order = sorted(touched)
        row_bytes = np.ascontiguousarray(words[self.index]).astype("<u8", copy=False).view(np.uint8)
        self.fail_cols = bits.column_bitmaps_of_rows(row_bytes, self.k)[self.order].view(np.uint64)
        self.valid = bits.valid_bitmap(self.m).view(np.uint64)
        self._around: tuple[np.ndarray, np.ndarray] | None = None
        # candidates eligible as configured (every word zero) are among these rows: counted here, so
        # the sweeps and the plan need not group the patterns (which `analyse` builds meanwhile)
        fails = np.zeros(self.m, dtype=np.uint64)
        for col in self.words:
            fails |= col
        self.eligible_now = int(np.count_nonzero(fails == 0))

    def evaluate(self, rules: Iterable[Rule]) -> None:
        """Pass bitmaps of the rules not evaluated yet, in one polars select."""
        todo = [r for r in dict.fromkeys(rules) if r not in self.passes]
        if not todo:
            return
        exprs = [self.screener._compiled_expr(i, sql).alias(f"_v{j}") for j, (i, sql) in enumerate(todo)]
        out = self.data.select(exprs)
        for rule, bitmap in zip(todo, bits.pass_bitmaps(out), strict=True):
            self.passes[rule] = bitmap

    def failing_only(self, touched: frozenset[int]) -> np.ndarray:
        """Bitmap (ceil(m/8) bytes, bits past m 0) of the rows whose failures all lie in `touched`: a
        row's failures lie there when it fails none of the other criteria it could fail, the OR of
        their failure bitmaps; for one criterion, the OR of the criteria before it and of those after
        it in `order`, each computed once for all (`_prefix_suffix`)."""
        got = self.clear.get(touched)
        if got is None:
            if len(touched) == 1 and next(iter(touched)) in self.order:
                prefix, suffix = self._prefix_suffix()
                j = self.order.index(next(iter(touched)))
                fails = prefix[j] | suffix[j + 1]
            else:
                fails = np.zeros_like(self.valid)
                for j, c in enumerate(self.order):
                    if c not in touched:
                        fails |= self.fail_cols[j]
            got = self.clear[touched] = (self.valid & ~fails).view(np.uint8)[: self.m_bytes]
        return got

    def _prefix_suffix(self) -> tuple[np.ndarray, np.ndarray]:
        """prefix[j]: OR of the failure bitmaps of order[:j]; suffix[j]: of order[j:]."""
        if self._around is None:
            t = len(self.order)
            prefix = np.zeros((t + 1, self.valid.size), dtype=np.uint64)
            suffix = np.zeros((t + 1, self.valid.size), dtype=np.uint64)
            for j in range(t):
                np.bitwise_or(prefix[j], self.fail_cols[j], out=prefix[j + 1])
                np.bitwise_or(suffix[t - j], self.fail_cols[t - 1 - j], out=suffix[t - 1 - j])
            self._around = prefix, suffix
        return self._around

    def eligible(self, rules: dict[int, str]) -> int:
        """Rows eligible under a change: failures only among its criteria, and each passes its rule."""
        return int(self.eligible_many([rules])[0])

    def eligible_many(self, changes: list[dict[int, str]]) -> np.ndarray:
        """`eligible` of each change; the changes touching the same criteria are counted together,
        as one AND and popcount over their stacked bitmaps."""
        out = np.zeros(len(changes), dtype=np.int64)
        groups: dict[tuple[int, ...], list[int]] = {}
        for j, rules in enumerate(changes):
            groups.setdefault(tuple(sorted(rules)), []).append(j)
        for touched, js in groups.items():
            acc = np.broadcast_to(self.failing_only(frozenset(touched)), (len(js), self.m_bytes)).copy()
            for i in touched:
                acc &= np.stack([self.passes[(i, changes[j][i])][: self.m_bytes] for j in js])
            out[js] = bits.popcount_rows(acc)
        return out


def _rows_for(screener: Screener, screening: Screening, frame: pl.DataFrame,
              changes: list[dict[int, str]]) -> _Rows:
    """`_Rows` covering every change of the list."""
    touched = {i for e in changes for i in e}
    columns = {c for e in changes for i, sql in e.items() for c in screener.rule_columns(i, sql)}
    return _Rows(screener, screening, frame, touched, columns)


def evaluate_changes(
    screener: Screener,
    screening: Screening,
    frame: pl.DataFrame,
    changes: list[tuple[dict[str, ParamValue], dict[str, str]]],
    rows: _Rows | None = None,
) -> np.ndarray:
    """Eligible count under each (overrides, readings) change: every distinct changed rule evaluated
    once over the rows that could become eligible under any of the changes (`rows`: a `_Rows`
    covering every change, if known), the counts from bitmaps."""
    if not changes:
        return np.zeros(0, dtype=np.int64)
    rules = [screener.changed_rules(o, r) for o, r in changes]
    eligible_now = _eligible_now(screening, rows)
    out = np.full(len(changes), eligible_now, dtype=np.int64)
    todo = [(j, e) for j, e in enumerate(rules) if e]
    if todo:
        if rows is None:
            rows = _rows_for(screener, screening, frame, [e for _, e in todo])
        rows.evaluate(rule for _, e in todo for rule in e.items())
        out[[j for j, _ in todo]] = rows.eligible_many([e for _, e in todo])
    return out


def _eligible_now(screening: Screening, rows: _Rows | None) -> int:
    """Candidates eligible as configured (no failure bit set), from `rows` when given, else from the
    screening's words: never from its patterns, which `analyse` groups in another thread meanwhile."""
    if rows is not None:
        return rows.eligible_now
    return int(np.count_nonzero(~bits.any_set(screening._keys())))


def _sweep_grid(screener: Screener) -> tuple[list[tuple[str, float, bool]], list[str],
                                              list[tuple[dict[str, ParamValue], dict[str, str]]]]:
    """The sweep points: (parameter, value, is_current) rows, their units, and their changes."""
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
    return rows, units, changes


def shared_rows(screener: Screener, screening: Screening, frame: pl.DataFrame) -> _Rows | None:
    """One `_Rows` for the threshold sweeps and the relaxation menu together (one gather of the rows
    and columns, each changed rule evaluated once for both); None when nothing would change."""
    _, _, changes = _sweep_grid(screener)
    rules = [screener.changed_rules(o, r) for o, r in changes]
    rules += [screener.changed_rules(r.overrides, r.readings) for r in screener.cfg.relaxations]
    if not any(rules):
        return None
    rows = _rows_for(screener, screening, frame, rules)
    rows.evaluate(rule for e in rules for rule in e.items())  # every rule both ask for, in one select
    return rows


def threshold_sweeps(screener: Screener, screening: Screening, frame: pl.DataFrame,
                     rows: _Rows | None = None) -> pl.DataFrame:
    """Eligible fraction as each numeric threshold moves over its sweep range (others fixed).

    Columns: parameter, value, eligible_fraction, is_current, unit (the parameter's unit, "" if none).
    The current value is always a row. `rows`: a `shared_rows` of the same screening, if known.
    """
    points, units, changes = _sweep_grid(screener)
    counts = evaluate_changes(screener, screening, frame, changes, rows)
    n = max(screening.n, 1)
    return pl.DataFrame(
        {
            "parameter": [r[0] for r in points],
            "value": [r[1] for r in points],
            "eligible_fraction": counts / n,
            "is_current": [r[2] for r in points],
            "unit": units,
        },
        schema={"parameter": pl.String, "value": pl.Float64, "eligible_fraction": pl.Float64,
                "is_current": pl.Boolean, "unit": pl.String},
    )


def relaxation_plan(
    screener: Screener, screening: Screening, frame: pl.DataFrame, target_fraction: float | None = None,
    rows: _Rows | None = None,
) -> tuple[pl.DataFrame, dict]:
    """Greedy plan over the configured relaxation menu: at each step apply the relaxation with the
    largest gain in eligible fraction, until the target is reached (or, without a target, until no
    relaxation gains anything). Greedy by gain approximates the smallest reaching set (set-cover-like
    problem; exact search is exponential in the menu size).

    Columns: step (0 = as configured), relaxation, description, eligible_fraction, gain. `rows`: a
    `shared_rows` of the same screening, if known.
    """
    cfg = screener.cfg
    target = target_fraction if target_fraction is not None else cfg.target_eligible_fraction
    n = max(screening.n, 1)
    applied_o: dict[str, ParamValue] = {}
    applied_r: dict[str, str] = {}
    remaining = list(cfg.relaxations)
    # every row that any combination of the menu could make eligible, with the columns it reads
    if rows is None:
        menu = [screener.changed_rules(r.overrides, r.readings) for r in remaining]
        rows = _rows_for(screener, screening, frame, menu) if any(menu) else None
    frac = float(_eligible_now(screening, rows)) / n
    steps = [(0, "(as configured)", "criteria as configured", frac, 0.0)]
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
