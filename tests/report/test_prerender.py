"""Charts drawn ahead (report/prerender.py) give the report it gave without: the same page and the same
SVG bytes; a chart whose file changed after it was drawn ahead is built and drawn again."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from hn005_sim.report.data import CSV_FILES, load_folder

from . import report_fixtures as rf

ROOT = Path(__file__).resolve().parents[2]


def files_of(folder: Path) -> dict[str, bytes]:
    """report.html and every chart image, by path."""
    out = {"report.html": (folder / "report.html").read_bytes()}
    for p in sorted((folder / "charts").iterdir()):
        out[f"charts/{p.name}"] = p.read_bytes()
    return out


def frames_of(folder: Path) -> dict[str, pl.DataFrame]:
    return {name.removesuffix(".csv"): pl.read_csv(folder / name, infer_schema_length=None)
            for name in CSV_FILES if (folder / name).is_file()}


# each report is written by a fresh process, as a command writes it: Vega numbers the gradients it draws
# in a process (gradient_0, gradient_1...), so a second report in one process numbers its own from 1
REPORT = """
import json, sys
from pathlib import Path
import polars as pl
from hn005_sim.report import write_report
from hn005_sim.report.data import load_folder
from hn005_sim.report.build import draw_ahead
from hn005_sim.report.prerender import ChartRenderer
folder, ahead_from, processes = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
renderer = None
if ahead_from:
    renderer = ChartRenderer(processes=processes)
    files = load_folder(Path(ahead_from))
    # the frames as the report reads them, handed over as a command hands them (before writing them)
    frames = {n.removesuffix(".csv"): f for n, f in files.frames.items()}
    queued = draw_ahead(renderer, frames, [files.summary])
names = write_report(folder, title="fixture", manifest=json.loads((folder / "manifest.json").read_text()),
                     renderer=renderer, png=False)
print(json.dumps({"names": names, "queued": queued if renderer else 0,
                  "drawn_ahead": renderer.drawn_ahead if renderer else 0,
                  "built_again_saved": renderer.built_again_saved if renderer else 0}))
if renderer is not None:
    renderer.close()
"""


def report(folder: Path, ahead_from: Path | None, processes: int = 0) -> dict:
    """Write the folder's report in a fresh process, drawing ahead the charts of `ahead_from`'s files
    (in `processes` drawing processes; 0: in that process) when given."""
    out = subprocess.run([sys.executable, "-c", REPORT, str(folder), str(ahead_from or ""), str(processes)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("processes", [0, 1, 2])
def test_a_report_drawn_ahead_is_the_report_drawn_at_the_end(tmp_path, processes):
    plain = rf.full_folder(tmp_path / "plain")
    ahead = tmp_path / "ahead"
    shutil.copytree(plain, ahead)
    names = report(plain, None)["names"]
    got = report(ahead, ahead, processes)
    assert got["names"] == names and len(names) >= 12
    assert got["queued"] == len(names)
    assert got["built_again_saved"] == len(names)
    assert got["drawn_ahead"] == len(names) - 1  # all but the heat map (its legend is a gradient)
    assert files_of(ahead) == files_of(plain)


def test_a_chart_whose_file_changed_is_built_and_drawn_again(tmp_path):
    plain = rf.full_folder(tmp_path / "plain")
    ahead = tmp_path / "ahead"
    shutil.copytree(plain, ahead)
    early = tmp_path / "early"
    shutil.copytree(plain, early)
    # after drawing ahead: one number of the relaxation plan changes, and a column of the funnel holds
    # the same numbers as floats (1.0 where it held 1; polars' equals() alone calls them equal): both
    # charts differ from those drawn ahead
    for folder in (plain, ahead):
        relax = pl.read_csv(folder / "relaxation.csv")
        relax.with_columns(pl.col("eligible_fraction") * 0.5).write_csv(folder / "relaxation.csv")
        funnel = pl.read_csv(folder / "funnel.csv")
        assert funnel.schema["dropped"] == pl.Int64
        funnel.with_columns(pl.col("dropped").cast(pl.Float64)).write_csv(folder / "funnel.csv")
        assert pl.read_csv(folder / "funnel.csv").equals(pl.read_csv(early / "funnel.csv"))
    names = report(plain, None)["names"]
    got = report(ahead, early, 2)
    assert got["names"] == names
    assert got["built_again_saved"] == len(names) - 2
    assert got["drawn_ahead"] == len(names) - 3
    assert files_of(ahead) == files_of(plain)


def test_only_a_chart_with_a_continuous_colour_may_draw_a_gradient(tmp_path):
    from hn005_sim.report.build import build_charts
    from hn005_sim.report.images import render_svg
    from hn005_sim.report.prerender import may_draw_gradients

    charts = build_charts(load_folder(rf.full_folder(tmp_path / "f")))
    for chart in charts:
        svg = render_svg(chart.spec)
        assert ("Gradient" in svg) == may_draw_gradients(chart.spec), chart.name
    assert [c.name for c in charts if may_draw_gradients(c.spec)] == ["cofailure"]


PLAIN_RUN_REPORT = """
import json, sys
from pathlib import Path
from hn005_sim.report import write_report
from hn005_sim.report.tables import published_trials
from hn005_sim.scenario.load import load_scenario
folder = Path(sys.argv[1])
sc, _ = load_scenario(Path(sys.argv[2]))
write_report(folder, title=f"{sc.trial.display_title} feasibility: {sc.name}",
             manifest=json.loads((folder / "manifest.json").read_text()),
             published=published_trials(sc.trial.comparators), png=False)
"""


def test_run_draws_its_charts_ahead_and_writes_the_report_it_wrote_before(tmp_path):
    out = tmp_path / "run"
    scenario = ROOT / "scenarios" / "baseline.toml"
    subprocess.run([sys.executable, "-c", "import sys; from hn005_sim.cli import main; sys.exit(main())",
                    "run", str(scenario), "--replicates", "2", "--seed", "5", "--screen-patients", "5000",
                    "--out", str(out), "--quiet"], check=True, capture_output=True)
    again = tmp_path / "again"
    shutil.copytree(out, again)
    shutil.rmtree(again / "charts")
    (again / "report.html").unlink()
    # the same folder's report drawn in page order by a process that drew nothing ahead
    subprocess.run([sys.executable, "-c", PLAIN_RUN_REPORT, str(again), str(scenario)], check=True,
                   capture_output=True)
    assert len(files_of(out)) == 13 and files_of(again) == files_of(out)


def test_a_drawing_process_that_ended_is_replaced_by_drawing_here(tmp_path):
    from hn005_sim.report.build import build_charts
    from hn005_sim.report.images import render_svg
    from hn005_sim.report.prerender import ChartRenderer

    chart = next(c for c in build_charts(load_folder(rf.full_folder(tmp_path / "f"))) if c.name == "sweeps")
    renderer = ChartRenderer(processes=1)
    try:
        first = renderer.draw(chart.spec).result(timeout=120)
        renderer._lanes[0].drawer._proc.kill()  # the drawing process dies between two drawings
        renderer._lanes[0].drawer._proc.wait()
        again = renderer.draw(chart.spec).result(timeout=120)
    finally:
        renderer.close()
    assert first == again == render_svg(chart.spec)
