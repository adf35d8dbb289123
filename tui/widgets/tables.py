"""Keep a DataTable in step with a list of rows without rebuilding it on every refresh."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable


def sort_value(cell: str) -> tuple[int, Any]:
    """Numbers sort as numbers, the rest as text (markup ignored)."""
    plain = Text.from_markup(cell).plain.strip()
    try:
        return (0, float(plain))
    except ValueError:
        return (1, plain.lower())


def set_sort(table: DataTable, column: int) -> tuple[int, bool]:
    """Sort by `column`; the same column again reverses the order."""
    current = getattr(table, "sort_by", None)
    reverse = current is not None and current[0] == column and not current[1]
    table.sort_by = (column, reverse)  # type: ignore[attr-defined]  # our own attribute on textual's table: the sort the operator chose
    return column, reverse


def sync_rows(table: DataTable, rows: Sequence[tuple[str, Sequence[str]]]) -> None:
    """`rows` is [(key, cells)] in display order. When the same rows are shown, only changed cells
    are updated (cheap with thousands of rows); when rows come or go, the table is rebuilt in order."""
    sort_by = getattr(table, "sort_by", None)
    if sort_by is not None:  # set by a click on a column header (or the sort key)
        column, reverse = sort_by
        rows = sorted(rows, key=lambda row: sort_value(str(row[1][column])), reverse=reverse)
    keys = [key for key, _ in rows]
    if keys != [k.value for k in table.rows]:
        cursor = table.cursor_row
        table.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))
        return
    columns = list(table.columns)
    for key, cells in rows:
        for col, old, new in zip(columns, table.get_row(key), cells, strict=False):
            if old != new:
                table.update_cell(key, col, new, update_width=True)
