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

from backend.core.humanize import age
from tui.messages import JobsLoaded, WorkFailed
from tui.screens.base import DeckScreen
from tui.widgets.confirm import Confirm
from tui.widgets.preview import decode, half_blocks
from tui.widgets.tables import sync_rows

STATE_CYCLE = (None, "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")
PAGE = 200  # the newest jobs; the state filter queries the table, so older ones are a key away
STATE_STYLE = {"QUEUED": "yellow", "RUNNING": "cyan", "SUCCEEDED": "green", "FAILED": "red", "CANCELLED": "dim"}


def when(ts: Any) -> str:
    """Creation time: absolute, so a refresh only touches cells whose job really changed."""
    if not ts:
        return "-"
    t = float(ts)
    fmt = "%H:%M:%S" if time.time() - t < 86400 else "%m-%d %H:%M"
    return time.strftime(fmt, time.localtime(t))


def job_cells(job: dict[str, Any]) -> tuple[str, ...]:
    progress = job.get("progress") or {}
    result = job.get("result") or {}
    psnr = result.get("psnr", progress.get("psnr"))
    it = progress.get("iteration")
    state = job.get("state", "?")
    return (
        job["job_id"][:8],
        f"[{STATE_STYLE.get(state, 'white')}]{state}[/]",
        job.get("name", ""),
        job.get("engine", ""),
        "-" if it is None else str(it),
        f"{psnr:.2f}" if isinstance(psnr, int | float) else "-",
        job.get("scene", ""),
        when(job.get("created_at")),
    )


class JobsScreen(DeckScreen):
    BINDINGS = [
        Binding("n", "new", "New job"),
        Binding("b", "batch", "Batch submit"),
        Binding("enter", "open", "Open", show=True),
        Binding("c", "cancel", "Cancel job"),
        Binding("f", "cycle_state", "State filter"),
        Binding("r", "refresh", "Refresh"),
        *DeckScreen.BINDINGS,
    ]
    MUTATING_ACTIONS = frozenset({"new", "cancel", "batch"})

    def __init__(self) -> None:
        super().__init__()
        self.jobs: list[dict[str, Any]] = []
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
            page = self.deck.ctx.jobs.list(state=self.state_filter, limit=PAGE)
            self.post_message(JobsLoaded(page["items"], len(page["items"])))
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed("load jobs", str(exc)))

    def on_jobs_loaded(self, message: JobsLoaded) -> None:
        self.jobs = message.jobs
        self.refilter()

    def refilter(self) -> None:
        text = self.filter_text
        shown = [j for j in self.jobs if not text or text in " ".join(map(str, job_cells(j))).lower() + j["job_id"]]
        sync_rows(self.query_one("#jobs-table", DataTable), [(j["job_id"], job_cells(j)) for j in shown])
        more = f" (newest {PAGE})" if len(self.jobs) >= PAGE else ""
        state = self.state_filter or "all states"
        filt = f", filter '{text}'" if text else ""
        self.query_one("#jobs-summary", Static).update(f"{len(shown)} jobs{more} · {state}{filt}")

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

        self.app.push_screen(BatchScreen(self.deck.ctx), lambda _: self.action_refresh())

    def action_cancel(self) -> None:
        job_id = self._selected_id()
        if job_id:
            confirm_cancel(self, job_id)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()


def confirm_cancel(screen: DeckScreen, job_id: str) -> None:
    job = next((j for j in getattr(screen, "jobs", []) if j.get("job_id") == job_id), {"name": "", "state": ""})

    def go(yes: bool | None) -> None:
        if yes:
            _cancel(screen, job_id)

    screen.app.push_screen(Confirm(f"Cancel job {job_id[:8]} {job.get('name', '')} ({job.get('state', '')})?"), go)


