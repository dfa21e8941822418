"""The console script ends the process without the interpreter's teardown (entry.console / exit_now,
issue 16 phase 3): everything one could observe of Python's exit still happens (exit status, every byte
of stdout and stderr, atexit handlers, non-daemon threads joined, complete outputs)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASELINE = str(ROOT / "scenarios" / "baseline.toml")
# the console script's own code (pip writes it so for [project.scripts] hn005-sim = "hn005_sim.entry:console")
CONSOLE = "import sys; from hn005_sim.entry import console; sys.argv[0] = 'hn005-sim'; sys.exit(console())"
PLAIN = "import sys; from hn005_sim.cli import main; sys.exit(main())"  # Python's own exit


def run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, timeout=600)


def test_the_console_script_is_entry_console():
    with open(ROOT / "pyproject.toml", "rb") as fh:
        scripts = tomllib.load(fh)["project"]["scripts"]
    assert scripts["hn005-sim"] == "hn005_sim.entry:console"


def test_exit_status_and_every_byte_of_output_are_those_of_pythons_exit():
    for args, status in ((["criteria", BASELINE, "--format", "csv"], 0), (["validate", BASELINE], 0),
                         (["validate", str(ROOT / "no-such.toml")], 2), (["--version"], 0)):
        fast, plain = run(CONSOLE, *args), run(PLAIN, *args)
        assert fast.returncode == plain.returncode == status, (args, fast.stderr)
        assert fast.stdout == plain.stdout and fast.stderr == plain.stderr, args
        assert fast.stdout or fast.stderr
    assert len(run(CONSOLE, "criteria", BASELINE, "--format", "csv").stdout) > 10_000  # several buffers


def test_atexit_handlers_run_and_non_daemon_threads_are_joined(tmp_path):
    mark = tmp_path / "thread-done"
    code = (
        "import atexit, sys, threading, time\n"
        "from pathlib import Path\n"
        "atexit.register(lambda: print('atexit handler ran', flush=True))\n"
        "def late():\n"
        "    time.sleep(0.3)\n"
        f"    Path({str(mark)!r}).write_text('done')\n"
        "threading.Thread(target=late).start()\n"
        "sys.argv = ['hn005-sim', '--version']\n"
        "from hn005_sim.entry import console\n"
        "console()\n"
        "print('never reached')\n"
    )
    proc = run(code)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 2 and lines[0].startswith("hn005-sim ") and lines[1] == "atexit handler ran", lines
    assert mark.read_text() == "done"


def test_a_run_with_its_report_writes_the_same_files(tmp_path):
    """Outputs committed before the process ends are whole: the same bytes as with Python's exit
    (manifest.json and report.html hold the wall time and the command line)."""
    outs = {}
    for name, code in (("fast", CONSOLE), ("plain", PLAIN)):
        out = tmp_path / name
        proc = run(code, "run", BASELINE, "--replicates", "2", "--seed", "5", "--out", str(out), "-q")
        assert proc.returncode == 0, proc.stderr
        outs[name] = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
                      if p.is_file() and p.name not in ("manifest.json", "report.html")}
    assert "charts/sweeps.svg" in outs["fast"] and "summary.json" in outs["fast"]
    assert outs["fast"] == outs["plain"]
