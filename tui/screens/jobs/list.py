"""Jobs: the list, its state and text filters, and the way to a job, the composer and batches."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from backend.interface import STATES, Job, markup_safe
from tui.messages import JobCancelled, JobsLoaded, WorkFailed
from tui.screens.base import DeckScreen
from tui.screens.jobs.cancel import cancelled_note, confirm_cancel
from tui.screens.jobs.detail import JobDetailScreen
from tui.screens.jobs.style import STATE_STYLE
from tui.widgets.form import Form
from tui.widgets.tables import sync_rows

STATE_CYCLE: tuple[str | None, ...] = (None, *STATES)
PAGE = 200  # the newest jobs; the state filter queries the table, so older ones are a key away


def when(ts: Any) -> str:
    """Creation time: absolute, so a refresh only touches cells whose job really changed."""
    if not ts:
        return "-"
    t = float(ts)
    fmt = "%H:%M:%S" if time.time() - t < 86400 else "%m-%d %H:%M"
    return time.strftime(fmt, time.localtime(t))


def job_cells(job: Job) -> tuple[str, ...]:
    psnr, it = job.psnr, job.iteration
    return (
        markup_safe(job.job_id[:8]),
        f"[{STATE_STYLE.get(job.state, 'white')}]{markup_safe(job.state)}[/]",
        markup_safe(job.name, limit=80),
        markup_safe(job.engine, limit=40),
        "-" if it is None else str(it),
        "-" if psnr is None else f"{psnr:.2f}",
        markup_safe(job.scene, limit=80),
        when(job.created_at),
    )


class JobsScreen(DeckScreen):
    BINDINGS = [
        Binding("n", "new", "New job", id="jobs.new"),
        Binding("m", "make_scene", "Make + push scene", id="jobs.make_scene"),
        Binding("b", "batch", "Batch submit", id="jobs.batch"),
        Binding("enter", "open", "Open", show=True, id="jobs.open"),
        Binding("c", "cancel", "Cancel job", id="jobs.cancel"),
        Binding("f", "cycle_state", "State filter", id="jobs.cycle_state"),
        Binding("r", "refresh", "Refresh", id="jobs.refresh"),
        *DeckScreen.BINDINGS,
    ]
    MUTATING_ACTIONS = frozenset({"new", "cancel", "batch", "make_scene"})

    def __init__(self) -> None:
        super().__init__()
        self.jobs: list[Job] = []
        self.state_filter: str | None = None

    def compose(self) -> ComposeResult:
        yield from self.compose_frame()
        yield Static("", id="jobs-summary")
        yield DataTable(id="jobs-table", cursor_type="row", zebra_stripes=True)
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self.query_one("#jobs-table", DataTable).add_columns(
            "job", "state", "name", "engine", "iter", "psnr", "scene", "created"
        )
        self.action_refresh()
        self.set_interval(2.0, self._tick)

    def _tick(self) -> None:
        if self.visible_now:
            self.action_refresh()

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="jobs-load")
    def load(self) -> None:
        try:
            self.post_message(JobsLoaded(self.deck.backend.jobs(state=self.state_filter, limit=PAGE)))
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed("load jobs", str(exc)))

    def on_jobs_loaded(self, message: JobsLoaded) -> None:
        self.jobs = message.page.items
        self.refilter()

    def refilter(self) -> None:
        text = self.filter_text
        shown = [j for j in self.jobs if not text or text in " ".join(job_cells(j)).lower() + j.job_id]
        sync_rows(self.query_one("#jobs-table", DataTable), [(j.job_id, job_cells(j)) for j in shown])
        more = f" (newest {PAGE})" if len(self.jobs) >= PAGE else ""
        state = self.state_filter or "all states"
        filt = f", filter '{text}'" if text else ""
        noun = "job" if len(shown) == 1 else "jobs"
        self.query_one("#jobs-summary", Static).update(f"{len(shown)} {noun}{more} · {state}{filt}")

    def on_work_failed(self, message: WorkFailed) -> None:
        self.query_one("#jobs-summary", Static).update(f"[red]{message.what}: {message.error}[/red]")

    def _selected_id(self) -> str | None:
        table = self.query_one("#jobs-table", DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def action_cycle_state(self) -> None:
        i = STATE_CYCLE.index(self.state_filter)
        self.state_filter = STATE_CYCLE[(i + 1) % len(STATE_CYCLE)]
        self.refilter()  # the summary line names the state at once; the rows follow from the table
        self.action_refresh()

    def action_open(self) -> None:
        job_id = self._selected_id()
        if job_id:
            self.app.push_screen(JobDetailScreen(job_id))

    def action_make_scene(self) -> None:
        """What `skydeck data make-scene` + `data push` do, from here: a synthetic scene to train on."""
        form = Form(
            "Make a synthetic scene and push it to the data bucket",
            [("name", "scene name (jobs use it as their scene)", "demo"), ("dir", "write it to", "demo-scene")],
        )
        self.ask_then_run(
            "make + push scene",
            form,
            lambda a: self.deck.backend.make_and_push_scene(a["name"], Path(a["dir"]).expanduser()),
        )

    def action_new(self) -> None:
        from tui.screens.jobs.composer import ComposerScreen

        self.app.push_screen(ComposerScreen())

    def action_batch(self) -> None:
        from tui.screens.jobs.batch import BatchScreen

        self.app.push_screen(BatchScreen(), lambda _: self.action_refresh())

    def action_cancel(self) -> None:
        job_id = self._selected_id()
        job = next((j for j in self.jobs if j.job_id == job_id), None)
        if job is not None:
            confirm_cancel(self, job)

    def on_job_cancelled(self, message: JobCancelled) -> None:
        self.notify(cancelled_note(message.job))
        self.action_refresh()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()
