"""`skydeck console`: the operator console."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import ProfileOpt, backend, err

SCREENS = ("stacks", "jobs", "monitor", "sdsinf", "logs")


def console(
    read_only: Annotated[bool, typer.Option("--read-only", help="Hide every action that changes anything.")] = False,
    screen: Annotated[
        str | None, typer.Option("--screen", help=f"Open on this screen: {' | '.join(SCREENS)} (default: jobs).")
    ] = None,
    stop_cloud: Annotated[
        bool, typer.Option("--stop-cloud", help="Stop the local cloud when the console quits.")
    ] = False,
    profile: ProfileOpt = None,
) -> None:
    """Open the operator console (starts the local cloud when the local profile is used)."""
    from backend.interface import ConfigError

    if screen is not None and screen not in SCREENS:
        raise ConfigError(f"--screen {screen!r}: choose one of {', '.join(SCREENS)}")
    door = backend(profile)
    door.ensure_local_cloud()
    from tui.app import SkydeckApp

    SkydeckApp(backend=door, read_only=read_only, mode=screen).run()
    if not door.profile.is_local:
        return
    if stop_cloud:
        door.stop_local_cloud()
        err.print("local cloud stopped (its state is kept for the next start)")
    else:
        err.print(
            "the local cloud keeps running (executors go on training); stop it with: "
            f"{_this_command()} local down"
        )


def _this_command() -> str:
    """How to run skydeck from the shell the console was started in: `skydeck` where that finds this
    installation, else its path (after `make console`, the project's .venv is not active)."""
    import os
    import shutil
    import sys

    here = os.path.join(os.path.dirname(sys.executable), "skydeck")
    found = shutil.which("skydeck")
    if found and os.path.realpath(found) == os.path.realpath(here):
        return "skydeck"
    return os.path.relpath(here) if os.path.exists(here) else f"{sys.executable} -m cli"
