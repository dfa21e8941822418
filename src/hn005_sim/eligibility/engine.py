"""Compile the criteria once (polars SQL, never Python eval) and screen candidates in batches.

`compile_criteria(cfg)` substitutes the named parameters into each rule, vets it against an allow-list
(eligibility.vet: nothing that reads a file or the network ever reaches polars), compiles it with
`pl.sql_expr`, checks it against the cohort columns, and returns a `Screener`. `Screener.evaluate`
turns a frame of candidates into a `Screening`: a pure-bool pass matrix (one column per criterion,
protocol order) plus, per candidate, whether they pass prescreen, whether they are eligible, and the
first criterion they fail (prescreen criteria first, then screening, each in protocol order).

Prescreen (chart review) judges each criterion on the values known before consent (`known`, from
eligibility/chart.py): a candidate fails prescreen when a criterion known at prescreen fails. Without
`known`, every prescreen-stage criterion is known and every screening-stage one is not.
"""

from __future__ import annotations

import difflib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import polars as pl

from hn005_sim.eligibility.bits import (
    bitmap_bytes,
    column_bitmaps,
    pack_rows,
    popcount,
    read_boolean_columns,
    valid_bitmap,
)
from hn005_sim.eligibility.chart import FAIL, PASS, UNKNOWN
from hn005_sim.eligibility.columns import CONTRACT_COLUMNS
from hn005_sim.eligibility.config import CriteriaConfig, Criterion, ParamValue
from hn005_sim.eligibility.vet import RuleRefused, vet_rule
from hn005_sim.scenario.errors import ConfigError, Problem, show

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_QUOTED = re.compile(r"'(?:[^']|'')*'")
KEY_BITS = 64
"""Criteria per pattern-key column: bit j of key column c is 'fails criterion 64c+j'."""


def sql_literal(value: ParamValue) -> str:
    """A parameter value as a SQL literal (no exponent notation, strings quoted and escaped)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not np.isfinite(value):
            raise ValueError(f"must be finite, got {value}")
        return np.format_float_positional(value, trim="-")
    return "'" + str(value).replace("'", "''") + "'"


def referenced_parameters(rule: str) -> list[str]:
    """`{name}` placeholders outside quoted SQL strings, in order of appearance."""
    names: list[str] = []
    for part in _QUOTED.split(rule):
        names += _PARAM.findall(part)
    return names


def substitute(rule: str, values: Mapping[str, ParamValue]) -> str:
    """Replace `{name}` by the SQL literal of the parameter's value (quoted strings are left alone)."""
    pieces = []
    last = 0
    for m in _QUOTED.finditer(rule):
        pieces.append(_PARAM.sub(lambda p: sql_literal(values[p.group(1)]), rule[last : m.start()]))
        pieces.append(m.group(0))
        last = m.end()
    pieces.append(_PARAM.sub(lambda p: sql_literal(values[p.group(1)]), rule[last:]))
    return "".join(pieces)


