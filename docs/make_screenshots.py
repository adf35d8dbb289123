"""Regenerate the README's console screenshots against a throwaway local cloud.

.venv/bin/python docs/make_screenshots.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from backend.context import Context
from backend.core.paths import Home
from backend.interface import Backend
from backend.localcloud import control
from lambda_src.jobs.schema import parse_job
from tui.app import SkydeckApp

OUT = Path(__file__).parent / "img"


async def shoot(ctx: Context, mode: str, name: str, data: str | None = None) -> None:
    from textual.widgets import Input

    app = SkydeckApp(backend=Backend(ctx), mode=mode)
    async with app.run_test(size=(120, 40)) as pilot:
        if data:  # launch a run from the screen, as an operator would
            await pilot.pause(0.5)
            app.screen.query_one("#sds-data", Input).value = data
            await pilot.press("ctrl+r")
        for _ in range(4):  # a few refreshes so the sparklines have a history
            await pilot.pause(1.1)
            await app.workers.wait_for_complete()
        app.save_screenshot(filename=f"{name}.svg", path=str(OUT))


def main() -> None:
    home = Home(Path(tempfile.mkdtemp(prefix="skydeck-shots-")))
    control.up(home, workers=0)  # no executor: nothing but the console competes for the CPU
    try:
        ctx = Context.create(None, home)
        for short in ("infra", "api"):
            ctx.stacks.deploy(short)
        for scene, lr in (("lego", 30), ("drums", 10), ("chair", 30), ("ficus", 3), ("hotdog", 30)):
            ctx.jobs.submit(parse_job({"scene": scene, "config": {"lr_sigma": lr}}))
        job = ctx.jobs.list(limit=1).items[0]
        ctx.jobs.cancel(job.job_id)
        from backend.sdsinf.data import generate
        from backend.sdsinf.runs import SdsinfRuns

        ctx.stacks.deploy("sdsinf")
        generate(home.root / "gc", 1024, 120, 3000, seed=0)
        SdsinfRuns(ctx).upload(home.root / "gc", 1024, 120, "radixnet-1024n-120l")
        asyncio.run(shoot(ctx, "sdsinf", "sdsinf", data="radixnet-1024n-120l"))
        asyncio.run(shoot(ctx, "monitor", "monitor"))
        asyncio.run(shoot(ctx, "stacks", "stacks"))
    finally:
        control.down(home)


if __name__ == "__main__":
    main()
