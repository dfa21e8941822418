"""Hostile input: whatever a scenario file holds, `validate` accepts it or refuses it cleanly.

Clean refusal = exit code 2 and stderr made only of lines `FILE: KEY: message` (or `FILE: message` for a
file that cannot be read as TOML), FILE being one of the scenario files involved; never a traceback, never a
hang. The mutations start from the full baseline scenario (all sections merged), written back as TOML.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hn005_sim.cli import main
from hn005_sim.scenario.errors import dotted
from hn005_sim.scenario.load import read_raw

ROOT = Path(__file__).resolve().parents[1]
BASELINE = read_raw(ROOT / "scenarios" / "baseline.toml").data
HANG_SECONDS = 20  # a validate that takes this long is a hang (it takes milliseconds)

SETTINGS = settings(
    max_examples=20,  # x 7 properties; each example validates the whole baseline (~0.1 s)
    deadline=dt.timedelta(seconds=HANG_SECONDS),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


# ---------------------------------------------------------------- TOML writing and paths in a document


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a TOML basic string
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def toml_doc(doc: dict[str, Any]) -> str:
    """A document as top-level `key = value` lines with inline tables (valid TOML, one line per key)."""
    return "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in doc.items())


def walk(doc: Any, prefix: tuple = ()) -> list[tuple[tuple, Any]]:
    """Every (path, value) in a document, tables and lists included."""
    out = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    for k, v in items:
        out.append(((*prefix, k), v))
        out.extend(walk(v, (*prefix, k)))
    return out


def get_in(doc: Any, path: tuple) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def set_in(doc: Any, path: tuple, value: Any) -> None:
    get_in(doc, path[:-1])[path[-1]] = value


PATHS = [p for p, _ in walk(BASELINE)]
LEAVES = [p for p, v in walk(BASELINE) if not isinstance(v, dict | list)]
NUMBERS = [p for p, v in walk(BASELINE) if isinstance(v, int | float) and not isinstance(v, bool)]
TABLES = [(), *(p for p, v in walk(BASELINE) if isinstance(v, dict))]
KEYED = [p for p in PATHS if isinstance(p[-1], str)]  # deletable keys (not list items)


# ---------------------------------------------------------------- running validate


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A copy of configs/ and scenarios/ to mutate; tests run with it as the working directory."""
    root = tmp_path_factory.mktemp("hostile")
    shutil.copytree(ROOT / "configs", root / "configs")
    shutil.copytree(ROOT / "scenarios", root / "scenarios")
    return root


@pytest.fixture
def in_tree(tree, monkeypatch) -> Path:
    monkeypatch.chdir(tree)
    return tree


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f"validate did not finish within {HANG_SECONDS} s")


def validate(path: str) -> tuple[int, list[str]]:
    """`hn005-sim validate PATH` in-process: (exit code, stderr lines). Any exception fails the test."""
    err = io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_SECONDS)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["validate", path, "--quiet"])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return code, [line for line in err.getvalue().splitlines() if line.strip()]


def toml_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*.toml")}


def assert_clean(code: int, lines: list[str], files: set[str]) -> list[tuple[str, str]]:
    """Exit 0 with nothing on stderr, or exit 2 with one `FILE: ...` line per problem; (file, rest)."""
    assert code in (0, 2), (code, lines)
    if code == 0:
        assert lines == []
        return []
    assert lines, "exit 2 must say why"
    out = []
    for line in lines:
        assert "Traceback" not in line
        file, sep, rest = line.partition(": ")
        assert sep and file in files, f"line does not start with a scenario file: {line!r}"
        assert rest.strip(), line
        out.append((file, rest))
    return out


def write(root: Path, name: str, text: str) -> str:
    (root / name).write_text(text, encoding="utf-8")
    return name


# ---------------------------------------------------------------- the baseline itself


def test_flattened_baseline_is_valid(in_tree):
    """The mutations start from a valid document: the merged baseline written as one file."""
    name = write(in_tree, "scenarios/flat.toml", toml_doc(BASELINE))
    assert validate(name) == (0, [])


# ---------------------------------------------------------------- hypothesis: mutated documents

ODD_VALUES = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(),
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.sampled_from(["a", "dist", "mean", "value"]), st.integers(-3, 3), max_size=2),
    st.just([]),
    st.just({}),
)


