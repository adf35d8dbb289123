"""A run beside a published one, column by column (what `skydeck sdsinf compare` prints)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

if TYPE_CHECKING:
    from backend.interface import ColumnComparison


class ComparisonScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "dismiss", "Close", id="compare.dismiss")]

    def __init__(self, run_id: str, published: str, columns: list[ColumnComparison]) -> None:
        super().__init__()
        self.run_id, self.published, self.columns = run_id, published, columns

    def compose(self) -> ComposeResult:
        with Vertical(id="comparison"):
            yield Static(f"[b]run {self.run_id}[/b] beside [b]{self.published}[/b]   (esc closes)")
            yield DataTable(id="comparison-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("column", "this run", "published", "ratio")
        for c in self.columns:
            ratio = "" if c.ratio is None else f"{c.ratio:.3g}"
            table.add_row(c.column, _short(c.ours), _short(c.theirs), ratio)
        table.focus()

    def action_dismiss(self) -> None:  # type: ignore[override]  # textual's dismiss is async; these modals close at once
        self.dismiss(None)


def _short(value: str) -> str:
    try:
        return f"{float(value):.6g}"
    except ValueError:
        return value
