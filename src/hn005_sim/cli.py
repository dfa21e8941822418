"""The `hn005-sim` command line."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

import hn005_sim
from hn005_sim.commands.cohort import cohort
from hn005_sim.commands.compare import compare
from hn005_sim.commands.criteria import criteria
from hn005_sim.commands.run import run
from hn005_sim.commands.screen import screen
from hn005_sim.commands.sites import sites
from hn005_sim.commands.supply import supply
from hn005_sim.commands.sweep import sweep
from hn005_sim.commands.validate import validate
from hn005_sim.errors import InputError  # re-exported: `from hn005_sim.cli import InputError` still works
from hn005_sim.io import OutputError
from hn005_sim.scenario.errors import ConfigError

app = typer.Typer(
    name="hn005-sim",
    help=(
        "Synthetic-cohort simulation and recruitment feasibility for ALTER-HN005 "
        "(anlotinib + penpulimab + capecitabine, first-line R/M nasopharyngeal carcinoma)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
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
    """Synthetic-cohort simulation and recruitment feasibility for ALTER-HN005.

    Start with `hn005-sim validate scenarios/baseline.toml`, then `cohort`, `screen`, `run`.
    """


app.command("validate")(validate)
app.command("cohort")(cohort)
app.command("criteria")(criteria)
app.command("screen")(screen)
app.command("run")(run)
app.command("sites")(sites)
app.command("supply")(supply)
app.command("compare")(compare)
app.command("sweep")(sweep)


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input is one line on stderr and exit code 2, never a traceback."""
    try:
        result = app(args=argv, prog_name="hn005-sim", standalone_mode=False)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return _exit(2)
    except (InputError, OutputError) as exc:
        print(f"hn005-sim: {exc}", file=sys.stderr)
        return _exit(2)
    except (KeyboardInterrupt, typer.Abort):
        print("hn005-sim: interrupted; no output was written", file=sys.stderr)
        return _exit(130)
    except typer.Exit as exc:
        if exc.exit_code == 130:  # typer turns Ctrl-C into Exit(130)
            print("hn005-sim: interrupted; no output was written", file=sys.stderr)
        return _exit(exc.exit_code)
    except typer.TyperException as exc:  # usage errors from the vendored click parser
        ctx = getattr(exc, "ctx", None)
        cmd = ctx.command_path if ctx is not None else "hn005-sim"
        print(f"{cmd}: {exc.format_message()}", file=sys.stderr)
        return _exit(getattr(exc, "exit_code", 2))
    code = result if isinstance(result, int) else 0
    if code == 130:  # Ctrl-C, which typer turns into exit code 130 without a word
        print("hn005-sim: interrupted; no output was written", file=sys.stderr)
    return _exit(code)


def _exit(code: int) -> int:
    """The console script passes this to sys.exit; tests call main() and read it."""
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
