"""Run every benchmark under bench/ and print one table: figure, measured, target, ok.  (`make bench`)

Convention for bench scripts (every bench/*.py except this file and files starting with `_`):
- it runs with no arguments from the repository root (`.venv/bin/python bench/NAME.py`), with defaults
  that measure the figure its issue names, and exits 0 (non-zero = the script failed, not a missed target);
- for each figure it prints ONE line on stdout, anywhere among its other output:

      BENCH <name> <value> <unit> target <op> <value>
      BENCH <name> <value> <unit>

  <name> and <unit> have no spaces (`population_1m_wall`, `s`, `MB`, `replicates/s`, `x`); <value> is a
  number; <op> is one of < <= > >=; the target is optional (a figure shown for information).
  e.g. `BENCH population_1m_wall 1.42 s target < 2`, `BENCH memory_peak_10k_replicates 412 MB target < 1000`.
- anything else it prints is its own business (shown with --verbose).

Usage: python bench/run_all.py [--verbose] [--lenient] [--quick] [--timeout S] [--only NAME ...]
Exit status: 1 if a script failed, printed no BENCH line, or (unless --lenient) missed a target.
--quick passes --quick to the scripts whose help lists it (smoke runs whose figures carry fewer targets).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
LINE = re.compile(
    r"^BENCH\s+(?P<name>\S+)\s+(?P<value>[-+0-9.eE]+|nan|inf)\s+(?P<unit>\S+)"
    r"(?:\s+target\s+(?P<op><=|>=|<|>)\s*(?P<target>[-+0-9.eE]+))?\s*$"
)
OPS = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}


@dataclass(frozen=True)
class Figure:
    script: str
    name: str
    value: float
    unit: str
    op: str | None
    target: float | None

    @property
    def ok(self) -> bool | None:
        if self.op is None or self.target is None:
            return None
        return OPS[self.op](self.value, self.target)


def parse(script: str, stdout: str) -> list[Figure]:
    """The BENCH lines of one script's output."""
    out = []
    for line in stdout.splitlines():
        m = LINE.match(line.strip())
        if m:
            target = m["target"]
            out.append(Figure(script, m["name"], float(m["value"]), m["unit"], m["op"],
                              float(target) if target is not None else None))
    return out


def scripts(only: list[str] | None) -> list[Path]:
    found = sorted(p for p in BENCH_DIR.glob("*.py") if p.name != "run_all.py" and not p.name.startswith("_"))
    if only:
        found = [p for p in found if p.stem in only]
    return found


def run(script: Path, timeout_s: float, quick: bool = False) -> tuple[int | None, str, str, float]:
    """(exit code or None on timeout, stdout, stderr, seconds)."""
    started = time.perf_counter()
    extra = ["--quick"] if quick and "--quick" in script.read_text() else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                                    os.environ.get("PYTHONPATH")]))}
    try:
        proc = subprocess.run([sys.executable, str(script), *extra], cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired as exc:
        def text(b):
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")

        return None, text(exc.stdout), text(exc.stderr), time.perf_counter() - started
    return proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - started


def fmt(x: float) -> str:
    if x != x or x in (float("inf"), float("-inf")):
        return str(x)
    if x == 0 or 0.01 <= abs(x) < 1e6:
        return f"{x:,.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    return f"{x:.3g}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--verbose", "-v", action="store_true", help="show each script's own output")
    ap.add_argument("--strict", action="store_true", help="(the default) exit 1 when a target is missed")
    ap.add_argument("--lenient", action="store_true", help="exit 0 when only targets are missed")
    ap.add_argument("--quick", action="store_true", help="pass --quick to the scripts that take it")
    ap.add_argument("--timeout", type=float, default=float(os.environ.get("BENCH_TIMEOUT", 3600)),
                    help="seconds per script (default 3600, or $BENCH_TIMEOUT)")
    ap.add_argument("--only", nargs="*", help="script names (without .py) to run")
    args = ap.parse_args()
    # piped (CI logs, `make bench | tee`), rich would assume 80 columns and wrap the figure names
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    err = Console(stderr=True, highlight=False)

    figures: list[Figure] = []
    failures: list[str] = []
    for script in scripts(args.only):
        err.print(f"[dim]running bench/{script.name} ...[/dim]")
        code, stdout, stderr, secs = run(script, args.timeout, args.quick)
        if args.verbose:
            console.rule(f"bench/{script.name} ({secs:.0f} s)")
            console.print(stdout.rstrip(), markup=False)
        found = parse(script.stem, stdout)
        figures.extend(found)
        if code is None:
            failures.append(f"bench/{script.name}: timed out after {args.timeout:.0f} s")
        elif code != 0 and found and any(f.ok is False for f in found):
            pass  # scripts that exit non-zero on a missed target (bench/sites_scaling.py): shown as missed
        elif code != 0:
            last = (stderr.strip().splitlines() or ["(no stderr)"])[-1]
            failures.append(f"bench/{script.name}: exit {code}: {last}")
        elif not found:
            failures.append(f"bench/{script.name}: printed no `BENCH name value unit [target op value]` line")

    table = Table(title="hn005-sim benchmarks")
    for col, justify in (("script", "left"), ("figure", "left"), ("measured", "right"), ("unit", "left"),
                         ("target", "right"), ("ok", "center")):
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for f in figures:
        ok = {True: "[green]yes[/green]", False: "[red]NO[/red]", None: "-"}[f.ok]
        target = f"{f.op} {fmt(f.target)}" if f.op and f.target is not None else "-"
        table.add_row(f.script, f.name, fmt(f.value), f.unit, target, ok)
    console.print(table)
    missed = [f for f in figures if f.ok is False]
    for line in failures:
        console.print(f"[red]{escape(line)}[/red]")
    if missed:
        console.print(f"{len(missed)} target(s) missed: " + ", ".join(f.name for f in missed))
    return 1 if failures or (missed and not args.lenient) else 0


if __name__ == "__main__":
    sys.exit(main())
