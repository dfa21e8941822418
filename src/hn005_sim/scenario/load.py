"""Read a scenario: TOML, `extends` resolved and deep-merged, validated, frozen.

`extends` is a path or a list of paths relative to the file that names it. Bases are merged left to
right, then the file itself on top: tables merge key by key, anything else (lists included) is replaced.
Each merged key remembers the file it came from, so a problem is reported against the file that set it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hn005_sim.scenario.errors import ConfigError, Problem, dotted, show

Origins = dict[tuple[str, ...], str]


@dataclass(frozen=True)
class RawScenario:
    path: Path
    data: dict[str, Any]
    origins: Origins
    files: tuple[Path, ...]
    edited: dict[str, tuple[str, str]] = field(default_factory=dict, compare=False)
    """Criterion id -> (file, key) of the criteria edit or addition that set its rule (scenario/edits.py)."""

    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    def origin(self, loc: tuple[Any, ...]) -> str:
        """The file that set the key at `loc` (the deepest table the origins know), else the scenario."""
        keys = tuple(str(p) for p in loc if not isinstance(p, int))
        for n in range(len(keys), 0, -1):
            if keys[:n] in self.origins:
                return self.origins[keys[:n]]
        return display(self.path)


def display(path: Path) -> str:
    """Paths in messages are relative to the working directory when they can be."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


MAX_EXTENDS_FILES = 64
"""Most distinct files one scenario may extend, directly or not (the shipped baseline: 7)."""

MAX_EXTENDS_DEPTH = 32
"""Longest chain of `extends` (the shipped scenarios: 2)."""

MAX_KEY_DEPTH = 32
"""Deepest nesting of tables in a scenario file (the shipped schema: 6)."""

MAX_NAME_SHOWN = 120
"""A path longer than this is cut when echoed."""


def _cut(text: str, limit: int = MAX_NAME_SHOWN) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _too_deep(doc: Any) -> tuple[str, ...] | None:
    """The first key path nested deeper than MAX_KEY_DEPTH (checked without recursion)."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(doc, ())]
    while stack:
        node, path = stack.pop()
        if len(path) > MAX_KEY_DEPTH:
            return path
        if isinstance(node, dict):
            stack.extend((v, (*path, str(k))) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, path) for v in node)
    return None


def _read_toml(path: Path, named_by: tuple[str, str] | None) -> dict[str, Any]:
    try:
        found = path.is_file()
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if named_by:
            raise ConfigError.one(named_by[0], named_by[1],
                                  f"cannot read {show(_cut(str(path)))}: {why}") from None
        raise ConfigError.one(_cut(display(path)), "", f"cannot read: {why}") from None
    if not found:
        if named_by:
            raise ConfigError.one(named_by[0], named_by[1], f"file not found: {display(path)}")
        raise ConfigError.one(display(path), "", "file not found")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError.one(display(path), "", f"invalid TOML: {_cut(str(exc), 300)}") from None
    except UnicodeDecodeError:
        raise ConfigError.one(display(path), "", "invalid TOML: the file is not UTF-8 text") from None
    except RecursionError:  # tomllib recurses once per nested table or array
        raise ConfigError.one(display(path), "", "invalid TOML: tables or arrays nested too deeply") from None
    except OSError as exc:
        raise ConfigError.one(display(path), "", f"cannot read: {exc.strerror}") from None


def _merge(base: dict, base_org: Origins, over: dict, over_org: Origins, prefix=()) -> tuple[dict, Origins]:
    """Deep merge: tables merge key by key; anything else, lists included, is replaced."""
    out = dict(base)
    org = dict(base_org) if not prefix else base_org
    for key, value in over.items():
        path = (*prefix, key)
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not _new_dist(out[key], value):
            out[key], _ = _merge(out[key], org, value, over_org, path)
            org[path] = over_org.get(path, org.get(path, ""))
        else:
            out[key] = copy.deepcopy(value)
            for old in [p for p in org if p[: len(path)] == path]:
                del org[old]
            org.update({p: f for p, f in over_org.items() if p[: len(path)] == path})
    return out, org


def _new_dist(base: dict, over: dict) -> bool:
    """An overlay that changes a distribution's type (`dist = "normal"` over a truncnormal) replaces the
    table whole: the old type's parameters (low, high) belong to it, not to the new one."""
    return "dist" in over and "dist" in base and over["dist"] != base["dist"]


