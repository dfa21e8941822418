"""The console script `hn005-sim`: Ctrl-C or SIGTERM while the tool is still starting is one line too.

`hn005_sim.cli` imports numpy, polars, scipy and the commands, which takes a moment; a Ctrl-C then used
to print a KeyboardInterrupt traceback from the import machinery. This module imports nothing heavy
before it can catch it.
"""

from __future__ import annotations

import signal
import sys


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


if __name__ == "__main__":
    sys.exit(main())
