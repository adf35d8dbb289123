"""`skydeck executor`: serve the jobs queue from this machine (what GPU hosts run)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cli.common import ProfileOpt, context, err

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

    from gpu_executor.engines import builtin_engines
    from gpu_executor.executor import Executor, ExecutorConfig, private_workdir

    ctx = context(profile)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)

    def waiting(why: str) -> None:
        err.print(f"waiting for the stacks: {why} (deploy it with: skydeck stacks deploy infra); serving starts then")

    ctx.stacks.wait_outputs("infra", waiting)
    # scratch under the home (0700), never a folder every home on the machine shares
    config = ExecutorConfig(engine=engine, wait_s=wait, workdir=private_workdir(ctx.home.cache_dir / "executor"))
    executor = Executor(
        ctx.jobs.store, builtin_engines(), config, storage=ctx.scenes.storage(config.workdir / "scenes")
    )
    executor.install_signal_handlers()
    err.print("infra stack is deployed: serving its jobs queue")
    n = executor.run(once=once)
    err.print(f"executor stopped after {n} job(s)")
