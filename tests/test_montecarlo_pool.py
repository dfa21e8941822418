"""The process pool of `run --jobs N` (issue 16, phase 3): forked at the command's start, same records as
inline and as a spawned pool, nothing imported again in a worker, signals and orphans handled as with
spawn; and the batches' shrinking tail.

The forked pool is only started in a fresh process (`prestart_workers` refuses a process whose polars
thread pool is running, as pytest's is after the other tests), so those tests run a small script."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_output_folders import _alive  # (a worker is gone once it is not alive or a zombie)

from hn005_sim.montecarlo import TAIL_MIN_BATCH, _batches, _guided_batches, run_scenario
from hn005_sim.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 300


def script(code: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=None if env is None else {**os.environ, **env})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# ---------------------------------------------------------------------------------------------------
# batches


def test_guided_batches_hand_computed():
    """1,000 replicates on 2 workers: 17 batches of 50 (`_batches`' size), then each a quarter of what
    is left (ceil), at least TAIL_MIN_BATCH, the last 2 joined to the one before."""
    sizes = [b - a for a, b in _guided_batches(1000, 2)]
    # left 150 -> 38, 112 -> 28, 84 -> 21, 63 -> 16, 47 -> 12, 35 -> 9, 26 -> 8, 18 -> 8, 10 -> all 10
    assert sizes == [50] * 17 + [38, 28, 21, 16, 12, 9, 8, 8, 10]
    # 200 on 2: batches of 25 (200 / (4 x 2)), then 100 -> 25, 75 -> 19, 56 -> 14, 42 -> 11, 31 -> 8, ...
    assert [b - a for a, b in _guided_batches(200, 2)] == [25] * 5 + [19, 14, 11, 8, 8, 8, 7]


@pytest.mark.parametrize("replicates", [1, 2, 7, 40, 199, 200, 1000, 4321])
@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_guided_batches_cover_every_replicate_once_in_order(replicates, workers):
    batches = _guided_batches(replicates, workers)
    plain = _batches(replicates, workers)
    assert batches[0][0] == 0 and batches[-1][1] == replicates
    assert all(a < b for a, b in batches)
    assert all(b == c for (_, b), (c, _) in itertools.pairwise(batches))  # contiguous
    size = plain[0][1] - plain[0][0]
    assert max(b - a for a, b in batches) <= size  # never larger than before
    if workers == 1:
        assert batches == plain
    else:
        # sizes never grow once they start shrinking, but for the last one joining a short remainder
        sizes = [b - a for a, b in batches]
        body = sizes[:-1]
        assert all(x >= y for x, y in itertools.pairwise(body))
        # the tail ends in batches of a fraction of `size`, not of `size` itself
        if replicates >= 8 * workers * size:
            assert sizes[-1] < min(size, 2 * TAIL_MIN_BATCH)


# ---------------------------------------------------------------------------------------------------
# the forked pool

RUN_FORKED = """
import json
from hn005_sim import montecarlo as mc
started = mc.prestart_workers("process", 2)
from hn005_sim.scenario.load import load_scenario
sc, _ = load_scenario("scenarios/baseline.toml")
res = mc.run_scenario(sc, 24, seed=3, jobs=2)
print(json.dumps({"prestarted": started, "taken": 2 not in mc._PRESTARTED,
                  "summary": res.summary, "frames": {k: f.write_csv() for k, f in res.frames.items()}}))
"""


@pytest.mark.slow
def test_forked_pool_gives_the_outputs_of_inline_and_of_a_spawned_pool():
    """Same scenario and seed: the forked pool's summary and frames are those of the inline run and of a
    spawned pool (pytest's process cannot fork safely: its pool is spawned), byte for byte."""
    forked = json.loads(script(RUN_FORKED))
    assert forked["prestarted"] and forked["taken"]
    sc, _ = load_scenario(ROOT / "scenarios/baseline.toml")
    for jobs in (1, 2):
        res = run_scenario(sc, 24, seed=3, jobs=jobs)
        assert json.dumps(res.summary, sort_keys=True) == json.dumps(forked["summary"], sort_keys=True)
        assert {k: f.write_csv() for k, f in res.frames.items()} == forked["frames"]


FIRST_BATCH = """
import json, sys
from hn005_sim import montecarlo as mc

def probe(at_fork, scenario):
    mc.run_batch(scenario, 5, 0, 3)
    return sorted(set(sys.modules) - set(at_fork))

assert mc.prestart_workers("process", 2)
at_fork = sorted(sys.modules)
from hn005_sim.scenario.load import load_scenario
sc, _ = load_scenario("scenarios/baseline.toml")
with mc.open_executor("process", 2) as (ex, workers):
    with mc.sigint_held():
        fut = ex.submit(probe, at_fork, sc)
    print(json.dumps(fut.result()))
"""


@pytest.mark.slow
def test_a_forked_workers_first_batch_imports_only_the_population_modules():
    """WORKER_MODULES is complete: unpickling a task (the scenario) and running a first batch of the
    baseline (recruitment, treatment, supply) import nothing the parent had not imported when it forked
    but the scenario schema and hn005_sim.population, which the parent cannot import before forking
    (population.columns starts polars' thread pool at import: see WORKER_MODULES)."""
    new = json.loads(script(FIRST_BATCH))
    assert "hn005_sim.scenario.schema" in new  # the parent had not loaded it: the probe sees imports
    assert [m for m in new if m != "hn005_sim.scenario.schema" and not m.startswith("hn005_sim.population")
            ] == []


REFUSED = """
import json
import polars as pl
from hn005_sim import montecarlo as mc
before = mc.fork_is_safe()
pl.DataFrame({"a": list(range(100_000))}).select(pl.col("a").sum().alias("s"), pl.col("a").max().alias("m"))
after = mc.fork_is_safe()
print(json.dumps({"before": before[0], "after": after[0], "why": after[1],
                  "prestarted": mc.prestart_workers("process", 2)}))
"""


def test_no_fork_once_polars_has_started_its_thread_pool():
    """A query starts polars' rayon pool (threads polars-N): forking then would give the workers its
    locks without its threads, so the pool is spawned instead."""
    out = json.loads(script(REFUSED))
    assert out["before"] is True
    assert out["after"] is False and "polars-" in out["why"] and out["prestarted"] is False


def test_no_fork_when_asked_for_spawn_or_not_a_local_pool():
    code = ("from hn005_sim import montecarlo as mc\n"
            "print(mc.prestart_workers('process', 2), mc.prestart_workers('thread', 2),"
            " mc.prestart_workers('process', 1))")
    assert script(code, env={"HN005_SIM_POOL_START": "spawn"}).split() == ["False", "False", "False"]
    assert script(code).split() == ["True", "False", "False"]


SIGNALS = """
import json, signal
from pathlib import Path
from hn005_sim import montecarlo as mc
signal.signal(signal.SIGTERM, lambda *a: None)  # as hn005_sim.cli installs one
assert mc.prestart_workers("process", 2)
with mc.open_executor("process", 2) as (ex, workers):
    with mc.sigint_held():
        fut = ex.submit(Path("/proc/self/status").read_text)
    print(json.dumps({"worker": fut.result(), "parent": Path("/proc/self/status").read_text()}))
"""


def _bit(status: str, field: str, sig: int) -> bool:
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith(f"{field}:"))
    return bool(int(mask, 16) >> (sig - 1) & 1)


def test_forked_workers_ignore_sigint_and_die_on_sigterm():
    """Like spawned workers: SIGINT blocked and ignored (the parent handles Ctrl-C); SIGTERM neither
    blocked nor caught (the parent's handler is dropped: `_stop_workers` ends workers with it)."""
    out = json.loads(script(SIGNALS))
    worker, parent = out["worker"], out["parent"]
    assert _bit(worker, "SigBlk", signal.SIGINT) and _bit(worker, "SigIgn", signal.SIGINT)
    assert not _bit(worker, "SigBlk", signal.SIGTERM) and not _bit(worker, "SigCgt", signal.SIGTERM)
    assert not _bit(worker, "SigIgn", signal.SIGTERM)
    assert not _bit(parent, "SigBlk", signal.SIGINT) and not _bit(parent, "SigBlk", signal.SIGTERM)
    assert _bit(parent, "SigCgt", signal.SIGTERM)  # the parent keeps its own handler


ORPHAN = """
import os, time
from hn005_sim import montecarlo as mc
assert mc.prestart_workers("process", 2)
with mc.open_executor("process", 2) as (ex, workers):
    with mc.sigint_held():
        futs = [ex.submit(os.getpid) for _ in range(4)]
    pids = sorted({f.result() for f in futs})
    print(" ".join(map(str, pids)), flush=True)
    with mc.sigint_held():
        ex.submit(time.sleep, 600)
    time.sleep(600)
"""




def test_forked_workers_exit_when_the_parent_is_killed():
    proc = subprocess.Popen([sys.executable, "-c", ORPHAN], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert pids and all(_alive(p) for p in pids)
        assert all(int(Path(f"/proc/{p}/stat").read_text().split(")")[-1].split()[2]) == proc.pid
                   for p in pids)  # forked by the parent itself
        proc.kill()
        proc.wait(timeout=TIMEOUT_S)
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in pids)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_run_command_with_a_forked_pool_writes_the_files_of_jobs_1(tmp_path):
    """End to end: `run --jobs 2` (forked pool, guided batches) and `run --jobs 1` write the same
    summary.json and CSVs."""
    cli = [sys.executable, "-c", "import sys; from hn005_sim.cli import main; sys.exit(main())"]
    outs = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        done = subprocess.run([*cli, "run", "scenarios/baseline.toml", "--replicates", "30", "--seed", "4",
                               "--jobs", str(jobs), "--no-report", "--screen-patients", "1000", "--out",
                               str(out), "-q"], cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
        assert done.returncode == 0, done.stderr
        outs[jobs] = {p.name: p.read_bytes() for p in sorted(out.iterdir())
                      if p.suffix == ".csv" or p.name == "summary.json"}
    assert outs[1] == outs[2] and "summary.json" in outs[1] and len(outs[1]) > 5


# ---------------------------------------------------------------------------------------------------
# the parent's fold


def test_histogram_rows_equal_one_histogram_per_row():
    """IntHistogramRows (failures per criterion, all criteria at once) against an IntHistogram per
    criterion fed the same values one by one: the same counts, totals, sums, quantiles and means, and
    numpy's quantiles of the raw values."""
    import numpy as np

    from hn005_sim.montecarlo import IntHistogram, IntHistogramRows

    g = np.random.default_rng(3)
    rows = IntHistogramRows(5)
    single = [IntHistogram() for _ in range(5)]
    raw = g.integers(0, 60, (200, 5)) * (g.random((200, 5)) < 0.7)  # zeros, growth past 16 and 32
    for values in raw:
        rows.add(values)
        for h, v in zip(single, values, strict=True):
            h.add(int(v))
    assert len(rows) == 5
    for i, h in enumerate(single):
        r = rows.row(i)
        assert (r.total, r.sum) == (h.total, h.sum) and type(r.sum) is int
        assert np.array_equal(np.trim_zeros(r.counts, "b"), np.trim_zeros(h.counts, "b"))
        for q in (0.0, 0.1, 0.5, 0.9, 1.0):
            assert r.quantile(q) == h.quantile(q) == np.quantile(raw[:, i], q)
        assert r.mean() == h.mean()
    empty = IntHistogramRows(0)
    empty.add(np.zeros(0, np.int64))
    assert len(empty) == 0 and empty.total == 1


def test_a_run_that_fails_before_using_its_forked_pool_exits_cleanly(tmp_path):
    """Bad input with --jobs 2: the pool forked at the start is never used; the command still exits
    with code 2, its error lines only (no traceback from the unused pool's clean-up), nothing written."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[trial]\nname = 3\n")
    cli = [sys.executable, "-c", "import sys; from hn005_sim.cli import main; sys.exit(main())"]
    out = tmp_path / "out"
    done = subprocess.run([*cli, "run", str(bad), "--jobs", "2", "--out", str(out), "-q"], cwd=ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 2, done.stderr
    assert "trial.name" in done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert not out.exists()


@pytest.mark.slow
def test_run_with_its_report_still_forks_its_pool(tmp_path):
    """`run --jobs 2` with the report forks its pool: the drawing process and its lane thread are
    started after the fork (a thread started before it would make `prestart_workers` fall back to
    spawning, and forked workers would hold the drawing process's pipes)."""
    code = (
        "import sys\n"
        "import hn005_sim.montecarlo as mc\n"
        "orig, got = mc.prestart_workers, []\n"
        "def wrapped(*a, **k):\n"
        "    got.append(orig(*a, **k))\n"
        "    return got[-1]\n"
        "mc.prestart_workers = wrapped\n"
        "from hn005_sim.cli import main\n"
        f"sys.argv = ['hn005-sim', 'run', 'scenarios/baseline.toml', '--replicates', '4', '--jobs', '2',\n"
        f"            '--screen-patients', '1000', '--out', {str(tmp_path / 'out')!r}, '-q']\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    print('PRESTARTED', got)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert "PRESTARTED [True]" in done.stdout, done.stdout + done.stderr
    assert (tmp_path / "out" / "report.html").is_file()


# ---------------------------------------------------------------------------------------------------
# the garbage collector while replicates run (issue 16, phase 4)

WORKER_GC = """
import gc, json, sys
from hn005_sim import montecarlo as mc

def started_with():  # (a function of __main__: only a forked worker has it)
    return sorted(m for m in sys.modules if m.startswith(("hn005_sim.scenario", "hn005_sim.population")))

forked = mc.prestart_workers("process", 2)
with mc.open_executor("process", 2) as (ex, workers):
    got = [ex.submit(f).result() for f in (gc.get_threshold, gc.get_freeze_count, gc.isenabled)]
    modules = ex.submit(started_with).result() if forked else None
print(json.dumps({"forked": forked, "threshold": got[0], "frozen": got[1], "enabled": got[2],
                  "parent": gc.get_threshold(), "modules": modules, "parent_modules": started_with()}))
"""


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_pool_workers_freeze_what_they_start_with(start):
    """A worker (forked or spawned) has frozen the objects it started with (montecarlo.replicate_gc says
    why), its collector still on and at Python's thresholds, as the parent's."""
    out = json.loads(script(WORKER_GC, env={"HN005_SIM_POOL_START": start}))
    assert out["forked"] is (start == "fork")
    assert out["frozen"] > 10_000  # numpy, polars and the model's modules at least
    assert out["enabled"] is True
    assert out["threshold"] == out["parent"]
    if start == "fork":  # before its first task, a worker has imported what unpickling one needs
        assert "hn005_sim.scenario.schema" not in out["parent_modules"]
        assert "hn005_sim.scenario.schema" in out["modules"] and "hn005_sim.population" in out["modules"]


def test_inline_run_freezes_what_exists_and_unfreezes_it_after():
    import gc

    sc, _ = load_scenario(ROOT / "scenarios" / "baseline.toml")
    assert gc.get_freeze_count() == 0
    seen = []
    run_scenario(sc, 2, 3, jobs=1, on_record=lambda rec: seen.append(gc.get_freeze_count()))
    assert len(seen) == 2 and all(n > 10_000 for n in seen)
    assert gc.get_freeze_count() == 0
    gc.freeze()  # frozen by the caller: left frozen
    try:
        frozen = gc.get_freeze_count()
        run_scenario(sc, 1, 3, jobs=1)
        assert gc.get_freeze_count() > frozen // 2  # (frozen objects may still be freed by refcount)
    finally:
        gc.unfreeze()


# ---------------------------------------------------------------------------------------------------
# the scenario sent with every task, unpickled once per worker (issue 16, phase 4)


def test_a_task_scenario_is_unpickled_once_and_gives_run_batchs_records(monkeypatch):
    import pickle

    from hn005_sim import montecarlo as mc

    sc, _ = load_scenario(ROOT / "scenarios" / "baseline.toml")
    task = mc.TaskScenario.of(sc)
    assert task == mc.TaskScenario.of(sc)  # the same key for the same scenario
    loads = []
    real = pickle.loads
    monkeypatch.setattr(mc.pickle, "loads", lambda b: loads.append(1) or real(b))
    mc._TASK_SCENARIOS.clear()
    first = mc.run_task(task, 5, 0, 2)
    second = mc.run_task(task, 5, 2, 3)
    assert len(loads) == 1  # the second task found the scenario (and its candidate source) unpickled
    unpickled, uncertain, source = mc._TASK_SCENARIOS[task.key]
    assert uncertain is None and unpickled is not sc and unpickled == sc and len(source) == 1
    direct = mc.run_batch(sc, 5, 0, 3)
    assert pickle.dumps(first + second) == pickle.dumps(direct)
    other = mc.TaskScenario.of(sc.model_copy(update={"name": "another"}))
    assert other.key != task.key
    mc.run_task(other, 5, 0, 1)
    assert len(loads) == 2 and list(mc._TASK_SCENARIOS) == [other.key]  # only the last run's is kept
