"""What a chart holds before consent: pass / fail / unknown at chart review (prescreen).

Which values a site has in the chart before the patient consents is a property of the site's process,
not of the trial. `[chart_review]` gives, per site type, the probability that a cohort column's value is
known at prescreen. Columns a single test reports together (a blood count gives Hb, WBC and platelets)
form a `panel`: the panel is known or unknown as a whole. Every other column is its own unit.

At prescreen each criterion is judged on the known values only:

- a criterion of `stage = "prescreen"` whose active rule reads only known columns is judged on them
  (pass or fail). The columns a rule reads are derived from the compiled rule (`polars`
  `meta.root_names`), never listed by hand, so any trial's criteria written as data work unchanged; a
  rule that reads no column is always known;
- if it reads an unknown column, it is still judged when the known values decide it whatever the
  unknown ones are (Kleene's three-valued logic, as SQL evaluates NULL: `hbsag_positive AND
  hbv_dna >= x` is false for an HBsAg-negative candidate whose HBV DNA is not in the chart; `troponin
  <= ULN OR lvef IS NOT NULL` is true for a normal troponin before any echocardiogram). The rule is
  evaluated on the chart, unknown values set to NULL and `col IS [NOT] NULL` of an unknown column made
  NULL too; a non-NULL result is the rule's value for every possible unknown value, so it is the true
  verdict. Rules with other NULL-sensitive constructs (COALESCE, CASE, ...), and rules reading a single
  panel or column (all their inputs are unknown together), are judged only when every value they read
  is known. Otherwise the criterion is "unknown";
- a criterion of `stage = "screening"` is judged only after consent, whatever the chart holds (the
  patient's agreement to contraception, a pregnancy test in the week before the first dose, the
  investigator's judgement): it is unknown at prescreen by definition;
- the candidate fails prescreen when some criterion fails on known values, and otherwise goes on to
  consent and screening, where the true values decide. A candidate who passes with at least one
  prescreen-stage criterion unknown is "unknown"; one judged on every prescreen-stage criterion is a
  "pass".

Without a `[chart_review]` section every value is known at prescreen, which is the model before
chart review existed (prescreen = the prescreen-stage criteria on the true values).

Random draws: unit u is known for candidate j when U_uj < p_u, with the uniforms of unit u from its own
generator, a child of the named stream "chart" of the replicate (and site, in the recruitment
simulation) keyed by the CRC-32 of the unit's name. A unit's draws therefore do not depend on the
other units, the criteria, or the probabilities (common random numbers across scenarios), nor on the
number of workers.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from hn005_sim.recruitment.seeding import generators
from hn005_sim.rng import STREAMS
from hn005_sim.scenario.base import Probability, Strict
from hn005_sim.scenario.errors import Problem, show

if TYPE_CHECKING:
    from hn005_sim.eligibility.engine import Screener

PASS, FAIL, UNKNOWN = 0, 1, 2
"""Prescreen outcome of a candidate."""
OUTCOME_NAMES = ("pass", "fail", "unknown")


class Panel(Strict):
    """Columns reported by one test or one assessment: known or unknown together."""

    columns: list[str] = Field(min_length=1)
    description: str = ""


class SiteType(Strict):
    """A kind of site (its admission routine, where its patients come from) and what its charts hold."""

    description: str = ""
    default: Probability | None = Field(
        default=None, description="probability for a panel or column this site type does not name "
        "(default: chart_review.default)")
    known: dict[str, Probability] = Field(
        default_factory=dict, description="panel or column -> probability that it is known at prescreen "
        "(on top of chart_review.known)")


class ChartReviewConfig(Strict):
    """`[chart_review]`: the probability that a value is in the chart before consent, per site type."""

    site_type: str = Field(min_length=1, description="site type of `screen` and of regions that name none")
    default: Probability = Field(description="probability for a panel or column nothing names")
    panels: dict[str, Panel] = Field(default_factory=dict)
    known: dict[str, Probability] = Field(
        default_factory=dict, description="panel or column -> probability, shared by every site type")
    site_types: dict[str, SiteType] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self):
        if self.site_type not in self.site_types:
            raise ValueError(f"site_type {show(self.site_type)} is not one of the site_types "
                             f"{sorted(self.site_types)}")
        owner: dict[str, str] = {}
        for name, panel in self.panels.items():
            for col in panel.columns:
                if col in owner:
                    raise ValueError(f"column {show(col)} is in two panels ({owner[col]}, {name})")
                owner[col] = name
        clash = sorted(set(self.panels) & set(owner))
        if clash:
            raise ValueError(f"a panel cannot be named like a column: {', '.join(clash)}")
        return self

    def panel_of(self) -> dict[str, str]:
        """Column -> the panel it belongs to."""
        return {c: name for name, p in self.panels.items() for c in p.columns}

    def probability(self, unit: str, site_type: str | None = None,
                    overrides: Mapping[str, Probability] | None = None) -> float:
        """P(unit known at prescreen) at a site of this type, after a region's own overrides."""
        st = self.site_types[site_type or self.site_type]
        for table in (overrides or {}, st.known, self.known):
            if unit in table:
                return table[unit].value
        return (st.default or self.default).value


