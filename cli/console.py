"""`skydeck console`: the operator console."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import ProfileOpt, context


def console(
    read_only: Annotated[bool, typer.Option("--read-only", help="Hide every action that changes anything.")] = False,
    profile: ProfileOpt = None,
) -> None:
    """Open the operator console (starts the local cloud when the local profile is used)."""
    ctx = context(profile)
    if ctx.profile.is_local:
        from backend.localcloud import control

        control.up(ctx.home)
    from tui.app import SkydeckApp

    SkydeckApp(ctx=ctx, read_only=read_only).run()
