"""Batch submit from the console: a batch file's combinations, checked (dry run) before anything is queued."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from backend.interface import markup_safe
from tui.messages import BatchPlanned, WorkFailed


def _plan_text(rows: list[dict[str, Any]], dry_run: bool) -> str:
    lines = []
    for row in rows:
        overrides = " ".join(f"{k}={v}" for k, v in row["overrides"].items()) or "(preset as is)"
        action = f"would {row['action']}" if dry_run and row["action"] == "submit" else row["action"]
        lines.append(f"{markup_safe(row['scene']):<16} {markup_safe(overrides):<44} {action}")
    submitted = sum(1 for r in rows if r["action"] == "submit")
    verb = "would submit" if dry_run else "submitted"
    lines.append(f"\n{verb} {submitted}, skipped {len(rows) - submitted} of {len(rows)}")
    if dry_run and submitted:
        lines.append("[b]ctrl+s[/b] submits them")
    return "\n".join(lines)


class BatchScreen(ModalScreen[int]):
    """Type a batch file's path, Enter checks it, ctrl+s submits all its combinations (or none)."""

    BINDINGS = [
        Binding("ctrl+s", "submit", "Submit batch", id="batch.submit"),
        Binding("escape", "close", "Close", id="batch.close"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.checked: Path | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="batch"):
            yield Static("[b]Batch submit[/b]  a file with preset, scenes and a grid or list of overrides")
            yield Input(placeholder="path/to/batch.yaml, then Enter to check", id="batch-path")
            yield Static("", id="batch-plan")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.checked = None
        self.plan(Path(event.value).expanduser(), dry_run=True)

    def action_submit(self) -> None:
        path = Path(self.query_one("#batch-path", Input).value).expanduser()
        if self.checked != path:
            self.query_one("#batch-plan", Static).update("[yellow]press Enter to check the file first[/yellow]")
            return
        self.plan(path, dry_run=False)

    def action_close(self) -> None:
        self.dismiss(0)

    @work(thread=True, exclusive=True, group="batch")
    def plan(self, path: Path, dry_run: bool) -> None:
        backend = self.app.backend  # type: ignore[attr-defined]  # a modal's app is the SkydeckApp, which textual types as App
        try:
            plan = backend.load_batch(path)
            rows = backend.run_batch(plan, dry_run=dry_run)
        except Exception as exc:  # noqa: BLE001 - shown to the operator, who fixes the file
            self.post_message(WorkFailed("batch", str(exc)))
            return
        self.post_message(BatchPlanned(path, plan.name, rows, dry_run))

    def on_work_failed(self, message: WorkFailed) -> None:
        self.query_one("#batch-plan", Static).update(f"[red]{markup_safe(message.error)}[/red]")

    def on_batch_planned(self, message: BatchPlanned) -> None:
        self.query_one("#batch-plan", Static).update(_plan_text(message.rows, message.dry_run))
        if message.dry_run:
            self.checked = message.path
        else:
            submitted = sum(1 for r in message.rows if r["action"] == "submit")
            self.app.notify(f"batch {message.name}: submitted {submitted} job(s)")
            self.checked = None
