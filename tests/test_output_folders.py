"""Output folders are replaced all or nothing, never mixed; --force; stale staging; signals; workers.

DIR is either wholly the old outputs or wholly the new: the new folder is built beside it and swapped
in whole (io._swap_in), with SIGINT/SIGTERM deferred during the swap. A non-empty DIR without our
manifest.json is refused before any work unless --force.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hn005_sim import io as hio
from hn005_sim.cli import main

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from hn005_sim.cli import main; import sys; sys.exit(main())"]
TIMEOUT_S = 120

WRITERS = [
    ["cohort", "scenarios/baseline.toml", "--patients", "10"],
    ["screen", "scenarios/baseline.toml", "--patients", "10"],
    ["run", "scenarios/baseline.toml", "--replicates", "1"],
    ["supply", "scenarios/baseline.toml", "--replicates", "1"],
    ["sites", "scenarios/baseline.toml"],
    ["compare", "scenarios/baseline.toml", "scenarios/baseline.toml", "--replicates", "1"],
    ["sweep", "scenarios/baseline.toml", "--set", "sites.count=1,2", "--replicates", "1"],
]


def cli(argv: list[str]) -> tuple[int, list[str]]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, [line for line in err.getvalue().splitlines() if line.strip()]


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def staging_left(parent: Path) -> list[Path]:
    return [p for p in parent.rglob("*") if ".partial-" in p.name]


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("args", WRITERS, ids=lambda a: a[0])
def test_foreign_folder_refused_before_any_work_unless_force(args, tmp_path, at_root):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    started = time.perf_counter()
    code, lines = cli([*args, "--out", str(out), "--quiet"])
    assert code == 2 and len(lines) == 1, lines
    assert str(out) in lines[0] and "--force" in lines[0] and "manifest.json" in lines[0], lines
    assert files(out) == {"thesis.tex": b"precious"} and staging_left(tmp_path) == []
    assert time.perf_counter() - started < 10  # refused at parse time, before any simulation


def test_force_replaces_a_foreign_folder_whole(tmp_path, at_root):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    code, lines = cli(["cohort", "scenarios/baseline.toml", "--patients", "10", "--out", str(out), "--quiet",
                       "--force"])
    assert code == 0, lines
    assert set(files(out)) == {"cohort.parquet", "summary.json", "manifest.json"}
    assert staging_left(tmp_path) == []


def test_a_command_written_into_another_commands_folder_replaces_it(tmp_path, at_root):
    """A `screen` written into a `cohort` folder (ours) leaves only the screen's files."""
    out = tmp_path / "out"
    assert cli(["cohort", "scenarios/baseline.toml", "--patients", "10", "--out", str(out), "-q"])[0] == 0
    assert "cohort.parquet" in files(out)
    code, lines = cli(["screen", "scenarios/baseline.toml", "--patients", "50", "--out", str(out), "-q"])
    assert code == 0, lines
    names = set(files(out))
    assert "cohort.parquet" not in names and {"summary.json", "criteria.csv", "manifest.json"} <= names
    assert json.loads((out / "manifest.json").read_text())["command"] == "screen"
    assert staging_left(tmp_path) == []


