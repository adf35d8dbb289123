"""`skydeck`'s root command: the command groups assembled, and the options every command shares."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cli import api, batch, console, data, doctor, executor, fleet, jobs, local, presets, profiles, sdsinf, stacks

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="skydeck: run Plenoxels training and SDS-Inf inference on AWS or the embedded local cloud.",
)
for group, name in (
    (local, "local"), (stacks, "stacks"), (jobs, "jobs"), (data, "data"), (batch, "batch"), (presets, "presets"),
    (profiles, "profiles"), (api, "api"), (executor, "executor"), (sdsinf, "sdsinf"), (fleet, "fleet"),
):  # fmt: skip
    app.add_typer(group.app, name=name)
app.command("doctor")(doctor.doctor)
app.command("console")(console.console)


def _print_version(value: bool) -> None:
    if value:
        from backend.interface import __version__

        print(f"skydeck {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    profile: Annotated[
        str | None,
        typer.Option("--profile", "-p", envvar="SKYDECK_PROFILE", help="Profile for every command (default: local)."),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option("--region", help="AWS region for an AWS profile (overrides the profile's; default $AWS_REGION)."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an internal error.")] = False,
    _version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    # Commands read the profile from SKYDECK_PROFILE unless given their own --profile.
    if profile:
        os.environ["SKYDECK_PROFILE"] = profile
    if region:
        os.environ["SKYDECK_REGION"] = region
    if debug:
        os.environ["SKYDECK_DEBUG"] = "1"
