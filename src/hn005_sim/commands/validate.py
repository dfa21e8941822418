"""`hn005-sim validate SCENARIO`."""

from __future__ import annotations

import typer

from hn005_sim.commands.common import QuietOpt, ScenarioArg, console
from hn005_sim.scenario.load import display, load_scenario


def validate(scenario: ScenarioArg, quiet: QuietOpt = False) -> None:
    """Check a scenario file and everything it extends; report every problem with its path.

    Exit code 0 when the scenario is valid; 2 with one line per problem on stderr otherwise, e.g.
    `scenarios/x.toml: population.age.mean: must be a number, got "forty"`. Nothing is written.
    """
    sc, raw = load_scenario(scenario)
    files = ", ".join(display(f) for f in raw.files)
    console(quiet).print(f"[green]ok[/green] {display(raw.path)}: scenario '{sc.name}' ({files})")
    raise typer.Exit(0)
