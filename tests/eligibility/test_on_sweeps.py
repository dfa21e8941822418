"""`restrictiveness.analyse(..., on_sweeps=f)` hands the sweeps' frame to `f` as soon as it exists (issue
16, phase 5: `run` queues the report's costliest chart there): the frame it returns, before it returns,
and the same figures as without the callback."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hn005_sim.eligibility.analysis import RESTRICTIVENESS_FILES, analyse_scenario
from hn005_sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]


def test_the_sweeps_frame_is_handed_over_before_the_other_figures_are_done():
    sc, raw = load_scenario(ROOT / "scenarios" / "baseline.toml")
    got: list = []
    returned = threading.Event()

    def on_sweeps(frame):
        got.append((frame, returned.is_set(), threading.current_thread() is threading.main_thread()))

    _, _, _, with_callback = analyse_scenario(sc, raw, 4_000, 3, on_sweeps=on_sweeps)
    returned.set()
    _, _, _, without = analyse_scenario(sc, raw, 4_000, 3)
    assert len(got) == 1
    frame, after_return, in_caller = got[0]
    assert frame is with_callback.sweeps and frame.height > 0
    assert not after_return and not in_caller  # in the worker thread, while analyse still ran
    for name in RESTRICTIVENESS_FILES:
        assert getattr(with_callback, name).equals(getattr(without, name)), name
    assert with_callback.summary == without.summary


def test_an_error_in_the_callback_is_the_analyses_error():
    sc, raw = load_scenario(ROOT / "scenarios" / "baseline.toml")

    def failing(frame):
        raise RuntimeError("drawing ahead failed")

    with pytest.raises(RuntimeError, match="drawing ahead failed"):
        analyse_scenario(sc, raw, 2_000, 3, on_sweeps=failing)