def _old_new(out: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    out.mkdir()
    for i in range(36):
        (out / f"old{i}.csv").write_text(f"old {i}")
    (out / "manifest.json").write_text('{"tool": "hn005-sim", "old": true}')
    old = files(out)
    new = {f"new{i}.csv": f"new {i}".encode() for i in range(4)} | {"manifest.json": b'{"tool": "hn005-sim"}'}
    return old, new


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two_renames"])
def test_at_every_step_of_the_swap_dir_is_wholly_old_or_wholly_new(tmp_path, monkeypatch, exchange):
    """Every rename of the swap is observed: before and after each one, DIR holds the old set, the new
    set, or (two-rename fallback only, for one step) nothing; never a mix."""
    out = tmp_path / "out"
    old, new = _old_new(out)
    seen: list[dict[str, bytes] | None] = []
    real_rename, real_exchange = os.rename, hio._exchange

    def observe() -> None:
        seen.append(files(out) if out.exists() else None)

    def rename(a, b):
        observe()
        real_rename(a, b)
        observe()

    def exch(a, b):
        if not exchange:
            return False
        observe()
        done = real_exchange(a, b)
        observe()
        return done

    monkeypatch.setattr(hio.os, "rename", rename)
    monkeypatch.setattr(hio, "_exchange", exch)
    with hio.output_dir(out, force=False) as od:
        for name, data in new.items():
            od.file(name).write_bytes(data)
    assert files(out) == new and staging_left(tmp_path) == []
    assert seen and all(s in (old, new) or (s is None and not exchange) for s in seen), seen
    if exchange:
        assert hio._exchange is exch and real_exchange(tmp_path, tmp_path) in (True, False)


def test_ctrl_c_during_the_swap_is_deferred_until_it_is_done(tmp_path, monkeypatch):
    """A Ctrl-C arriving between the renames of the swap takes effect after it: DIR is wholly new."""
    out = tmp_path / "out"
    _, new = _old_new(out)
    real_rename = os.rename

    def rename(a, b):
        os.kill(os.getpid(), signal.SIGINT)
        real_rename(a, b)

    monkeypatch.setattr(hio.os, "rename", rename)
    monkeypatch.setattr(hio, "_exchange", lambda a, b: False)
    with pytest.raises(KeyboardInterrupt), hio.output_dir(out, force=False) as od:
        for name, data in new.items():
            od.file(name).write_bytes(data)
    assert files(out) == new and staging_left(tmp_path) == []
    assert hio.committed()[-1] == out


def test_ctrl_c_before_the_swap_leaves_the_old_folder(tmp_path):
    out = tmp_path / "out"
    old, _ = _old_new(out)
    with pytest.raises(KeyboardInterrupt), hio.output_dir(out, force=False) as od:
        od.file("new0.csv").write_text("half")
        raise KeyboardInterrupt
    assert files(out) == old and staging_left(tmp_path) == []


def test_mount_point_out_is_staged_inside_and_replaced(tmp_path, monkeypatch):
    """A mount point cannot be renamed (EXDEV/EBUSY): the new outputs are staged inside it and moved in,
    the old moved aside and removed."""
    out = tmp_path / "mnt"
    _, new = _old_new(out)
    monkeypatch.setattr(hio, "_is_mount", lambda p: Path(p) == out)
    with hio.output_dir(out, force=False) as od:
        assert od.path.parent == out
        for name, data in new.items():
            od.file(name).write_bytes(data)
    assert files(out) == new and staging_left(tmp_path) == []


def test_real_mount_point_detected():
    monkey_free = hio._is_mount
    assert monkey_free(Path("/proc")) and not monkey_free(ROOT / "src")


def test_stale_staging_of_dead_processes_removed_live_ones_kept(tmp_path, at_root):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    live_pid = os.getppid()
    out = tmp_path / "out"
    stale = tmp_path / f".out.partial-{dead_pid}"
    stale_old = tmp_path / f".out.partial-{dead_pid}-old"
    live = tmp_path / f".out.partial-{live_pid}"
    other = tmp_path / f".other.partial-{dead_pid}"
    for folder in (stale, stale_old, live, other):
        folder.mkdir()
        (folder / "x.csv").write_text("x")
    code, lines = cli(["cohort", "scenarios/baseline.toml", "--patients", "10", "--out", str(out), "-q"])
    assert code == 0, lines
    assert not stale.exists() and not stale_old.exists()
    assert live.exists() and other.exists()  # a live process's staging, and another folder's: kept


def test_disk_full_while_writing_is_one_line_and_leaves_nothing(tmp_path, at_root, monkeypatch):
    def full(self, name, obj):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path / name))

    monkeypatch.setattr(hio.OutputDir, "write_json", full)
    out = tmp_path / "out"
    code, lines = cli(["cohort", "scenarios/baseline.toml", "--patients", "10", "--out", str(out), "-q"])
    assert code == 2 and len(lines) == 1, lines
    assert lines[0] == (f"hn005-sim: --out {out}: cannot write there (No space left on device); "
                        "nothing was written")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["long_name", "too_deep", "nul"])
def test_out_too_long_or_too_deep_is_one_line(tmp_path, at_root, kind):
    if kind == "long_name":
        out = str(tmp_path / ("n" * 250))
    elif kind == "too_deep":
        out = str(tmp_path / "/".join(["d" * 100] * 60))
    else:
        out = str(tmp_path / "a\x00b")
    code, lines = cli(["cohort", "scenarios/baseline.toml", "--patients", "10", "--out", out, "-q"])
    assert code == 2 and len(lines) == 1 and "--out" in lines[0], lines
    assert len(lines[0]) < 400 and list(tmp_path.iterdir()) == []


