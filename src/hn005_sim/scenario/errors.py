"""Configuration problems, collected with their path so that all are reported at once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One problem in one file: `scenarios/x.toml: population.age.mean: must be a number, got "forty"`."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}: {where}{self.message}"


class ConfigError(Exception):
    """Bad input. The command line prints one line per problem on stderr and exits with code 2."""

    def __init__(self, problems: list[Problem] | Problem):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def one(cls, file: str, path: str, message: str) -> ConfigError:
        return cls(Problem(str(file), path, message))


SHOWN_CHARS = 80
"""A string value longer than this is cut when a message echoes it (a 10 MB value stays one short line)."""


def show(value: Any) -> str:
    """How an offending value is quoted in a message: strings in double quotes, the rest as TOML would."""
    if isinstance(value, str):
        text = json.dumps(value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS], ensure_ascii=False)
        if len(value) > SHOWN_CHARS:
            text = text[:-1] + f'..." ({len(value):,} characters)'
        return text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def dotted(loc: tuple[Any, ...] | list[Any]) -> str:
    """('sites', 'regions', 1, 'rate_mean') -> 'sites.regions[1].rate_mean'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
