"""`hn005-sim validate SCENARIO`."""

from __future__ import annotations

import typer

from hn005_sim.commands.common import QuietOpt, ScenarioArg, console
from hn005_sim.scenario.load import display, load_scenario


def validate(scenario: ScenarioArg, quiet: QuietOpt = False) -> None:
    """Check a scenario file (or a planning file for `sites`) and everything it extends; report every
    problem with its path.

    Exit code 0 when the file is valid; 2 with one line per problem on stderr otherwise, e.g.
    `scenarios/x.toml: population.age.mean: must be a number, got "forty"`. Nothing is written.
    A file with `duration_months` at the top is a planning file and is checked as one.
    """
    from hn005_sim.recruitment import planning
    from hn005_sim.scenario.load import read_raw

    raw = read_raw(scenario)
    if planning.is_planning_file(raw.data):
        plan = planning.load_plan(scenario)
        files = ", ".join(display(f) for f in raw.files)
        regions = ", ".join(r.name for r in plan.regions)
        console(quiet).print(f"[green]ok[/green] {display(raw.path)}: planning file '{plan.name}' for "
                             f"`sites` (regions {regions}; {files})")
        raise typer.Exit(0)
    sc, raw = load_scenario(scenario)
    files = ", ".join(display(f) for f in raw.files)
    console(quiet).print(f"[green]ok[/green] {display(raw.path)}: scenario '{sc.name}' ({files})")
    raise typer.Exit(0)
