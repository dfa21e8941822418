"""The console script `hn005-sim`: Ctrl-C or SIGTERM while the tool is still starting is one line too.

`hn005_sim.cli` imports numpy, polars, scipy and the commands, which takes a moment; a Ctrl-C then used
to print a KeyboardInterrupt traceback from the import machinery. This module imports nothing heavy
before it can catch it.

`console` (the script's entry point) then ends the process without tearing the interpreter down:
Python's own exit frees every module and object one by one, which after `run` (numpy, polars,
pyarrow, scipy, pydantic, simpy loaded) took 0.2-0.7 s of the command's wall time, doing nothing
a user could see (issue 16, phase 3; docs/scale.md).
"""

from __future__ import annotations

import signal
import sys
from typing import NoReturn


def _on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        from hn005_sim.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("hn005-sim: interrupted while starting; no output was written\n")
        return 130
    return cli_main()


def exit_now(code: int) -> NoReturn:
    """End the process with exit status `code`, doing what Python's exit does that anyone could see:
    threading's exit hooks (concurrent.futures stops its pools) and the join of non-daemon threads,
    the atexit handlers (multiprocessing's children, temporary folders, a coverage collector), and
    the flush of stdout and stderr; then `os._exit`, which skips the interpreter's teardown (freeing
    each module and object). Where these hooks are not there to call (another Python), or flushing
    fails (stdout closed by `| head`), it leaves by `sys.exit` and Python's exit does the rest as
    before."""
    import atexit
    import os
    import threading

    shutdown = getattr(threading, "_shutdown", None)  # what the interpreter's exit calls first
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if shutdown is None or run_exitfuncs is None or threading.current_thread() is not threading.main_thread():
        sys.exit(code)
    shutdown()  # idempotent: the interpreter's exit calls it again if we leave by sys.exit below
    run_exitfuncs()  # runs each handler once and clears them
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        sys.exit(code)  # Python reports the failed flush (and exits 120 for a status of 0), as before
    os._exit(code)


def console() -> NoReturn:
    """The console script `hn005-sim` (pyproject [project.scripts]): `main()`, then `exit_now`."""
    exit_now(main())


if __name__ == "__main__":
    console()
