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