def _origins_of(doc: dict, file: str, prefix: tuple[str, ...] = ()) -> Origins:
    org: Origins = {}
    for key, value in doc.items():
        path = (*prefix, key)
        org[path] = file
        if isinstance(value, dict):
            org.update(_origins_of(value, file, path))
    return org


INCLUDE_KEYS = ("include", "description", "parameters", "criterion")
"""What a shared criteria list (a file named by `criteria.include`) may hold."""


def _include_list(value: Any, file: str, key: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError.one(file, key, f"must be a path or a list of paths, got {show(value)}")
    return value


def _read_includes(
    path: Path, rels: list[str], key: str, stack: tuple[Path, ...], included: set[Path], files: list[Path]
) -> tuple[list[dict], dict[str, tuple[Any, str]]]:
    """Criteria and parameters of the shared lists `rels` names (relative to `path`), includes first.

    Each file is read once per scenario (a list included twice counts once); a cycle is refused.
    Returns (criteria, {parameter name: (table, file that defines it)}).
    """
    from hn005_sim.eligibility.config import Criterion, Parameter

    me = display(path)
    criteria: list[dict] = []
    params: dict[str, tuple[Any, str]] = {}
    for i, rel in enumerate(rels):
        where = key if len(rels) == 1 else f"{key}[{i}]"
        inc = (path.parent / rel).resolve()
        if inc in stack or inc == path:
            chain = " -> ".join(display(p) for p in (*stack, path, inc))
            raise ConfigError.one(me, where, f"include cycle: {chain}")
        if inc in included:
            continue
        included.add(inc)
        doc = _read_toml(inc, (me, where))
        files.append(inc)
        name = display(inc)
        problems = [Problem(name, k, f"unknown key; a criteria list holds {', '.join(INCLUDE_KEYS)}")
                    for k in doc if k not in INCLUDE_KEYS]
        sub_c, sub_p = _read_includes(inc, _include_list(doc.get("include", []), name, "include"), "include",
                                      (*stack, path), included, files)
        own = doc.get("criterion", [])
        if not isinstance(own, list):
            problems.append(Problem(name, "criterion",
                                    f"must be a list of [[criterion]] tables, got {show(own)}"))
            own = []
        for j, item in enumerate(own):
            try:
                Criterion.model_validate(item)
            except ValidationError as exc:
                problems += [Problem(name, dotted(("criterion", j, *_clean_loc(e["loc"]))), _message(e))
                             for e in exc.errors()]
        own_p = doc.get("parameters", {})
        if not isinstance(own_p, dict):
            problems.append(Problem(name, "parameters", f"must be a table, got {show(own_p)}"))
            own_p = {}
        for pname, table in own_p.items():
            try:
                Parameter.model_validate(table)
            except ValidationError as exc:
                problems += [Problem(name, dotted(("parameters", pname, *_clean_loc(e["loc"]))), _message(e))
                             for e in exc.errors()]
        if problems:
            raise ConfigError(problems)
        for pname, (table, other) in {**sub_p, **{p: (t, name) for p, t in own_p.items()}}.items():
            if pname in params and params[pname][0] != table:
                raise ConfigError.one(other, f"parameters.{pname}",
                                      f"also defined, differently, in {params[pname][1]}")
            params[pname] = (table, other)
        criteria += sub_c + [copy.deepcopy(c) for c in own]
    return criteria, params


def _apply_includes(
    doc: dict, merged: dict, path: Path, stack, included: set[Path], files: list[Path]
) -> Origins:
    """Resolve `criteria.include` of one file in place: the shared criteria come before the file's own
    `[[criteria.criterion]]`, or after the inherited list when the file has none; their parameters join
    `[criteria.parameters]`. Returns the origins of those parameters (the shared files)."""
    crit = doc.get("criteria")
    if not isinstance(crit, dict) or "include" not in crit:
        return {}
    me = display(path)
    rels = _include_list(crit.pop("include"), me, "criteria.include")
    shared, params = _read_includes(path, rels, "criteria.include", stack, included, files)
    if "criterion" in crit:
        own = crit["criterion"]
        crit["criterion"] = shared + (own if isinstance(own, list) else [own])
    else:
        base = merged.get("criteria")
        inherited = base.get("criterion") if isinstance(base, dict) else None
        crit["criterion"] = (copy.deepcopy(inherited) if isinstance(inherited, list) else []) + shared
    own_params = crit.setdefault("parameters", {})
    origins: Origins = {}
    if isinstance(own_params, dict):
        for pname, (table, file) in params.items():
            if pname in own_params and own_params[pname] != table:
                raise ConfigError.one(me, f"criteria.parameters.{pname}",
                                      f"also defined, differently, in {file}")
            if pname not in own_params:
                own_params[pname] = copy.deepcopy(table)
                origins[("criteria", "parameters", pname)] = file
    return origins


def _resolve(path: Path, stack: tuple[Path, ...], named_by, files: list[Path],
             done: dict[Path, tuple[dict, Origins]] | None = None,
             included: set[Path] | None = None) -> tuple[dict, Origins]:
    """The merged document of `path` and its bases. Each file is read and resolved once (`done`), so a
    diamond of extends costs one read per file, not one per path through it; `included` holds the
    shared criteria lists already read (criteria.include)."""
    done = {} if done is None else done
    included = set() if included is None else included
    try:
        path = path.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL byte, a name too long
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        where = named_by or (_cut(str(path)), "")
        raise ConfigError.one(where[0], where[1], f"cannot read {show(_cut(str(path)))}: {why}") from None
    if path in stack:
        chain = " -> ".join(display(p) for p in (*stack, path))
        raise ConfigError.one(display(stack[-1]), "extends", f"extends cycle: {_cut(chain, 600)}")
    if path in done:
        data, org = done[path]
        return copy.deepcopy(data), dict(org)
    if len(stack) >= MAX_EXTENDS_DEPTH:
        raise ConfigError.one(display(stack[-1]), "extends",
                              f"extends chains more than {MAX_EXTENDS_DEPTH} files deep (MAX_EXTENDS_DEPTH)")
    if len(files) >= MAX_EXTENDS_FILES:
        raise ConfigError.one(named_by[0] if named_by else display(path), "extends",
                              f"more than {MAX_EXTENDS_FILES} files extended (MAX_EXTENDS_FILES)")
    doc = _read_toml(path, named_by)
    files.append(path)
    me = display(path)
    deep = _too_deep(doc)
    if deep is not None:
        raise ConfigError.one(me, _cut(".".join(deep[:3])) + ".…",
                              f"tables nested more than {MAX_KEY_DEPTH} deep (MAX_KEY_DEPTH)")
    extends = doc.pop("extends", [])
    if isinstance(extends, str):
        extends = [extends]
    if not isinstance(extends, list) or not all(isinstance(e, str) for e in extends):
        raise ConfigError.one(me, "extends", f"must be a path or a list of paths, got {show(extends)}")
    merged: dict[str, Any] = {}
    origins: Origins = {}
    for i, rel in enumerate(extends):
        key = "extends" if len(extends) == 1 else f"extends[{i}]"
        base, base_org = _resolve(path.parent / rel, (*stack, path), (me, key), files, done, included)
        merged, origins = _merge(merged, origins, base, base_org)
    shared_origins = _apply_includes(doc, merged, path, stack, included, files)
    result = _merge(merged, origins, doc, {**_origins_of(doc, me), **shared_origins})
    done[path] = (copy.deepcopy(result[0]), dict(result[1]))
    return result


def read_raw(path: str | Path) -> RawScenario:
    """Read a scenario file and everything it extends into one merged dictionary."""
    files: list[Path] = []
    data, origins = _resolve(Path(path), (), None, files)
    return RawScenario(Path(path), data, origins, tuple(files))


def origin_of(raw: RawScenario, loc: tuple[Any, ...]) -> str:
    return raw.origin(loc)


_TYPE_WORDS = {
    "float": "a number",
    "int": "an integer",
    "bool": "true or false",
    "string": "a string",
    "str": "a string",
    "list": "a list",
    "dict": "a table",
    "model": "a table",
    "date": "a date (YYYY-MM-DD)",
    "literal": "one of the allowed values",
}


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the union tags pydantic puts in locations ('normal', 'list[float]', 'function-after[...]')."""
    from hn005_sim.scenario.dists import REGISTRY
    from hn005_sim.scenario.uncertainty import RANGES

    out = []
    for i, part in enumerate(loc):
        tag = (part in REGISTRY and i + 1 < len(loc)) or (part in RANGES and "uncertainty" in loc[:i])
        if isinstance(part, str) and ("[" in part or tag):
            continue
        out.append(part)
    return tuple(out)


def _message(err: dict[str, Any]) -> str:
    kind: str = err["type"]
    got = err.get("input")
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        ctx = err.get("ctx", {})
        expected = ctx.get("expected_tags", "")
        return f"unknown distribution {show(ctx.get('tag', got))}; expected one of: {expected}"
    if kind == "literal_error":
        return f"must be one of {err['ctx']['expected']}, got {show(got)}"
    for stem, words in _TYPE_WORDS.items():
        if kind.startswith(stem + "_") and (kind.endswith("_type") or kind.endswith("_parsing")):
            return f"must be {words}, got {show(got)}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
        bound = next(iter(err["ctx"].values()))
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return f"must be {op[kind]} {bound}, got {show(got)}"
    if kind == "finite_number":
        return f"must be a finite number, got {show(got)}"
    msg = str(err.get("msg", kind))
    msg = msg.removeprefix("Value error, ")
    return msg if got is None or isinstance(got, dict) else f"{msg}, got {show(got)}"


def _quote_key(part: Any) -> Any:
    """A key with dots, spaces or control characters is quoted as TOML would, so a message stays one line."""
    if isinstance(part, str) and (not part or not all(c.isalnum() or c in "_-" for c in part)):
        return json.dumps(part, ensure_ascii=False)
    return part


def non_finite(raw: RawScenario) -> list[Problem]:
    """NaN and infinity are never a meaningful figure (leave a bound out to leave it open)."""
    out: list[Problem] = []

    def walk(value: Any, loc: tuple[Any, ...]) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            out.append(Problem(origin_of(raw, loc), dotted(tuple(map(_quote_key, loc))),
                               f"must be a finite number, got {show(value)}"))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*loc, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*loc, i))

    walk(raw.data, ())
    return out


def problems_from(exc: ValidationError, raw: RawScenario, prefix: tuple[Any, ...] = ()) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = tuple(map(_quote_key, (*prefix, *_clean_loc(err["loc"]))))
        out.append(Problem(origin_of(raw, loc), dotted(loc), _message(err)))
    return out


def load_scenario(path: str | Path):
    """Read, merge and validate a scenario; raises ConfigError listing every problem."""
    raw = read_raw(path)
    return validate_raw(raw), raw


def validate_raw(raw: RawScenario):
    """Validate a merged scenario (e.g. after `--set` overrides); raises ConfigError listing every problem."""
    from hn005_sim.scenario.edits import apply_criteria_edits
    from hn005_sim.scenario.schema import Scenario

    nan_inf = non_finite(raw)
    # criteria edits that are themselves wrong are reported and left out; the rest are applied and
    # validated with everything else, so one pass lists every problem
    data, edited, edit_problems = apply_criteria_edits(
        raw.data, raw.origin, lambda exc, prefix: problems_from(exc, raw, prefix))
    raw = RawScenario(raw.path, data, raw.origins, raw.files, edited)
    try:
        scenario = Scenario.model_validate(raw.data)
    except ValidationError as exc:
        seen = {p.path for p in nan_inf}
        raise ConfigError(nan_inf + edit_problems
                          + [p for p in problems_from(exc, raw) if p.path not in seen]) from None
    if nan_inf:
        raise ConfigError(nan_inf + edit_problems)
    problems = edit_problems + scenario.check(raw)
    if problems:
        raise ConfigError(problems)
    return scenario
