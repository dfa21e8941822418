"""Criterion rules are vetted before polars sees them: nothing a rule says opens a file or a connection.

polars' SQL runs subqueries and table functions (`read_csv('http://...')`, `read_json('/etc/passwd')`)
while it compiles a rule. Every hostile rule here is written into a copy of the shipped criteria and
given to `validate`, `screen` and `run` (in-process, through `hn005_sim.cli.main`) while

- a local HTTP server (a separate process: polars holds the interpreter while it fetches) counts the
  requests it receives,
- `sys.addaudithook` records every `open` and `socket.connect` the interpreter makes, and
- the access time of a target file (set to 1970 before each command) tells whether anything, Python or
  polars' own Rust code, read it.

Property: exit 2, one line naming the file, the criterion id and the offending token; zero requests,
no open of the target, atime untouched. `test_detectors_see_an_unvetted_rule` shows the three
detectors do see what polars does with the same rules when they are not vetted.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from hn005_sim.cli import main
from hn005_sim.eligibility.vet import (
    ALLOWED_FUNCTIONS,
    MAX_RULE_CHARS,
    MAX_RULE_DEPTH,
    MAX_RULE_TOKENS,
    RuleRefused,
    vet_rule,
)

ROOT = Path(__file__).resolve().parents[2]
CRITERIA = "configs/alter_hn005/criteria.toml"
ORIGINAL = 'rule = "age_years >= {age_min_years}"'  # criterion[0], id age_min

SERVER = r"""
import http.server, sys
log = open(sys.argv[1], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    def _answer(self, body):
        log.write(self.command + " " + self.path + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "4")
        self.end_headers()
        if body:
            self.wfile.write(b"a\n1\n")
    def do_GET(self): self._answer(True)
    def do_HEAD(self): self._answer(False)
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"""

_EVENTS: list[tuple[str, str]] = []
_RECORDING = [False]


def _hook(event: str, args: tuple) -> None:
    if _RECORDING[0] and event in ("open", "socket.connect"):
        _EVENTS.append((event, str(args[0]) if args else ""))


sys.addaudithook(_hook)  # an audit hook cannot be removed; it records only while _RECORDING


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("http") / "requests.log"
    log.write_text("")
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(log)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        yield port, log
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("vet")
    shutil.copytree(ROOT / "configs", root / "configs")
    shutil.copytree(ROOT / "scenarios", root / "scenarios")
    target = root / "secret" / "target.json"
    target.parent.mkdir()
    target.write_text('{"a": 1}\n')
    return root, target


def hostile_rules(port: int, target: Path) -> list[tuple[str, str]]:
    """(rule, the token the refusal must name)."""
    url = f"http://127.0.0.1:{port}/x.csv"
    return [
        (f"age_years IN (SELECT a FROM read_csv('{url}'))", "SELECT"),
        (f"age_years IN (SELECT a FROM read_parquet('{url}'))", "SELECT"),
        (f"age_years IN (SELECT a FROM read_json('{target}'))", "SELECT"),
        (f"age_years IN (SELECT a FROM read_ndjson('{target}'))", "SELECT"),
        (f"read_json('{target}') = 1", "read_json"),
        (f"READ_CSV ('{url}') = 1", "READ_CSV"),
        (f"age_years = (SELECT 1 FROM read_csv('{url}'))", "SELECT"),
        (f"EXISTS (SELECT * FROM read_csv('{url}'))", "EXISTS"),
        (f"age_years > ALL (SELECT a FROM read_csv('{url}'))", "ALL"),
        ("age_years IN (WITH t AS (SELECT 1) SELECT * FROM t)", "WITH"),
        ("age_years IN (SELECT 1 UNION SELECT 2)", "SELECT"),
        ("upper(sex) = 'M'", "upper"),
        ("CAST(age_years AS INT) > 1", "CAST"),
        ("age_years::int > 1", ":"),
        ("t.age_years > 1", "."),
        ('"age_years" > 1', '"'),
        ("age_years > 1; SELECT 1", ";"),
        ("age_years > 1 -- comment", "--"),
        ("age_years > 1 /* c */", "/*"),
        ("sex = 'M\\' OR read_csv(1) --'", "\\"),
        ("age_years IN (ecog, 2)", "ecog"),
        ("age_years IN (1, 2", "2"),
        ("sex = 'M", "'M"),
        ("age_years LIKE '4%'", "LIKE"),
        ("age_years >> 1 = 0", ">>"),
        ("age_years >= 1 a", "a"),
        ("age_years > INTERVAL '1 day'", "INTERVAL"),
        ("age_years > $1", "$"),
        ("UNNEST(age_years) > 1", "UNNEST"),
    ]


def _cli(argv: list[str]) -> tuple[int, list[str]]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, [line for line in err.getvalue().splitlines() if line.strip()]


COMMANDS = {
    "validate": ["validate", "scenarios/baseline.toml", "--quiet"],
    "screen": ["screen", "scenarios/baseline.toml", "--patients", "50", "--quiet"],
    "run": ["run", "scenarios/baseline.toml", "--replicates", "1", "--quiet"],
}


def _rule_line(rule: str) -> str:
    return "rule = " + json.dumps(rule)  # a JSON string is a TOML basic string


def test_hostile_rules_touch_nothing_under_any_command(server, tree, monkeypatch, tmp_path):
    port, log = server
    root, target = tree
    monkeypatch.chdir(root)
    crit = root / CRITERIA
    shipped = crit.read_text()
    assert ORIGINAL in shipped
    refused = 0
    try:
        for rule, token in hostile_rules(port, target):
            anded = f"age_years >= {{age_min_years}} AND {rule}"
            crit.write_text(shipped.replace(ORIGINAL, _rule_line(anded)))
            for name, argv in COMMANDS.items():
                out = tmp_path / f"out-{name}"
                os.utime(target, (1, target.stat().st_mtime))
                _EVENTS.clear()
                _RECORDING[0] = True
                try:
                    code, lines = _cli([*argv, *(["--out", str(out)] if name != "validate" else [])])
                finally:
                    _RECORDING[0] = False
                time.sleep(0.01)
                assert code == 2, (rule, name, lines)
                assert len(lines) == 1, (rule, name, lines)
                where = f"{CRITERIA}: criteria.criterion[0].rule (age_min): "
                quoted = json.dumps(token if len(token) <= 40 else token[:37] + "...")
                assert any(lines[0].startswith(f"{where}{head} {quoted}: ")
                           for head in ("rule refused at", "SQL syntax error at")), (rule, token, lines)
                assert log.read_text() == "", (rule, name, log.read_text())
                assert not [e for e in _EVENTS if e[0] == "socket.connect"], (rule, name, _EVENTS)
                assert not [e for e in _EVENTS if str(target) in e[1] or "secret" in e[1]], (rule, _EVENTS)
                assert target.stat().st_atime == 1, (rule, name)
                assert not out.exists() and not list(tmp_path.glob(".out-*.partial-*"))
                refused += 1
    finally:
        crit.write_text(shipped)
    assert refused == 3 * len(hostile_rules(port, target))


def test_detectors_see_an_unvetted_rule(server, tree):
    """The same rules given to polars directly do reach the server and read the target: the detectors
    above would see a rule that got through."""
    port, log = server
    _, target = tree
    before = log.read_text()
    with contextlib.suppress(Exception):
        pl.sql_expr(f"x IN (SELECT a FROM read_csv('http://127.0.0.1:{port}/x.csv'))")
    deadline = time.monotonic() + 10
    while log.read_text() == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.read_text() != before
    os.utime(target, (1, target.stat().st_mtime))
    with contextlib.suppress(Exception):
        pl.sql_expr(f"x IN (SELECT a FROM read_json('{target}'))")
    assert target.stat().st_atime != 1


def test_every_shipped_rule_passes_and_allowed_functions_compile():
    """Every rule of every configs/*/criteria.toml (all readings) passes; every allowed function compiles."""
    import tomllib

    from hn005_sim.eligibility.engine import substitute

    files = sorted(ROOT.glob("configs/*/criteria.toml"))
    assert files
    for file in files:
        doc = tomllib.loads(file.read_text())["criteria"]
        values = {k: p["value"] for k, p in doc["parameters"].items()}
        texts = [t for c in doc["criterion"] for t in ([c["rule"]] if "rule" in c else c["rules"].values())]
        assert len(texts) > 60
        for text in texts:
            vet_rule(substitute(text, values))
        longest = max(len(substitute(t, values)) for t in texts)
        assert longest * 10 < MAX_RULE_CHARS
    frame = pl.DataFrame({"a": [1.5, None], "b": [2.0, 4.0]})
    for name in ALLOWED_FUNCTIONS:
        args = "a, b" if name in ("LEAST", "GREATEST", "COALESCE", "NULLIF") else "b"
        rule = f"{name}({args}) > 0"
        vet_rule(rule)
        assert frame.select(pl.sql_expr(rule).alias("r")).schema["r"] == pl.Boolean
    vet_rule("CASE WHEN a BETWEEN 1 AND 2 THEN a IS NOT NULL ELSE NOT (b IN (-1, 2.5, 'x')) END")


@pytest.mark.parametrize(("rule", "needle"), [
    (" AND ".join(f"age_years <= {i}" for i in range(10_000)), "characters long; at most 2,000"),
    (" AND ".join(["a"] * 300), "tokens; at most 500"),
    ("(" * (MAX_RULE_DEPTH + 1) + "a" + ")" * (MAX_RULE_DEPTH + 1), f"nested more than {MAX_RULE_DEPTH}"),
    ("CASE WHEN " * 20 + "a" + " THEN 1 END" * 20, f"nested more than {MAX_RULE_DEPTH}"),
])
def test_bounds_on_length_tokens_and_depth(rule, needle):
    started = time.perf_counter()
    with pytest.raises(RuleRefused) as exc:
        vet_rule(rule)
    assert needle in str(exc.value)
    assert "\n" not in str(exc.value)
    assert time.perf_counter() - started < 2.0
    assert MAX_RULE_TOKENS == 500


def test_ten_thousand_terms_refused_in_one_line_by_validate(tree, monkeypatch):
    """10,000 ANDed terms used to crash polars (exit 139); now one line, exit 2, at once."""
    root, _ = tree
    monkeypatch.chdir(root)
    crit = root / CRITERIA
    shipped = crit.read_text()
    terms = " AND ".join(f"age_years <= {i + 100}" for i in range(10_000))
    rule = "age_years >= {age_min_years} AND " + terms
    try:
        crit.write_text(shipped.replace(ORIGINAL, _rule_line(rule)))
        started = time.perf_counter()
        code, lines = _cli(COMMANDS["validate"])
    finally:
        crit.write_text(shipped)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"{CRITERIA}: criteria.criterion[0].rule (age_min): rule refused at")
    assert "characters long" in lines[0] and len(lines[0]) < 600
    assert time.perf_counter() - started < 10
