"""One job, live: its details, the tail of its log and its latest held-out render."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from backend.interface import Job, age, duration, markup_safe
from tui.messages import JobCancelled, JobLoaded, WorkFailed
from tui.screens.base import DeckScreen
from tui.screens.jobs.cancel import cancelled_note, confirm_cancel
from tui.screens.jobs.style import STATE_STYLE
from tui.widgets.form import Form
from tui.widgets.preview import decode, half_blocks

NARROW_DETAIL = 130  # columns: under this the preview (up to 66 wide) goes below the details
PREVIEW_EVERY_S = 5.0  # a running job's preview is read and drawn again at most this often
LOG_TAIL_BYTES = 16 * 1024  # the last lines shown need no more of a log that may be megabytes


class JobDetailScreen(DeckScreen):
    BINDINGS = [
        Binding("c", "cancel", "Cancel job", id="job.cancel"),
        Binding("f", "fetch", "Fetch results", id="job.fetch"),
        Binding("escape", "back", "Back", id="job.back"),
        # the details run past a small terminal's height: these keys scroll them (the key bar says so)
        Binding("pagedown", "scroll_detail('scroll_page_down')", "PgDn/PgUp scroll", id="job.page_down"),
        Binding("pageup", "scroll_detail('scroll_page_up')", "Scroll up", show=False, id="job.page_up"),
        Binding("down", "scroll_detail('scroll_down')", "Down", show=False, id="job.down"),
        Binding("up", "scroll_detail('scroll_up')", "Up", show=False, id="job.up"),
        Binding("end", "scroll_detail('scroll_end')", "End", show=False, id="job.end"),
        Binding("home", "scroll_detail('scroll_home')", "Home", show=False, id="job.home"),
    ]
    MUTATING_ACTIONS = frozenset({"cancel"})

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id
        self.job: Job | None = None
        self._preview_mark: tuple[Any, str] | None = None
        self._preview_at = 0.0
        self._log_done = False
        self._shown = ""
        self._poll: Any = None
        self._ended_loads = 0

    def compose(self) -> ComposeResult:
        yield from self.compose_frame()
        with Horizontal(id="job-detail-body"):
            with VerticalScroll():
                yield Static(f"job {self.job_id}", id="job-detail")
                yield Static("", id="job-log")
            yield Static("", id="job-preview")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self._fit(self.app.size.width)
        self.load()
        self._poll = self.set_interval(1.0, self.load)

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width)

    def _fit(self, width: int) -> None:
        self.query_one("#job-detail-body").set_class(width < NARROW_DETAIL, "narrow")

    @work(thread=True, exclusive=True, group="job-detail")
    def load(self) -> None:
        backend = self.deck.backend
        try:
            job = backend.job(self.job_id)
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed("load job", str(exc)))
            return
        # the log is followed while the job runs; the preview is fetched when the job moved on
        log = None if job.state == "QUEUED" or self._log_done else backend.job_log(self.job_id, LOG_TAIL_BYTES)
        mark = (job.iteration, job.state)
        # every iteration moves the mark: while running, the image is read and decoded every few seconds
        due = job.state != "RUNNING" or time.monotonic() - self._preview_at >= PREVIEW_EVERY_S
        wants_preview = job.state in ("RUNNING", "SUCCEEDED") and mark != self._preview_mark and due
        preview = backend.job_preview(self.job_id) if wants_preview else None
        self.post_message(JobLoaded(job, log, preview))

    def on_job_loaded(self, message: JobLoaded) -> None:
        job = message.job
        ended_now = job.ended and (self.job is None or not self.job.ended)
        self.show(job)
        if ended_now:
            self.refresh_bindings()
        self._ended_loads += int(job.ended)
        if self._ended_loads >= 2 and self._poll is not None:
            # an ended job does not change: its final log and preview were read after it ended, so
            # polling stops (a cancel or a fetch from here loads it again)
            self._poll.stop()
            self._poll = None
        if message.log is not None:
            self._log_done = job.ended
            tail = "\n".join(markup_safe(line) for line in message.log.splitlines()[-12:])
            self.query_one("#job-log", Static).update(f"\n[b]log[/b] (last lines)\n{tail}")
        if message.preview is not None:
            try:
                image = decode(message.preview, max_width=64)
            except Exception:  # noqa: BLE001 - an unreadable preview: the details stand alone
                return
            self._preview_mark = (job.iteration, job.state)
            self._preview_at = time.monotonic()
            psnr = job.psnr
            caption = Text("held-out view" + ("" if psnr is None else f", PSNR {psnr:.2f} dB"))
            self.query_one("#job-preview", Static).update(half_blocks(image) + caption)

    def on_work_failed(self, message: WorkFailed) -> None:
        if message.what == "cancel":
            self.notify(message.error, severity="error")
            return
        self.query_one("#job-detail", Static).update(f"[red]{markup_safe(message.error)}[/red]")

    def on_job_cancelled(self, message: JobCancelled) -> None:
        self.notify(cancelled_note(message.job))
        self.load()

    def show(self, job: Job) -> None:
        self.job = job
        lines = [f"[b]{markup_safe(job.name)}[/b]  {markup_safe(job.job_id)}"]
        lines.append(
            f"state     [{STATE_STYLE.get(job.state, 'white')}]{markup_safe(job.state)}[/]"
            + ("  (stop requested)" if job.cancel_requested and job.state == "RUNNING" else "")
        )
        for key in ("scene", "engine", "preset", "worker", "attempts", "error", "note"):
            value = getattr(job, key)
            if value not in (None, "", 0):
                lines.append(f"{key:<9} {markup_safe(str(value))}")
        lines.append(f"created   {age(job.created_at)} ago")
        # a finished job's result comes first: on a small terminal it is what the operator came for
        order = (
            ("result", "progress", "config", "resources")
            if job.ended
            else ("progress", "result", "config", "resources")
        )
        for section in order:
            section_value = getattr(job, section)
            values: dict[str, Any] = section_value if isinstance(section_value, dict) else section_value.to_dict()
            if values:
                lines.append(f"\n[b]{section}[/b]")
                lines += [
                    f"  {markup_safe(k):<24} {markup_safe(json.dumps(v) if isinstance(v, dict | list) else str(v))}"
                    for k, v in values.items()
                    if k not in ("history", "notes", "phases_s")
                ]
        if job.phases:  # one a line: the whole set is wider than 80 columns
            lines.append("\n[b]phases[/b]")
            lines += [f"  {name:<24} {duration(seconds)}" for name, seconds in job.phases.items()]
        lines += [f"[yellow]note[/yellow]  {markup_safe(n)}" for n in job.notes]
        text = "\n".join(lines)
        if text != self._shown:  # an unchanged detail is not laid out and painted again every second
            self._shown = text
            self.query_one("#job-detail", Static).update(text)

    def action_scroll_detail(self, how: str) -> None:
        """Scroll what holds the details: the whole body when narrow (the preview below them), else the
        details' own column."""
        body = self.query_one("#job-detail-body")
        target = body if body.has_class("narrow") else self.query_one("#job-detail-body > VerticalScroll")
        getattr(target, how)(animate=False)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel" and (self.job is None or self.job.ended):
            return False  # nothing to cancel: the key is not offered
        return super().check_action(action, parameters)

    def action_fetch(self) -> None:
        """What `skydeck jobs fetch` does: the checkpoint, renders, turntable and metrics into a folder."""
        form = Form(f"Fetch job {self.job_id[:8]}'s results", [("dir", "into", f"results/{self.job_id}")])

        def fetch(answers: dict[str, str]) -> str:
            files = self.deck.backend.fetch_results(self.job_id, Path(answers["dir"]).expanduser())
            return f"{len(files)} file(s) in {answers['dir']}"

        self.ask_then_run("fetch results", form, fetch)

    def action_cancel(self) -> None:
        if self.job is not None:
            confirm_cancel(self, self.job)

    def action_back(self) -> None:
        self.app.pop_screen()