@SETTINGS
@given(path=st.sampled_from(LEAVES + [p for p in PATHS if p not in LEAVES]), value=ODD_VALUES)
def test_wrong_type_or_value(in_tree, path, value):
    """Any key set to any value (wrong type, negative, absurd, NaN, dates, tables): accepted or clean."""
    doc = copy.deepcopy(BASELINE)
    set_in(doc, path, value)
    name = write(in_tree, "scenarios/mut.toml", toml_doc(doc))
    code, lines = validate(name)
    assert_clean(code, lines, toml_files(in_tree))
    if isinstance(value, float) and not math.isfinite(value):
        assert any(f"{dotted(path)}: must be a finite number" in line for line in lines), lines


@SETTINGS
@given(path=st.sampled_from(NUMBERS),
       value=st.one_of(st.sampled_from([0, -1, -1e308, 1e308, 2**63 - 1, 10**12, -(10**12), 1e-300]),
                       st.integers(min_value=10**6, max_value=10**30)))
def test_absurd_numbers(in_tree, path, value):
    """Negative, zero, huge counts and extreme floats in every numeric field: accepted or clean."""
    doc = copy.deepcopy(BASELINE)
    set_in(doc, path, value)
    name = write(in_tree, "scenarios/mut.toml", toml_doc(doc))
    assert_clean(*validate(name), toml_files(in_tree))


@SETTINGS
@given(path=st.sampled_from(KEYED))
def test_missing_key(in_tree, path):
    """Deleting any key: accepted (it has a default) or refused cleanly."""
    doc = copy.deepcopy(BASELINE)
    del get_in(doc, path[:-1])[path[-1]]
    name = write(in_tree, "scenarios/mut.toml", toml_doc(doc))
    assert_clean(*validate(name), toml_files(in_tree))


def overlay_doc(path: tuple, value: Any) -> dict[str, Any]:
    """The smallest document extending the baseline that puts `value` at `path`.

    An overlay merges tables but replaces a list whole, so it cannot write into one element of a list
    (`criteria.criterion[0]`) alone: below a list, the overlay writes the baseline's whole list with
    the change made in it.
    """
    first_list = next((i for i, p in enumerate(path) if isinstance(p, int)), None)
    top = path if first_list is None else path[: first_list]
    if first_list is None:
        new = value
    else:
        new = copy.deepcopy(get_in(BASELINE, top))
        set_in({"v": new}, ("v", *path[first_list:]), value)
    doc: dict[str, Any] = {}
    node = doc
    for part in top[:-1]:
        node = node.setdefault(part, {})
    node[top[-1]] = new
    return doc


@SETTINGS
@given(table=st.sampled_from(TABLES), overlay=st.booleans())
def test_unknown_key_is_named(in_tree, table, overlay):
    """An unknown key anywhere is refused with a line naming the file that wrote it and the key.

    With `overlay`, the key is written in a small file extending the baseline (`overlay_doc`: inside a
    list, with the whole list), so the line must name that file, not the base file that defines the
    table.
    """
    key = (*table, "zz_unknown_key")
    if overlay:
        text = 'extends = "baseline.toml"\n' + toml_doc(overlay_doc(key, {"zz_a": 1}))
    else:
        doc = copy.deepcopy(BASELINE)
        set_in(doc, key, {"zz_a": 1})
        text = toml_doc(doc)
    name = write(in_tree, "scenarios/mut.toml", text)
    code, lines = validate(name)
    problems = assert_clean(code, lines, toml_files(in_tree))
    assert code == 2
    assert any(f == name and rest.startswith(dotted(key)) for f, rest in problems), lines


@SETTINGS
@given(path=st.sampled_from(LEAVES), nan=st.sampled_from([math.nan, math.inf, -math.inf]))
def test_nan_and_infinity_refused_in_overlay(in_tree, path, nan):
    """`nan` / `inf` written over any leaf by a scenario extending the baseline: refused, naming the file.

    Lists are replaced whole by a scenario, so a leaf inside a list is written with its whole list.
    """
    doc = overlay_doc(path, nan)
    name = write(in_tree, "scenarios/mut.toml", 'extends = "baseline.toml"\n' + toml_doc(doc))
    code, lines = validate(name)
    problems = assert_clean(code, lines, toml_files(in_tree))
    assert code == 2
    assert (name, f"{dotted(path)}: must be a finite number, got {toml_value(nan)}") in problems, lines


TOML_NOISE = st.text(alphabet="[]{}=\"',.#\\ \n\t\r\x00abc1-:é", min_size=1, max_size=6)


