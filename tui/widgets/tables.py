"""Keep a DataTable in step with a list of rows without rebuilding it on every refresh."""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import DataTable


def sync_rows(table: DataTable, rows: Sequence[tuple[str, Sequence[str]]]) -> None:
    """`rows` is [(key, cells)] in display order. When the same rows are shown, only changed cells
    are updated (cheap with thousands of rows); when rows come or go, the table is rebuilt in order."""
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
