"""`skydeck executor`: serve the jobs queue from this machine (what GPU hosts run)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cli.common import ProfileOpt, backend, err

app = typer.Typer(no_args_is_help=True, help="The job executor (what GPU hosts run).")


@app.command("run")
def executor_run(
    once: Annotated[bool, typer.Option("--once", help="Handle at most one message, then exit.")] = False,
    engine: Annotated[str, typer.Option(help="Engine for every job (default: each job's own).")] = "auto",
    wait: Annotated[int, typer.Option(min=1, max=20, help="SQS long-poll seconds.")] = 20,
    profile: ProfileOpt = None,
) -> None:
    """Serve the jobs queue from this machine."""
    import logging

    door = backend(profile)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)

    def waiting(why: str) -> None:
        err.print(f"waiting for the stacks: {why} (deploy it with: skydeck stacks deploy infra); serving starts then")

    n = door.serve_jobs(
        engine,
        wait,
        once,
        on_waiting=waiting,
        on_serving=lambda: err.print("infra stack is deployed: serving its jobs queue"),
    )
    err.print(f"executor stopped after {n} job(s)")
