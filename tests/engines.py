"""An engine for testing the executor's lifecycle: it steps, reports progress, and fails on request."""

from __future__ import annotations

import time
from typing import Any

from gpu_executor.engines import EngineError, RunContext


class ScriptedEngine:
    name = "scripted"

    def __init__(self, steps: int = 3, step_s: float = 0.0, fail: str | None = None, crash: bool = False) -> None:
        self.steps = steps
        self.step_s = step_s
        self.fail = fail
        self.crash = crash
        self.runs: list[str] = []

    def available(self) -> tuple[bool, str]:
        return True, ""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        self.runs.append(ctx.job_id)
        for i in range(self.steps):
            ctx.check()
            ctx.report({"iteration": i + 1, "psnr": 20.0 + i})
            time.sleep(self.step_s)
        if self.fail:
            raise EngineError(self.fail)
        if self.crash:
            raise ZeroDivisionError("division by zero in step")
        return {"psnr": 30.5, "iterations": self.steps}
