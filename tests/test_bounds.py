"""A bound on every size that multiplies work, checked before any work, naming the key and the bound;
and the remaining tracebacks of issue 11 as one line, exit 2.

Each case runs the real command line in-process (`hn005_sim.cli.main`) and checks: exit 2, one line
on stderr naming the key (or option) and the bound, no output folder or staging left, and that it took
seconds, not the minutes or the gigabytes the unbounded request would have.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hn005_sim.cli import main
from hn005_sim.guards import MAX_JOBS, MAX_REPLICATES
from hn005_sim.scenario import bounds
from hn005_sim.scenario.load import MAX_EXTENDS_DEPTH, MAX_EXTENDS_FILES, MAX_KEY_DEPTH

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.toml"
QUICK_S = 30  # a refusal takes well under a second; this is a generous ceiling on a loaded machine


def cli(argv: list[str]) -> tuple[int, list[str], float]:
    err = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, [line for line in err.getvalue().splitlines() if line.strip()], time.perf_counter() - started


def overlay(tmp_path: Path, text: str, name: str = "s.toml") -> str:
    path = tmp_path / name
    path.write_text(f"extends = {json.dumps(str(BASELINE))}\n{text}")
    return str(path)


def assert_one_line(code: int, lines: list[str], took: float, *needles: str) -> None:
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0] and len(lines[0]) < 600, lines
    for needle in needles:
        assert needle in lines[0], (needle, lines)
    assert took < QUICK_S


# ---------------------------------------------------------------- scenario figures (at load)



@pytest.mark.parametrize(("text", "needles"), [
    ('[trial]\ndeadline_months = 1e300\n',
     ("trial.deadline_months", f"<= {bounds.MAX_MONTHS:,} months", "1e+300")),
    ('[recruitment.horizon_months]\nvalue = 1e300\nsource = "assumption: test"\n',
     ("recruitment.horizon_months.value", f"<= {bounds.MAX_MONTHS:,} months")),
    ('[[recruitment.regions]]\nname = "x"\nsites = 1\n'
     'referral_rate_mean = { value = 1e300, source = "assumption: test" }\n'
     'referral_rate_variance = { value = 1e300, source = "assumption: test" }\n'
     'activation_delay_days = { dist = "constant", value = 1, source = "assumption: test" }\n'
     'never_activate = { value = 0.0, source = "assumption: test" }\n',
     ("recruitment.regions[0].referral_rate_mean.value", "rates x months x sites",
      f"{bounds.MAX_REFERRALS_PER_REPLICATE:,}")),
    ('[[recruitment.regions]]\nname = "x"\nsites = 1\n'
     'referral_rate_mean = { value = 1.0, source = "assumption: test" }\n'
     'referral_rate_variance = { value = 1e6, source = "assumption: test" }\n'
     'activation_delay_days = { dist = "constant", value = 1, source = "assumption: test" }\n'
     'never_activate = { value = 0.0, source = "assumption: test" }\n',
     ("recruitment.regions[0].referral_rate_variance.value", "MAX_RATE_CV")),
], ids=["deadline", "horizon", "rate_x_horizon_x_sites", "rate_cv"])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_scenario_figure_bounds(tmp_path, monkeypatch, text, needles, command):
    monkeypatch.chdir(ROOT)
    path = overlay(tmp_path, text)
    out = tmp_path / "out"
    argv = (["validate", path] if command == "validate"
            else ["run", path, "--replicates", "2", "--out", str(out)])
    code, lines, took = cli(argv)
    assert_one_line(code, lines, took, *needles)
    assert lines[0].startswith(path), lines
    assert not out.exists() and not list(tmp_path.glob(".out.partial-*"))


def test_sites_across_regions_bounded(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    region = ('[[recruitment.regions]]\nname = "R{i}"\nsites = 2000\n'
              'referral_rate_mean = {{ value = 0.001, source = "assumption: test" }}\n'
              'referral_rate_variance = {{ value = 0.000001, source = "assumption: test" }}\n'
              'activation_delay_days = {{ dist = "constant", value = 1, source = "assumption: test" }}\n'
              'never_activate = {{ value = 0.0, source = "assumption: test" }}\n')
    text = "".join(region.format(i=i) for i in range(6))
    code, lines, took = cli(["validate", overlay(tmp_path, text)])
    assert_one_line(code, lines, took, "recruitment.regions", "12,000 sites", f"{bounds.MAX_SITES:,}")


def test_shipped_scenarios_are_far_inside_the_bounds():
    from hn005_sim.scenario.load import load_scenario

    for path in sorted((ROOT / "scenarios").glob("*.toml")):
        sc, _ = load_scenario(path)
        rec = sc.recruitment
        months = max(rec.horizon_months.value, sc.trial.deadline_months)
        load = sum(r.sites * r.referral_rate_mean.value * months for r in rec.regions)
        assert load * 100 < bounds.MAX_REFERRALS_PER_REPLICATE, path
        assert months * 10 < bounds.MAX_MONTHS, path


# ---------------------------------------------------------------- command-line counts (at parse time)

HUGE = str(10**12)


@pytest.mark.parametrize("argv", [
    ["run", "scenarios/baseline.toml", "--replicates", HUGE],
    ["supply", "scenarios/baseline.toml", "--replicates", HUGE],
    ["compare", "scenarios/baseline.toml", "scenarios/baseline.toml", "--replicates", HUGE],
    ["sweep", "scenarios/baseline.toml", "--set", "sites.count=1,2", "--replicates", HUGE],
    ["sites", "scenarios/baseline.toml", "--replicates", HUGE],
    ["sites", "scenarios/baseline.toml", "--scenario-replicates", HUGE],
], ids=["run", "supply", "compare", "sweep", "sites", "sites_scenario"])
def test_replicates_of_every_command_bounded(tmp_path, monkeypatch, argv):
    monkeypatch.chdir(ROOT)
    code, lines, took = cli([*argv, "--out", str(tmp_path / "out")])
    assert_one_line(code, lines, took, "replicates", f"{10**12:,}", f"{MAX_REPLICATES:,} allowed")
    assert list(tmp_path.iterdir()) == []


def test_jobs_bound_names_the_worker_count(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, lines, took = cli(["run", "scenarios/baseline.toml", "--jobs", "1000",
                             "--out", str(tmp_path / "o")])
    assert_one_line(code, lines, took, "--jobs", "1,000", f"{MAX_JOBS} allowed")
    assert "target_enrolled" not in lines[0]


def test_memory_guard_names_workers_when_processes_dominate():
    from hn005_sim.cli import InputError
    from hn005_sim.guards import PROCESS_BASE_BYTES, check_run_memory

    with pytest.raises(InputError) as exc:
        check_run_memory(target=110, months=60, sites=1, replicates=200, processes=201, what="run X",
                         available=24 * 10**9)
    # 0.8 x 24e9 = 19.2e9 B; one process of 250 MB each: 76 fit, one of them the main process
    assert str(exc.value).endswith(
        "(201 processes of about 250 MB each; at most about 75 workers (--jobs) fit)")
    assert "target_enrolled" not in str(exc.value)
    assert PROCESS_BASE_BYTES == 250_000_000


def test_sweep_grid_and_runs_bounded(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    values = ",".join(str(i) for i in range(1, 2001))
    code, lines, took = cli(["sweep", "scenarios/baseline.toml", "--set", f"trial.deadline_months={values}",
                             "--out", str(tmp_path / "o")])
    assert_one_line(code, lines, took, "the grid has 2000 points; at most 1000")
    values = ",".join(str(i) for i in range(1, 901))
    code, lines, took = cli(["sweep", "scenarios/baseline.toml", "--set", f"trial.deadline_months={values}",
                             "--replicates", "5000", "--out", str(tmp_path / "o")])
    assert_one_line(code, lines, took, "900 x 5,000", f"{MAX_REPLICATES:,} allowed")
    assert list(tmp_path.iterdir()) == []


def test_memory_guard_honours_rlimit_as():
    script = ("import resource, re; from pathlib import Path\n"
              "status = Path('/proc/self/status').read_text()\n"
              "vm = int(re.search(r'VmSize:\\s+(\\d+)', status).group(1)) * 1024\n"
              "limit = vm + 300 * 2**20\n"
              "resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))\n"
              "from hn005_sim.guards import available_memory_bytes\n"
              "print(available_memory_bytes(), limit)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    have, limit = map(int, proc.stdout.split())
    assert 0 < have <= 300 * 2**20 + 1 and have < limit


# ---------------------------------------------------------------- extends: each file read once, bounded


def test_diamond_of_extends_reads_each_file_once(tmp_path, monkeypatch):
    from hn005_sim.scenario import load

    depth = 20  # 2^20 paths through the diamond
    base_files = len(load.read_raw(BASELINE).files)  # the baseline and its bases
    (tmp_path / f"d{depth}.toml").write_text(f"extends = {json.dumps(str(BASELINE))}\n")
    for i in range(depth - 1, -1, -1):
        (tmp_path / f"d{i}.toml").write_text(f'extends = ["d{i + 1}.toml", "e{i + 1}.toml"]\n')
        (tmp_path / f"e{i + 1}.toml").write_text(f'extends = "d{i + 1}.toml"\n')
    reads: list[Path] = []
    real = load._read_toml

    def counting(path, named_by):
        reads.append(path)
        return real(path, named_by)

    monkeypatch.setattr(load, "_read_toml", counting)
    started = time.perf_counter()
    raw = load.read_raw(tmp_path / "d0.toml")
    assert time.perf_counter() - started < QUICK_S
    assert len(reads) == len(set(reads)) == len(raw.files) == 2 * depth + 1 + base_files
    assert raw.data["trial"]["target_enrolled"] > 0


def test_extends_chain_and_file_count_bounded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    n = MAX_EXTENDS_DEPTH + 5
    for i in range(n):
        (tmp_path / f"c{i}.toml").write_text(f'extends = "c{i + 1}.toml"\n')
    (tmp_path / f"c{n}.toml").write_text('name = "x"\n')
    code, lines, took = cli(["validate", "c0.toml"])
    assert_one_line(code, lines, took, "extends", f"more than {MAX_EXTENDS_DEPTH} files deep")
    names = [f"w{i}.toml" for i in range(MAX_EXTENDS_FILES + 1)]
    for name in names:
        (tmp_path / name).write_text('name = "x"\n')
    (tmp_path / "wide.toml").write_text(f"extends = {json.dumps(names)}\n")
    code, lines, took = cli(["validate", "wide.toml"])
    assert_one_line(code, lines, took, "wide.toml: extends", f"more than {MAX_EXTENDS_FILES} files")


@pytest.mark.parametrize(("kind", "needle"), [
    ("long_name", "File name too long"),
    ("nul", "embedded null byte"),
    ("symlink_loop", "loop"),
])
def test_extends_names_that_cannot_be_files(tmp_path, monkeypatch, kind, needle):
    monkeypatch.chdir(tmp_path)
    if kind == "long_name":
        target = "x" * 5000 + ".toml"
    elif kind == "nul":
        target = "a\u0000b.toml"
    else:
        os.symlink("loop1.toml", tmp_path / "loop2.toml")
        os.symlink("loop2.toml", tmp_path / "loop1.toml")
        target = "loop1.toml"
    (tmp_path / "s.toml").write_text(f"extends = {json.dumps(target)}\n")
    code, lines, took = cli(["validate", "s.toml"])
    assert_one_line(code, lines, took, "s.toml: extends: cannot read", needle)


def test_dotted_keys_thousands_deep(tmp_path):
    path = overlay(tmp_path, ".".join(["a"] * 5000) + " = 1\n")
    code, lines, took = cli(["validate", path])
    assert_one_line(code, lines, took, f"nested more than {MAX_KEY_DEPTH} deep")


# ---------------------------------------------------------------- messages


def test_tablet_strength_zero_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    path = overlay(tmp_path, "[regimen.drugs.capecitabine]\nstrengths_mg = [0, 500]\n")
    for argv in (["validate", path], ["supply", path, "--replicates", "2", "--out", str(tmp_path / "o")]):
        code, lines, took = cli(argv)
        assert_one_line(code, lines, took, "regimen.drugs.capecitabine.strengths_mg[0]: must be > 0, got 0")


def test_a_ten_megabyte_value_is_cut_when_echoed(tmp_path):
    path = overlay(tmp_path, "[trial]\ntarget_enrolled = " + json.dumps("y" * 10_000_000) + "\n")
    code, lines, took = cli(["validate", path])
    assert_one_line(code, lines, took, "trial.target_enrolled: must be an integer", "(10,000,000 characters)")
    assert len(lines[0]) < 300


def test_changing_a_distribution_type_blames_the_file_that_changed_it(tmp_path):
    path = overlay(tmp_path, '[population.demographics.age_years]\ndist = "normal"\n')
    code, lines, _ = cli(["validate", path])
    assert code == 2
    assert lines == [f"{path}: population.demographics.age_years.mean: required key is missing",
                     f"{path}: population.demographics.age_years.sd: required key is missing"], lines
    ok = overlay(tmp_path, '[population.demographics.age_years]\ndist = "normal"\nmean = 46\nsd = 11\n'
                 'source = "assumption: test"\n', "ok.toml")
    assert cli(["validate", ok])[0] == 0


class _InterruptImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "hn005_sim.cli":
            raise KeyboardInterrupt
        return None


def test_ctrl_c_while_starting_is_one_line(monkeypatch, capsys):
    from hn005_sim import entry

    monkeypatch.delitem(sys.modules, "hn005_sim.cli")
    monkeypatch.setattr(sys, "meta_path", [_InterruptImport(), *sys.meta_path])
    assert entry.main() == 130
    assert capsys.readouterr().err == "hn005-sim: interrupted while starting; no output was written\n"


def test_dask_address_that_is_not_dask_fails_within_its_timeout(tmp_path):
    """A port that accepts connections and never speaks Dask: one line, exit 2, within the timeout."""
    pytest.importorskip("distributed")  # an optional dependency; the test extra installs it
    from hn005_sim.montecarlo import DASK_CONNECT_TIMEOUT_S

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "hn005_sim.entry", "run", "scenarios/baseline.toml",
                               "--replicates", "2", "--executor", f"dask://127.0.0.1:{port}",
                               "--out", str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True,
                              timeout=DASK_CONNECT_TIMEOUT_S + 120)
        took = time.monotonic() - started
    finally:
        stop.set()
        for s in held:
            s.close()
        listener.close()
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"dask://127.0.0.1:{port}" in lines[0] and "Traceback" not in proc.stderr
    assert held, "the command never connected: the test did not exercise the handshake"
    assert took < DASK_CONNECT_TIMEOUT_S + 60  # start-up of the interpreter on a loaded machine included
    assert list(tmp_path.iterdir()) == []
