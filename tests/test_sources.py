"""Every figure in configs/, scenarios/ and plans/ that describes the world says where it comes from."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted(p for d in ("configs", "scenarios", "plans") for p in (ROOT / d).rglob("*.toml"))
# Keys of a table that make it a figure: a distribution or a single value.
FIGURE_KEYS = {"dist", "value"}


def figures_without_source(node, path=""):
    if isinstance(node, dict):
        if FIGURE_KEYS & node.keys() and not str(node.get("source", "")).strip():
            yield path or "(top)"
        for key, value in node.items():
            yield from figures_without_source(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from figures_without_source(value, f"{path}[{i}]")


def test_there_are_config_files():
    assert any(p.name == "base.toml" for p in FILES)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_every_figure_has_a_source(path):
    doc = tomllib.loads(path.read_text())
    missing = list(figures_without_source(doc))
    assert not missing, f"{path.relative_to(ROOT)}: figures without `source`: {missing}"


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_assumptions_say_why(path):
    """A source that is an assumption must give the reason: `assumption: <why>`."""
    text = path.read_text()
    for line in text.splitlines():
        low = line.lower()
        if "assumption" in low and "source" in low:
            after = low.split("assumption", 1)[1].lstrip(" :")
            assert len(after.strip(' "')) >= 8, f"{path.name}: assumption without a reason: {line.strip()}"
