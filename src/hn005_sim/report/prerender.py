"""Draw a report's charts while the command is still computing (issue 16: the fixed cost of `run`).

Vega (inside vl-convert) draws one chart at a time in its own thread, without Python's GIL, and its
first drawing costs ~0.5 s of start-up. A `ChartRenderer` owns that one drawing thread for a command:

- created at the start of `run`, it starts vl-convert at once (while the scenario loads);
- `report.build.draw_ahead(renderer, frames, summaries)` builds the charts that some of the files
  give, as soon as they exist (the
  report's analyses, while the replicates still run; the simulation's files, while the analyses still
  run), and queues their SVGs;
- `write_report(..., renderer=r)` reads the output folder as always; a chart whose file holds an equal
  frame (same columns, types, values; same target, deadline and probability) is the chart built ahead,
  any other is built; it takes the SVG drawn ahead only for a spec identical to the one drawn (the same
  JSON text); any other spec is drawn then. What the report shows is therefore what it showed
  without drawing ahead: the same specs, the same SVG bytes (tests/report/test_prerender.py), only
  sooner.

The thread is a daemon: an interrupted command does not wait for a drawing nobody will read.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

WARM_UP_SPEC: dict[str, Any] = {
    "data": {"values": [{"x": 0}]},
    "mark": "point",
    "encoding": {"x": {"field": "x", "type": "quantitative"}},
}
"""The smallest chart: drawing it starts vl-convert's JavaScript engine and loads Vega."""


def spec_key(spec: Mapping[str, Any]) -> str:
    """Two specs draw the same picture when their JSON texts are the same."""
    return json.dumps(spec, allow_nan=False, separators=(",", ":"))


def warm_up() -> None:
    """Start vl-convert without importing altair (the version picked here only loads that version's
    compiler; the report's charts name their own)."""
    import vl_convert as vlc

    vlc.vegalite_to_svg(WARM_UP_SPEC, vl_version=vlc.get_vegalite_versions()[-1])


def drawing_cost(key: str) -> int:
    """How costly a spec (its `spec_key` text) is to draw, roughly: its number of views (marks). Vega's
    time goes mostly to each view's axes, marks and data flow: the report's sweeps chart (56 views:
    28 panels of a line and a point layer) took 0.41 s, the inventory (9) 0.14 s, the enrolment fan (8)
    and the criteria (6) 0.05-0.08 s, the one- and two-view charts 0.02-0.09 s (warm, idle machine)."""
    return key.count('"mark":')


GRADIENT_CHANNELS = ("color", "fill", "stroke")


def may_draw_gradients(spec: Any) -> bool:
    """Whether drawing `spec` may write a gradient: a colour channel on a continuous (quantitative or
    temporal) field gets a gradient legend, and a mark may be filled with a gradient.

    Vega numbers the gradients of a process in drawing order (`gradient_0`, `gradient_1`, ...), across
    charts: the co-failure heat map's legend is `gradient_0` because no chart before it in page order
    has one. Such a chart is never drawn ahead, and the charts drawn ahead have none, so every gradient
    keeps the number it had when the charts were drawn in page order only."""
    if isinstance(spec, dict):
        for key, value in spec.items():
            if key == "gradient":
                return True
            if key in GRADIENT_CHANNELS and isinstance(value, dict) \
                    and value.get("type") in ("quantitative", "temporal"):
                return True
            if key != "datasets" and may_draw_gradients(value):
                return True
    elif isinstance(spec, list):
        return any(may_draw_gradients(v) for v in spec)
    return False


SERVER = r"""
import json, os, sys
import vl_convert as vlc
vlc.vegalite_to_svg(json.loads(sys.argv[1]), vl_version=vlc.get_vegalite_versions()[-1])  # start Vega
inp, out = sys.stdin.buffer, sys.stdout.buffer
out.write(bytes(8))  # ready: Vega is started (an empty answer, read by _DrawingProcess.wait_ready)
out.flush()
while True:
    head = inp.read(8)
    if len(head) < 8:
        break  # the command closed the pipe, or ended
    request = json.loads(inp.read(int.from_bytes(head, "little")))
    try:
        answer = {"svg": vlc.vegalite_to_svg(request["spec"], vl_version=request["vl_version"])}
    except Exception as exc:
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    data = json.dumps(answer).encode()
    out.write(len(data).to_bytes(8, "little") + data)
    out.flush()
os._exit(0)  # every answer is flushed: skip the interpreter's teardown (vl-convert's JavaScript engine)
"""
"""The drawing process: vl-convert holds Python's GIL while it draws (measured: a Python thread beside it
gets about a tenth of its speed), so drawing in a thread of the command would stall the command's own
work; a process of its own draws on the other core. Once Vega is started it writes an empty answer
(8 zero bytes: ready), then reads length-prefixed JSON requests on stdin and answers each with the SVG
text (or the error) on stdout, in order."""


