"""The README's console tour, driven headless at one terminal size (80x24 by default) against a fresh
local cloud with its executor: each step's keys, how long until its result showed, and a screenshot
of the screen then (SVG, in --out).

    .venv/bin/python benchmarks/console_tour.py [--size 80x24] [--out tour]

The steps: the console opens on Stacks with nothing deployed; `a` deploys all four stacks; `2`
Jobs; `m` makes the synthetic scene and pushes it; `n` composes a job on it (the CPU preset) and
`ctrl+s` submits it; the executor trains it to SUCCEEDED; `enter` opens it and `f` fetches its
results; `4` SDS-Inf, `u` generates and uploads a network, `ctrl+r` runs the first preset on it;
`5` Logs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="80x24", help="COLUMNSxROWS")
    parser.add_argument("--out", type=Path, default=Path("tour"), help="where the screenshots go")
    args = parser.parse_args()
    width, height = (int(x) for x in args.size.split("x"))
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    from backend.core.paths import Home
    from backend.localcloud import control

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SKYDECK_HOME"] = tmp
        home = Home.from_env()
        control.up(home)  # with its executor, as `make console` starts it
        cwd = Path.cwd()
        os.chdir(tmp)  # the console writes scenes, data and fetched results under the working directory
        try:
            steps = asyncio.run(tour(home, out, (width, height)))
        finally:
            os.chdir(cwd)
            control.down(home)
    print(f"\nthe console tour at {width}x{height}")
    print(f"{'step':<58}{'seconds':>9}")
    for name, seconds in steps:
        print(f"{name:<58}{seconds:>9.1f}")
    print(f"{'in all':<58}{sum(s for _, s in steps):>9.1f}")
    return 0


async def tour(home, out: Path, size: tuple[int, int]) -> list[tuple[str, float]]:  # noqa: ANN001
    from backend.context import Context
    from backend.core.errors import SkydeckError
    from backend.interface import Backend
    from tui.app import SkydeckApp

    ctx = Context.create(None, home)
    app = SkydeckApp(backend=Backend(ctx))
    steps: list[tuple[str, float]] = []

    def deployed() -> bool:
        return all(ctx.stacks.describe(n).status.endswith("_COMPLETE") and "DELETE" not in
                   ctx.stacks.describe(n).status for n in ("infra", "api", "fleet", "sdsinf"))  # fmt: skip

    def scene_pushed() -> bool:
        try:
            ctx.scenes.check_exists("demo")
        except SkydeckError:
            return False
        return True

    def jobs(state: str | None = None) -> list[Any]:
        items = [j for j in ctx.jobs.list(limit=20).items if j.scene == "demo"]
        return [j for j in items if state is None or j.state == state]

    def uploaded() -> bool:
        listing = ctx.clients.client("s3").list_objects_v2(
            Bucket=ctx.stacks.outputs("sdsinf")["WeightsBucket"], Prefix="radixnet-1024n-120l/network.npz"
        )
        return bool(listing.get("Contents"))

    def screen_is(name: str) -> Callable[[], bool]:
        return lambda: type(app.screen).__name__ == name

    async with app.run_test(size=size) as pilot:

        async def step(name: str, keys: list[str], done: Callable[[], bool], timeout_s: float) -> None:
            started = time.perf_counter()
            for key in keys:
                await pilot.press(key)
                await pilot.pause(0.05)
            while not done():
                if time.perf_counter() - started > timeout_s:
                    app.save_screenshot(f"{len(steps) + 1:02d}-timed-out.svg", str(out))
                    raise RuntimeError(f"step {name!r} did not finish within {timeout_s:.0f} s")
                await pilot.pause(0.2)
            steps.append((name, time.perf_counter() - started))
            await pilot.pause(0.3)
            app.save_screenshot(f"{len(steps):02d}.svg", str(out))

        await step("opens on Stacks (nothing deployed)", [], screen_is("StacksScreen"), 60)
        await step("a, y: deploy all four stacks", ["a", "y"], deployed, 900)
        await step("2: Jobs", ["2"], screen_is("JobsScreen"), 30)
        await step("m, ctrl+s: make the scene and push it", ["m", "ctrl+s"], scene_pushed, 300)
        # the composer offers the scene just pushed: nothing to type
        await step("n, ctrl+s: compose a job on it and submit it", ["n", "ctrl+s"], lambda: bool(jobs()), 60)
        await step("(the executor trains it)", [], lambda: bool(jobs("SUCCEEDED") or jobs("FAILED")), 1800)
        job = jobs()[0]
        await step("r, enter: open the job", ["r", "enter"], screen_is("JobDetailScreen"), 30)
        fetched = Path(os.getcwd()) / "results" / job.job_id
        await step("f, ctrl+s: fetch its results", ["f", "ctrl+s"], lambda: (fetched / "ckpt.npz").exists(), 120)
        await step("escape, 4: SDS-Inf", ["escape", "4"], screen_is("SdsinfScreen"), 30)
        await step("u, ctrl+s: generate a network and upload it", ["u", "ctrl+s"], uploaded, 600)
        runs_before = len(app.screen.runs)  # type: ignore[attr-defined]
        await step("ctrl+r: run the first preset on it", ["ctrl+r"],
                   lambda: len(app.screen.runs) > runs_before, 900)  # type: ignore[attr-defined]  # fmt: skip
        await step("5: Logs", ["5"], screen_is("LogsScreen"), 30)
    if job.state != "SUCCEEDED":
        print(f"the job ended {job.state}", file=sys.stderr)
    return steps


if __name__ == "__main__":
    sys.exit(main())
