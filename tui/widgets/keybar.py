"""The footer: the current screen's bindings as one line of clickable text.

Textual's own Footer rebuilds a widget per key every time bindings change (each screen switch),
which costs this console ~60-150 ms a switch on a 2-core machine. This bar is one widget whose
text is rebuilt only when the visible bindings really changed; a click on a key runs its action.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Static

from backend.interface import markup_safe


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom; height: auto; max-height: 2; background: $panel; color: $text-muted;
        text-wrap: nowrap; text-overflow: clip;
    }
    """
    LINES = 2
    GAP = 2

    def __init__(self) -> None:
        super().__init__("", id="keybar", markup=True)
        self._shown: tuple[tuple[str, str, bool, str], ...] | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self._rebuild()

    def on_resize(self) -> None:
        self._shown = None  # the same keys may fit differently now
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
        # (plain width, markup, priority): an entry is never split across lines; where they do not all
        # fit, the screen switches (1-5, also in the palette and on ?) go first, then this screen's
        # own keys from the end; the palette, help and quit always stay
        items: list[tuple[int, str, int]] = []
        if self.app.ENABLE_COMMAND_PALETTE:
            items.append((len("^p Palette"), "[@click=app.command_palette][b]^p[/b] Palette[/]", 3))
        for display, description, enabled, key in entries:
            label = f"[b]{markup_safe(display)}[/b] {markup_safe(description)}"
            markup = f"[@click=app.simulate_key({key!r})]{label}[/]" if enabled else f"[dim]{label}[/dim]"
            priority = 3 if key in ("question_mark", "?", "q") else 1 if key.isdigit() else 2
            items.append((len(display) + 1 + len(description), markup, priority))
        width = self.size.width or self.app.size.width or 80
        kept = list(items)
        while len(self._pack(kept, width)) > self.LINES:
            droppable = [i for i, item in enumerate(kept) if item[2] < 3]
            if not droppable:
                break
            lowest = min(item[2] for i, item in enumerate(kept) if i in droppable)
            del kept[max(i for i in droppable if kept[i][2] == lowest)]
        self.update("\n".join(self._pack(kept, width)))

    def _pack(self, items: list[tuple[int, str, int]], width: int) -> list[str]:
        lines: list[list[tuple[int, str, int]]] = [[]]
        used = 0
        for item in items:
            need = item[0] + (self.GAP if lines[-1] else 0)
            if lines[-1] and used + need > width:
                lines.append([])
                used, need = 0, item[0]
            lines[-1].append(item)
            used += need
        return [(" " * self.GAP).join(markup for _, markup, _ in line) for line in lines if line]
