"""Snapshots of the console's screens at 120x40 (update with: pytest --snapshot-update)."""

from __future__ import annotations

import pytest

from backend.core.context import Context
from backend.core.profiles import Profile
from backend.interface import Backend
from tests.console_pilot import settle
from tui.app import SkydeckApp

SIZE = (120, 40)


def _app(cloud_home, mode: str, read_only: bool = False) -> SkydeckApp:  # noqa: ANN001
    # a stack prefix that is never deployed: the screens show the same thing on every run
    ctx = Context(home=cloud_home, profile=Profile(name="snap", stack_prefix="snapshot"))
    return SkydeckApp(backend=Backend(ctx), read_only=read_only, mode=mode)


async def _settle(pilot) -> None:  # noqa: ANN001
    # screens refresh 0.3 s after they show (DeckScreen.on_screen_resume): wait past that, so every
    # snapshot is taken after the same work, whatever the machine's speed
    await settle(pilot.app, pilot)
    await pilot.pause(0.6)
    await settle(pilot.app, pilot)


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


SCREENS = ("stacks", "jobs", "monitor", "sdsinf", "logs")
# The SDS-Inf screen fills in over several frames (form, presets, runs) and its snapshot differs from
# machine to machine; it is covered by the key-bar and focus tests instead.
SNAPSHOT_SCREENS = ("stacks", "jobs", "monitor", "logs")


def _logs_app(tmp_path) -> SkydeckApp:  # noqa: ANN001
    # a home of its own: the session cloud's log files change from run to run
    from backend.core.paths import Home

    ctx = Context(home=Home(tmp_path / "h").ensure(), profile=Profile(name="snap", stack_prefix="snapshot"))
    return SkydeckApp(backend=Backend(ctx), mode="logs")


@pytest.mark.parametrize("size", [(80, 24), (140, 45)], ids=["80x24", "140x45"])
@pytest.mark.parametrize("mode", SNAPSHOT_SCREENS)
def test_every_screen_at_a_small_and_a_large_terminal(snap_compare, cloud_home, tmp_path, mode, size) -> None:  # noqa: ANN001
    app = _logs_app(tmp_path) if mode == "logs" else _app(cloud_home, mode)
    assert snap_compare(app, terminal_size=size, run_before=_settle)


async def test_the_key_bar_is_never_cut_at_80_columns(cloud_home) -> None:  # noqa: ANN001
    for mode in SCREENS[:4]:
        app = _app(cloud_home, mode)
        async with app.run_test(size=(80, 24)) as pilot:
            await _settle(pilot)
            bar = app.screen.query_one("#keybar")
            text = str(bar.render())
            assert "^p Palette" in text and "…" not in text, (mode, text)