def _suggest(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _sql(text: str) -> pl.Expr:
    """The one place a rule text reaches polars: vetted first (`vet_rule` raises RuleRefused)."""
    vet_rule(text)
    return pl.sql_expr(text)


def _pass_expr(crit: Criterion, sql: str, constant: bool | None) -> pl.Expr:
    """Pass column of one criterion: exclusion rules are negated; NULL becomes the configured meaning."""
    if constant is not None:
        passes = constant if crit.kind == "inclusion" else not constant
        return pl.repeat(passes, pl.len(), dtype=pl.Boolean).alias(crit.id)
    expr = _sql(sql)
    if crit.kind == "exclusion":
        expr = expr.not_()
    return expr.fill_null(crit.null == "pass").alias(crit.id)


def rule_columns(sql: str) -> tuple[str, ...]:
    """The cohort columns a rule reads, derived from the compiled expression (never listed by hand)."""
    return tuple(dict.fromkeys(_sql(sql).meta.root_names()))


def _constant_value(sql: str) -> bool | None:
    """The value of a rule that names no column (e.g. `TRUE` for a reading that drops a test)."""
    expr = _sql(sql)
    if expr.meta.root_names():
        return None
    value = pl.select(expr.alias("v")).item()
    return None if value is None else bool(value)


@dataclass(frozen=True)
class Compiled:
    crit: Criterion
    sql: str
    expr: pl.Expr
    params: frozenset[str]
    columns: tuple[str, ...] = ()
    """Cohort columns the active rule reads (from the compiled expression), in order of appearance."""


def _check_rule(
    text: str,
    crit: Criterion,
    path: str,
    values: Mapping[str, ParamValue],
    columns: Mapping[str, pl.DataType],
    empty: pl.DataFrame,
    file: str,
    reads: set[str] | None = None,
) -> tuple[str, pl.Expr, list[Problem]]:
    """Substitute, compile and type-check one rule text; problems name the criterion and file. `reads`
    gathers the columns the rule names (once it compiles)."""
    where = f"{path} ({crit.id})"
    problems: list[Problem] = []
    unknown = [n for n in referenced_parameters(text) if n not in values]
    for name in dict.fromkeys(unknown):
        problems.append(Problem(file, where, f"unknown parameter {{{name}}}{_suggest(name, list(values))}"))
    if problems:
        return "", pl.lit(False), problems
    try:
        sql = substitute(text, values)
    except ValueError as exc:
        return "", pl.lit(False), [Problem(file, where, f"bad parameter value: {exc}")]
    try:
        expr = _sql(sql)
    except RuleRefused as exc:
        return "", pl.lit(False), [Problem(file, where, str(exc))]
    except Exception as exc:  # polars raises several SQL error types; all mean "not a valid rule"
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return "", pl.lit(False), [Problem(file, where, f"SQL syntax error: {msg}")]
    names = expr.meta.root_names()
    if reads is not None:
        reads.update(names)
    missing = [c for c in dict.fromkeys(names) if c not in columns]
    for col in missing:
        problems.append(Problem(file, where, f"unknown column {show(col)}{_suggest(col, list(columns))}"))
    if problems:
        return "", pl.lit(False), problems
    try:
        dtype = empty.select(expr.alias("_r")).schema["_r"]
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return "", pl.lit(False), [Problem(file, where, f"cannot be evaluated: {msg}")]
    if dtype != pl.Boolean:
        return "", pl.lit(False), [Problem(file, where, f"must be a true/false expression, got type {dtype}")]
    return sql, expr, []


_DTYPES = {"bool": pl.Boolean, "float": pl.Float64, "int": pl.Int64, "string": pl.String}


def declared_columns(cfg: CriteriaConfig) -> dict[str, pl.DataType]:
    """The contract's cohort columns plus the trial-specific ones the criteria declare (`columns`)."""
    return {**CONTRACT_COLUMNS, **{k: _DTYPES[v] for k, v in cfg.columns.items()}}


COMPILED_CACHE_SIZE = 32
"""Criteria configurations whose compiled rules a process keeps (`check_config`)."""

_compiled_cache: OrderedDict[tuple[str, tuple], tuple[Compiled, ...]] = OrderedDict()
"""(configuration JSON, the (column, type name) pairs its rules read) -> its compiled rules."""
_compiled_lock = threading.Lock()


def check_config(
    cfg: CriteriaConfig,
    columns: Mapping[str, pl.DataType] | None = None,
    where: Callable[[tuple], str] | None = None,
) -> tuple[list[Compiled], list[Problem]]:
    """Compile every criterion and collect every problem (not just the first).

    A configuration that compiles without a problem is kept per process (up to COMPILED_CACHE_SIZE,
    least recently used dropped), keyed on what the rules are compiled from: the configuration's
    content (its JSON, in which 1, 1.0 and true differ) and the type of every cohort column its rules
    (every reading's, active or not) read. Columns no rule reads change nothing (a rule is compiled
    and typed from the columns it names), so the scenario check at load (the declared columns) and
    the candidate source (the cohort's columns) share one compilation. `run` compiles the same
    criteria for its scenario check, candidate source, report's analyses and site plan; after the
    first they get the kept rules. Those are safe to share: `Compiled` and the configuration models
    are frozen, polars expressions are immutable, and each call gets its own list. `where` only names
    files in problems, so it is not part of the key; a configuration with problems is not kept (it is
    checked again, its problems named by that call's `where`)."""
    text = cfg.model_dump_json()
    cols = declared_columns(cfg) if columns is None else columns
    # one lock for every key: a second thread asking for the same criteria waits for the first and
    # takes its result instead of compiling them again beside it (the work holds the GIL anyway)
    with _compiled_lock:
        for (got_text, reads), got in reversed(_compiled_cache.items()):
            if got_text == text and all(c in cols and str(cols[c]) == dtype for c, dtype in reads):
                _compiled_cache.move_to_end((got_text, reads))
                return list(got), []
        used: set[str] = set()
        compiled, problems = _check_config(cfg, cols, where, used)
        if not problems:
            # types by their full name (polars' == takes Datetime and Datetime("ms") as equal)
            _compiled_cache[(text, tuple((c, str(cols[c])) for c in sorted(used)))] = tuple(compiled)
            while len(_compiled_cache) > COMPILED_CACHE_SIZE:
                _compiled_cache.popitem(last=False)
    return compiled, problems


def _check_config(
    cfg: CriteriaConfig,
    columns: Mapping[str, pl.DataType],
    where: Callable[[tuple], str] | None,
    reads: set[str],
) -> tuple[list[Compiled], list[Problem]]:
    where = where or (lambda loc: "criteria")
    empty = pl.DataFrame(schema=dict(columns))
    problems: list[Problem] = []
    names = list(cfg.parameters)
    # Overrides of unknown parameters, and overrides of the wrong type (the rules are then checked with
    # the parameter's own value, so one bad override is one problem, not one per rule that uses it).
    wrong_type: set[str] = set()
    for key, value in cfg.override_values().items():
        loc = ("criteria", "overrides", key)
        if key not in cfg.parameters:
            problems.append(Problem(where(loc), f"criteria.overrides.{key}",
                                    f"unknown parameter {show(key)}{_suggest(key, names)}"))
        elif isinstance(value, str) != isinstance(cfg.parameters[key].value, str) or isinstance(
            value, bool
        ) != isinstance(cfg.parameters[key].value, bool):
            problems.append(Problem(where(loc), f"criteria.overrides.{key}",
                                    f"must be like the parameter's value {show(cfg.parameters[key].value)},"
                                    f" got {show(value)}"))
            wrong_type.add(key)
    # Duplicate ids.
    seen: dict[str, int] = {}
    for i, crit in enumerate(cfg.criterion):
        if crit.id in seen:
            problems.append(Problem(where(("criteria", "criterion", "id")), f"criteria.criterion[{i}].id",
                                    f"duplicate id {show(crit.id)} (also criterion[{seen[crit.id]}])"))
        seen.setdefault(crit.id, i)
    # Readings: every chosen reading is used by a criterion, and every criterion's reading is chosen
    # among the options it defines.
    options: dict[str, set[str]] = {}
    for crit in cfg.criterion:
        if crit.reading is not None:
            options.setdefault(crit.reading, set()).update(crit.rules or {})
    for name in cfg.readings:
        loc = ("criteria", "readings", name)
        if name not in options:
            problems.append(Problem(where(loc), f"criteria.readings.{name}",
                                    f"no criterion depends on reading {show(name)}"
                                    f"{_suggest(name, list(options))}"))
    for i, crit in enumerate(cfg.criterion):
        if crit.reading is None:
            continue
        loc = ("criteria", "criterion")
        choice = cfg.readings.get(crit.reading)
        if choice is None:
            problems.append(Problem(where(loc), f"criteria.criterion[{i}].reading ({crit.id})",
                                    f"reading {show(crit.reading)} is not chosen in [criteria.readings]"))
        elif choice not in (crit.rules or {}):
            problems.append(Problem(where(("criteria", "readings", crit.reading)),
                                    f"criteria.readings.{crit.reading}",
                                    f"must be one of {sorted(crit.rules or {})} (criterion {crit.id}),"
                                    f" got {show(choice)}"))
    # Parameters no rule uses are almost always a misspelling in the rule.
    used = {n for c in cfg.criterion for t in c.all_rules().values() for n in referenced_parameters(t)}
    for name in cfg.parameters:
        if name not in used:
            problems.append(Problem(where(("criteria", "parameters", name)), f"criteria.parameters.{name}",
                                    "no rule uses this parameter"))
    values = {**cfg.values(), **{key: cfg.parameters[key].value for key in wrong_type}}
    compiled: list[Compiled] = []
    for i, crit in enumerate(cfg.criterion):
        loc = ("criteria", "criterion")
        active: tuple[str, pl.Expr] | None = None
        for choice, text in crit.all_rules().items():
            path = f"criteria.criterion[{i}]." + ("rule" if choice == "" else f"rules.{choice}")
            sql, expr, probs = _check_rule(text, crit, path, values, columns, empty, where(loc), reads)
            problems += probs
            is_active = choice == "" or cfg.readings.get(crit.reading or "") == choice
            if is_active and not probs:
                active = (sql, expr)
        if active is not None:
            sql = active[0]
            text = crit.active_rule(cfg.readings)
            compiled.append(Compiled(crit, sql, _pass_expr(crit, sql, _constant_value(sql)),
                                     frozenset(referenced_parameters(text)), rule_columns(sql)))
    # Relaxation menu: every override and reading it names must exist.
    for j, rel in enumerate(cfg.relaxations):
        loc = ("criteria", "relaxations")
        for key, value in rel.overrides.items():
            if key not in cfg.parameters:
                problems.append(Problem(where(loc), f"criteria.relaxations[{j}].overrides.{key} ({rel.id})",
                                        f"unknown parameter {show(key)}{_suggest(key, names)}"))
            elif isinstance(value, str) != isinstance(cfg.parameters[key].value, str):
                problems.append(Problem(where(loc), f"criteria.relaxations[{j}].overrides.{key} ({rel.id})",
                                        f"must be like the parameter's value, got {show(value)}"))
        for key, choice in rel.readings.items():
            if key not in options:
                problems.append(Problem(where(loc), f"criteria.relaxations[{j}].readings.{key} ({rel.id})",
                                        f"unknown reading {show(key)}{_suggest(key, list(options))}"))
            elif choice not in options[key]:
                problems.append(Problem(where(loc), f"criteria.relaxations[{j}].readings.{key} ({rel.id})",
                                        f"must be one of {sorted(options[key])}, got {show(choice)}"))
    ids = [r.id for r in cfg.relaxations]
    for j, rid in enumerate(ids):
        if rid in ids[:j]:
            problems.append(Problem(where(("criteria", "relaxations")), f"criteria.relaxations[{j}].id",
                                    f"duplicate relaxation id {show(rid)}"))
    return compiled, problems


def compile_criteria(
    cfg: CriteriaConfig,
    columns: Mapping[str, pl.DataType] | None = None,
    file: str = "criteria",
) -> Screener:
    """Compile every rule once; raise ConfigError naming the file and criterion id for each problem."""
    compiled, problems = check_config(cfg, columns, lambda loc: file)
    if problems:
        raise ConfigError(problems)
    return Screener(cfg, tuple(compiled), dict(columns) if columns is not None else None)


@dataclass(frozen=True, eq=False)
class Screener:
    """The compiled criteria of one configuration (parameter values and readings fixed)."""

    cfg: CriteriaConfig
    compiled: tuple[Compiled, ...]
    columns: dict[str, pl.DataType] | None = None
    ids: tuple[str, ...] = field(init=False)
    kinds: np.ndarray = field(init=False)
    stages: np.ndarray = field(init=False)
    order: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "ids", tuple(c.crit.id for c in self.compiled))
        set_(self, "kinds", np.array([c.crit.kind for c in self.compiled]))
        set_(self, "stages", np.array([c.crit.stage for c in self.compiled]))
        pre = np.flatnonzero(self.stages == "prescreen")
        post = np.flatnonzero(self.stages != "prescreen")
        set_(self, "order", np.concatenate([pre, post]).astype(np.int64))

    @property
    def exprs(self) -> list[pl.Expr]:
        """Pass expressions, one per criterion in protocol order (aliased by criterion id)."""
        return [c.expr for c in self.compiled]

    @property
    def sql(self) -> list[str]:
        """Active rule texts after parameter substitution."""
        return [c.sql for c in self.compiled]

    def columns_read(self) -> list[tuple[str, ...]]:
        """Per criterion (protocol order), the cohort columns its active rule reads."""
        return [c.columns for c in self.compiled]

    def uses(self, parameter: str) -> list[int]:
        """Indices of the criteria whose active rule names `parameter`."""
        return [i for i, c in enumerate(self.compiled) if parameter in c.params]

    def changed_exprs(
        self, overrides: Mapping[str, ParamValue] | None = None, readings: Mapping[str, str] | None = None
    ) -> dict[int, pl.Expr]:
        """Pass expressions of only the criteria whose rule changes under these overrides/readings.

        Sweeps and the relaxation plan re-evaluate these alone; the other criteria keep their column.
        """
        return {i: self._compiled_expr(i, sql) for i, sql in self.changed_rules(overrides, readings).items()}

    def changed_rules(
        self, overrides: Mapping[str, ParamValue] | None = None, readings: Mapping[str, str] | None = None
    ) -> dict[int, str]:
        """Rule texts (after substitution) of only the criteria whose rule changes under these
        overrides/readings, by criterion index: the same rule asked twice is the same text."""
        # the value's type is part of the key: True == 1, but they substitute as TRUE and 1
        key = (tuple(sorted((k, type(v).__name__, v) for k, v in (overrides or {}).items())),
               tuple(sorted((readings or {}).items())))
        got = self._changed.get(key)
        if got is None:
            got = self._changed[key] = self._changed_rules(overrides, readings)
        return dict(got)

    @cached_property
    def _changed(self) -> dict[tuple, dict[int, str]]:
        return {}

    def _changed_rules(
        self, overrides: Mapping[str, ParamValue] | None, readings: Mapping[str, str] | None
    ) -> dict[int, str]:
        overrides = dict(overrides or {})
        readings = {**self.cfg.readings, **dict(readings or {})}
        values = {**self.cfg.values(), **overrides}
        out: dict[int, str] = {}
        # with the readings as configured only the rules naming an overridden parameter can change
        candidates = (range(len(self.compiled)) if readings != self.cfg.readings
                      else sorted({i for p in overrides for i in self._users.get(p, ())}))
        for i in candidates:
            c = self.compiled[i]
            text = c.crit.active_rule(readings)
            if text == c.crit.active_rule(self.cfg.readings) and not (c.params & overrides.keys()):
                continue
            sql = substitute(text, values)
            if sql != c.sql:
                out[i] = sql
        return out

    @cached_property
    def _users(self) -> dict[str, tuple[int, ...]]:
        users: dict[str, list[int]] = {}
        for i, c in enumerate(self.compiled):
            for p in c.params:
                users.setdefault(p, []).append(i)
        return {p: tuple(v) for p, v in users.items()}

    def rule_columns(self, i: int, sql: str) -> tuple[str, ...]:
        """The cohort columns criterion i's pass expression under rule text `sql` reads."""
        return tuple(dict.fromkeys(self._compiled_expr(i, sql).meta.root_names()))

    @cached_property
    def _variants(self) -> dict[tuple[int, str], pl.Expr]:
        return {}

    def _compiled_expr(self, i: int, sql: str) -> pl.Expr:
        """Pass expression of criterion i under rule text `sql`, compiled once per text (sweeps and the
        relaxation plan ask for the same texts many times)."""
        key = (i, sql)
        expr = self._variants.get(key)
        if expr is None:
            expr = self._variants[key] = _pass_expr(self.compiled[i].crit, sql, _constant_value(sql))
        return expr

    def variant(
        self, overrides: Mapping[str, ParamValue] | None = None, readings: Mapping[str, str] | None = None
    ) -> Screener:
        """The same criteria with other parameter values or readings (sweeps, relaxation plan)."""
        cfg = self.cfg.with_changes(dict(overrides or {}), dict(readings or {}))
        return compile_criteria(cfg, self.columns)

    @cached_property
    def _exprs(self) -> list[pl.Expr]:
        # built once: polars expression objects cost Python time to construct on every call
        return self.exprs

    def evaluate(self, frame: pl.DataFrame | pl.LazyFrame, known: np.ndarray | None = None) -> Screening:
        """Screen a batch of candidates: one polars pass over the frame computes every criterion; the
        failure-pattern keys are then packed from the pass columns' bitmaps with numpy.

        known: (n, k) bool, criterion judged at prescreen on the chart (eligibility/chart.py); None:
        the prescreen-stage criteria, on the true values."""
        # an eager select when given a frame: measured faster than .lazy()...collect() (polars 2.1:
        # 1.5 vs 2.6 ms on 1,024 candidates, 61 vs 80 ms on 1,000,000)
        if isinstance(frame, pl.DataFrame):
            passes = frame.select(self._exprs)
        else:
            passes = frame.select(self._exprs).collect()
        words = fail_words(passes)
        keys = [pl.Series(name, words[:, c]) for c, name in enumerate(key_names(len(self.ids)))]
        return Screening(self.ids, self.kinds, self.stages, passes.hstack(keys), words, known)


