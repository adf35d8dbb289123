"""Jobs: the list (state filter, text filter), a job's live detail, cancel, and the composer."""

from __future__ import annotations

import json
import time
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Static

from backend.interface import STATES, Job, age
from tui.messages import JobCancelled, JobLoaded, JobsLoaded, WorkFailed
from tui.screens.base import DeckScreen
from tui.widgets.confirm import Confirm
from tui.widgets.preview import decode, half_blocks
from tui.widgets.tables import sync_rows

STATE_CYCLE: tuple[str | None, ...] = (None, *STATES)
PAGE = 200  # the newest jobs; the state filter queries the table, so older ones are a key away
STATE_STYLE = {"QUEUED": "yellow", "RUNNING": "cyan", "SUCCEEDED": "green", "FAILED": "red", "CANCELLED": "dim"}


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
        job.job_id[:8],
        f"[{STATE_STYLE.get(job.state, 'white')}]{job.state}[/]",
        job.name,
        job.engine,
        "-" if it is None else str(it),
        "-" if psnr is None else f"{psnr:.2f}",
        job.scene,
        when(job.created_at),
    )


class JobsScreen(DeckScreen):
    BINDINGS = [
        Binding("n", "new", "New job", id="jobs.new"),
        Binding("b", "batch", "Batch submit", id="jobs.batch"),
        Binding("enter", "open", "Open", show=True, id="jobs.open"),
        Binding("c", "cancel", "Cancel job", id="jobs.cancel"),
        Binding("f", "cycle_state", "State filter", id="jobs.cycle_state"),
        Binding("r", "refresh", "Refresh", id="jobs.refresh"),
        *DeckScreen.BINDINGS,
    ]
    MUTATING_ACTIONS = frozenset({"new", "cancel", "batch"})

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

    def action_new(self) -> None:
        from tui.screens.composer import ComposerScreen

        self.app.push_screen(ComposerScreen())

    def action_batch(self) -> None:
        from tui.screens.batch import BatchScreen

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


def confirm_cancel(screen: DeckScreen, job: Job) -> None:
    if job.ended:
        screen.notify(f"job {job.job_id[:8]} already ended ({job.state}): nothing to cancel", severity="warning")
        return

    def go(yes: bool | None) -> None:
        if yes:
            _cancel(screen, job.job_id)

    screen.app.push_screen(Confirm(f"Cancel job {job.job_id[:8]} {job.name} ({job.state})?"), go)


def _cancel(screen: DeckScreen, job_id: str) -> None:
    def run() -> None:
        try:
            screen.post_message(JobCancelled(screen.deck.backend.cancel_job(job_id)))
        except Exception as exc:  # noqa: BLE001
            screen.post_message(WorkFailed("cancel", str(exc)))

    screen.run_worker(run, thread=True, group="jobs-cancel")


def cancelled_note(job: Job) -> str:
    return f"{job.job_id[:8]}: " + ("cancelled" if job.state == "CANCELLED" else "stop requested")


class JobDetailScreen(DeckScreen):
    BINDINGS = [
        Binding("c", "cancel", "Cancel job", id="job.cancel"),
        Binding("escape", "back", "Back", id="job.back"),
    ]
    MUTATING_ACTIONS = frozenset({"cancel"})

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id
        self.job: Job | None = None
        self._preview_mark: tuple[Any, str] | None = None
        self._log_done = False

    def compose(self) -> ComposeResult:
        yield from self.compose_frame()
        with Horizontal(id="job-detail-body"):
            with VerticalScroll():
                yield Static(f"job {self.job_id}", id="job-detail")
                yield Static("", id="job-log")
            yield Static("", id="job-preview")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self.load()
        self.set_interval(1.0, self.load)

    @work(thread=True, exclusive=True, group="job-detail")
    def load(self) -> None:
        backend = self.deck.backend
        try:
            job = backend.job(self.job_id)
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed("load job", str(exc)))
            return
        # the log is followed while the job runs; the preview is fetched when the job moved on
        log = None if job.state == "QUEUED" or self._log_done else backend.job_log(self.job_id)
        mark = (job.iteration, job.state)
        wants_preview = job.state in ("RUNNING", "SUCCEEDED") and mark != self._preview_mark
        preview = backend.job_preview(self.job_id) if wants_preview else None
        self.post_message(JobLoaded(job, log, preview))

    def on_job_loaded(self, message: JobLoaded) -> None:
        job = message.job
        ended_now = job.ended and (self.job is None or not self.job.ended)
        self.show(job)
        if ended_now:
            self.refresh_bindings()
        if message.log is not None:
            self._log_done = job.ended
            tail = "\n".join(escape(line) for line in message.log.splitlines()[-12:])
            self.query_one("#job-log", Static).update(f"\n[b]log[/b] (last lines)\n{tail}")
        if message.preview is not None:
            try:
                image = decode(message.preview, max_width=64)
            except Exception:  # noqa: BLE001 - an unreadable preview: the details stand alone
                return
            self._preview_mark = (job.iteration, job.state)
            psnr = job.psnr
            caption = Text("held-out view" + ("" if psnr is None else f", PSNR {psnr:.2f} dB"))
            self.query_one("#job-preview", Static).update(half_blocks(image) + caption)

    def on_work_failed(self, message: WorkFailed) -> None:
        if message.what == "cancel":
            self.notify(message.error, severity="error")
            return
        self.query_one("#job-detail", Static).update(f"[red]{escape(message.error)}[/red]")

    def on_job_cancelled(self, message: JobCancelled) -> None:
        self.notify(cancelled_note(message.job))
        self.load()

    def show(self, job: Job) -> None:
        self.job = job
        lines = [f"[b]{escape(job.name)}[/b]  {job.job_id}"]
        lines.append(
            f"state     [{STATE_STYLE.get(job.state, 'white')}]{job.state}[/]"
            + ("  (stop requested)" if job.cancel_requested and job.state == "RUNNING" else "")
        )
        for key in ("scene", "engine", "preset", "worker", "attempts", "error", "note"):
            value = getattr(job, key)
            if value not in (None, "", 0):
                lines.append(f"{key:<9} {escape(str(value))}")
        lines.append(f"created   {age(job.created_at)} ago")
        for section in ("progress", "result", "config", "resources"):
            values: dict[str, Any] = getattr(job, section)
            if values:
                lines.append(f"\n[b]{section}[/b]")
                lines += [
                    f"  {k:<24} {escape(json.dumps(v) if isinstance(v, dict | list) else str(v))}"
                    for k, v in values.items()
                    if k not in ("history", "notes")
                ]
        lines += [f"[yellow]note[/yellow]  {escape(n)}" for n in job.notes]
        self.query_one("#job-detail", Static).update("\n".join(lines))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel" and (self.job is None or self.job.ended):
            return False  # nothing to cancel: the key is not offered
        return super().check_action(action, parameters)

    def action_cancel(self) -> None:
        if self.job is not None:
            confirm_cancel(self, self.job)

    def action_back(self) -> None:
        self.app.pop_screen()
