"""`skydeck`'s root command: the command groups assembled, and the options every command shares."""

from __future__ import annotations

import importlib
import os
from typing import Annotated

import typer

# the command groups, in the order --help lists them, each the module in cli/ that holds its typer app
GROUPS = ("local", "stacks", "jobs", "data", "batch", "presets", "profiles", "api", "executor", "sdsinf", "fleet")
COMMANDS = ("doctor", "console")  # commands of the root itself, each a function of the same name in cli/<name>.py


def make_app(only: str | None = None) -> typer.Typer:
    """The root command with every group, or with the one group or command a command line names: a command
    then imports and builds only its own (a fifth of `skydeck jobs list`'s time went on building the rest)."""
    app = typer.Typer(
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
        help="skydeck: run Plenoxels training and SDS-Inf inference on AWS or the embedded local cloud.",
    )
    for name in GROUPS:
        if only is None or only == name:
            app.add_typer(importlib.import_module(f"cli.{name}").app, name=name)
    for name in COMMANDS:
        if only is None or only == name:
            app.command(name)(getattr(importlib.import_module(f"cli.{name}"), name))
    app.callback()(root)
    return app


def _print_version(value: bool) -> None:
    if value:
        from backend.interface import __version__

        print(f"skydeck {__version__}")
        raise typer.Exit(0)


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