_B1, _B2, _B3 = np.uint64(0x00AA00AA00AA00AA), np.uint64(0x0000CCCC0000CCCC), np.uint64(0x00000000F0F0F0F0)
_S7, _S14, _S28 = np.uint64(7), np.uint64(14), np.uint64(28)


def _fail_bitmaps(table: pl.DataFrame, out: np.ndarray) -> None:
    """Each pass column's failures (not pass, null counted as pass as in the frame) as an LSB-first
    bitmap in out[j, :ceil(n/8)]: Arrow's Boolean data buffer is already one, inverted as it is copied
    (`bits.read_boolean_columns`); a column it cannot read is packed from its values."""
    done = read_boolean_columns(table, out, invert=True)
    for j, col in enumerate(table.get_columns()):
        if not done[j]:
            out[j, : (table.height + 7) // 8] = np.packbits(~col.fill_null(True).to_numpy().astype(bool),
                                                              bitorder="little")


def fail_words(table: pl.DataFrame) -> np.ndarray:
    """Failure pattern of every row of a frame of Boolean pass columns, as (n, ceil(k/64)) uint64 words:
    bit j of word c is set when the row fails column 64c+j.

    A bit-matrix transpose of the columns' bitmaps (k bitmaps of n bits -> n rows of k bits), done on
    8x8 bit blocks held in one uint64 each, with the three mask-shift-xor steps of Warren, Hacker's
    Delight (2nd ed., 2012), section 7-3. Much cheaper than materialising an (n, k) bool matrix.
    """
    n, k = table.height, table.width
    w = (k + KEY_BITS - 1) // KEY_BITS
    if n == 0 or k == 0:
        return np.zeros((n, w), dtype=np.uint64)
    g, nb = (k + 7) // 8, (n + 7) // 8
    bitmaps = np.zeros((g * 8, nb), dtype=np.uint8)  # rows past k stay 0: no failure
    _fail_bitmaps(table, bitmaps)
    # block (group of 8 columns, byte of 8 rows) as a uint64: byte m holds column m's 8 row bits
    x = bitmaps.reshape(g, 8, nb).transpose(0, 2, 1).copy().view("<u8")[..., 0]
    t = (x ^ (x >> _S7)) & _B1
    x = x ^ t ^ (t << _S7)
    t = (x ^ (x >> _S14)) & _B2
    x = x ^ t ^ (t << _S14)
    t = (x ^ (x >> _S28)) & _B3
    x = x ^ t ^ (t << _S28)
    # now byte r of block (group, row byte) holds row 8*rowbyte + r's bits for the group's 8 columns
    rows = np.zeros((nb * 8, w * 8), dtype=np.uint8)
    rows[:, :g] = x.view(np.uint8).reshape(g, nb * 8).T
    return rows[:n].view("<u8").astype(np.uint64, copy=False)


