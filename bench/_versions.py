"""Timing another version of the tool beside this one (helper for bench/startup.py and bench/scaling.py).

`--before SRC` names a folder holding another version's `hn005_sim` package (e.g. `git archive <commit>
src | tar -x -C /tmp/old` gives /tmp/old/src); its commands run with SRC first on PYTHONPATH.
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path


def child_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def checked_source(src: Path | None, script: str) -> Path | None:
    """`--before SRC` resolved, or one line and exit status 2 when SRC holds no `hn005_sim` package."""
    if src is None:
        return None
    src = src.resolve()
    if not (src / "hn005_sim" / "__init__.py").is_file():
        print(f"{script}: --before {src}: expected a folder holding hn005_sim/__init__.py", file=sys.stderr)
        raise SystemExit(2)
    return src


def env_for(src: Path | None) -> dict[str, str] | None:
    """The environment that imports the version in `src` (None: this one, the inherited environment)."""
    if src is None:
        return None
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
