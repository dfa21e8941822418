"""Fuzz the command line with hypothesis: random mutations of every scenario section, of a planning
file and of the criterion rules.

Property, for every mutated input and every command run on it (in-process, `hn005_sim.cli.main`):
- exit 0 with nothing on stderr (--quiet), or exit 2 with one line per problem, never a traceback;
- no file appears outside --out (and no staging folder is left);
- the command ends within HANG_S seconds (SIGALRM), i.e. the run is bounded.

Valid mutated scenarios are also run (`run --replicates 1`, `screen --patients 200`, `supply
--replicates 1`) when their size is of the baseline's order (expected referrals, target): bigger
valid sizes are bounded by scenario.bounds, not fast, and tests/test_bounds.py covers the bounds.
Example counts are kept small (about a minute in all on a quiet machine) and `derandomize=True` makes
the examples the same on every run, so CI is reproducible.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import signal
import tomllib
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

# the TOML writer and document walkers of the hostile-input tests (tests/ is on sys.path)
from test_hostile_input import set_in, toml_doc, walk

from hn005_sim.cli import main
from hn005_sim.scenario.load import read_raw

ROOT = Path(__file__).resolve().parents[1]
BASELINE = read_raw(ROOT / "scenarios" / "baseline.toml").data
PLAN = tomllib.loads((ROOT / "plans" / "guangdong_only.toml").read_text())
HANG_S = 90

SCALE = int(os.environ.get("HN005_FUZZ_SCALE", "1"))
"""Examples x SCALE; a SCALE above 1 also draws new examples each run (a longer local fuzz session:
`HN005_FUZZ_SCALE=20 pytest tests/test_fuzz.py`). CI runs SCALE 1, derandomized."""

SETTINGS = dict(
    deadline=None,  # each command has its own SIGALRM bound
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
    derandomize=SCALE == 1,
)


def delete_in(doc: Any, path: tuple) -> None:
    for p in path[:-1]:
        doc = doc[p]
    if isinstance(doc, dict):
        del doc[path[-1]]
    else:
        doc.pop(path[-1])


SECTIONS = ("trial", "population", "criteria", "recruitment", "regimen", "supply")
PATHS = {s: [p for p, _ in walk(BASELINE) if p[0] == s] for s in SECTIONS}
PLAN_PATHS = [p for p, _ in walk(PLAN)]
RULES = [p for p, v in walk(BASELINE) if p[0] == "criteria" and isinstance(v, str) and len(p) >= 4
         and (p[-1] == "rule" or p[-2] == "rules")]

HOSTILE_SQL = ["SELECT", "FROM", "read_csv('http://127.0.0.1:9/x')", "read_json('/etc/passwd')", "(", ")",
               ";", "--", "/*", "'", "\\", '"', "::int", "t.", "IN (SELECT 1)", "EXISTS", "CAST(", "AND",
               "OR", "NOT", "{age_min_years}", "{nope}", "FLOOR(", "upper(", "CASE WHEN", "END", "1e999",
               " AND age_years > 1" * 50, "(" * 40, "x" * 3000, "\x00", "é", "%", ">>", "BETWEEN 1 AND"]

ODD = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 10**6, 10**12, 1e300, 1e-300, 0.5, 2**63]),
    st.booleans(),
    st.dates(),
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.sampled_from(["dist", "value", "mean", "sd", "source"]),
                    st.one_of(st.integers(-3, 3), st.sampled_from(["normal", "gamma", "x"])), max_size=3),
    st.just([]),
    st.just({}),
)


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f"a command did not finish within {HANG_S} s")


def run_cli(argv: list[str]) -> tuple[int, list[str]]:
    """(exit code, stderr lines); a Python warning counts as a stderr line (the console shows it)."""
    err = io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_S)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), \
                warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            code = main(argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    return code, lines + [f"warning: {w.category.__name__}: {w.message}" for w in caught]


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def check(work: Path, argv: list[str], out: Path | None) -> int:
    """Run argv in `work`; assert the property; return the exit code."""
    before = tree(work)
    code, lines = run_cli(argv)
    event(f"{argv[0]} exit {code}")
    assert not [line for line in lines if line.startswith("warning: ")], (argv, lines)
    assert code in (0, 2), (argv, code, lines)
    if code == 0:
        assert lines == [], (argv, lines)
    else:
        assert lines, "exit 2 must say why"
        for line in lines:
            assert "Traceback" not in line and "Error:" not in line.split(": ", 1)[0], (argv, line)
            assert len(line) < 2_000, (argv, line[:200])
    new = tree(work) - before
    inside = {p for p in new if out is not None and (work / p).resolve().is_relative_to(out.resolve())}
    assert new == inside, (argv, sorted(new - inside)[:5])
    assert not [p for p in tree(work) if ".partial-" in p], argv
    return code


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _small(doc: dict[str, Any]) -> bool:
    """Whether a valid scenario is of the baseline's size (cheap enough to run in a fuzz example)."""
    try:
        rec = doc["recruitment"]
        months = max(float(rec["horizon_months"]["value"]), float(doc["trial"]["deadline_months"]))
        load = sum(r["sites"] * r["referral_rate_mean"]["value"] for r in rec["regions"]) * months
        return load <= 20_000 and doc["trial"]["target_enrolled"] <= 500 and months <= 120
    except (KeyError, TypeError, ValueError):
        return False


