"""`?`: the keys of the current screen and of the whole console."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

GLOBAL_KEYS = [
    ("1 / 2 / 3 / 4 / 5", "Stacks / Jobs / Monitor / SDS-Inf / Logs"),
    ("ctrl+p", "command palette (this screen's commands, switch profile, ...)"),
    ("/", "filter the list on this screen; esc clears it"),
    ("esc", "back"),
    ("?", "this help"),
    ("q", "quit"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", id="help.dismiss")]

    def __init__(self, screen_keys: list[tuple[str, str]], read_only: bool) -> None:
        super().__init__()
        self.screen_keys = screen_keys
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        lines = ["[b]this screen[/b]"] + [f"  {k:<16} {d}" for k, d in self.screen_keys]
        lines += ["", "[b]everywhere[/b]"] + [f"  {k:<16} {d}" for k, d in GLOBAL_KEYS]
        if self.read_only:
            lines += ["", "[yellow]read-only mode: actions that change anything are hidden[/yellow]"]
        with VerticalScroll(id="help"):
            yield Static("\n".join(lines))

    def action_dismiss(self) -> None:  # type: ignore[override]  # textual's dismiss is async; these modals close at once
        self.dismiss(None)
