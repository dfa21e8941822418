"""Output directories written atomically, and the run manifest.

Files are written into a hidden staging folder beside DIR (`.DIR.partial-PID`); only when the command
has finished is that folder swapped in for DIR whole (`_swap_in`), with Ctrl-C and SIGTERM deferred
during the swap, so at every instant DIR holds wholly the old outputs or wholly the new, never a mix.
An error, Ctrl-C or SIGTERM before the swap removes the staging folder. A non-empty DIR that holds no
manifest.json of ours is refused unless --force; staging folders of dead processes are removed.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import datetime as dt
import errno
import json
import os
import platform
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

import hn005_sim

PACKAGES = ("numpy", "scipy", "simpy", "polars", "pydantic", "altair", "vl-convert-python", "typer")


class OutputDir:
    """A staging folder whose files land in `final` on commit."""

    def __init__(self, final: Path, staging: Path):
        self.final = final
        self.path = staging
        self.started = time.perf_counter()

    def file(self, name: str) -> Path:
        p = self.path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_json(self, name: str, obj: Any) -> Path:
        p = self.file(name)
        p.write_text(json.dumps(obj, indent=2, default=_json_default, allow_nan=False) + "\n")
        return p

    def write_csv(self, name: str, frame: pl.DataFrame) -> Path:
        p = self.file(name)
        frame.write_csv(p)
        return p

    def write_rows(self, name: str, header: list[str], rows: list[list[Any]]) -> Path:
        p = self.file(name)
        with p.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)
        return p

    def write_parquet(self, name: str, frame: pl.DataFrame) -> Path:
        p = self.file(name)
        frame.write_parquet(p)
        return p

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def _json_default(o: Any) -> Any:
    if isinstance(o, dt.date | dt.datetime):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


class OutputError(Exception):
    """The output folder cannot be written (one line, exit 2)."""


def _cannot_write(final: Path, exc: OSError) -> OutputError:
    return OutputError(f"--out {final}: cannot write there ({exc.strerror or exc}); nothing was written")


MANIFEST = "manifest.json"
STAGING_TAG = ".partial-"
"""Staging folders are `.DIR.partial-PID` beside DIR (or `.hn005.partial-PID` inside a mount point)."""

_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}
"""Errors of a write that mean the disk refused it (reported as one line, staging removed)."""

_committed: list[Path] = []
"""Output folders this process has finished writing (the interrupt message says so)."""


def committed() -> list[Path]:
    return list(_committed)


def forget_committed() -> None:
    _committed.clear()


def is_ours(folder: Path) -> bool:
    """Whether `folder` holds the manifest.json of an hn005-sim command."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and data.get("tool") == "hn005-sim"


def foreign_folder(final: Path) -> bool:
    """A non-empty folder without our manifest.json: replacing it needs --force."""
    try:
        return final.is_dir() and any(final.iterdir()) and not is_ours(final)
    except OSError:
        return False


def refuse_foreign(final: Path, force: bool) -> None:
    if not force and foreign_folder(final):
        raise OutputError(f"--out {final}: the folder is not empty and holds no manifest.json of hn005-sim; "
                          "its contents would be replaced (give --force to replace them)")


def _is_mount(path: Path) -> bool:
    try:
        return path.is_dir() and (os.path.ismount(path) or path.stat().st_dev != path.parent.stat().st_dev)
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(final: Path) -> list[Path]:
    """Remove staging folders of `final` left by processes that no longer exist (kill -9, power loss)."""
    removed = []
    places = [(final.parent, f".{final.name}{STAGING_TAG}")]
    if final.is_dir():
        places.append((final, f".hn005{STAGING_TAG}"))
    for folder, prefix in places:
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            tail = entry.name[len(prefix):] if entry.name.startswith(prefix) else ""
            pid = tail.split("-")[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while the block runs, then deliver any that came (main thread only).

    Python runs signal handlers in the main thread between bytecodes, so swapping the handlers for a
    recorder is enough: a Ctrl-C or SIGTERM during the swap of an output folder takes effect after it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    sigs = [signal.SIGINT, signal.SIGTERM]
    previous = {sig: signal.signal(sig, lambda signum, frame: pending.append(signum)) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(pending):
            signal.raise_signal(sig)


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where not supported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err))


