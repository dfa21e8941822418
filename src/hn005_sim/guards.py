"""Resource guards: refuse up front a request that cannot fit in this machine's memory.

A command that builds a table of `n_rows` rows (`cohort --patients N`, `screen --patients N`) measures
the bytes one row takes on a small sample (`bytes_per_row`), multiplies by the working-memory factor of
the computation, and calls `check_memory`; if the estimate exceeds the memory available it stops with
one line and exit code 2 before any work:

    hn005-sim: cohort --patients 1000000000000 would need about 1.2 TB of memory; this machine has 23 GB
    available (at most about 19,000,000 patients fit)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

HEADROOM = 0.8
"""Share of the available memory a request may use; the rest is left to the OS and the interpreter."""

_CGROUP_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)


def available_memory_bytes() -> int:
    """Memory this process can use now: the least of MemAvailable, physical memory and a cgroup limit.

    MemAvailable (Linux /proc/meminfo) is what the kernel estimates can be allocated without swapping;
    where it is missing, physical memory (SC_PHYS_PAGES x SC_PAGE_SIZE) stands in. A container's cgroup
    limit can be lower than either.
    """
    candidates: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                candidates.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    with contextlib.suppress(ValueError, OSError, AttributeError):
        candidates.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    for limit_file in _CGROUP_LIMITS:
        try:
            text = limit_file.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            candidates.append(int(text))
    return min(candidates) if candidates else 2**63 - 1


def human_bytes(n: float) -> str:
    """1.23e12 -> '1.2 TB' (decimal units, as `free -h` and vendors quote memory)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB"):
        if abs(n) < 1000 or unit == "EB":
            return f"{n:.0f} {unit}" if unit in ("B", "kB") or n >= 10 else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def check_memory(
    n_rows: int,
    bytes_per_row: float,
    what: str,
    *,
    unit: str = "rows",
    available: int | None = None,
) -> int:
    """Refuse `what` (e.g. 'cohort --patients 1000000000000') if n_rows x bytes_per_row will not fit.

    `bytes_per_row` should include the computation's working memory (intermediate arrays), not only the
    final table. Returns the estimate in bytes when it fits; raises `hn005_sim.cli.InputError` (one line,
    exit 2) when it does not. `available` overrides the measured memory (tests).
    """
    need = float(n_rows) * float(bytes_per_row)
    have = available_memory_bytes() if available is None else available
    if need > HEADROOM * have:
        fit = int(HEADROOM * have / bytes_per_row) if bytes_per_row > 0 else 0
        raise _input_error(
            f"{what} would need about {human_bytes(need)} of memory; this machine has "
            f"{human_bytes(have)} available (at most about {_round_down(fit):,} {unit} fit)"
        )
    return int(need)


def measure_bytes_per_row(
    build: Callable[[int], Any], sample_rows: int = 2_000, factor: float = 3.0
) -> float:
    """Bytes per row of the table `build(sample_rows)` returns (a polars DataFrame), times `factor`.

    `factor` accounts for the working memory of the computation beyond the final table (arrays sampled
    before the frame is assembled, copies made by casts, the parquet writer's buffers). Measured at 10^6
    baseline candidates (peak resident growth / polars estimated_size): `cohort` 2.0, `screen` 2.4; 3 is
    the safe side of both.
    """
    frame = build(sample_rows)
    size = frame.estimated_size() if hasattr(frame, "estimated_size") else frame.nbytes
    return factor * size / max(sample_rows, 1)


def _round_down(n: int) -> int:
    """Two significant figures, rounded down: a limit to quote, not a promise."""
    if n < 100:
        return n
    digits = len(str(n)) - 2
    return n // 10**digits * 10**digits


def _input_error(message: str) -> Exception:
    # Imported here: cli imports the command modules, which import this module.
    from hn005_sim.cli import InputError

    return InputError(message)
