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
from dataclasses import dataclass
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

    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


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


def _resolve(path: Path, stack: tuple[Path, ...], named_by, files: list[Path],
             done: dict[Path, tuple[dict, Origins]] | None = None) -> tuple[dict, Origins]:
    """The merged document of `path` and its bases. Each file is read and resolved once (`done`), so a
    diamond of extends costs one read per file, not one per path through it."""
    done = {} if done is None else done
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
        base, base_org = _resolve(path.parent / rel, (*stack, path), (me, key), files, done)
        merged, origins = _merge(merged, origins, base, base_org)
    result = _merge(merged, origins, doc, _origins_of(doc, me))
    done[path] = (copy.deepcopy(result[0]), dict(result[1]))
    return result


def read_raw(path: str | Path) -> RawScenario:
    """Read a scenario file and everything it extends into one merged dictionary."""
    files: list[Path] = []
    data, origins = _resolve(Path(path), (), None, files)
    return RawScenario(Path(path), data, origins, tuple(files))


def origin_of(raw: RawScenario, loc: tuple[Any, ...]) -> str:
    keys = tuple(str(p) for p in loc if not isinstance(p, int))
    for n in range(len(keys), 0, -1):
        if keys[:n] in raw.origins:
            return raw.origins[keys[:n]]
    return display(raw.path)


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

    out = []
    for i, part in enumerate(loc):
        if isinstance(part, str) and ("[" in part or (part in REGISTRY and i + 1 < len(loc))):
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
    from hn005_sim.scenario.schema import Scenario

    nan_inf = non_finite(raw)
    try:
        scenario = Scenario.model_validate(raw.data)
    except ValidationError as exc:
        seen = {p.path for p in nan_inf}
        raise ConfigError(nan_inf + [p for p in problems_from(exc, raw) if p.path not in seen]) from None
    if nan_inf:
        raise ConfigError(nan_inf)
    problems = scenario.check(raw)
    if problems:
        raise ConfigError(problems)
    return scenario
