"""Resource guards: refuse up front a request that cannot fit in this machine's memory.

A command that builds a table of `n_rows` rows (`cohort --patients N`, `screen --patients N`) measures
the bytes one row takes on a small sample (`bytes_per_row`), multiplies by the working-memory factor of
the computation, and calls `check_memory`; if the estimate exceeds the memory available it stops with
one line and exit code 2 before any work:

    hn005-sim: cohort --patients 1000000000000 would need about 1.2 TB of memory; this machine has 23 GB
    available (at most about 19,000,000 patients fit)

`run` and `sweep` call `check_run_memory` before simulating: the Monte Carlo aggregate keeps histograms
whose size grows with the enrolment target and one figure per replicate (`run_memory_bytes`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

MAX_REPLICATES = 1_000_000
"""Most Monte Carlo replicates of any command (`--replicates`, `--scenario-replicates`,
`--search-replicates`), and most replicate runs of a sweep (grid points x --replicates). The shipped
defaults are 200; the speed benchmarks run 10,000."""

MAX_JOBS = 256
"""Most worker processes (`--jobs`); each costs about PROCESS_BASE_BYTES of memory."""


def check_count(what: str, value: int, bound: int, why: str = "") -> None:
    """Refuse `what` = value above `bound`, before any work: one line naming the key and the bound."""
    if value > bound:
        raise _input_error(f"{what} = {value:,} is more than the {bound:,} allowed{why}")


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
    address_space = _address_space_left()
    if address_space is not None:
        candidates.append(address_space)
    for limit_file in _CGROUP_LIMITS:
        try:
            text = limit_file.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            candidates.append(int(text))
    return min(candidates) if candidates else 2**63 - 1


def _address_space_left() -> int | None:
    """Bytes of address space left under `ulimit -v` (RLIMIT_AS): the soft limit less what this process
    has mapped already (VmSize); None when there is no limit."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError, AttributeError):
        return None
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    used = 0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                used = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    return max(int(soft) - used, 0)


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


WORD = 8
"""Bytes of one int64 or float64 cell."""

REPLICATE_WORKING_FACTOR = 6
"""Copies of the per-replicate column (time to target, 8 bytes) alive at once at the peak: the column,
the months view, the sorted copy for quantiles, and the replicate / months columns and their rounded
copy when time_to_target.csv is built (montecarlo.Aggregate.summary, .time_to_target)."""

LEVEL_WORKING_ROWS = 2
"""Temporary rows of (target + 1) cells while a histogram quantile is taken (values and cumsum in
montecarlo.hist_quantile)."""

PROCESS_BASE_BYTES = 250_000_000
"""Resident memory of one interpreter with numpy, polars, scipy and simpy imported and a scenario
compiled: about 200 MiB measured with `ps` on the baseline run (main process and each worker)."""


def run_memory_bytes(*, target: int, months: int, sites: int, replicates: int, processes: int = 1) -> int:
    """Peak bytes of a Monte Carlo run, estimated before any allocation.

    The aggregate (hn005_sim.montecarlo.Aggregate) allocates up front, in 8-byte cells:
    - (months + 1) x (target + 1) for enrolled-by-month, (target + 1) for enrolled-by-deadline, and
      sites x (target + 1) for enrolled-per-site: histograms over every possible enrolled count, exact
      quantiles whatever the replicates, but proportional to the target;
    - one time to target per replicate (the time_to_target.csv contract).
    Working copies (REPLICATE_WORKING_FACTOR, LEVEL_WORKING_ROWS) and the interpreter of the main
    process and each local worker (PROCESS_BASE_BYTES) come on top.
    """
    levels = int(target) + 1
    kept_levels = WORD * levels * (int(months) + 1 + 1 + int(sites))
    working_levels = WORD * levels * LEVEL_WORKING_ROWS
    per_replicate = WORD * REPLICATE_WORKING_FACTOR * int(replicates)
    return kept_levels + working_levels + per_replicate + PROCESS_BASE_BYTES * max(int(processes), 1)


def check_run_memory(
    *,
    target: int,
    months: int,
    sites: int,
    replicates: int,
    processes: int = 1,
    what: str,
    available: int | None = None,
) -> int:
    """Refuse a run whose aggregate cannot fit (e.g. trial.target_enrolled = 10^12 or 10^12 replicates).

    Returns the estimate in bytes when it fits; raises `hn005_sim.cli.InputError` (one line, exit 2)
    naming the figure that dominates (target or replicates) and the largest value of it that fits.
    """
    args = {"target": target, "months": months, "sites": sites, "replicates": replicates,
            "processes": processes}
    need = run_memory_bytes(**args)
    have = available_memory_bytes() if available is None else available
    budget = HEADROOM * have
    if need <= budget:
        return need
    by_target = run_memory_bytes(**{**args, "replicates": 0, "processes": 1})
    by_replicates = run_memory_bytes(**{**args, "target": 0, "processes": 1})
    by_processes = PROCESS_BASE_BYTES * max(int(processes), 1)
    if by_processes > max(by_target, by_replicates):
        fit = int((budget - run_memory_bytes(**{**args, "processes": 1})) / PROCESS_BASE_BYTES)  # main + fit
        limit = (f"{max(int(processes), 1):,} processes of about {human_bytes(PROCESS_BASE_BYTES)} each; "
                 f"at most about {max(fit, 0):,} workers (--jobs) fit")
    elif by_target >= by_replicates:
        per_level = (run_memory_bytes(**{**args, "target": 1, "replicates": 0})
                     - run_memory_bytes(**{**args, "target": 0, "replicates": 0}))
        fit = int((budget - run_memory_bytes(**{**args, "target": 0})) / per_level)
        limit = f"trial.target_enrolled up to about {_round_down(max(fit, 0)):,} fits"
    else:
        per_replicate = WORD * REPLICATE_WORKING_FACTOR
        fit = int((budget - run_memory_bytes(**{**args, "replicates": 0})) / per_replicate)
        limit = f"at most about {_round_down(max(fit, 0)):,} replicates fit"
    raise _input_error(
        f"{what} would need about {human_bytes(need)} of memory; this machine has "
        f"{human_bytes(have)} available ({limit})"
    )


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