def _wait_for(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def test_sigterm_is_handled_like_ctrl_c(tmp_path):
    """SIGTERM mid-write: exit 143, one line, the previous outputs unchanged, no staging left."""
    out = tmp_path / "cohort"
    first = subprocess.run([*CLI, "cohort", "scenarios/baseline.toml", "--patients", "20", "--out", str(out),
                            "-q"], cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert first.returncode == 0, first.stderr
    before = files(out)
    proc = subprocess.Popen([*CLI, "cohort", "scenarios/baseline.toml", "--patients", "3000000",
                             "--seed", "2", "--out", str(out), "-q"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert _wait_for(lambda: bool(list(tmp_path.glob(".cohort.partial-*"))), TIMEOUT_S)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=TIMEOUT_S)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 143, stderr
    assert stderr.strip() == "hn005-sim: terminated; no output was written", stderr
    assert files(out) == before and staging_left(tmp_path) == []


ORPHAN = """
import os, sys, time
from hn005_sim.montecarlo import open_executor, sigint_held
with open_executor("process", 2) as (ex, workers):
    with sigint_held():
        futs = [ex.submit(os.getpid) for _ in range(4)]
    pids = sorted({f.result() for f in futs})
    print(" ".join(map(str, pids)), flush=True)
    with sigint_held():
        ex.submit(time.sleep, 600)
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie not yet reaped by init counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_workers_exit_when_the_parent_is_killed():
    proc = subprocess.Popen([sys.executable, "-c", ORPHAN], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert pids and all(_alive(p) for p in pids)
        proc.kill()  # kill -9: no cleanup in the parent at all
        proc.wait(timeout=TIMEOUT_S)
        assert _wait_for(lambda: not any(_alive(p) for p in pids), 15), [p for p in pids if _alive(p)]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_interrupt_message_says_when_the_outputs_were_complete(tmp_path, capsys):
    """A Ctrl-C that lands after the swap must not claim that no output was written."""
    from hn005_sim import cli

    hio.forget_committed()
    assert cli._interrupted(KeyboardInterrupt()) == 130
    assert capsys.readouterr().err == "hn005-sim: interrupted; no output was written\n"
    with hio.output_dir(tmp_path / "out", force=False) as od:
        od.write_json("manifest.json", {"tool": "hn005-sim"})
    assert cli._interrupted(cli.Terminated()) == 143
    assert capsys.readouterr().err == (f"hn005-sim: terminated; the outputs in {tmp_path / 'out'} were "
                                       "complete before it\n")
    hio.forget_committed()


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.mark.slow
def test_sigterm_to_run_with_workers_stops_them_and_keeps_previous_output(tmp_path):
    """SIGTERM to the process group of `run --jobs 2` mid-simulation (as a job scheduler sends it):
    exit 143, one line, previous outputs unchanged, no staging, no worker left."""
    out = tmp_path / "run"
    first = subprocess.run([*CLI, "run", "scenarios/baseline.toml", "--replicates", "2", "--no-report",
                            "--screen-patients", "1000", "--out", str(out), "-q"], cwd=ROOT,
                           capture_output=True, text=True, timeout=TIMEOUT_S)
    assert first.returncode == 0, first.stderr
    before = files(out)
    proc = subprocess.Popen([*CLI, "run", "scenarios/baseline.toml", "--replicates", "5000", "--jobs", "2",
                             "--out", str(out), "-q"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert _wait_for(lambda: len(_children(proc.pid)) >= 2, TIMEOUT_S)
        time.sleep(1.0)
        workers = _children(proc.pid)
        assert proc.poll() is None
        os.killpg(proc.pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=TIMEOUT_S)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 143, stderr
    assert stderr.strip() == "hn005-sim: terminated; no output was written", stderr
    assert files(out) == before and staging_left(tmp_path) == []
    assert _wait_for(lambda: not any(_alive(p) for p in workers), 15)


def test_symlinked_out_replaces_the_target_and_keeps_the_link(tmp_path):
    real = tmp_path / "real"
    _, new = _old_new(real)
    link = tmp_path / "link"
    link.symlink_to(real)
    with hio.output_dir(link, force=False) as od:
        for name, data in new.items():
            od.file(name).write_bytes(data)
    assert link.is_symlink() and files(real) == new and staging_left(tmp_path) == []