def pack_failures(passes: np.ndarray) -> np.ndarray:
    """`fail_words` of an (n, k) bool pass matrix."""
    passes = np.asarray(passes, dtype=bool)
    n, k = passes.shape
    w = (k + KEY_BITS - 1) // KEY_BITS
    padded = np.zeros((n, w * KEY_BITS), dtype=bool)
    padded[:, :k] = ~passes
    return np.packbits(padded, axis=1, bitorder="little").view("<u8").astype(np.uint64, copy=False)


def pattern_key_exprs(pass_cols: Sequence[pl.Expr]) -> list[pl.Expr]:
    """Failure pattern as UInt64 bit sets (bit j of `_key{c}` = fails criterion 64c+j), as polars
    expressions (a balanced OR tree; `fail_words` computes the same words faster from a frame).

    Every figure of restrictiveness is computed from the (few thousand) distinct patterns instead of
    the rows.
    """
    out = []
    for c in range(0, len(pass_cols), KEY_BITS):
        bits = [
            pl.when(p).then(pl.lit(0, dtype=pl.UInt64)).otherwise(pl.lit(1 << (j - c), dtype=pl.UInt64))
            for j, p in enumerate(pass_cols[c : c + KEY_BITS], start=c)
        ]
        while len(bits) > 1:
            bits = [bits[i] | bits[i + 1] if i + 1 < len(bits) else bits[i] for i in range(0, len(bits), 2)]
        out.append(bits[0].alias(f"_key{c // KEY_BITS}"))
    return out


