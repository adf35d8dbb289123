"""Logs: follow the local cloud's log, each local function's, and the executors'."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import RichLog, Select, Static

from backend.interface import Follower, shown
from tui.messages import LogLines
from tui.screens.base import DeckScreen


class LogsScreen(DeckScreen):
    BINDINGS = [
        Binding("r", "rescan", "Rescan sources", id="logs.rescan"),
        Binding("e", "end", "Follow/pause", id="logs.end"),
        *DeckScreen.BINDINGS,
    ]

    def __init__(self) -> None:
        super().__init__()
        self.follower: Follower | None = None
        # following, the view sticks to the newest line; paused, it holds still to be read (new
        # lines are still taken in, and counted)
        self.following = True
        self.unseen = 0

    def compose(self) -> ComposeResult:
        yield from self.compose_frame()
        yield Select([], prompt="log source", id="log-source", allow_blank=True)
        yield Static("", id="log-state")
        yield RichLog(id="log", max_lines=5000, wrap=True, markup=False, auto_scroll=True)
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self._say_state()
        self.action_rescan()
        self.set_interval(0.5, self.tail)

    def action_rescan(self) -> None:
        found = self.deck.backend.log_sources()
        select = self.query_one("#log-source", Select)
        current = select.value
        select.set_options([(s.name, str(s.path)) for s in found])
        if current in [str(s.path) for s in found]:
            select.value = current
        elif found:
            select.value = str(found[0].path)

    def action_end(self) -> None:
        log = self.query_one("#log", RichLog)
        self.following = not self.following
        log.auto_scroll = self.following
        if self.following:
            self.unseen = 0
            log.scroll_end(animate=False)
        self._say_state()

    def _say_state(self) -> None:
        if self.following:
            said = "following the end · e pauses to read"
        else:
            said = "paused" + (f" · {self.unseen} new lines below" if self.unseen else "") + " · e follows the end"
        self.query_one("#log-state", Static).update(said)

    @on(Select.Changed, "#log-source")
    def _source(self, event: Select.Changed) -> None:
        self.query_one("#log", RichLog).clear()
        self.unseen = 0
        self._say_state()
        chosen = next((s for s in self.deck.backend.log_sources() if str(s.path) == str(event.value)), None)
        self.follower = self.deck.backend.follow_log(chosen) if chosen is not None else None

    @work(thread=True, exclusive=True, group="logs")
    def tail(self) -> None:
        follower = self.follower
        if follower is None or not self.visible_now:
            return
        lines = follower.read_new()
        if lines:
            self.post_message(LogLines(lines))

    def on_log_lines(self, message: LogLines) -> None:
        log = self.query_one("#log", RichLog)
        kept = [line for line in message.lines if not self.filter_text or self.filter_text in line.lower()]
        for line in kept:
            log.write(shown(line), scroll_end=self.following)
        if kept and not self.following:
            self.unseen += len(kept)
            self._say_state()