def _cancel(screen: DeckScreen, job_id: str) -> None:
    def run() -> None:
        try:
            job = screen.deck.ctx.jobs.cancel(job_id)
            note = "cancelled" if job["state"] == "CANCELLED" else "stop requested"
            screen.app.call_from_thread(screen.notify, f"{job_id[:8]}: {note}")
        except Exception as exc:  # noqa: BLE001
            screen.app.call_from_thread(screen.notify, str(exc), severity="error")

    screen.run_worker(run, thread=True, group="jobs-cancel")


class JobDetailScreen(DeckScreen):
    BINDINGS = [
        Binding("c", "cancel", "Cancel job"),
        Binding("escape", "back", "Back"),
    ]
    MUTATING_ACTIONS = frozenset({"cancel"})

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id
        self.job: dict[str, Any] | None = None
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
        try:
            job = self.deck.ctx.jobs.get(self.job_id)
            self.app.call_from_thread(self.show, job)
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self.query_one("#job-detail", Static).update, f"[red]{exc}[/red]")
            return
        self.load_preview(job)
        self.load_log(job)

    def load_log(self, job: dict[str, Any]) -> None:
        """The tail of the job's own log, followed while it runs."""
        if job["state"] == "QUEUED" or self._log_done:
            return
        try:
            text = self.deck.ctx.scenes.read_result(self.job_id, "job.log").decode(errors="replace")
        except Exception:  # noqa: BLE001 - no log yet (or not published): the details stand alone
            return
        self._log_done = job["state"] in ("SUCCEEDED", "FAILED", "CANCELLED")
        tail = "\n".join(escape(line) for line in text.splitlines()[-12:])
        self.app.call_from_thread(self.query_one("#job-log", Static).update, f"\n[b]log[/b] (last lines)\n{tail}")

    def load_preview(self, job: dict[str, Any]) -> None:
        """The latest held-out render (the engine uploads one with each evaluation), when it changed."""
        mark = ((job.get("progress") or {}).get("iteration"), job["state"])
        if job["state"] not in ("RUNNING", "SUCCEEDED") or mark == self._preview_mark:
            return
        try:
            image = decode(self.deck.ctx.scenes.read_result(self.job_id, "preview.png"), max_width=64)
        except Exception:  # noqa: BLE001 - no preview yet (or not a torch job): the details stand alone
            return
        self._preview_mark = mark
        psnr = (job.get("result") or {}).get("psnr", (job.get("progress") or {}).get("psnr"))
        caption = Text("held-out view" + (f", PSNR {psnr:.2f} dB" if isinstance(psnr, int | float) else ""))
        self.app.call_from_thread(self.query_one("#job-preview", Static).update, half_blocks(image) + caption)

    def show(self, job: dict[str, Any]) -> None:
        self.job = job
        lines = [f"[b]{job.get('name')}[/b]  {job['job_id']}"]
        state = job["state"]
        lines.append(
            f"state     [{STATE_STYLE.get(state, 'white')}]{state}[/]"
            + ("  (stop requested)" if job.get("cancel_requested") and state == "RUNNING" else "")
        )
        for key in ("scene", "engine", "preset", "worker", "attempts", "error", "note"):
            if job.get(key) not in (None, ""):
                lines.append(f"{key:<9} {job[key]}")
        lines.append(f"created   {age(job.get('created_at'))} ago")
        for section in ("progress", "result", "config", "resources"):
            if job.get(section):
                lines.append(f"\n[b]{section}[/b]")
                lines += [
                    f"  {k:<24} {json.dumps(v) if isinstance(v, dict | list) else v}"
                    for k, v in job[section].items()
                    if k not in ("history", "notes")
                ]
        lines += [f"[yellow]note[/yellow]  {escape(str(n))}" for n in (job.get("result") or {}).get("notes", [])]
        self.query_one("#job-detail", Static).update("\n".join(lines))

    def action_cancel(self) -> None:
        self.jobs = [self.job] if self.job else []
        confirm_cancel(self, self.job_id)

    def action_back(self) -> None:
        self.app.pop_screen()