def check_chart_review(cfg: ChartReviewConfig, regions: Sequence | None, columns: Sequence[str],
                       where) -> list[Problem]:
    """Names in [chart_review] and in the regions' `site_type` / `chart_known` that do not exist."""
    problems: list[Problem] = []
    cols = set(columns)
    panels = set(cfg.panels)
    for name, panel in cfg.panels.items():
        for col in panel.columns:
            if col not in cols:
                loc = ("chart_review", "panels", name, "columns")
                problems.append(Problem(where(loc), f"chart_review.panels.{name}.columns",
                                        f"unknown column {show(col)}"))

    panel_of = cfg.panel_of()

    def names(table: Mapping[str, Probability], loc: tuple, path: str) -> None:
        for key in table:
            if key not in cols and key not in panels:
                problems.append(Problem(where((*loc, key)), f"{path}.{key}",
                                        "neither a cohort column nor a panel of chart_review.panels"))
            elif key in panel_of:
                problems.append(Problem(where((*loc, key)), f"{path}.{key}",
                                        f"column {show(key)} is in panel {show(panel_of[key])}: "
                                        "give the panel's probability"))

    names(cfg.known, ("chart_review", "known"), "chart_review.known")
    for st_name, st in cfg.site_types.items():
        names(st.known, ("chart_review", "site_types", st_name, "known"),
              f"chart_review.site_types.{st_name}.known")
    for i, region in enumerate(regions or ()):
        site_type = getattr(region, "site_type", None)
        if site_type is not None and site_type not in cfg.site_types:
            loc = ("recruitment", "regions", i, "site_type")
            problems.append(Problem(where(loc), f"recruitment.regions[{i}].site_type",
                                    f"must be one of chart_review.site_types {sorted(cfg.site_types)}, "
                                    f"got {show(site_type)}"))
        over = getattr(region, "chart_known", None) or {}
        names(over, ("recruitment", "regions", i, "chart_known"), f"recruitment.regions[{i}].chart_known")
    return problems


def unit_generator(seed: int, replicate: int, unit: str, site: int | tuple[int, ...] | None = None
                   ) -> np.random.Generator:
    """The generator of one chart unit: child of the replicate's (site's) named stream "chart"; `site`
    an index or a Site.stream_key, as the site's other streams."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(
        entropy=seed, spawn_key=_unit_key(replicate, unit, site))))


def _unit_key(replicate: int, unit: str, site: int | tuple[int, ...] | None = None) -> tuple[int, ...]:
    """The spawn key of a chart unit's generator (`unit_generator`)."""
    site_key = () if site is None else (site,) if isinstance(site, int) else tuple(site)
    return (replicate, STREAMS.index("chart"), *site_key, zlib.crc32(unit.encode()))


_QUOTED = re.compile(r"'(?:[^']|'')*'")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IS_NULL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s+IS\s+(NOT\s+)?NULL\b", re.IGNORECASE)
_NULL_SAFE = {"AND", "OR", "NOT", "IN", "BETWEEN", "TRUE", "FALSE", "FLOOR", "CEIL", "CEILING", "ABS"}
"""SQL words under which a non-NULL result on NULL inputs is the result for any value of them."""
KNOWN_PREFIX = "_chart_known_"