def key_names(k: int) -> list[str]:
    return [f"_key{c}" for c in range((k + KEY_BITS - 1) // KEY_BITS)]


def bitmask(indices: Sequence[int], k: int) -> list[int]:
    """Per key column, the mask with bits set for the given criterion indices."""
    masks = [0] * len(key_names(k))
    for i in indices:
        masks[i // KEY_BITS] |= 1 << (i % KEY_BITS)
    return masks


@dataclass(frozen=True)
class Patterns:
    """Distinct failure patterns: `fails` (u, k) bool and how many candidates have each, `count` (u,);
    `outcome` (u,) the prescreen outcome (chart.PASS / FAIL / UNKNOWN) the pattern's candidates share
    (candidates with one failure pattern but different prescreen outcomes are different patterns)."""

    fails: np.ndarray
    count: np.ndarray
    outcome: np.ndarray | None = None
    words: np.ndarray | None = None
    """`fails` packed as (u, ceil(k/64)) uint64 words (`bits.pack_rows`), when the grouping has them."""

    @cached_property
    def packed(self) -> np.ndarray:
        """`fails` as (u, ceil(k/64)) uint64 words: `words`, else packed once."""
        return pack_rows(self.fails) if self.words is None else self.words

    @cached_property
    def failed(self) -> np.ndarray:
        """(u,) int: criteria each pattern fails (made once)."""
        return self.fails.sum(axis=1)

    @cached_property
    def fails_float(self) -> np.ndarray:
        """`fails` as float64 0/1, the operand of the figures' matrix products (made once)."""
        return self.fails.astype(np.float64)

    def prescreen_pass(self, prescreen: np.ndarray) -> np.ndarray:
        """(u,) bool: the pattern's candidates go on to consent (without `outcome`: they fail none of
        the criteria `prescreen`, the indices of the prescreen-stage criteria)."""
        if self.outcome is None:
            return ~self.fails[:, prescreen].any(axis=1)
        return self.outcome != FAIL

    def prescreen_unknown(self) -> np.ndarray:
        """(u,) bool: the pattern's candidates go on to consent with a prescreen criterion unknown."""
        if self.outcome is None:
            return np.zeros(self.count.shape, dtype=bool)
        return self.outcome == UNKNOWN


@dataclass(frozen=True, eq=False)
class Screening:
    """Result of screening a batch. Arrays are numpy; criteria columns are in protocol order.

    `passes` (n, k) bool; `prescreen_pass`, `eligible` (n,) bool; `first_failure` (n,) int index into
    `ids` or -1, looking at prescreen criteria first, then screening criteria, each in protocol order.
    The row arrays are built on first use; restrictiveness figures need only `patterns`.
    """

    ids: tuple[str, ...]
    kinds: np.ndarray
    stages: np.ndarray
    table: pl.DataFrame
    """Pass columns (criterion ids) and failure-pattern keys (`_key0`, ...), one row per candidate."""
    words: np.ndarray | None = None
    """The `_key` columns as an (n, ceil(k/64)) uint64 array, when the caller has them already."""
    known: np.ndarray | None = None
    """(n, k) bool: criterion judged at prescreen on the values in the chart; None: the prescreen-stage
    criteria, on the true values (the model without chart review)."""

    @classmethod
    def from_matrix(
        cls, passes: np.ndarray, ids: Sequence[str], kinds: Sequence[str], stages: Sequence[str],
        known: np.ndarray | None = None,
    ) -> Screening:
        """A Screening from a hand-made pass matrix (tests, replayed matrices)."""
        passes = np.asarray(passes, dtype=bool)
        if passes.ndim != 2 or passes.shape[1] != len(ids):
            raise ValueError(f"passes must be (n, {len(ids)}), got {passes.shape}")
        frame = pl.DataFrame({i: passes[:, j] for j, i in enumerate(ids)},
                             schema=dict.fromkeys(ids, pl.Boolean))
        words = pack_failures(passes)
        table = frame.hstack([pl.Series(name, words[:, c]) for c, name in enumerate(key_names(len(ids)))])
        return cls(tuple(ids), np.asarray(kinds), np.asarray(stages), table, words,
                   None if known is None else np.asarray(known, dtype=bool))

    @property
    def n(self) -> int:
        return self.table.height

    @property
    def k(self) -> int:
        return len(self.ids)

    @cached_property
    def order(self) -> np.ndarray:
        pre = np.flatnonzero(self.stages == "prescreen")
        return np.concatenate([pre, np.flatnonzero(self.stages != "prescreen")]).astype(np.int64)

    @cached_property
    def passes(self) -> np.ndarray:
        if self.n == 0:
            return np.zeros((0, self.k), dtype=bool)
        # unpacked from the keys: one numpy call instead of one conversion per polars column
        fails = np.unpackbits(self._keys().astype("<u8", copy=False).view(np.uint8), axis=1,
                              count=self.k, bitorder="little")
        return fails == 0

    def passes_of(self, start: int, stop: int) -> np.ndarray:
        """Rows start:stop of `passes`, unpacked from the keys without materialising the whole matrix."""
        keys = self._keys()[start:stop]
        if keys.shape[0] == 0:
            return np.zeros((0, self.k), dtype=bool)
        fails = np.unpackbits(keys.astype("<u8", copy=False).view(np.uint8), axis=1, count=self.k,
                              bitorder="little")
        return fails == 0

    def _keys(self) -> np.ndarray:
        if self.words is not None:
            return self.words
        keys = self.table.select(key_names(self.k)).to_numpy()
        return keys.astype(np.uint64, copy=False).reshape(self.n, -1)

    def _mask_clear(self, indices: Sequence[int]) -> np.ndarray:
        keys = self._keys()
        masks = np.array(bitmask(indices, self.k), dtype=np.uint64)
        return ((keys & masks) == 0).all(axis=1)

    @cached_property
    def eligible(self) -> np.ndarray:
        return (self._keys() == 0).all(axis=1)

    @cached_property
    def known_at_prescreen(self) -> np.ndarray:
        """(n, k) bool: criterion judged at prescreen (chart review)."""
        if self.known is not None:
            if self.known.shape != (self.n, self.k):
                raise ValueError(f"known must be ({self.n}, {self.k}), got {self.known.shape}")
            return self.known
        return np.broadcast_to(self.stages == "prescreen", (self.n, self.k))

    @cached_property
    def known_words(self) -> np.ndarray | None:
        """`known` packed like the failure keys, (n, ceil(k/64)) uint64: bit j of word c set when
        criterion 64c+j is judged at prescreen; None without a chart model."""
        if self.known is None:
            return None
        return pack_rows(self.known_at_prescreen)

    @cached_property
    def fail_columns(self) -> np.ndarray:
        """(k, bitmap_bytes(n)) uint8: each criterion's failures as an LSB-first bitmap over the
        candidates (bit r = candidate r fails; bits past n are 0), read from the pass columns'
        Arrow buffers."""
        out = np.zeros((self.k, bitmap_bytes(self.n)), dtype=np.uint8)
        if self.n:
            _fail_bitmaps(self.table.select(self.ids), out)
            out &= valid_bitmap(self.n)
        return out

    @cached_property
    def known_columns(self) -> np.ndarray | None:
        """(k, bitmap_bytes(n)) uint8: each criterion's `known` (judged at prescreen) as a bitmap over
        the candidates, like `fail_columns`; None without a chart model."""
        if self.known is None:
            return None
        return column_bitmaps(self.known_at_prescreen)

    @cached_property
    def _prescreen_bitmaps(self) -> tuple[np.ndarray, np.ndarray]:
        """Bitmaps over the candidates (bits past n are 0): passes prescreen (no criterion both failed
        and known), and some prescreen-stage criterion unknown. Criterion by criterion on the column
        bitmaps, never on an (n, k) bool matrix."""
        valid = valid_bitmap(self.n).view(np.uint64)
        fails, known = self.fail_columns.view(np.uint64), self.known_columns.view(np.uint64)
        removed = np.zeros_like(valid)
        unknown = np.zeros_like(valid)
        for c in range(self.k):
            removed |= fails[c] & known[c]
            if self.stages[c] == "prescreen":
                unknown |= ~known[c]
        return (valid & ~removed).view(np.uint8), (valid & unknown).view(np.uint8)

    def _unpacked(self, bitmap: np.ndarray) -> np.ndarray:
        return np.unpackbits(bitmap, count=self.n, bitorder="little").view(bool)

    @cached_property
    def prescreen_pass(self) -> np.ndarray:
        if self.known is None:
            return self._mask_clear(np.flatnonzero(self.stages == "prescreen"))
        return self._unpacked(self._prescreen_bitmaps[0])

    @cached_property
    def prescreen_outcome(self) -> np.ndarray:
        """(n,) int8: chart.PASS (every prescreen-stage criterion judged and passed), FAIL (a criterion
        fails on known values), UNKNOWN (no known failure, some prescreen-stage criterion unknown)."""
        out = np.where(self.prescreen_pass, PASS, FAIL).astype(np.int8)
        if self.known is not None:
            passed, unknown = self._prescreen_bitmaps
            out[self._unpacked(passed & unknown)] = UNKNOWN
        return out

    @cached_property
    def unknown_at_prescreen_rate(self) -> np.ndarray:
        """(k,) share of candidates for whom the criterion is not judged at prescreen (1 for
        screening-stage criteria, which are judged after consent whatever the chart holds)."""
        if self.n == 0 or self.known is None:
            return np.where(self.stages == "prescreen", 0.0, 1.0)
        # count / n is the mean of the 0/1 column exactly (integer sums below 2**53 are exact)
        return 1.0 - np.array([popcount(row) for row in self.known_columns], dtype=np.float64) / self.n

    @cached_property
    def first_failure(self) -> np.ndarray:
        if self.n == 0:
            return np.zeros(0, dtype=np.int64)
        fails = ~self.passes[:, self.order]
        first = fails.argmax(axis=1)
        return np.where(fails.any(axis=1), self.order[first], -1).astype(np.int64)

    @cached_property
    def patterns(self) -> Patterns:
        names = key_names(self.k)
        table = self.table.select(names)
        # the prescreen outcome (0..2) rides in the two spare top bits of the last key word when it
        # has them: (last << 2) | outcome sorts as (last, outcome), one grouping column fewer
        packed = self.known is not None and 0 < self.k % KEY_BITS <= KEY_BITS - 2
        if packed:
            last = self._keys()[:, -1] << np.uint64(2) | self.prescreen_outcome.astype(np.uint64)
            table = table.with_columns(pl.Series(names[-1], last))
        elif self.known is not None:
            names = [*names, "_prescreen"]
            table = table.with_columns(pl.Series("_prescreen", self.prescreen_outcome))
        # lazy: measured 3x faster than the eager group_by (polars 2.1, 1,000,000 rows, 57,793 groups);
        # then sorted by the grouping columns, first to last, with numpy on the groups: cheaper than
        # polars' sort of them; every group differs, so the order is the one that sort gives
        grouped = table.lazy().group_by(names).agg(pl.len().alias("_n")).collect()
        order = np.lexsort([grouped[c].to_numpy() for c in reversed(names)])
        grouped = grouped[order]
        keys = grouped.select(key_names(self.k)).to_numpy().astype(np.uint64).reshape(
            grouped.height, len(key_names(self.k)))  # (0, w) for an empty batch, not an error
        if packed:
            outcome = (keys[:, -1] & np.uint64(3)).astype(np.int8)
            keys[:, -1] >>= np.uint64(2)
        bit = np.arange(self.k)
        fails = ((keys[:, bit // KEY_BITS] >> (bit % KEY_BITS).astype(np.uint64)) & np.uint64(1)).astype(bool)
        if not packed:
            outcome = (grouped["_prescreen"].to_numpy().astype(np.int8) if self.known is not None else
                       np.where(fails[:, self.stages == "prescreen"].any(axis=1), FAIL, PASS).astype(np.int8))
        return Patterns(fails, grouped["_n"].to_numpy().astype(np.int64), outcome, keys)

    def matrix_frame(self, patient_id: np.ndarray | pl.Series | None = None) -> pl.DataFrame:
        """`patient_id` + one Boolean column per criterion (pass_matrix.parquet)."""
        pid = pl.Series("patient_id", np.arange(self.n) if patient_id is None else patient_id, dtype=pl.Int64)
        return self.table.select(self.ids).insert_column(0, pid)
