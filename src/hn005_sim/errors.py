"""Errors the command line turns into one line on stderr and exit code 2 (cli.main).

Here, not in cli.py, so that commands and library modules can raise them without importing the command
line (which imports every command): that was an import circle.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad command-line input found after parsing (one line, exit 2)."""