def decided_sql(sql: str, columns: Sequence[str]) -> str | None:
    """The rule as the chart shows it, NULL where an unknown value could change it: every reference
    to a column `col` becomes `(CASE WHEN _chart_known_col THEN col END)` (the value, or NULL when
    it is not in the chart), and `col IS [NOT] NULL` becomes `(CASE WHEN _chart_known_col THEN col IS
    [NOT] NULL END)`. None when the rule uses a word outside `_NULL_SAFE` and its columns
    (three-valued logic would not tell)."""
    cols = set(columns)
    pieces: list[tuple[str, bool]] = []
    last = 0
    for m in _QUOTED.finditer(sql):
        pieces += [(sql[last:m.start()], False), (m.group(0), True)]
        last = m.end()
    pieces.append((sql[last:], False))
    tests: list[str] = []  # IS [NOT] NULL tests, held aside while the other references are wrapped

    def hold(m: re.Match) -> str:
        if m.group(1) not in cols:
            return m.group(0)
        tests.append(f"(CASE WHEN {KNOWN_PREFIX}{m.group(1)} THEN {m.group(0)} END)")
        return f"\x00{len(tests) - 1}\x00"

    def wrap(m: re.Match) -> str:
        word = m.group(0)
        return f"(CASE WHEN {KNOWN_PREFIX}{word} THEN {word} END)" if word in cols else word

    out: list[str] = []
    for text, quoted in pieces:
        if quoted:
            out.append(text)
            continue
        bare = _IS_NULL.sub(lambda m: " " if m.group(1) in cols else m.group(0), text)
        if any(w not in cols and w.upper() not in _NULL_SAFE for w in _WORD.findall(bare)):
            return None
        out.append(_WORD.sub(wrap, _IS_NULL.sub(hold, text)))
    return re.sub("\x00(\\d+)\x00", lambda m: tests[int(m.group(1))], "".join(out))