@SETTINGS
@given(data=st.data())
def test_broken_toml(in_tree, data):
    """Text edits that break TOML (deletions, insertions, truncation): refused with the file named."""
    text = toml_doc(BASELINE)
    at = data.draw(st.integers(0, len(text)))
    edit = data.draw(st.sampled_from(["insert", "delete", "truncate"]))
    if edit == "insert":
        text = text[:at] + data.draw(TOML_NOISE) + text[at:]
    elif edit == "delete":
        text = text[:at] + text[at + data.draw(st.integers(1, 20)):]
    else:
        text = text[:at]
    name = write(in_tree, "scenarios/mut.toml", text)
    assert_clean(*validate(name), toml_files(in_tree))


@SETTINGS
@given(graph=st.lists(st.lists(st.sampled_from(["g0", "g1", "g2", "g3", "missing", "dir", "base"]),
                               max_size=3), min_size=4, max_size=4),
       single=st.booleans())
def test_extends_graphs(in_tree, graph, single):
    """Random `extends` graphs: cycles, self-references, missing files, directories; never a hang."""
    (in_tree / "scenarios" / "dir.toml").mkdir(exist_ok=True)
    for i, targets in enumerate(graph):
        names = [("../configs/alter_hn005/base" if t == "base" else t) + ".toml" for t in targets]
        ext = json.dumps(names[0]) if single and len(names) == 1 else json.dumps(names)
        write(in_tree, f"scenarios/g{i}.toml", f'extends = {ext}\nname = "g{i}"\n')
    code, lines = validate("scenarios/g0.toml")
    problems = assert_clean(code, lines, toml_files(in_tree))

    def first_problem(node: str, stack: tuple[str, ...]) -> str | None:
        """What the loader meets first, resolving bases depth-first in order: a cycle or a missing file."""
        for t in graph[int(node[1])]:
            if t in ("missing", "dir"):
                return "file not found"
            if t in (*stack, node):
                return "extends cycle"
            if t.startswith("g") and (found := first_problem(t, (*stack, node))):
                return found
        return None

    expected = first_problem("g0", ())
    if expected:
        assert code == 2 and any(expected in rest for _, rest in problems), lines


# ---------------------------------------------------------------- fixed hostile files


@pytest.mark.parametrize(("text", "expected"), [
    ("a = " + "[" * 2000 + "]" * 2000 + "\n",
     "scenarios/mut.toml: invalid TOML: tables or arrays nested too deeply"),
    ('extends = "baseline.toml"\n[trial]\n"a\\nb" = 1\n', 'scenarios/mut.toml: trial."a\\nb": unknown key'),
    ('extends = "baseline.toml"\n[trial]\n"x.y" = 1\n', 'scenarios/mut.toml: trial."x.y": unknown key'),
    ('extends = "baseline.toml"\n[trial]\ndeadline_months = 1e999\n',
     "scenarios/mut.toml: trial.deadline_months: must be a finite number, got inf"),
    ('extends = "nowhere.toml"\n', "scenarios/mut.toml: extends: file not found: scenarios/nowhere.toml"),
    ('extends = "mut.toml"\n',
     "scenarios/mut.toml: extends: extends cycle: scenarios/mut.toml -> scenarios/mut.toml"),
    ("\xff\xfe", "scenarios/mut.toml: invalid TOML: Invalid statement (at line 1, column 1)"),
    ("extends = 5\n", "scenarios/mut.toml: extends: must be a path or a list of paths, got 5"),
])
def test_fixed_hostile_files(in_tree, text, expected):
    name = write(in_tree, "scenarios/mut.toml", text)
    code, lines = validate(name)
    assert code == 2
    assert expected in lines, lines


def test_not_utf8(in_tree):
    (in_tree / "scenarios" / "mut.toml").write_bytes(b'name = "\xff\xfe"\n')
    expected = "scenarios/mut.toml: invalid TOML: the file is not UTF-8 text"
    assert validate("scenarios/mut.toml") == (2, [expected])


def test_scenario_is_a_directory(in_tree):
    assert validate("scenarios") == (2, ["scenarios: file not found"])


# ---------------------------------------------------------------- the real command line, in a subprocess

CLI = [sys.executable, "-c", "from hn005_sim.cli import main; import sys; sys.exit(main())"]


