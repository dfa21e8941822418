"""The report people open: one self-contained HTML page with charts, plus each chart as PNG and SVG.

    from hn005_sim.report import write_report
    write_report(out, title="ALTER-HN005 feasibility: baseline", manifest=manifest_dict)

reads the files a command wrote into `out` (docs/outputs.md) and adds report.html and charts/.

The names below are imported on first use (PEP 562): `run` imports `hn005_sim.report.prerender` to
start its drawing process first thing, and importing the charts and the page (numpy, vl-convert,
~0.2 s) before that would delay Vega's start by as much (issue 16, phase 4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hn005_sim.report.build import build_charts, write_report
    from hn005_sim.report.data import OutputFiles, load_folder

__all__ = ["OutputFiles", "build_charts", "load_folder", "write_report"]

_WHERE = {"build_charts": "build", "write_report": "build", "OutputFiles": "data", "load_folder": "data"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        value = getattr(importlib.import_module(f"hn005_sim.report.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hn005_sim.report' has no attribute {name!r}")