@dataclass(frozen=True)
class ChartModel:
    """The chart-review model of one screener: which units each criterion reads.

    `units` are the panels and single columns read by some prescreen-stage criterion, sorted by name;
    `reads[i]` the indices (into `units`) that criterion i reads; `decided[i]` the expression that is
    non-NULL when the known values decide criterion i (None: judged only when all it reads is known).
    """

    cfg: ChartReviewConfig | None
    stages: np.ndarray
    units: tuple[str, ...]
    reads: tuple[tuple[int, ...], ...]
    columns: tuple[tuple[str, ...], ...] = ()
    decided: tuple[pl.Expr | None, ...] = ()
    unit_of: dict[str, int] | None = None

    @classmethod
    def build(cls, cfg: ChartReviewConfig | None, screener: Screener) -> ChartModel:
        panel_of = cfg.panel_of() if cfg is not None else {}
        stages = np.asarray(screener.stages)
        reads = screener.columns_read()
        per_crit = [sorted({panel_of.get(c, c) for c in cols}) if stages[i] == "prescreen" else []
                    for i, cols in enumerate(reads)]
        units = tuple(sorted({u for us in per_crit for u in us}))
        index = {u: j for j, u in enumerate(units)}
        decided: list[pl.Expr | None] = []
        for i, (cols, sql) in enumerate(zip(reads, screener.sql, strict=True)):
            # a rule over one unit has every input unknown when the unit is: it could be decided only
            # if it did not depend on its inputs, so three-valued logic is asked only of the others
            text = decided_sql(sql, cols) if stages[i] == "prescreen" and len(per_crit[i]) > 1 else None
            decided.append(None if text is None else pl.sql_expr(text).is_not_null().alias(f"_d{i}"))
        unit_of = {c: index[panel_of.get(c, c)] for i, cols in enumerate(reads) if stages[i] == "prescreen"
                   for c in cols}
        return cls(cfg, stages, units, tuple(tuple(index[u] for u in us) for us in per_crit),
                   tuple(reads), tuple(decided), unit_of)

    def probabilities(self, site_type: str | None = None,
                      overrides: Mapping[str, Probability] | None = None) -> np.ndarray:
        if self.cfg is None:
            return np.ones(len(self.units))
        return np.array([self.cfg.probability(u, site_type, overrides) for u in self.units])

    def generators(self, seed: int, replicate: int, site: int | tuple[int, ...] | None = None
                   ) -> list[np.random.Generator]:
        """`unit_generator` of each unit, seeded together (recruitment/seeding.py: the same generators)."""
        return self.generators_many(seed, replicate, [site])[0]

    def generators_many(self, seed: int, replicate: int, sites: Sequence[int | tuple[int, ...] | None]
                        ) -> list[list[np.random.Generator]]:
        """`generators` of each site, every site's units seeded in one computation."""
        gens = generators(seed, [k for site in sites for k in self.unit_keys(replicate, site)])
        k = len(self.units)
        return [gens[i * k:(i + 1) * k] for i in range(len(sites))]

    def unit_keys(self, replicate: int, site: int | tuple[int, ...] | None = None) -> list[tuple[int, ...]]:
        """The spawn keys of `generators(seed, replicate, site)`, in unit order."""
        return [_unit_key(replicate, u, site) for u in self.units]

    def criteria_known(self, unit_known: np.ndarray) -> np.ndarray:
        """(n, k) bool, criterion judged at prescreen, from (n, units) bool unit knowledge."""
        n = unit_known.shape[0]
        out = np.zeros((n, len(self.reads)), dtype=bool)
        for i, us in enumerate(self.reads):
            if self.stages[i] != "prescreen":
                continue
            out[:, i] = unit_known[:, list(us)].all(axis=1) if us else True
        return out

    def decide(self, frame: pl.DataFrame, unit_known: np.ndarray, known: np.ndarray) -> np.ndarray:
        """`known`, plus the criteria the known values decide although they read an unknown value."""
        todo = [i for i, e in enumerate(self.decided) if e is not None and not known[:, i].all()]
        if not todo or frame.height == 0:
            return known
        cols = list(dict.fromkeys(c for i in todo for c in self.columns[i]))
        assert self.unit_of is not None
        # one polars pass: the known-flags beside the values, every rule reads them through CASE WHEN
        flags = [pl.Series(KNOWN_PREFIX + c, unit_known[:, self.unit_of[c]]) for c in cols]
        chart = pl.DataFrame([frame.get_column(c) for c in cols] + flags)
        decided = chart.select([self.decided[i] for i in todo]).to_numpy().astype(bool)
        known = known.copy()
        known[:, todo] |= decided
        return known

    def draw(self, generators: Sequence[np.random.Generator], probabilities: np.ndarray,
             frame: pl.DataFrame) -> np.ndarray | None:
        """Criteria known at prescreen for the candidates of `frame` (the next frame.height draws of
        each unit); None without a [chart_review] model (then the engine judges every prescreen-stage
        criterion on the true values)."""
        if self.cfg is None:
            return None
        n = frame.height
        unit_known = np.empty((n, len(self.units)), dtype=bool)
        for j, (gen, p) in enumerate(zip(generators, probabilities, strict=True)):
            unit_known[:, j] = gen.random(n) < p
        return self.decide(frame, unit_known, self.criteria_known(unit_known))


@dataclass
class SiteChart:
    """The chart draws of one site (or of the `screen` cohort): generators kept across batches."""

    model: ChartModel
    probabilities: np.ndarray
    generators: list[np.random.Generator]

    def draw(self, frame: pl.DataFrame) -> np.ndarray | None:
        return self.model.draw(self.generators, self.probabilities, frame)

    def draw_units(self, n: int) -> np.ndarray | None:
        """The first half of `draw` for the next n candidates: (n, units) bool, the unit is in the
        chart (the same draws as `draw`); None without a [chart_review] model. `ChartModel.decide`
        then turns them into criteria known, row by row (so batches can be decided together)."""
        if self.model.cfg is None:
            return None
        unit_known = np.empty((n, len(self.model.units)), dtype=bool)
        for j, (gen, p) in enumerate(zip(self.generators, self.probabilities, strict=True)):
            unit_known[:, j] = gen.random(n) < p
        return unit_known
