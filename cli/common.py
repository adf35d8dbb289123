"""What every command group shares: the two consoles, the common options, JSON output, confirmation."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from backend.core.context import Context
from backend.core.errors import ConfigError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

ProfileOpt = Annotated[
    str | None, typer.Option("--profile", "-p", envvar="SKYDECK_PROFILE", help="Profile to use (default: local).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def context(profile: str | None) -> Context:
    return Context.create(profile)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfigError(f"{question} - refusing without a terminal to ask on; pass --yes to confirm")
    if not typer.confirm(question, default=False):
        raise typer.Exit(1)
