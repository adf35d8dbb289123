"""Snapshots of the console's screens at 120x40 (update with: pytest --snapshot-update)."""

from __future__ import annotations

from backend.core.context import Context
from backend.core.profiles import Profile
from backend.interface import Backend
from tui.app import SkydeckApp

SIZE = (120, 40)


def _app(cloud_home, mode: str, read_only: bool = False) -> SkydeckApp:  # noqa: ANN001
    # a stack prefix that is never deployed: the screens show the same thing on every run
    ctx = Context(home=cloud_home, profile=Profile(name="snap", stack_prefix="snapshot"))
    return SkydeckApp(backend=Backend(ctx), read_only=read_only, mode=mode)


async def _settle(pilot) -> None:  # noqa: ANN001
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_stacks_screen(snap_compare, cloud_home) -> None:  # noqa: ANN001
    assert snap_compare(_app(cloud_home, "stacks"), terminal_size=SIZE, run_before=_settle)


def test_composer_screen(snap_compare, cloud_home) -> None:  # noqa: ANN001
    async def open_composer(pilot) -> None:  # noqa: ANN001
        await _settle(pilot)
        await pilot.press("n")
        await _settle(pilot)
        await pilot.press(*"lego")
        await pilot.pause()

    assert snap_compare(_app(cloud_home, "jobs"), terminal_size=SIZE, run_before=open_composer)


def test_read_only_stacks_screen(snap_compare, cloud_home) -> None:  # noqa: ANN001
    assert snap_compare(_app(cloud_home, "stacks", read_only=True), terminal_size=SIZE, run_before=_settle)