@pytest.mark.parametrize(("text", "needle"), [
    ('extends = "baseline.toml"\n[trial\n', "invalid TOML"),
    ('extends = "baseline.toml"\n[trial]\ntarget_enrolled = nan\n', "target_enrolled: must be a finite"),
    ('extends = "baseline.toml"\n[trial]\ntarget_enrolled = "x"\nnot_a_key = 3\n', "not_a_key: unknown"),
])
def test_subprocess_exit_2_one_line_no_traceback(in_tree, text, needle):
    name = write(in_tree, "scenarios/mut.toml", text)
    proc = subprocess.run([*CLI, "validate", name], cwd=in_tree, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines and all(line.startswith("scenarios/mut.toml: ") for line in lines), lines
    assert any(needle in line for line in lines), lines
    assert proc.stdout == ""


# ---------------------------------------------------------------- resource guards


def test_check_memory_refuses_with_the_estimate():
    from hn005_sim.cli import InputError
    from hn005_sim.guards import check_memory

    assert check_memory(1_000, 1_200, "cohort --patients 1000", available=24 * 10**9) == 1_200_000
    with pytest.raises(InputError) as exc:
        check_memory(10**12, 1_200, "cohort --patients 1000000000000", unit="patients", available=24 * 10**9)
    # 10^12 x 1200 B = 1.2e15 B; 80% of 24e9 B / 1200 B = 16,000,000 rows
    assert str(exc.value) == ("cohort --patients 1000000000000 would need about 1.2 PB of memory; this "
                              "machine has 24 GB available (at most about 16,000,000 patients fit)")


def test_available_memory_is_plausible():
    from hn005_sim.guards import available_memory_bytes

    phys = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert 0 < available_memory_bytes() <= phys


@pytest.mark.parametrize("argv", [
    ["cohort", "scenarios/baseline.toml", "--patients", str(10**12)],
    ["screen", "scenarios/baseline.toml", "--patients", str(10**12)],
])
def test_huge_requests_refused_up_front(tmp_path, capsys, monkeypatch, argv):
    """10^12 candidates: one line with the estimate, exit 2, nothing written, no time spent."""
    monkeypatch.chdir(ROOT)
    out = tmp_path / "out"
    started = time.perf_counter()
    code = main([*argv, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "would need about" in err[0] and "of memory; this machine has" in err[0], err
    assert f"--patients {10**12}" in err[0]
    assert not out.exists() and not list(tmp_path.glob(".out.partial-*"))
    assert time.perf_counter() - started < HANG_SECONDS


def _aggregate_bytes(target: int, months: int, sites: int, replicates: int) -> int:
    """Bytes of every array a Monte Carlo aggregate allocates (numpy arrays and histogram counts)."""
    import numpy as np

    from hn005_sim.montecarlo import Aggregate, IntHistogram, RunMeta

    meta = RunMeta("t", replicates, 1, target, 24.0, float(months), months,
                   tuple(f"s{i}" for i in range(sites)), ("r",) * sites, ("c1", "c2"),
                   ("prescreen", "screening"))
    agg = Aggregate(meta)
    total = 0
    for value in vars(agg).values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, np.ndarray):
                total += item.nbytes
            elif isinstance(item, IntHistogram):
                total += item.counts.nbytes
    return total


def test_run_memory_estimate_follows_the_aggregate():
    """The run guard's estimate grows as the arrays the aggregate really allocates: 8 bytes per month,
    deadline and site for each possible enrolled count, 8 per replicate; plus its working copies."""
    from hn005_sim.guards import LEVEL_WORKING_ROWS, REPLICATE_WORKING_FACTOR, run_memory_bytes

    months, sites = 12, 3
    base = _aggregate_bytes(100, months, sites, 50)
    assert _aggregate_bytes(1_100, months, sites, 50) - base == 1_000 * 8 * (months + 1 + 1 + sites)
    assert _aggregate_bytes(100, months, sites, 1_050) - base == 1_000 * 8

    def est(target: int, replicates: int) -> int:
        return run_memory_bytes(target=target, months=months, sites=sites, replicates=replicates)

    assert est(1_100, 50) - est(100, 50) == 1_000 * 8 * (months + 1 + 1 + sites + LEVEL_WORKING_ROWS)
    assert est(100, 1_050) - est(100, 50) == 1_000 * 8 * REPLICATE_WORKING_FACTOR
    for target, replicates in ((110, 200), (10**5, 10), (5, 10**5)):
        assert est(target, replicates) > _aggregate_bytes(target, months, sites, replicates)


def test_check_run_memory_names_the_dominant_figure():
    from hn005_sim.cli import InputError
    from hn005_sim.guards import check_run_memory

    common = {"months": 60, "sites": 1, "available": 24 * 10**9}
    assert check_run_memory(target=110, replicates=200, what="run", **common) < 300 * 10**6
    with pytest.raises(InputError) as exc:
        check_run_memory(target=10**12, replicates=2, what="run X", **common)
    # 8 B x (10^12 + 1) x (61 months + deadline + 1 site + 2 working rows) = 5.2e14 B; fits: (0.8 x 24e9
    # - 250e6 interpreter - 65 x 8 B - 2 x 48 B) / 520 B = 36,442,306 -> 36,000,000
    assert str(exc.value) == ("run X would need about 520 TB of memory; this machine has 24 GB available "
                              "(trial.target_enrolled up to about 36,000,000 fits)")
    with pytest.raises(InputError) as exc:
        check_run_memory(target=110, replicates=10**12, what="run Y", **common)
    # 48 B x 10^12 = 4.8e13 B; fits: (0.8 x 24e9 - 250e6 - 111 x 65 x 8 B) / 48 B = 394,790,427
    assert str(exc.value) == ("run Y would need about 48 TB of memory; this machine has 24 GB available "
                              "(at most about 390,000,000 replicates fit)")


# 10^12 replicates are now refused at parse time by the --replicates bound (tests/test_bounds.py).
@pytest.mark.parametrize(("overlay", "args", "needle"), [
    ("[trial]\ntarget_enrolled = 1000000000000\n", ["--replicates", "2"],
     f"trial.target_enrolled = {10**12:,}"),
    ("", ["--replicates", "2", "--screen-patients", str(10**12)], f"--screen-patients {10**12}"),
])
def test_huge_run_refused_up_front(tmp_path, capsys, monkeypatch, overlay, args, needle):
    """`run` asked for a 10^12 target or 10^12 candidates: one line with the estimate, exit 2,
    nothing written, before any simulation."""
    monkeypatch.chdir(ROOT)
    scenario = tmp_path / "huge.toml"
    scenario.write_text(f"extends = {json.dumps(str(ROOT / 'scenarios' / 'baseline.toml'))}\n{overlay}")
    out = tmp_path / "out"
    started = time.perf_counter()
    code = main(["run", str(scenario), *args, "--out", str(out), "--quiet", "--jobs", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "would need about" in err[0] and "of memory; this machine has" in err[0], err
    assert needle in err[0], err
    assert not out.exists() and not list(tmp_path.glob(".out.partial-*"))
    assert time.perf_counter() - started < HANG_SECONDS


# --- output folders that cannot be one ---------------------------------------------------------------

OUT_COMMANDS = [
    ["cohort", "scenarios/baseline.toml", "--patients", "10"],
    ["screen", "scenarios/baseline.toml", "--patients", "10"],
    ["run", "scenarios/baseline.toml", "--replicates", "1"],
    ["supply", "scenarios/baseline.toml", "--replicates", "1"],
    ["sites", "scenarios/baseline.toml"],
    ["compare", "scenarios/baseline.toml", "scenarios/baseline.toml", "--replicates", "1"],
    ["sweep", "scenarios/baseline.toml", "--set", "sites.count=1,2", "--replicates", "1"],
]


@pytest.mark.parametrize("args", OUT_COMMANDS, ids=lambda a: a[0])
@pytest.mark.parametrize("where", ["file", "under_file"])
def test_out_that_cannot_be_a_folder_is_one_line_exit_2_before_any_work(args, where, tmp_path, capsys,
                                                                        monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    out = blocker if where == "file" else blocker / "sub"
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0] and str(blocker) in err[0] and "Traceback" not in err[0]
    assert blocker.read_text() == "not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # no staging folder left behind


@pytest.mark.parametrize("existing", [False, True])
def test_failure_while_moving_outputs_is_one_line_and_cleans_up(tmp_path, monkeypatch, existing):
    """A disk that refuses the final swap (full, read-only) is an OutputError, no staging is left, and
    DIR is as it was (absent, or the previous outputs)."""
    from hn005_sim import io as hio

    def refuse(*args):
        raise OSError(28, "No space left on device")

    out = tmp_path / "out"
    if existing:
        out.mkdir()
        (out / "manifest.json").write_text('{"tool": "hn005-sim", "old": true}')
    monkeypatch.setattr(hio.os, "rename", refuse)
    monkeypatch.setattr(hio, "_exchange", refuse)
    with pytest.raises(hio.OutputError, match="No space left on device"), hio.output_dir(out) as od:
        od.write_json("summary.json", {"a": 1})
    assert [p.name for p in tmp_path.iterdir()] == (["out"] if existing else [])  # no .partial staging
    if existing:
        assert [p.name for p in out.iterdir()] == ["manifest.json"]
