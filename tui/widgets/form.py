"""A small form in a modal: a few labelled fields, Enter (or ctrl+s) to go, esc to leave."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class Form(ModalScreen[dict[str, str] | None]):
    BINDINGS = [
        Binding("ctrl+s", "go", "Go", id="form.go"),
        Binding("escape", "leave", "Cancel", id="form.cancel"),
    ]

    def __init__(self, title: str, fields: list[tuple[str, str, str]]) -> None:
        """`fields`: (key, label, default)."""
        super().__init__()
        self.title_text = title
        self.fields = fields

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Static(f"[b]{self.title_text}[/b]  (enter or ctrl+s: go, esc: cancel)")
            for key, label, default in self.fields:
                yield Label(label)
                yield Input(value=default, id=f"form-{key}", compact=True)

    def on_mount(self) -> None:
        self.query(Input).first().focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_go()

    def action_go(self) -> None:
        self.dismiss({key: self.query_one(f"#form-{key}", Input).value.strip() for key, _, _ in self.fields})

    def action_leave(self) -> None:
        self.dismiss(None)
