"""What every console screen shares: header, footer, a filter box, palette commands, read-only."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual._context import active_app
from textual.app import ComposeResult, ScreenStackError
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Select

from tui.messages import DataDone, WorkFailed
from tui.widgets.form import Form
from tui.widgets.keybar import KeyBar
from tui.widgets.tables import set_sort

if TYPE_CHECKING:
    from tui.app import SkydeckApp


class DeckScreen(Screen[None]):
    # A screen's list takes focus on arrival, never a form field or the (hidden) filter box, which
    # would swallow the screen keys.
    AUTO_FOCUS = "DataTable"
    BINDINGS = [
        Binding("slash", "filter", "Filter", show=True, id="screen.filter"),
        Binding("o", "sort_next", "Sort", show=False, id="screen.sort"),
        Binding("escape", "unfilter", "Back", show=False, id="screen.unfilter"),
    ]
    MUTATING_ACTIONS: frozenset[str] = frozenset()

    def __init__(self) -> None:
        super().__init__()
        # A screen made now is styled from the stylesheet as it is now. Textual marks a new screen
        # out of date (-1) so that its first showing re-parses every CSS source of the app: 60-90 ms
        # on each screen's first visit here. Only a theme change since makes that necessary (and
        # Textual still catches it: the count moves on with the theme). The first screen of the app
        # keeps Textual's way: the stylesheet is still being set up when it is made.
        with contextlib.suppress(LookupError, ScreenStackError):
            app = active_app.get()
            if app.screen.is_mounted:
                self._css_update_count = app._css_update_count

    @property
    def deck(self) -> SkydeckApp:
        return self.app  # type: ignore[return-value]  # the app is the SkydeckApp, which textual types as App

    def compose_frame(self) -> ComposeResult:
        yield Header(show_clock=False)

    def compose_footer(self) -> ComposeResult:
        yield Input(placeholder="filter (esc to clear)", id="filter", classes="hidden")
        yield KeyBar()

    @property
    def visible_now(self) -> bool:
        """Background refreshes skip screens nobody is looking at (and catch up on resume)."""
        try:
            return self.app.screen is self
        except Exception:  # noqa: BLE001 - the app is closing: nobody is looking
            return False

    def on_screen_resume(self) -> None:
        refresh = getattr(self, "action_refresh", None)
        if refresh is not None:
            self.set_timer(0.3, refresh)  # paint the switch first, then fetch
        if self._css_update_count == -1:  # the app's first screen: styled once it has painted
            self.call_after_refresh(self._adopt_css_generation)

    def _adopt_css_generation(self) -> None:
        if self.is_mounted and self.app.screen is self:
            self._css_update_count = self.app._css_update_count

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # read-only: hidden from the footer and never run
        return not (action in self.MUTATING_ACTIONS and self.deck.read_only)

    def palette_commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        """(title, help, callback) for the command palette, from this screen's bindings."""
        found: list[tuple[str, str, Callable[[], object]]] = []
        for binding in self.BINDINGS:
            if not isinstance(binding, Binding) or not binding.show:
                continue
            if binding.action in self.MUTATING_ACTIONS and self.deck.read_only:
                continue
            found.append((binding.description, f"key {binding.key}", partial(self.run_action, binding.action)))
        return found

    # -- data tasks (make and push a scene, generate and upload SDS-Inf data, fetch results) --------
    def ask_then_run(self, what: str, form: Form, task: Callable[[dict[str, str]], str]) -> None:
        """Ask with `form`, then run `task(answers)` off the UI thread; its answer comes back as a message."""

        def go(answers: dict[str, str] | None) -> None:
            if answers is None:
                return
            self.notify(f"{what} ...", timeout=3)

            def work() -> None:
                try:
                    self.post_message(DataDone(what, task(answers)))
                except Exception as exc:  # noqa: BLE001 - the operator reads it and fixes the field
                    self.post_message(WorkFailed(what, str(exc)))

            self.run_worker(work, thread=True, group="data-task")

        self.app.push_screen(form, go)

    def on_data_done(self, message: DataDone) -> None:
        self.notify(f"{message.what}: {message.detail}", timeout=8)
        refresh = getattr(self, "action_refresh", None)
        if refresh is not None:
            refresh()

    # -- sorting: a click on a column header, or `o` for the focused table's next column --------
    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        column, reverse = set_sort(event.data_table, event.column_index)
        self.refilter()
        self.notify(f"sorted by {event.label.plain}" + (" (reversed)" if reverse else ""), timeout=2)

    def action_sort_next(self) -> None:
        table = self.focused if isinstance(self.focused, DataTable) else next(iter(self.query(DataTable)), None)
        if table is None or not table.columns:
            return
        current = getattr(table, "sort_by", None)
        column = 0 if current is None else (current[0] + (1 if current[1] else 0)) % len(table.columns)
        set_sort(table, column)
        self.refilter()

    # -- filter --------------------------------------------------------------------------------
    filter_text: str = ""

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("hidden")
        box.focus()

    def action_unfilter(self) -> None:
        focused = self.focused
        if focused is not None and focused.id != "filter" and isinstance(focused, Input | Select):
            self.set_focus(None)  # esc leaves a form field: the screen's keys work again
            return
        box = self.query_one("#filter", Input)
        if box.has_class("hidden") and not self.filter_text:
            if len(self.app.screen_stack) > 1 and self.app.screen is self:
                self.app.pop_screen()  # esc on a pushed screen goes back
            return
        box.value = ""
        box.add_class("hidden")
        self.filter_text = ""
        self.refilter()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.filter_text = event.value.strip().lower()
            self.refilter()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.input.add_class("hidden")
            self.set_focus(None)

    def refilter(self) -> None:
        """Re-apply `filter_text` to what the screen lists."""
