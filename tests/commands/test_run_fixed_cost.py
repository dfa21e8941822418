"""`run`'s fixed cost (issue 16, phase 3): the report's analyses queue their charts as soon as their
files exist, every chart built ahead is the one the report takes, and the sites curve needs no
scipy.optimize. (Times are in bench/startup.py, never in tests.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASELINE = str(ROOT / "scenarios" / "baseline.toml")


def test_charts_are_queued_as_their_files_appear_and_taken_again_by_the_report(tmp_path, monkeypatch):
    from hn005_sim.cli import main
    from hn005_sim.recruitment import planning
    from hn005_sim.report import build, prerender

    events: list[str] = []
    counts: dict[str, int] = {}
    names: list[str] = []
    draw_ahead, plan_from, close, write_report = (build.draw_ahead, planning.plan_from_scenario,
                                                  prerender.ChartRenderer.close, build.write_report)

    def logged_draw_ahead(renderer, frames, summaries):
        events.append("draw " + " ".join(sorted(frames)))
        return draw_ahead(renderer, frames, summaries)

    def logged_plan_from(*args, **kwargs):
        events.append("plan_from_scenario")
        return plan_from(*args, **kwargs)

    from hn005_sim.eligibility import analysis

    analyse_scenario = analysis.analyse_scenario

    def logged_analyse_scenario(*args, **kwargs):
        out = analyse_scenario(*args, **kwargs)
        events.append("analyse_scenario returned")
        return out

    def counted_close(self):
        counts.update(built_again_saved=self.built_again_saved, drawn_ahead=self.drawn_ahead,
                      lanes=self.lanes())
        return close(self)

    def named_write_report(*args, **kwargs):
        names.extend(write_report(*args, **kwargs))
        return names

    from hn005_sim import montecarlo

    run_scenario = montecarlo.run_scenario

    def logged_run_scenario(*args, **kwargs):
        events.append("run_scenario")
        return run_scenario(*args, **kwargs)

    monkeypatch.setattr(montecarlo, "run_scenario", logged_run_scenario)
    monkeypatch.setattr(analysis, "analyse_scenario", logged_analyse_scenario)
    monkeypatch.setattr(build, "draw_ahead", logged_draw_ahead)
    monkeypatch.setattr(planning, "plan_from_scenario", logged_plan_from)
    monkeypatch.setattr(prerender.ChartRenderer, "close", counted_close)
    import hn005_sim.report as report_pkg

    monkeypatch.setattr(report_pkg, "write_report", named_write_report)
    out = tmp_path / "run"
    assert main(["run", BASELINE, "--replicates", "2", "--seed", "1", "--out", str(out), "-q"]) == 0
    assert (out / "report.html").is_file()
    restrictiveness = "draw cofailure criteria funnel relaxation"
    assert restrictiveness in events and "draw sweeps" in events and "draw curve" in events, events
    # the restrictiveness charts are queued before the sites curve is computed (the costly sweeps chart
    # first, alone), the curve right after
    assert events.index("draw sweeps") < events.index(restrictiveness) < events.index("plan_from_scenario") \
        < events.index("draw curve")
    # the sweeps chart is queued as soon as its frame exists, while the other restrictiveness figures
    # are still computed (issue 16, phase 5), not once the analyses have returned
    assert events.index("draw sweeps") < events.index("analyse_scenario returned"), events
    # a short run (2 replicates, --jobs 1) starts its replicates once the restrictiveness charts are queued
    assert events.index(restrictiveness) < events.index("run_scenario")
    simulation = next(e for e in events if "enrollment_curve" in e)
    assert {"inventory", "drug_demand", "sites", "time_to_target"} <= set(simulation.split()[1:])
    # every chart of the report was built ahead from the same frame and the same target, deadline and
    # probability (a mismatch would build it again); every one but the gradient heat map drawn ahead
    assert len(names) == 12, names
    assert counts["built_again_saved"] == len(names)
    assert counts["drawn_ahead"] == len(names) - 1
    # with --jobs 1 a second drawing process was started once the first was ready (standby)
    assert counts["lanes"] == 2


def test_only_a_short_run_with_its_report_and_jobs_1_holds_its_replicates():
    from hn005_sim.commands.run import WAIT_FOR_RESTRICTIVENESS_UP_TO as most
    from hn005_sim.commands.run import replicates_wait_for_restrictiveness as waits

    assert waits(True, 1, 1) and waits(True, 1, most)
    assert not waits(True, 1, most + 1) and not waits(True, 2, 1) and not waits(False, 1, 1)


def test_a_run_whose_analyses_fail_does_not_wait_for_them(tmp_path, monkeypatch):
    """The replicates wait for the restrictiveness charts; analyses that fail before queueing them
    release the replicates, and `run` reports the failure as before (one line, exit status 2)."""
    from hn005_sim.cli import main
    from hn005_sim.eligibility import analysis
    from hn005_sim.errors import InputError

    def failing(*args, **kwargs):
        raise InputError("the analyses failed")

    monkeypatch.setattr(analysis, "analyse_scenario", failing)
    out = tmp_path / "run"
    assert main(["run", BASELINE, "--replicates", "1", "--seed", "1", "--out", str(out), "-q"]) == 2
    assert not out.exists()


def test_run_asks_for_a_standby_drawing_process_with_jobs_1_only(monkeypatch):
    from hn005_sim.commands import run
    from hn005_sim.report import prerender

    asked: list[dict] = []
    monkeypatch.setattr(prerender, "ChartRenderer", lambda **kw: asked.append(kw))
    run._chart_renderer(1)
    run._chart_renderer(2)
    assert asked == [{"processes": 1, "standby": 1}, {"processes": 1, "standby": 0}]


def test_a_run_with_its_report_imports_no_scipy_optimize(tmp_path):
    """The report's sites curve needs no root finding: `run` loads no scipy.optimize (~0.25 s)."""
    out = tmp_path / "run"
    args = ["run", BASELINE, "--replicates", "2", "--seed", "1", "--out", str(out), "-q"]
    code = (f"import sys\nfrom hn005_sim.cli import main\nassert main({args!r}) == 0\n"
            "print(' '.join(sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    mods = set(proc.stdout.split())
    assert (out / "report.html").is_file() and "hn005_sim.recruitment.planning" in mods
    assert not {m for m in mods if m == "scipy.optimize" or m.startswith("scipy.optimize.")}


def test_the_drawing_process_answers_in_full_then_ends_at_once_with_status_0():
    """The drawing process leaves by os._exit once the pipe closes (no teardown of vl-convert's engine):
    every answer was flushed before, and it ends with status 0."""
    from hn005_sim.report.images import render_svg
    from hn005_sim.report.prerender import WARM_UP_SPEC, _DrawingProcess

    spec = {**WARM_UP_SPEC, "data": {"values": [{"x": i} for i in range(200)]}}
    drawer = _DrawingProcess()
    try:
        assert drawer.svg(spec) == render_svg(spec)
    finally:
        drawer.close()
    assert drawer._proc.returncode == 0


PLANNING_ORDER = """
import sys
from hn005_sim.cli import main
from hn005_sim.eligibility import analysis
seen = {}
analyse_scenario = analysis.analyse_scenario
def recorded(*args, **kwargs):
    seen["planning_before_analyses"] = "hn005_sim.recruitment.planning" in sys.modules
    return analyse_scenario(*args, **kwargs)
analysis.analyse_scenario = recorded
assert main(["run", sys.argv[1], "--replicates", "1", "--seed", "1", "--out", sys.argv[2], "-q"]) == 0
print(seen["planning_before_analyses"], "hn005_sim.recruitment.planning" in sys.modules)
"""


def test_the_analyses_thread_imports_the_site_plan_only_after_the_restrictiveness_figures(tmp_path):
    """Issue 16, phase 5: the site plan's import (~0.07 s) is not made on the way to the sweeps chart."""
    proc = subprocess.run([sys.executable, "-c", PLANNING_ORDER, BASELINE, str(tmp_path / "run")],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["False", "True"]
