"""The `hn005-sim` command line."""

from __future__ import annotations

import importlib
import signal
import sys
from typing import Annotated

import typer
from typer.core import TyperGroup
from typer.models import CommandInfo

import hn005_sim
from hn005_sim.errors import InputError  # re-exported: `from hn005_sim.cli import InputError` still works
from hn005_sim.io import OutputError
from hn005_sim.scenario.errors import ConfigError

# name -> module defining the command's function (the name with - as _). A command's module (and what it
# imports: scipy, altair, simpy, ...) is imported only when that command runs or its help is shown, so
# `run` does not pay for `forecast`'s or `compare`'s imports (bench/startup.py measures the fixed cost).
COMMANDS = {
    "validate": "hn005_sim.commands.validate",
    "cohort": "hn005_sim.commands.cohort",
    "criteria": "hn005_sim.commands.criteria",
    "screen": "hn005_sim.commands.screen",
    "run": "hn005_sim.commands.run",
    "sites": "hn005_sim.commands.sites",
    "supply": "hn005_sim.commands.supply",
    "compare": "hn005_sim.commands.compare",
    "sweep": "hn005_sim.commands.sweep",
    "sensitivity": "hn005_sim.commands.sensitivity",
    "forecast": "hn005_sim.commands.forecast",
    "new-trial": "hn005_sim.commands.new_trial",
}


class LazyGroup(TyperGroup):
    """The command group, building each command from its module on first use."""

    _built: dict

    def list_commands(self, ctx):
        return [*COMMANDS, *(n for n in super().list_commands(ctx) if n not in COMMANDS)]

    def get_command(self, ctx, cmd_name):
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        built = self.__dict__.setdefault("_built", {})
        if cmd_name not in built:
            function = getattr(importlib.import_module(COMMANDS[cmd_name]), cmd_name.replace("-", "_"))
            built[cmd_name] = typer.main.get_command_from_info(
                CommandInfo(name=cmd_name, callback=function),
                pretty_exceptions_short=app.pretty_exceptions_short, rich_markup_mode=app.rich_markup_mode)
        return built[cmd_name]

app = typer.Typer(
    name="hn005-sim",
    help=(
        "Synthetic-cohort simulation and recruitment feasibility for first-line R/M nasopharyngeal carcinoma "
        "trials written as data (configs/<trial>/: ALTER-HN005, AK105-304; `new-trial` starts another)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=LazyGroup,
)



def _version(value: bool) -> None:
    if value:
        print(f"hn005-sim {hn005_sim.__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Synthetic-cohort simulation and recruitment feasibility for trials written as data (configs/<trial>/).

    Start with `hn005-sim validate scenarios/baseline.toml`, then `cohort`, `screen`, `run`.
    """




class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: staging removed, workers stopped, one line, exit 143."""


_TERMINATED: list[int] = []
"""Set when SIGTERM arrived (typer turns the exception into a bare exit code 130)."""


def _on_sigterm(signum, frame) -> None:
    _TERMINATED.append(signum)
    raise Terminated()


def _interrupted(exc: BaseException | None = None) -> int:
    from hn005_sim.io import committed

    done = committed()
    term = isinstance(exc, Terminated) or bool(_TERMINATED)
    what = "terminated" if term else "interrupted"
    if done:
        print(f"hn005-sim: {what}; the outputs in {done[-1]} were complete before it", file=sys.stderr)
    else:
        print(f"hn005-sim: {what}; no output was written", file=sys.stderr)
    return _exit(143 if term else 130)


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input is one line on stderr and exit code 2, never a traceback."""
    import threading

    from hn005_sim import io

    _TERMINATED.clear()
    io.forget_committed()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = app(args=argv, prog_name="hn005-sim", standalone_mode=False)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return _exit(2)
    except (InputError, OutputError) as exc:
        print(f"hn005-sim: {exc}", file=sys.stderr)
        return _exit(2)
    except KeyboardInterrupt as exc:
        return _interrupted(exc)
    except typer.Abort as exc:
        return _interrupted(exc.__cause__ or exc.__context__)
    except typer.Exit as exc:
        if exc.exit_code == 130:  # typer turns Ctrl-C into Exit(130)
            return _interrupted(exc.__cause__ or exc.__context__)
        return _exit(exc.exit_code)
    except typer.TyperException as exc:  # usage errors from the vendored click parser
        ctx = getattr(exc, "ctx", None)
        cmd = ctx.command_path if ctx is not None else "hn005-sim"
        print(f"{cmd}: {exc.format_message()}", file=sys.stderr)
        return _exit(getattr(exc, "exit_code", 2))
    code = result if isinstance(result, int) else 0
    if code == 130:  # Ctrl-C, which typer turns into exit code 130 without a word
        return _interrupted()
    return _exit(code)


def _exit(code: int) -> int:
    """The console script passes this to sys.exit; tests call main() and read it."""
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
