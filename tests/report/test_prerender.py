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
folder, ahead_from, processes, standby = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
renderer = None
if ahead_from:
    renderer = ChartRenderer(processes=processes, standby=standby)
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


def report(folder: Path, ahead_from: Path | None, processes: int = 0, standby: int = 0) -> dict:
    """Write the folder's report in a fresh process, drawing ahead the charts of `ahead_from`'s files
    (in `processes` drawing processes, 0: in that process; plus `standby` started once the first is
    ready) when given."""
    out = subprocess.run([sys.executable, "-c", REPORT, str(folder), str(ahead_from or ""), str(processes),
                          str(standby)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("processes", "standby"), [(0, 0), (1, 0), (2, 0), (1, 1)])
def test_a_report_drawn_ahead_is_the_report_drawn_at_the_end(tmp_path, processes, standby):
    plain = rf.full_folder(tmp_path / "plain")
    ahead = tmp_path / "ahead"
    shutil.copytree(plain, ahead)
    names = report(plain, None)["names"]
    got = report(ahead, ahead, processes, standby)
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


class FakeDrawer:
    """Stands in for a drawing process (report/prerender.py `_DrawingProcess`): records when it is
    started and made ready, and draws a spec as its name, after `gate` (if any) lets it."""

    def __init__(self, log: list[str], n: int, gate=None, barrier=None) -> None:
        self.log, self.n, self.gate, self.barrier = log, n, gate, barrier
        log.append(f"start {n}")

    def wait_ready(self) -> bool:
        self.log.append(f"ready {n}" if (n := self.n) is not None else "ready")
        return True

    def svg(self, spec: dict) -> str:
        self.log.append(f"taken {self.n} {spec['name']}")
        if self.gate is not None:
            assert self.gate.wait(timeout=30)
        if self.barrier is not None:
            self.barrier.wait(timeout=30)  # BrokenBarrierError unless another lane draws at the same time
        self.log.append(f"draw {self.n} {spec['name']}")
        return spec["name"]

    def hang_up(self) -> None:
        self.log.append(f"hang up {self.n}")

    def close(self) -> None:
        self.log.append(f"close {self.n}")


def fake_drawers(monkeypatch, **kwargs) -> list[str]:
    from hn005_sim.report import prerender

    log: list[str] = []
    started = iter(range(100))
    monkeypatch.setattr(prerender, "_drawing_process", lambda: FakeDrawer(log, next(started), **kwargs))
    return log


def test_a_standby_drawing_process_starts_once_the_first_is_ready_then_draws_beside_it(monkeypatch):
    import threading

    from hn005_sim.report.prerender import ChartRenderer

    # two drawings that can only finish together: each waits at a barrier for the other's lane
    log = fake_drawers(monkeypatch, barrier=threading.Barrier(2))
    renderer = ChartRenderer(processes=1, standby=1)
    for name in ("a", "b"):
        renderer.draw_ahead({"name": name, "mark": "point"})
    assert renderer.take({"name": "a", "mark": "point"}).result(timeout=60) == "a"
    assert renderer.take({"name": "b", "mark": "point"}).result(timeout=60) == "b"
    lanes, first = renderer.lanes(), renderer._lanes[0].drawer.n
    renderer.close()
    assert lanes == 2 and first == 0  # lane 0 (images, page order) is the first process's
    # the standby process is started after the first one is ready, not beside its start-up
    assert log.index("start 1") > log.index("ready 0")
    # each lane drew one (neither drawing could end before the other began)
    assert sorted(e.split()[1] for e in log if e.startswith("draw")) == ["0", "1"]
    assert log.count("close 0") == log.count("close 1") == 1
    # at the end, every drawing process is hung up on before the first is waited for: they end side by
    # side (issue 16, phase 5)
    assert max(log.index("hang up 0"), log.index("hang up 1")) < min(log.index("close 0"),
                                                                    log.index("close 1"))


def test_drawings_ahead_are_taken_most_costly_first_then_in_the_order_queued(monkeypatch):
    import threading

    from hn005_sim.report.prerender import ChartRenderer

    gate = threading.Event()
    log = fake_drawers(monkeypatch, gate=gate)
    renderer = ChartRenderer(processes=1)
    # while the lane is held by a first drawing, four more wait: 3 views, 1, 2 and 1 (drawing_cost)
    views = {"first": 1, "one": 1, "three": 3, "two": 2, "one again": 1}
    for name, n in views.items():
        renderer.draw_ahead({"name": name, "layer": [{"mark": "point"}] * n})
        while name == "first" and "taken 0 first" not in log:  # the lane holds it, at the gate
            threading.Event().wait(0.01)
    gate.set()
    for name, n in views.items():
        assert renderer.take({"name": name, "layer": [{"mark": "point"}] * n}).result(timeout=60) == name
    renderer.close()
    assert [e.split(" ", 2)[2] for e in log if e.startswith("draw")] == \
        ["first", "three", "two", "one", "one again"]


def test_drawing_cost_counts_views():
    from hn005_sim.report.prerender import drawing_cost, spec_key

    assert drawing_cost(spec_key({"mark": "point"})) == 1
    assert drawing_cost(spec_key({"concat": [{"layer": [{"mark": "line"}, {"mark": {"type": "point"}}]}] * 3,
                                  "datasets": {"d": [{"label": "mark"}]}})) == 6


def test_the_report_package_imports_the_charts_only_when_they_are_used():
    """`run` imports report.prerender first thing to start Vega; the charts and the page (numpy,
    vl-convert) wait until a chart is built."""
    code = ("import sys\nimport hn005_sim.report.prerender\n"
            "print('build' in ' '.join(m for m in sys.modules if m.startswith('hn005_sim.report')),"
            " 'vl_convert' in sys.modules)\n"
            "from hn005_sim.report import write_report, build_charts, load_folder, OutputFiles\n"
            "import hn005_sim.report.build as b, hn005_sim.report.data as d\n"
            "print(write_report is b.write_report and build_charts is b.build_charts and "
            "load_folder is d.load_folder and OutputFiles is d.OutputFiles)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True"]
