"""The report people open: one self-contained HTML page with charts, plus each chart as PNG and SVG.

    from hn005_sim.report import write_report
    write_report(out, title="ALTER-HN005 feasibility: baseline", manifest=manifest_dict)

reads the files a command wrote into `out` (docs/outputs.md) and adds report.html and charts/.
"""

from hn005_sim.report.build import build_charts, write_report
from hn005_sim.report.data import OutputFiles, load_folder

__all__ = ["OutputFiles", "build_charts", "load_folder", "write_report"]
