"""Snapshots of the console's screens at 120x40 (update with: pytest --snapshot-update)."""

from __future__ import annotations

import pytest

from backend.context import Context
from backend.core.profiles import Profile
from backend.interface import Backend
from tests.console_pilot import settle, wait_until
from tui.app import SkydeckApp

pytestmark = pytest.mark.slow  # end to end through a local cloud of its own

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
    if pilot.app.screen.query("#sdsinf-form"):
        await wait_until(pilot, lambda: _sdsinf_filled_in(pilot.app), "the SDS-Inf form, presets and runs")
        await settle(pilot.app, pilot)


def _sdsinf_filled_in(app) -> bool:  # noqa: ANN001
    # the SDS-Inf screen mounts its form after its first paint, then fills the presets and the runs
    # from workers: the snapshot waits for all three
    from textual.widgets import DataTable, Select

    screen = app.screen
    presets = screen.query("#sds-preset")
    runs = screen.query("#sds-runs")
    return (
        bool(presets)
        and presets.first(Select).value != Select.BLANK
        and bool(runs)
        and runs.first(DataTable).row_count == len(screen.runs)
        and screen.query_one("#sdsinf-form").styles.grid_columns is not None
    )


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
SNAPSHOT_SCREENS = SCREENS


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
            # help and quit always show, and no key is split across the two lines or cut at the edge
            assert "? Help" in text and "q Quit" in text, (mode, text)
            assert all(len(line) <= 80 for line in text.splitlines()), (mode, text)


@pytest.mark.parametrize("size", [(80, 24), (140, 45)], ids=["80x24", "140x45"])
async def test_the_sdsinf_form_shows_whole_labels_and_preset_names(cloud_home, size) -> None:  # noqa: ANN001
    from textual.widgets import Select

    app = _app(cloud_home, "sdsinf")
    async with app.run_test(size=size) as pilot:
        await _settle(pilot)
        screen = app.screen
        select = screen.query_one("#sds-preset", Select)
        longest = max((str(label) for label, _ in screen._preset_options), key=len)
        # the name, a space and the arrow: the longest preset name is never cut or wrapped
        assert select.content_region.width >= len(longest) + 2, (select.content_region, longest)
        for label in screen.query("#sdsinf-form Label"):
            text = str(label.render())
            assert label.content_region.width >= len(text.strip()), (text, label.content_region)
        launch = screen.query_one("#sds-launch")
        assert launch.region.right <= size[0] and launch.region.height >= 1
        # a data name is longer than a number: the presets' own fit whole in the data field
        data_names = [str(p.values.get("data", "")) for p in app.backend.presets("sdsinf")]
        data = screen.query_one("#sds-data")
        assert data.content_region.width > max(len(n) for n in data_names), (data.content_region, data_names)
        # once loaded, the presets are the only choices: no "loading presets" left behind
        assert select._options == screen._preset_options, select._options


async def test_the_composer_and_the_batch_dialog_fit_80x24_and_show_the_focused_field(cloud_home) -> None:  # noqa: ANN001
    from textual.widgets import Input, Label

    app = _app(cloud_home, "jobs")
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        await pilot.press("n")
        await _settle(pilot)
        screen = app.screen
        for label in screen.query("#composer-form Label").results(Label):
            text = str(label.render()).strip()
            lines = label.content_region.height
            # whole: on one line, or wrapped onto more (never cut at the form's edge)
            assert label.content_region.width >= len(text) or lines > 1, (text, label.content_region)
        focused = app.focused
        assert isinstance(focused, Input) and focused.id == "scene"
        other = screen.query_one("#name", Input)
        assert focused.styles.background != other.styles.background  # the field with focus is marked
        await pilot.press("escape")
        await _settle(pilot)
        await pilot.press("b")
        await _settle(pilot)
        box = app.screen.query_one("#batch")
        assert box.region.x >= 0 and box.region.right <= 80, box.region


async def test_long_log_lines_wrap_instead_of_being_cut(tmp_path) -> None:  # noqa: ANN001
    from textual.widgets import RichLog

    app = _logs_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        log = app.screen.query_one("#log", RichLog)
        log.clear()
        log.write("x" * 150 + " END")
        await pilot.pause()
        text = "".join(strip.text for strip in log.lines)
        assert "END" in text and len(log.lines) >= 2
        assert max(strip.cell_length for strip in log.lines) <= log.scrollable_content_region.width


async def test_e_pauses_the_log_to_read_it_and_follows_the_end_again(tmp_path) -> None:  # noqa: ANN001
    # "e Follow end" changed nothing visible: the log already stuck to its end, and new lines pulled
    # an operator reading further up back down
    from textual.widgets import RichLog, Static

    from tui.messages import LogLines

    app = _logs_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        screen = app.screen
        log = screen.query_one("#log", RichLog)
        screen.on_log_lines(LogLines([f"line {i}" for i in range(100)]))
        await pilot.pause()
        assert "following" in str(screen.query_one("#log-state", Static).render())
        await pilot.press("e")
        log.scroll_to(y=10, animate=False)
        await pilot.pause()
        screen.on_log_lines(LogLines([f"later {i}" for i in range(7)]))
        await pilot.pause()
        assert log.scroll_y == 10  # held still while paused
        assert "paused · 7 new lines below" in str(screen.query_one("#log-state", Static).render())
        await pilot.press("e")
        await pilot.pause()
        assert log.scroll_y == log.max_scroll_y > 10
        assert "following" in str(screen.query_one("#log-state", Static).render())


async def test_stack_events_show_their_whole_status_at_80_columns(cloud_home) -> None:  # noqa: ANN001
    from textual.widgets import RichLog

    from backend.interface import StackEvent
    from tui.messages import StackEventArrived

    app = _app(cloud_home, "stacks")
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        event = StackEvent(0.0, "SerialAsyncConfig", "AWS::Lambda::EventInvokeConfig", "CREATE_COMPLETE", "")
        app.screen.on_stack_event_arrived(StackEventArrived("sdsinf", event))
        await pilot.pause()
        log = app.screen.query_one("#stack-events", RichLog)
        assert "CREATE_COMPLETE" in "".join(strip.text for strip in log.lines)
        # wrapped to the log's width: nothing runs past its right edge (80 columns showed "CR")
        assert max(strip.cell_length for strip in log.lines) <= log.scrollable_content_region.width


async def test_the_sdsinf_live_view_fits_80_columns(cloud_home) -> None:  # noqa: ANN001
    """A worker's row (nine columns, a billion bytes) and the plot's title stay inside 80 columns."""
    from textual.widgets import DataTable, Static

    from backend.interface import LiveMetric
    from tui.messages import RunMetric

    app = _app(cloud_home, "sdsinf")
    # 80 columns by 40 rows: on a shorter terminal the plot (and its title) give their rows to the runs
    async with app.run_test(size=(80, 40)) as pilot:
        await _settle(pilot)
        metric = LiveMetric(worker=7, batch=1, layer=119, layers=120, duration_s=1.234, nnz=1_048_576,
                            rows_active=10_000, messages_sent=13_361, bytes_sent=1_281_614_968,
                            messages_received=13_361, bytes_received=1_281_614_968)  # fmt: skip
        app.screen.on_run_metric(RunMetric(metric))
        await pilot.pause()
        table = app.screen.query_one("#sds-workers", DataTable)
        assert table.virtual_size.width <= table.scrollable_content_region.width, table.virtual_size
        title = app.screen.query_one("#sds-plot-title", Static)
        assert len(str(title.render())) <= title.content_region.width, str(title.render())
