"""The operator console. This first screen shows the profile, the local cloud, stacks and jobs."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from backend.context import Context


class SkydeckApp(App[None]):
    TITLE = "skydeck"
    CSS = """
    #summary { height: auto; padding: 0 1; }
    DataTable { height: 1fr; }
    """
    BINDINGS = [
        Binding("r", "refresh", "Refresh"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, ctx: Context, read_only: bool = False) -> None:
        super().__init__()
        self.ctx = ctx
        self.read_only = read_only
        where = "local cloud" if ctx.profile.is_local else ctx.profile.region
        self.sub_title = f"profile {ctx.profile.name} · {where}" + (" · READ-ONLY" if read_only else "")

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("loading ...", id="summary")
        yield DataTable(id="jobs", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#jobs", DataTable)
        table.add_columns("job id", "state", "name", "engine", "scene")
        self.action_refresh()
        self.set_interval(2.0, self.action_refresh)

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="load")
    def load(self) -> None:
        try:
            stacks = {i.short: i.status for i in self.ctx.stacks.list()}
            jobs: list[dict[str, Any]] = []
            if stacks.get("infra", "NOT_DEPLOYED") != "NOT_DEPLOYED":
                jobs = self.ctx.jobs.list(limit=200)["items"]
            self.call_from_thread(self.show, stacks, jobs, None)
        except Exception as exc:  # noqa: BLE001 - shown to the operator, never a traceback
            self.call_from_thread(self.show, {}, [], str(exc))

    def show(self, stacks: dict[str, str], jobs: list[dict[str, Any]], error: str | None) -> None:
        summary = self.query_one("#summary", Static)
        if error:
            summary.update(f"[red]error:[/] {error}")
            return
        summary.update("stacks: " + "  ".join(f"{k} {v}" for k, v in stacks.items()) + f"   jobs: {len(jobs)}")
        table = self.query_one("#jobs", DataTable)
        table.clear()
        for job in jobs:
            table.add_row(job["job_id"], job["state"], job.get("name", ""), job.get("engine", ""), job.get("scene", ""))