class _DrawingProcess:
    """A `SERVER` process; `svg(spec)` is vl-convert's `vegalite_to_svg(spec)` drawn there."""

    def __init__(self) -> None:
        # its own session: a Ctrl-C in the terminal reaches the command, which ends; the pipe then
        # closes and the drawing process ends too (it never prints a traceback over the command's)
        self._proc = subprocess.Popen([sys.executable, "-c", SERVER, json.dumps(WARM_UP_SPEC)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
        self._ready: bool | None = None  # None: the ready answer is not read yet

    def wait_ready(self) -> bool:
        """Wait until Vega is started in the process (its first, empty answer); False if it ended."""
        if self._ready is None:
            assert self._proc.stdout is not None
            try:
                self._ready = self._proc.stdout.read(8) == bytes(8)
            except (OSError, ValueError):
                self._ready = False
        return self._ready

    def svg(self, spec: dict[str, Any]) -> str:
        from hn005_sim.report.images import vl_version

        # the spec's JSON text is read back as the same dict (floats by repr, key order kept)
        data = json.dumps({"spec": spec, "vl_version": vl_version()}).encode()
        assert self._proc.stdin is not None and self._proc.stdout is not None
        answer = None
        if self.wait_ready():
            try:
                self._proc.stdin.write(len(data).to_bytes(8, "little") + data)
                self._proc.stdin.flush()
                head = self._proc.stdout.read(8)
                answer = json.loads(self._proc.stdout.read(int.from_bytes(head, "little"))) \
                    if len(head) == 8 else None
            except (OSError, ValueError):
                answer = None
        if answer is None:
            raise RuntimeError(f"the chart drawing process ended (exit status {self._proc.poll()})")
        if "error" in answer:
            raise ValueError(answer["error"])
        return answer["svg"]

    def hang_up(self) -> None:
        """Close the pipe: the process ends (os._exit) once its last answer is written."""
        try:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        except OSError:
            pass

    def close(self) -> None:
        self.hang_up()
        try:
            self._proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


_Job = tuple[cf.Future, Callable[..., Any], tuple]


class _Lane:
    """A daemon thread with the drawing process its drawings are made by (or none: vl-convert in this
    process). It runs its own jobs in the order they were submitted and, once its drawing process is
    ready, takes drawings ahead from the renderer's shared queue whenever it is free (those first: a
    job of its own may be waiting for one of them)."""

    def __init__(self, renderer: ChartRenderer, drawer: _DrawingProcess | None, name: str,
                 on_ready: Callable[[], None] | None = None) -> None:
        self.drawer = drawer
        self.ready = drawer is None  # drawing here needs no start-up (or the first job is the warm-up)
        self._renderer = renderer
        self._on_ready = on_ready
        self._jobs: collections.deque[_Job] = collections.deque()
        self._closing = False
        self._thread = threading.Thread(target=self._loop, daemon=True, name=name)

    def start(self) -> _Lane:
        self._thread.start()
        return self

    def _next(self) -> _Job | None:
        r = self._renderer
        with r._cond:
            while True:
                if self.ready and r._queue:
                    future, spec = r._queue.popleft()
                    r._costs.popleft()
                    return future, self.svg, (spec,)
                if self._jobs:
                    return self._jobs.popleft()
                if self._closing:
                    return None
                r._cond.wait()

    def _loop(self) -> None:
        if self.drawer is not None:
            if not self.drawer.wait_ready():  # the process did not start Vega: draw here instead
                self.drawer.close()
                self.drawer = None
            with self._renderer._cond:
                self.ready = True
                self._renderer._cond.notify_all()
        if self._on_ready is not None:
            self._on_ready()
        while True:
            job = self._next()
            if job is None:
                return
            future, function, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function(*args))
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

    def submit(self, function: Callable[..., Any], *args: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        with self._renderer._cond:
            self._jobs.append((future, function, args))
            self._renderer._cond.notify_all()
        return future

    def svg(self, spec: dict[str, Any]) -> str:
        if self.drawer is not None:
            try:
                return self.drawer.svg(spec)
            except RuntimeError:  # the drawing process ended (killed?): draw here from now on
                self.drawer.close()
                self.drawer = None
        from hn005_sim.report.images import render_svg

        return render_svg(spec)

    def close(self, drawer: bool = True) -> None:
        """End the lane's thread after its jobs, then (`drawer`) its drawing process."""
        with self._renderer._cond:
            self._closing = True
            self._renderer._cond.notify_all()
        self._thread.join()
        if drawer and self.drawer is not None:
            self.drawer.close()


def _drawing_process() -> _DrawingProcess | None:
    try:
        return _DrawingProcess()
    except OSError:  # no process to be had: draw here, as before
        return None


class ChartRenderer:
    """The report's drawing jobs.

    processes=0: one lane, drawing in this process (vl-convert in the lane's thread), as `write_report`
    always drew. processes=n: n lanes, each drawing in a process of its own (`SERVER`, started at once,
    Vega started in it while the command goes on). standby=m (with processes >= 1): m more lanes, each
    with a drawing process started only once lane 0's is ready, so that their Vega start-up (~0.5 s of
    CPU) does not compete with lane 0's and with the command's own start (imports, the scenario) but
    runs while lane 0 waits for the first chart.

    Lane 0 saves the images and draws every chart not drawn ahead, in page order (`submit`, `draw`).
    Drawings ahead (`draw_ahead`) wait in one queue, the most costly first (`drawing_cost`; in the order
    queued among equals), and each lane whose drawing process is ready takes the next one whenever it is
    free: the largest chart (the sweeps) is drawn beside the others rather than after them."""

    def __init__(self, warm: bool = True, processes: int = 0, standby: int = 0) -> None:
        self._cond = threading.Condition()
        self._queue: collections.deque[tuple[cf.Future, dict]] = collections.deque()  # drawings ahead
        self._costs: collections.deque[int] = collections.deque()  # their drawing_cost, decreasing
        self._closed = False
        self._lanes: list[_Lane] = []
        self._standby = standby if processes else 0
        for i in range(max(processes, 1)):
            drawer = _drawing_process() if processes else None
            if drawer is None and i:
                break  # one lane drawing in this process is enough
            on_ready = self._start_standby if i == 0 and self._standby else None
            lane = _Lane(self, drawer, f"hn005-charts-{i}", on_ready)
            with self._cond:
                self._lanes.append(lane)  # before its thread starts (and may start a standby lane)
            lane.start()
        self._ahead: dict[str, cf.Future] = {}
        self._built: dict[str, list[tuple[pl.DataFrame, tuple, Any]]] = {}
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()
        self.drawn_ahead = 0  # SVGs taken from a drawing made ahead (tests, and bench notes)
        self.built_again_saved = 0  # charts taken from those built ahead
        if warm and self._lanes[0].drawer is None:
            self.submit(warm_up)

    def _start_standby(self) -> None:
        """Lane 0's drawing process is ready: start the standby lanes' (in lane 0's thread)."""
        for _ in range(self._standby):
            with self._cond:
                if self._closed:
                    return
            drawer = _drawing_process()
            if drawer is None:
                return
            with self._cond:
                if self._closed:  # closed while it started
                    drawer.close()
                    return
                self._lanes.append(_Lane(self, drawer, f"hn005-charts-{len(self._lanes)}").start())

    def submit(self, function: Callable[..., Any], *args: Any) -> cf.Future:
        """Run `function(*args)` in lane 0, after the jobs queued there before."""
        return self._lanes[0].submit(function, *args)

    def close(self) -> None:
        """No more jobs: each lane ends after those queued (the drawings ahead no lane has taken are
        then drawn by whichever lanes are left), then its drawing process."""
        with self._cond:
            self._closed = True
            first = self._lanes[:1]
        for lane in first:
            lane.close(drawer=False)  # joins lane 0 first: no standby lane starts after this
        with self._cond:
            lanes, self._lanes = self._lanes, []
        for lane in lanes[1:]:
            lane.close(drawer=False)
        # every lane's thread has ended: hang up on every drawing process, then wait for each, so that
        # they end side by side (each frees its JavaScript engine's memory as it exits)
        drawers = [lane.drawer for lane in lanes if lane.drawer is not None]
        for drawer in drawers:
            drawer.hang_up()
        for drawer in drawers:
            drawer.close()

    def lanes(self) -> int:
        """How many lanes draw now (standby ones included once started)."""
        with self._cond:
            return len(self._lanes)

    def draw(self, spec: dict[str, Any], lane: int = 0) -> cf.Future:
        """Queue the SVG of `spec` now in `lane` (after the jobs queued there); the future gives its text."""
        target = self._lanes[lane]
        return target.submit(target.svg, spec)

    def draw_ahead(self, spec: dict[str, Any]) -> None:
        """Queue the SVG of `spec` (once per distinct spec), unless it may draw a gradient; the first
        lane free takes it."""
        if may_draw_gradients(spec):
            return
        key = spec_key(spec)
        with self._lock:
            if key in self._ahead:
                return
            future: cf.Future = cf.Future()
            self._ahead[key] = future
        cost = drawing_cost(key)
        with self._cond:
            # the most costly first, in the order queued among equals (a free lane takes the first)
            at = next((i for i, c in enumerate(self._costs) if c < cost), len(self._costs))
            self._costs.insert(at, cost)
            self._queue.insert(at, (future, spec))
            self._cond.notify_all()

    def chart(self, file: str, frame: pl.DataFrame, key: tuple, build: Callable[[pl.DataFrame], Any]) -> Any:
        """`build(frame)`, or the chart built before from an equal frame (same columns, types and values)
        of the same file with the same `key` (target, deadline, probability): builders are functions
        of those alone."""
        with self._lock:
            for old, old_key, chart in self._built.get(file, ()):
                if old_key == key and old.schema == frame.schema and old.equals(frame):
                    self.built_again_saved += 1
                    return chart
        with self._build_lock:  # one builder at a time: altair's caches are not made for threads
            chart = build(frame)
        with self._lock:
            self._built.setdefault(file, []).append((frame, key, chart))
        return chart

    def take(self, spec: dict[str, Any]) -> cf.Future | None:
        """The drawing made ahead for this exact spec, if any (each is taken once)."""
        with self._lock:
            future = self._ahead.pop(spec_key(spec), None)
        if future is not None:
            self.drawn_ahead += 1
        return future
