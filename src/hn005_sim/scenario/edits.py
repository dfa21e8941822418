"""Criteria edits from a scenario, applied to the merged scenario before it is validated.

- `[criteria.edit.ID]` changes one criterion of the list the scenario inherits: any of `stage`, `rule`
  (replaces the rule, and the per-reading `rules` of a criterion that has them), `null`, or
  `enabled = false` (the criterion is removed, exactly as if it were deleted from the list).
- `[[criteria.add]]` appends new criteria (the same fields as `[[criteria.criterion]]`).

A threshold parameter or a reading that only removed or replaced rules used goes with them (from
`[criteria.parameters]`, `[criteria.overrides]`, `[criteria.readings]` and the relaxations; a relaxation
left with nothing to change is dropped), so removing a criterion never leaves an unused parameter behind.

Every edit is validated as the base is: the edit's own keys by pydantic, the resulting list by the same
schema and the same rule compilation (eligibility.engine.check_config) as base criteria. Problems name the
file and the key of the edit (`scenarios/x.toml: criteria.edit.ecog.rule: unknown column "ecgo" ...`).
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from hn005_sim.eligibility.config import Criterion, CriterionEdit
from hn005_sim.eligibility.engine import referenced_parameters
from hn005_sim.scenario.errors import Problem, show

Where = Callable[[tuple[Any, ...]], str]
"""loc -> the file that set it."""
FromPydantic = Callable[[ValidationError, tuple[Any, ...]], list[Problem]]
"""(error, location prefix) -> problems naming file and key."""

_CRITERION_PATH = re.compile(
    r"^criteria\.criterion\[\d+\]\.(rule|rules\.[A-Za-z0-9_]+) \(([a-z][a-z0-9_]*)\)$")


def _unknown(cid: str, ids: list[str]) -> str:
    close = difflib.get_close_matches(cid, ids, n=1)
    if close:
        return f'unknown criterion {show(cid)} (did you mean "{close[0]}"?)'
    return f"unknown criterion {show(cid)}; known ids: {', '.join(ids)}"


def _rule_texts(c: dict[str, Any]) -> list[str]:
    texts = [c["rule"]] if isinstance(c.get("rule"), str) else []
    rules = c.get("rules")
    if isinstance(rules, dict):
        texts += [t for t in rules.values() if isinstance(t, str)]
    return texts


def apply_criteria_edits(
    data: dict[str, Any], where: Where, from_pydantic: FromPydantic
) -> tuple[dict[str, Any], dict[str, tuple[str, str]], list[Problem]]:
    """(data with the edits applied, {criterion id: (file, key) of the edit that set its rule}, problems).

    `data` is not modified. Without `criteria.edit` or `criteria.add` it is returned as it is.
    """
    crit = data.get("criteria")
    if not isinstance(crit, dict) or ("edit" not in crit and "add" not in crit):
        return data, {}, []
    data = copy.deepcopy(data)
    crit = data["criteria"]
    edits = crit.pop("edit", {})
    adds = crit.pop("add", [])
    problems: list[Problem] = []
    if not isinstance(edits, dict):
        problems.append(Problem(where(("criteria", "edit")), "criteria.edit",
                                f"must be a table of [criteria.edit.ID] tables, got {show(edits)}"))
        edits = {}
    if not isinstance(adds, list):
        problems.append(Problem(where(("criteria", "add")), "criteria.add",
                                f"must be a list of [[criteria.add]] tables, got {show(adds)}"))
        adds = []
    base = crit.get("criterion")
    if not isinstance(base, list) or not all(isinstance(c, dict) for c in base):
        if edits or adds:
            problems.append(Problem(where(("criteria",)), "criteria.edit" if edits else "criteria.add",
                                    "there is no [[criteria.criterion]] list to edit"))
        return data, {}, problems
    ids = [str(c.get("id")) for c in base]
    gone: list[dict[str, Any]] = []  # removed criteria, and the old form of criteria whose rule changed
    removed: set[str] = set()
    rule_from: dict[str, tuple[str, str]] = {}
    for cid, value in edits.items():
        loc = ("criteria", "edit", cid)
        if cid not in ids:
            problems.append(Problem(where(loc), f"criteria.edit.{cid}", _unknown(cid, ids)))
            continue
        try:
            edit = CriterionEdit.model_validate(value)
        except ValidationError as exc:
            problems += from_pydantic(exc, loc)
            continue
        i = ids.index(cid)
        old = base[i]
        if not edit.enabled:
            gone.append(old)
            removed.add(cid)
            continue
        new = dict(old)
        for key in ("stage", "null"):
            if getattr(edit, key) is not None:
                new[key] = getattr(edit, key)
        if edit.rule is not None:
            gone.append(old)
            new["rule"] = edit.rule
            new.pop("rules", None)
            new.pop("reading", None)
            rule_from[cid] = (where(loc), f"criteria.edit.{cid}.rule")
        base[i] = new
    kept = [c for c in base if str(c.get("id")) not in removed]
    known = {str(c.get("id")) for c in kept}
    for j, item in enumerate(adds):
        loc = ("criteria", "add", j)
        try:
            new_crit = Criterion.model_validate(item)
        except ValidationError as exc:
            problems += from_pydantic(exc, loc)
            continue
        if new_crit.id in known:
            hint = (f"; change it with [criteria.edit.{new_crit.id}]" if new_crit.id not in removed
                    else "; it is removed by criteria.edit, give the new one another id")
            problems.append(Problem(where(loc), f"criteria.add[{j}].id",
                                    f"duplicate id {show(new_crit.id)}: already a criterion{hint}"))
            continue
        known.add(new_crit.id)
        kept.append(item)
        rule_from[new_crit.id] = (where(loc), f"criteria.add[{j}]")
    crit["criterion"] = kept
    _prune(crit, gone, kept)
    return data, rule_from, problems


def _prune(crit: dict[str, Any], gone: list[dict[str, Any]], kept: list[dict[str, Any]]) -> None:
    """Drop the parameters and readings only the removed or replaced rules used."""
    used = {p for c in kept for t in _rule_texts(c) for p in referenced_parameters(t)}
    params = {p for c in gone for t in _rule_texts(c) for p in referenced_parameters(t)} - used
    readings = {c["reading"] for c in gone if isinstance(c.get("reading"), str)}
    readings -= {c["reading"] for c in kept if isinstance(c.get("reading"), str)}
    for name in params:
        crit.pop(name, None)  # the criteria.NAME shortcut
        for table in ("parameters", "overrides"):
            if isinstance(crit.get(table), dict):
                crit[table].pop(name, None)
    if isinstance(crit.get("readings"), dict):
        for name in readings:
            crit["readings"].pop(name, None)
    if isinstance(crit.get("relaxations"), list) and (params or readings):
        out = []
        for rel in crit["relaxations"]:
            if isinstance(rel, dict):
                rel = dict(rel)
                for key, names in (("overrides", params), ("readings", readings)):
                    if isinstance(rel.get(key), dict):
                        rel[key] = {k: v for k, v in rel[key].items() if k not in names}
                if not rel.get("overrides") and not rel.get("readings"):
                    continue
            out.append(rel)
        crit["relaxations"] = out


def relocate(problems: list[Problem], rule_from: dict[str, tuple[str, str]]) -> list[Problem]:
    """Problems with a rule that an edit or an added criterion set name that edit, not the base list."""
    if not rule_from:
        return problems
    out = []
    for p in problems:
        m = _CRITERION_PATH.match(p.path)
        if m and m.group(2) in rule_from:
            file, key = rule_from[m.group(2)]
            suffix = "" if key.endswith(".rule") else f".rule ({m.group(2)})"
            out.append(Problem(file, key + suffix, p.message))
        else:
            out.append(p)
    return out
