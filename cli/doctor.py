"""`skydeck doctor`: check a profile and say what to fix."""

from __future__ import annotations

import typer

from backend.interface import markup_safe
from cli.common import JsonOpt, ProfileOpt, backend, out, print_json


def doctor(json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Check a profile: credentials, region, reachability, stacks. Says what to fix."""
    checks = backend(profile).doctor()
    if json_out:
        print_json([c.to_dict() for c in checks])
    else:
        for c in checks:
            mark = "[green]ok[/]  " if c.ok else "[red]FAIL[/]"
            out.print(f"{mark} {c.name:<22} {markup_safe(c.detail)}", markup=True)
            if not c.ok and c.fix:
                out.print(f"       fix: {c.fix}")
    if not all(c.ok for c in checks):
        raise typer.Exit(1)