def _swap_in(staging: Path, final: Path) -> None:
    """Replace `final` by `staging` whole: at every instant `final` is the old folder or the new one.

    The new folder was built beside the old (same parent, same file system). Where the kernel can swap
    two paths in one step (renameat2 RENAME_EXCHANGE), it does; elsewhere the old folder is renamed
    aside and the new one renamed in (two renames, a moment with no folder, never a mixed one). The old
    folder, now at the staging path, is removed.
    """
    if not final.exists():
        os.rename(staging, final)
        return
    if not _exchange(staging, final):
        aside = staging.with_name(staging.name + "-old")
        os.rename(final, aside)
        try:
            os.rename(staging, final)
        except OSError:
            os.rename(aside, final)
            raise
        os.rename(aside, staging)
    shutil.rmtree(staging, ignore_errors=True)


def _swap_inside_mount(staging: Path, final: Path) -> None:
    """`final` is a mount point (it cannot be renamed): move its old entries aside inside it, the new
    entries in, then remove the old (signals are deferred throughout; a kill -9 in between can leave
    both, which the next run removes)."""
    aside = staging.with_name(staging.name + "-old")
    aside.mkdir()
    for entry in list(final.iterdir()):
        if entry not in (staging, aside):
            os.rename(entry, aside / entry.name)
    for entry in list(staging.iterdir()):
        os.rename(entry, final / entry.name)
    shutil.rmtree(aside, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


def _write_refused(exc: BaseException) -> OSError | None:
    """The disk refused a write (full, quota, read-only): as an OSError to report, else None."""
    if isinstance(exc, OSError):
        return exc if exc.errno in _WRITE_ERRNOS else None
    if not type(exc).__module__.startswith("polars"):
        return None
    text = str(exc)
    for code in _WRITE_ERRNOS:
        if os.strerror(code) in text:
            return OSError(code, os.strerror(code))
    return None


def _force_from_context() -> bool:
    """`--force` of the running command (commands.common.ForceOpt stores it in the click context)."""
    try:
        import click

        ctx = click.get_current_context(silent=True)
    except ImportError:  # pragma: no cover - click comes with typer
        return False
    return bool(ctx is not None and ctx.find_root().meta.get(FORCE_KEY, False))


FORCE_KEY = "hn005_sim.force"


@contextmanager
def output_dir(final: str | Path, force: bool | None = None) -> Iterator[OutputDir]:
    """Build the outputs in a staging folder beside `final`, then swap it in whole.

    A non-empty `final` without our manifest.json is refused unless `force` (default: the running
    command's --force). Staging folders of dead processes are removed first. An error, Ctrl-C or
    SIGTERM before the swap removes the staging folder and leaves `final` as it was.
    """
    final = Path(final)
    force = _force_from_context() if force is None else force
    try:
        if final.is_symlink():  # replace the folder the link points to, and keep the link
            final = final.resolve(strict=True)
        if final.exists() and not final.is_dir():
            raise NotADirectoryError(20, "exists and is not a folder")
        refuse_foreign(final, force)
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(final)
        inside = _is_mount(final)
        staging = (final / f".hn005{STAGING_TAG}{os.getpid()}" if inside
                   else final.parent / f".{final.name}{STAGING_TAG}{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    except OSError as exc:
        raise _cannot_write(final, exc) from None
    out = OutputDir(final, staging)
    try:
        yield out
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        refused = _write_refused(exc)
        if refused is not None:
            raise _cannot_write(final, refused) from None
        raise
    try:
        with signals_deferred():
            try:
                (_swap_inside_mount if inside else _swap_in)(staging, final)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            _committed.append(final)
    except OSError as exc:
        raise _cannot_write(final, exc) from None


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def manifest(
    command: str,
    *,
    scenario_path: str | Path | None = None,
    scenario_sha256: str | None = None,
    resolved_config: dict[str, Any] | None = None,
    seed: int | None = None,
    replicates: int | None = None,
    wall_time_s: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What produced an output folder; same inputs give the same manifest except wall time."""
    return {
        "tool": "hn005-sim",
        "tool_version": hn005_sim.__version__,
        "command": command,
        "argv": sys.argv[1:],
        "scenario_path": str(scenario_path) if scenario_path is not None else None,
        "scenario_sha256": scenario_sha256,
        "seed": seed,
        "replicates": replicates,
        "wall_time_s": None if wall_time_s is None else round(wall_time_s, 3),
        "package_versions": package_versions(),
        "resolved_config": resolved_config,
        **(extra or {}),
    }
