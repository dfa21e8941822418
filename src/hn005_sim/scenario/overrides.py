"""`--set dotted.key=v1,v2`: override a scenario's values before validation, and expand a sweep grid.

Values are TOML literals (`5`, `0.8`, `true`, `2024-01-01`, `"text"`, `[1, 2]`, `{dist = "constant",
value = 3}`), parsed by `tomllib`, never evaluated; a bare word (`analytic`) is taken as a string. Several
`--set` options make a grid: the cartesian product of their values, in the order given, the last key
varying fastest. The overridden scenario goes through the same validation as a file, and a problem with an
overridden key is reported against `--set` (`--set: sites.cnt: unknown key`).

A few keys users expect have aliases (ALIASES) onto the real config keys.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hn005_sim.scenario.errors import ConfigError, Problem, dotted, show
from hn005_sim.scenario.load import RawScenario, read_raw, validate_raw

SOURCE = "--set"
"""What problems with an overridden key name as their file."""

MAX_GRID_POINTS = 1_000
"""A larger grid is almost certainly a typo (and would take days); refused before any work. Each point
is validated before any simulation (about 20 ms each), and a sweep also keeps grid points x --replicates
within guards.MAX_REPLICATES."""

@dataclass(frozen=True)
class Alias:
    """A key users expect, the real config key it sets, and keys that must go with it."""

    real: str
    drop: tuple[str, ...] = ()
    note: str = ""


ALIASES: dict[str, Alias] = {
    "sites.count": Alias(
        "recruitment.regions[0].sites",
        drop=("recruitment.regions[0].site_names", "recruitment.regions[0].max_sites"),
        note="sites of the first region, each like its configured ones; their names become REGION-1, "
        "REGION-2, ... and its max_sites bound is lifted",
    ),
}
"""User-facing key -> real config key (docs/scale.md lists them). Besides these, `criteria.NAME` sets the
threshold parameter NAME (the criteria section's own shortcut), and is redirected to
`criteria.overrides.NAME` when the scenario already overrides NAME there."""

_SEGMENT = re.compile(r"^([A-Za-z0-9_-]+)((?:\[\d+\])*)$")
_BARE_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:/+-]*$")

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Override:
    """One `--set KEY=V1,V2,...`: the key as typed, its real path in the config, and its values."""

    key: str
    path: Path_
    values: tuple[Any, ...]


@dataclass(frozen=True)
class GridPoint:
    """One scenario of a sweep: the overridden values (by key as typed) and the validated scenario."""

    index: int
    values: dict[str, Any]
    scenario: Any
    raw: RawScenario


def parse_key(key: str) -> Path_:
    """'sites.regions[1].rate_mean' -> ('sites', 'regions', 1, 'rate_mean'), after ALIASES."""
    real = ALIASES[key].real if key in ALIASES else key
    out: list[str | int] = []
    for segment in real.split("."):
        m = _SEGMENT.match(segment)
        if not m:
            raise ConfigError.one(SOURCE, key, "expected a dotted key such as trial.target_enrolled "
                                  "or sites.regions[0].rate_mean")
        out.append(m.group(1))
        out.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return tuple(out)


def parse_values(key: str, text: str) -> tuple[Any, ...]:
    """'5,10,20' -> (5, 10, 20): comma-separated TOML literals, or bare words taken as strings."""
    if "\n" in text or "\r" in text:
        raise ConfigError.one(SOURCE, key, "values must be on one line")
    try:
        values = tomllib.loads(f"v = [{text}]")["v"]
    except tomllib.TOMLDecodeError:
        values = [_one_value(key, item.strip()) for item in _split_top_level(text)]
    if not values:
        raise ConfigError.one(SOURCE, key, "no value given; expected KEY=VALUE[,VALUE...]")
    return tuple(values)


def _one_value(key: str, item: str) -> Any:
    try:
        return tomllib.loads(f"v = {item}")["v"]
    except tomllib.TOMLDecodeError:
        if _BARE_WORD.match(item):
            return item
        raise ConfigError.one(SOURCE, key, f"cannot read value {show(item)}: expected a TOML value "
                              '(number, true/false, date, "string", [list] or {table})') from None


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside quotes, brackets and braces."""
    items, depth, quote, start = [], 0, "", 0
    for i, c in enumerate(text):
        if quote:
            quote = "" if c == quote else quote
        elif c in "\"'":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return items


def parse_set(text: str) -> Override:
    """'sites.count=5,10,20' -> Override('sites.count', <real path>, (5, 10, 20))."""
    key, eq, values = text.partition("=")
    key = key.strip()
    if not eq or not key:
        raise ConfigError.one(SOURCE, text, "expected KEY=VALUE[,VALUE...], e.g. trial.deadline_months=24,36")
    return Override(key, parse_key(key), parse_values(key, values.strip()))


def parse_sets(texts: list[str]) -> list[Override]:
    overrides = [parse_set(t) for t in texts]
    seen: dict[Path_, str] = {}
    for o in overrides:
        if o.path in seen:
            raise ConfigError.one(SOURCE, o.key, f"given twice (also as {seen[o.path]})")
        seen[o.path] = o.key
    return overrides


def apply(raw: RawScenario, assignments: list[tuple[str, Path_, Any]]) -> RawScenario:
    """A copy of `raw` with each (key as typed, path, value) set; the origin of each path becomes --set."""
    data = copy.deepcopy(raw.data)
    origins = dict(raw.origins)
    for key, path, value in assignments:
        path = _redirect(data, path)
        for extra in ALIASES[key].drop if key in ALIASES else ():
            _drop(data, parse_key(extra))
        node: Any = data
        for depth, part in enumerate(path[:-1]):
            if isinstance(part, str) and isinstance(node, dict) and part not in node:
                # a table the override creates is the override's doing, so its problems name --set
                origins[tuple(p for p in path[: depth + 1] if isinstance(p, str))] = SOURCE
            node = _step(node, part, path[depth + 1], key, path[: depth + 1])
        _set(node, path[-1], value, key, path)
        names = tuple(p for p in path if isinstance(p, str))
        for old in [p for p in origins if p[: len(names)] == names]:
            del origins[old]
        origins[names] = SOURCE
        if len(names) == 2 and names[0] == "criteria":
            # the shortcut criteria.NAME is validated as criteria.overrides.NAME (eligibility.config)
            origins[("criteria", "overrides", names[1])] = SOURCE
    return RawScenario(raw.path, data, origins, raw.files)


def _redirect(data: dict[str, Any], path: Path_) -> Path_:
    """`criteria.NAME` -> `criteria.overrides.NAME` when the scenario already overrides NAME there, so
    the --set value replaces that override instead of clashing with it."""
    crit = data.get("criteria")
    if len(path) == 2 and path[0] == "criteria" and isinstance(crit, dict):
        over = crit.get("overrides")
        if isinstance(over, dict) and path[1] in over:
            return ("criteria", "overrides", path[1])
    return path


def _drop(data: Any, path: Path_) -> None:
    for part in path[:-1]:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(data, dict):
        data.pop(path[-1], None)


def _step(node: Any, part: str | int, following: str | int, key: str, where: Path_) -> Any:
    if isinstance(part, int):
        if not isinstance(node, list):
            raise ConfigError.one(SOURCE, key, f"{dotted(where[:-1])} is not a list")
        if part >= len(node):
            raise ConfigError.one(SOURCE, key, f"{dotted(where[:-1])} has {len(node)} entries, no [{part}]")
        return node[part]
    if not isinstance(node, dict):
        raise ConfigError.one(SOURCE, key, f"{dotted(where[:-1]) or 'the scenario'} is not a table")
    if part not in node:
        # A missing table is created so that validation names the unknown key, not a lookup failure.
        node[part] = [] if isinstance(following, int) else {}
    return node[part]


def _set(node: Any, part: str | int, value: Any, key: str, path: Path_) -> None:
    if isinstance(part, int):
        if not isinstance(node, list):
            raise ConfigError.one(SOURCE, key, f"{dotted(path[:-1])} is not a list")
        if part >= len(node):
            raise ConfigError.one(SOURCE, key, f"{dotted(path[:-1])} has {len(node)} entries, no [{part}]")
        node[part] = copy.deepcopy(value)
    elif isinstance(node, dict):
        node[part] = copy.deepcopy(value)
    else:
        raise ConfigError.one(SOURCE, key, f"{dotted(path[:-1])} is not a table")


def grid(overrides: list[Override]) -> list[dict[str, Any]]:
    """The cartesian product of the overrides' values, as {key as typed: value}, last key fastest."""
    size = 1
    for o in overrides:
        size *= len(o.values)
    if size > MAX_GRID_POINTS:
        raise ConfigError.one(SOURCE, ", ".join(o.key for o in overrides),
                              f"the grid has {size} points; at most {MAX_GRID_POINTS} are allowed")
    keys = [o.key for o in overrides]
    combos = itertools.product(*(o.values for o in overrides))
    return [dict(zip(keys, combo, strict=True)) for combo in combos]


def load_grid(path: str | Path, sets: list[str]) -> list[GridPoint]:
    """Every grid point of a sweep, validated; raises ConfigError listing every problem of every point.

    Problems repeated across grid points (the same key refused for each value) are reported once.
    """
    overrides = parse_sets(sets)
    raw = read_raw(path)
    by_key = {o.key: o.path for o in overrides}
    points: list[GridPoint] = []
    problems: list[Problem] = []
    for i, values in enumerate(grid(overrides)):
        try:
            point_raw = apply(raw, [(k, by_key[k], v) for k, v in values.items()])
            points.append(GridPoint(i, values, validate_raw(point_raw), point_raw))
        except ConfigError as exc:
            problems.extend(p for p in exc.problems if p not in problems)
    if problems:
        raise ConfigError(problems)
    return points


def load_with_overrides(path: str | Path, sets: list[str]):
    """One scenario with single-valued `--set` overrides: (Scenario, RawScenario)."""
    overrides = parse_sets(sets)
    for o in overrides:
        if len(o.values) != 1:
            raise ConfigError.one(SOURCE, o.key, f"takes one value here, got {len(o.values)} (use `sweep`)")
    raw = apply(read_raw(path), [(o.key, o.path, o.values[0]) for o in overrides])
    return validate_raw(raw), raw


def format_value(value: Any) -> str:
    """How an override value is written in sweep.csv: as typed in TOML, strings bare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, default=str, separators=(",", ":"))
