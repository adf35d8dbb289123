"""Driving the console in tests: wait until its background work is done."""

from __future__ import annotations

from typing import Any


async def settle(app: Any, pilot: Any) -> None:
    """Let the UI catch up and every worker finish. An exclusive worker replaced by a newer one ends
    cancelled, which is how the console means it to: wait for the newer one then."""
    from textual.worker import WorkerCancelled

    await pilot.pause()
    for _ in range(5):
        try:
            await app.workers.wait_for_complete()
            break
        except WorkerCancelled:
            await pilot.pause()
    await pilot.pause()


async def wait_until(pilot: Any, ready: Any, what: str, timeout_s: float = 20.0) -> None:
    """Pause until `ready()` holds: for screens that fill in over several frames, so a test looks at
    the same finished screen on a fast machine and a slow one."""
    import time

    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"the console never showed {what} within {timeout_s:.0f} s")
        await pilot.pause(0.05)
