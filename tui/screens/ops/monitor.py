"""Monitor: queue depth, in-flight and dead-letter counts over time, jobs per state, newest jobs."""

from __future__ import annotations

from collections import deque

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.widgets import DataTable, Sparkline, Static

from backend.interface import MonitorSnapshot, markup_safe
from tui.messages import MonitorLoaded, WorkFailed
from tui.screens.base import DeckScreen
from tui.screens.jobs.list import job_cells
from tui.widgets.tables import sync_rows

HISTORY = 120
SERIES = {"visible": "queued messages", "flight": "in flight", "dlq": "dead-letter"}
COUNT_EVERY = 5  # jobs-per-state counts scan the table: every 5th refresh


class MonitorScreen(DeckScreen):
    BINDINGS = [Binding("r", "refresh", "Refresh now", id="monitor.refresh"), *DeckScreen.BINDINGS]
    interval_s = 1.0

    def __init__(self) -> None:
        super().__init__()
        self.series: dict[str, deque[float]] = {k: deque(maxlen=HISTORY) for k in SERIES}
        self.snapshot: MonitorSnapshot | None = None
        self.polls = 0

    def compose(self) -> ComposeResult:
        yield from self.compose_frame()
        with Grid(id="monitor-grid"):
            for key, title in SERIES.items():
                with Vertical(classes="metric"):
                    yield Static(title, id=f"title-{key}", classes="section-title")
                    yield Sparkline(list(self.series[key]), id=f"spark-{key}")
        yield Static("", id="per-state")
        yield DataTable(id="monitor-table", cursor_type="row", zebra_stripes=True)
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self.query_one("#monitor-table", DataTable).add_columns(
            "job", "state", "name", "engine", "iter", "psnr", "scene", "created"
        )
        self.action_refresh()
        self.set_interval(self.interval_s, self._tick)

    def _tick(self) -> None:
        if self.visible_now:
            self.action_refresh()

    def action_refresh(self) -> None:
        self.poll()

    @work(thread=True, exclusive=True, group="monitor")
    def poll(self) -> None:
        self.polls += 1
        reuse = self.snapshot.per_state if self.snapshot is not None and self.polls % COUNT_EVERY else None
        try:
            self.post_message(MonitorLoaded(self.deck.backend.monitor(counts=reuse)))
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed("monitor", str(exc)))

    def on_work_failed(self, message: WorkFailed) -> None:
        self.query_one("#per-state", Static).update(f"[red]{markup_safe(message.error)}[/red]")

    def on_monitor_loaded(self, message: MonitorLoaded) -> None:
        self.show(message.snapshot)

    def show(self, snap: MonitorSnapshot) -> None:
        self.snapshot = snap
        for key, value in (
            ("visible", snap.queue_visible),
            ("flight", snap.queue_in_flight),
            ("dlq", snap.dead_letter),
        ):
            self.series[key].append(float(value))
            self.query_one(f"#spark-{key}", Sparkline).data = list(self.series[key])
            self.query_one(f"#title-{key}", Static).update(f"{SERIES[key]}: {value}")
        self.query_one("#per-state", Static).update(
            "jobs  " + "   ".join(f"{state} {n}" for state, n in snap.per_state.items())
        )
        rows = [
            (j.job_id, job_cells(j))
            for j in snap.recent
            if not self.filter_text or self.filter_text in " ".join(job_cells(j)).lower()
        ]
        sync_rows(self.query_one("#monitor-table", DataTable), rows)

    def refilter(self) -> None:
        if self.snapshot is not None:
            self.show(self.snapshot)
