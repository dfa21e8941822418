"""The house: every module imports, no import circles among hn005_sim modules, commands stay thin.

The graph is built with `ast` from the source files (tests/house/imports.py); the detector itself is
tested on a small package made here, with the circles it must find and the imports it must ignore.
"""

from __future__ import annotations

import importlib
import textwrap

import pytest

from .imports import a_cycle, cycles, import_graph, modules

MODULES = sorted(modules())


@pytest.mark.parametrize("name", MODULES)
def test_every_module_imports(name):
    importlib.import_module(name)


def test_no_import_circles():
    graph = import_graph()
    assert len(graph) == len(MODULES) > 50
    found = [" -> ".join(a_cycle(graph, c)) for c in cycles(graph)]
    assert found == [], "import circles:\n" + "\n".join(found)


def test_commands_are_thin():
    """Commands import shared options (commands.common), never another command or the command line;
    nothing but the command line imports a command, and only the console script (entry.py, which
    catches a Ctrl-C during start-up) imports the command line."""
    graph = import_graph()
    for name, targets in graph.items():
        commands = {t for t in targets if t.startswith("hn005_sim.commands.")} - {"hn005_sim.commands.common"}
        if name == "hn005_sim.cli" or (name == "hn005_sim.entry" and targets == {"hn005_sim.cli"}):
            continue
        assert not commands, f"{name} imports the command(s) {sorted(commands)}"
        assert "hn005_sim.cli" not in targets, f"{name} imports the command line"


def _package(tmp_path, files: dict[str, str]):
    for rel, text in files.items():
        path = tmp_path / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return import_graph(tmp_path, "pkg")


def test_detector_finds_lazy_and_relative_circles_and_ignores_type_checking(tmp_path):
    graph = _package(tmp_path, {
        "__init__.py": "from pkg.a import f\n",
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import g\n"
                "def f():\n    return 1\n",
        "b.py": "def g():\n    from .c import h\n    return h()\n",
        "c.py": "import pkg.sub.d\ndef h():\n    return 2\n",
        "sub/__init__.py": "",
        "sub/d.py": "from pkg import b\n",
        "e.py": "from pkg.sub import d\nimport os\n",
    })
    assert graph["pkg"] == {"pkg.a"}
    assert graph["pkg.a"] == set()  # the TYPE_CHECKING import never runs
    assert graph["pkg.b"] == {"pkg.c"}  # a lazy, relative import counts
    assert graph["pkg.sub.d"] == {"pkg.b"}  # `from package import submodule` is an edge to the submodule
    assert graph["pkg.e"] == {"pkg.sub.d"}
    assert cycles(graph) == [["pkg.b", "pkg.c", "pkg.sub.d"]]
    assert a_cycle(graph, cycles(graph)[0]) == ["pkg.b", "pkg.c", "pkg.sub.d", "pkg.b"]
    # an attribute of the package itself (not a submodule) is an edge to the package's __init__
    graph = _package(tmp_path / "again", {"__init__.py": "from pkg.a import f\n",
                                          "a.py": "from pkg import g\n"})
    assert cycles(graph) == [["pkg", "pkg.a"]]
