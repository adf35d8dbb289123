"""The footer: the current screen's bindings as one line of clickable text.

Textual's own Footer rebuilds a widget per key every time bindings change (each screen switch),
which costs this console ~60-150 ms a switch on a 2-core machine. This bar is one widget whose
text is rebuilt only when the visible bindings really changed; a click on a key runs its action.
"""

from __future__ import annotations

from rich.markup import escape
from textual.screen import Screen
from textual.widgets import Static


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom; height: auto; max-height: 2; background: $panel; color: $text-muted;
        text-wrap: wrap; text-overflow: ellipsis;
    }
    """

    def __init__(self) -> None:
        super().__init__("", id="keybar", markup=True)
        self._shown: tuple[tuple[str, str, bool, str], ...] | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._rebuild()

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen) -> None:
        if self.is_attached and screen is self.screen:
            self._rebuild()

    def entries(self) -> tuple[tuple[str, str, bool, str], ...]:
        """(key as shown, description, enabled, key to simulate) of the bindings shown, first per action."""
        seen: set[str] = set()
        out = []
        for _node, binding, enabled, _tooltip in self.screen.active_bindings.values():
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            out.append((self.app.get_key_display(binding), binding.description, enabled, binding.key.split(",")[0]))
        return tuple(out)

    def _rebuild(self) -> None:
        entries = self.entries()
        if entries == self._shown:
            return
        self._shown = entries
        # the palette first: on a narrow terminal it is the one key that leads to all the others
        parts = ["[@click=app.command_palette][b]^p[/b] Palette[/]"] if self.app.ENABLE_COMMAND_PALETTE else []
        for display, description, enabled, key in entries:
            label = f"[b]{escape(display)}[/b] {escape(description)}"
            if enabled:
                parts.append(f"[@click=app.simulate_key({key!r})]{label}[/]")
            else:
                parts.append(f"[dim]{label}[/dim]")
        self.update("  ".join(parts))
