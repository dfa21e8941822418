"""Ctrl-C leaves no half-written output folder, and the next run works.

Ctrl-C in a terminal sends SIGINT to the whole foreground process group (the command and its worker
processes), so the tests start each command in its own session and signal the group. Each waits until the
command has started writing (its staging folder `.DIR.partial-PID` exists) or a fixed delay, then checks:
exit code 130, one line on stderr, no traceback, DIR absent or unchanged, no staging folder left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from hn005_sim.cli import main; import sys; sys.exit(main())"]
TIMEOUT_S = 120


def snapshot(folder: Path) -> dict[str, bytes] | None:
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def interrupt(cmd: list[str], out: Path, *, ready: str | None = None, delay_s: float = 30.0):
    """Start `cmd`, send SIGINT to its process group once `out`'s staging folder appears (or `ready` is
    printed on stdout, or after delay_s), and return (returncode, stdout, stderr)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        if ready is not None:
            assert proc.stdout is not None
            while ready not in (line := proc.stdout.readline()) and line:
                pass
        else:
            deadline = time.monotonic() + delay_s
            while time.monotonic() < deadline and proc.poll() is None:
                if list(out.parent.glob(f".{out.name}.partial-*")):
                    break
                time.sleep(0.01)
        assert proc.poll() is None, f"finished before it could be interrupted: {proc.communicate()}"
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, stdout, stderr


def assert_clean_interrupt(code: int, stderr: str, out: Path, before: dict[str, bytes] | None) -> None:
    assert code == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert "interrupted" in stderr
    assert snapshot(out) == before
    assert list(out.parent.glob(f".{out.name}.partial-*")) == []


WRITER = """
import sys, time
from hn005_sim.cli import main, app
from hn005_sim.io import output_dir

@app.command("slow-write")
def slow_write(out: str) -> None:
    with output_dir(out) as o:
        o.write_json("summary.json", {"half": True})
        o.file("charts/a.txt").write_text("half")
        print("writing", flush=True)
        time.sleep(60)
sys.exit(main())
"""


@pytest.mark.parametrize("existing", [False, True])
def test_output_dir_interrupted(tmp_path, existing):
    """The staging-folder mechanism itself: a half-written folder never replaces DIR."""
    out = tmp_path / "out"
    if existing:
        out.mkdir()
        (out / "summary.json").write_text('{"old": true}\n')
        (out / "manifest.json").write_text('{"tool": "hn005-sim"}\n')  # ours: may be replaced
    before = snapshot(out)
    code, _, stderr = interrupt([sys.executable, "-c", WRITER, "slow-write", str(out)], out, ready="writing")
    assert_clean_interrupt(code, stderr, out, before)


def _has_children(pid: int) -> bool:
    try:
        return bool(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    except OSError:
        return False


def test_cohort_interrupted_then_next_run_works(tmp_path):
    """cohort writes inside its staging folder while it draws: Ctrl-C then must leave nothing behind."""
    out = tmp_path / "cohort"
    before = snapshot(out)
    code, _, stderr = interrupt([*CLI, "cohort", "scenarios/baseline.toml", "--patients", "3000000",
                                 "--seed", "1", "--out", str(out), "--quiet"], out)
    assert_clean_interrupt(code, stderr, out, before)
    done = subprocess.run([*CLI, "cohort", "scenarios/baseline.toml", "--patients", "500", "--seed", "1",
                           "--out", str(out), "--quiet"], cwd=ROOT, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert {"cohort.parquet", "summary.json", "manifest.json"} <= set(snapshot(out) or {})


@pytest.mark.slow
def test_run_with_workers_interrupted_keeps_previous_output(tmp_path):
    """Ctrl-C reaches `run` and its worker processes mid-simulation: the previous outputs stay as they
    were, no staging folder is left, nothing hangs, and the next run replaces the outputs."""
    out = tmp_path / "run"
    first = subprocess.run([*CLI, "run", "scenarios/baseline.toml", "--replicates", "2", "--seed", "1",
                            "--out", str(out), "--quiet"], cwd=ROOT, capture_output=True, text=True,
                           timeout=TIMEOUT_S)
    assert first.returncode == 0, first.stderr
    before = snapshot(out)
    proc = subprocess.Popen([*CLI, "run", "scenarios/baseline.toml", "--replicates", "5000", "--seed", "2",
                             "--jobs", "2", "--out", str(out), "--quiet"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not _has_children(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # let the workers start on their batches
        assert proc.poll() is None, proc.communicate()
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=TIMEOUT_S)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert_clean_interrupt(proc.returncode, stderr, out, before)
    again = subprocess.run([*CLI, "run", "scenarios/baseline.toml", "--replicates", "2", "--seed", "3",
                            "--no-report", "--screen-patients", "1000", "--out", str(out), "--quiet"],
                           cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert again.returncode == 0, again.stderr
    assert '"seed": 3' in (out / "summary.json").read_text()


WAIT_SCRIPT = """
import json, os, signal, sys, threading, time
import polars  # noqa: F401  (installs its SIGINT handler with SA_RESTART: pola-rs/polars#21739)
from hn005_sim.montecarlo import interruptible_waits
interruptible_waits()
ev = threading.Event()
threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
threading.Timer(8.0, ev.set).start()  # ends the wait if Ctrl-C cannot
started = time.monotonic()
try:
    ev.wait()
    print(json.dumps({"interrupted": False}))
except KeyboardInterrupt:
    print(json.dumps({"interrupted": True, "after_s": time.monotonic() - started}))
"""


def test_ctrl_c_interrupts_a_blocking_wait_after_polars_import():
    """The parent of a process pool blocks on its futures; polars' SIGINT handler (SA_RESTART) made that
    wait restart instead of raising KeyboardInterrupt. After `interruptible_waits` the SIGINT sent at
    0.3 s ends the wait at once, not when the 8 s fallback timer does."""
    proc = subprocess.run([sys.executable, "-c", WAIT_SCRIPT], cwd=ROOT, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["interrupted"] and result["after_s"] < 4.0, result


def _sigint_bit(status: str, field: str) -> bool:
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith(f"{field}:"))
    return bool(int(mask, 16) >> (signal.SIGINT - 1) & 1)


def test_pool_workers_start_with_sigint_blocked_and_ignored():
    """Workers are started inside `sigint_held` (a Ctrl-C during their imports waits) and ignore SIGINT
    once started (the parent alone handles it); the parent's own mask is restored."""
    from hn005_sim.montecarlo import open_executor, sigint_held

    status = Path("/proc/self/status")
    with open_executor("process", 2) as (ex, workers):
        assert workers == 2
        with sigint_held():
            fut = ex.submit(status.read_text)
        worker = fut.result(timeout=TIMEOUT_S)
    assert _sigint_bit(worker, "SigBlk") and _sigint_bit(worker, "SigIgn")
    assert not _sigint_bit(status.read_text(), "SigBlk")