def _mutated(data, section: str) -> tuple[dict[str, Any], str]:
    doc = copy.deepcopy(BASELINE)
    path = data.draw(st.sampled_from(PATHS[section]), label="path")
    if data.draw(st.booleans(), label="delete") and path:
        delete_in(doc, path)
        return doc, f"del {path}"
    value = data.draw(ODD, label="value")
    set_in(doc, path, value)
    return doc, f"{path} = {value!r}"[:200]


@settings(max_examples=30 * SCALE, **SETTINGS)
@given(data=st.data(), section=st.sampled_from(SECTIONS))
def test_fuzz_scenario_sections(work, data, section):
    doc, _ = _mutated(data, section)
    (work / "s.toml").write_text(toml_doc(doc), encoding="utf-8")
    code = check(work, ["validate", "s.toml", "--quiet"], None)
    if code != 0 or not _small(doc):
        return
    command = {"population": "screen", "criteria": "screen", "regimen": "supply", "supply": "supply"}.get(
        section, "run")
    out = work / "out"
    argv = {
        "run": ["run", "s.toml", "--replicates", "1", "--no-report", "--screen-patients", "1000"],
        "screen": ["screen", "s.toml", "--patients", "200"],
        "supply": ["supply", "s.toml", "--replicates", "1", "--search-replicates", "0"],
    }[command]
    check(work, [*argv, "--out", str(out), "--quiet", "--force"], out)


@settings(max_examples=20 * SCALE, **SETTINGS)
@given(data=st.data())
def test_fuzz_rules(work, data):
    """Rule texts edited with SQL fragments (hostile and harmless) at random places."""
    doc = copy.deepcopy(BASELINE)
    path = data.draw(st.sampled_from(RULES), label="rule")
    text = doc
    for p in path:
        text = text[p]
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        at = data.draw(st.integers(0, len(text)), label="at")
        piece = data.draw(st.one_of(st.sampled_from(HOSTILE_SQL), st.text(max_size=8)), label="piece")
        text = text[:at] + piece + text[at:] if data.draw(st.booleans(), label="insert") else piece
    set_in(doc, path, text)
    (work / "s.toml").write_text(toml_doc(doc), encoding="utf-8")
    code = check(work, ["validate", "s.toml", "--quiet"], None)
    if code == 0:
        out = work / "out"
        check(work, ["screen", "s.toml", "--patients", "200", "--out", str(out), "--quiet", "--force"], out)


@settings(max_examples=20 * SCALE, **SETTINGS)
@given(data=st.data())
def test_fuzz_planning_file(work, data):
    doc = copy.deepcopy(PLAN)
    path = data.draw(st.sampled_from(PLAN_PATHS), label="path")
    if data.draw(st.booleans(), label="delete"):
        delete_in(doc, path)
    else:
        set_in(doc, path, data.draw(ODD, label="value"))
    (work / "p.toml").write_text(toml_doc(doc), encoding="utf-8")
    out = work / "out"
    check(work, ["sites", "p.toml", "--quiet", "--out", str(out), "--force"], out)
