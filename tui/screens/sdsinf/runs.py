"""SDS-Inf: launch a run from a preset, watch each worker's layers stream in, compare runs."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.events import Resize
from textual.widget import Widget
from textual.widgets import Button, DataTable, Input, Label, Select, Sparkline, Static

from backend.interface import VARIANTS, LiveMetric, RunSummary, markup_safe, size
from tui.messages import (
    PresetsLoaded,
    RunCompared,
    RunFinished,
    RunMetric,
    RunsLoaded,
    RunStarted,
    WorkFailed,
)
from tui.screens.base import DeckScreen
from tui.widgets.form import Form
from tui.widgets.tables import sync_rows

MIN_FIELD_WIDTH = 11  # the longest label ("batch size") and one column to spare
FORM_CHROME = 9  # the form's padding (2) and the gutters between its 8 columns (7)
LAUNCH_WIDTH = 18
MIN_PRESET_WIDTH = 16
SELECT_CHROME = 4  # the compact select's padding and arrow
SHORT_HEIGHT = 32


class SdsinfScreen(DeckScreen):
    # nothing takes focus on arrival: the screen keys (1-5, ?, q) work at once; tab reaches the form
    AUTO_FOCUS = ""
    BINDINGS = [
        Binding("ctrl+r", "launch", "Launch run", id="sdsinf.launch"),
        Binding("r", "refresh", "Refresh runs", id="sdsinf.refresh"),
        Binding("u", "make_data", "Generate + upload data", id="sdsinf.make_data"),
        Binding("c", "compare", "Compare run", id="sdsinf.compare"),
        *DeckScreen.BINDINGS,
    ]
    MUTATING_ACTIONS = frozenset({"launch", "make_data"})

    def __init__(self) -> None:
        super().__init__()
        self.workers_seen: dict[int, LiveMetric] = {}
        self.per_layer: dict[tuple[int, int], list[float]] = {}  # (batch, layer) -> [duration, comm, comp] ms
        self.runs: list[RunSummary] = []
        self._preset_options: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        yield from self.compose_frame()
        yield Grid(id="sdsinf-form")  # the form and the live view mount right after the first paint
        yield Static("", id="sds-status")
        yield Vertical(id="sds-body")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self.call_after_refresh(self._mount_body)

    def on_resize(self, event: Resize) -> None:
        self._fit(event.size.width, event.size.height)

    def _fit(self, width: int, height: int) -> None:
        """One row of the preset, six fields and the button where they fit with their labels whole,
        else two rows of four; on a short terminal the communication/computation plots give their rows
        to the runs table."""
        preset_width = self._preset_width()
        # the data field takes two shares: a data name ("radixnet-1024n-120l") is longer than a number
        wide = width >= preset_width + 7 * MIN_FIELD_WIDTH + LAUNCH_WIDTH + FORM_CHROME
        form = self.query_one("#sdsinf-form", Grid)
        form.set_class(not wide, "-narrow")
        form.styles.grid_size_columns = 8 if wide else 4
        rest = f"1fr 1fr 2fr 1fr 1fr 1fr {LAUNCH_WIDTH}" if wide else "1fr 1fr 2fr"
        form.styles.grid_columns = f"{preset_width} {rest}"
        form.styles.height = 2 if wide else 4
        self.set_class(height < SHORT_HEIGHT, "-short")

    def _preset_width(self) -> int:
        # the select shows the whole of the longest name: a name cut or wrapped reads as another preset
        names = [str(label) for label, _ in getattr(self, "_preset_options", [])]
        return max(MIN_PRESET_WIDTH, *(len(n) + SELECT_CHROME for n in names)) if names else MIN_PRESET_WIDTH

    @staticmethod
    def _form() -> list[Widget]:
        def field(label: str, widget: Widget) -> Vertical:
            return Vertical(Label(label), widget)

        return [
            # the preset list is filled by a worker: reading the preset files must not hold up a paint
            field("preset", Select([], prompt="loading presets", id="sds-preset", compact=True)),
            field(
                "variant",
                Select([(v, v) for v in VARIANTS], prompt="preset's", allow_blank=True, id="sds-variant", compact=True),
            ),
            # queue and object runs only: serial is one worker, server one host
            field(
                "workers",
                Input(id="sds-workers-n", compact=True, valid_empty=True, type="integer", placeholder="preset's"),
            ),
            field("data", Input(id="sds-data", compact=True, valid_empty=True, placeholder="preset's")),
            field(
                "batch size",
                Input(id="sds-batch", compact=True, valid_empty=True, type="integer", placeholder="preset's"),
            ),
            # the original's invocation tree: fan-out and depth (queue and object runs)
            field("bfr", Input(id="sds-bfr", compact=True, valid_empty=True, type="integer", placeholder="preset's")),
            field(
                "levels", Input(id="sds-levels", compact=True, valid_empty=True, type="integer", placeholder="preset's")
            ),
            Vertical(Label(" "), Button("Launch ^r", id="sds-launch", variant="primary", compact=True)),
        ]

    async def _mount_body(self) -> None:
        """The form, the live view's tables and plots, mounted once the screen's frame has painted: the
        screen answers the key that opened it at once and fills in a frame later."""
        await self.query_one("#sdsinf-form", Grid).mount_all(self._form())
        self._fit(self.size.width, self.size.height)
        if self.deck.read_only:
            self.query_one("#sds-launch", Button).disabled = True
        title = "duration ms a layer, as layers finish (slowest worker)"
        await self.query_one("#sds-body", Vertical).mount_all(
            [
                DataTable(id="sds-workers", cursor_type="row"),
                Static(title, classes="section-title", id="sds-plot-title"),
                Sparkline([], id="sds-plot"),
                Horizontal(
                    Vertical(Static("communication ms", classes="section-title"), Sparkline([], id="sds-comm")),
                    Vertical(Static("computation ms", classes="section-title"), Sparkline([], id="sds-comp")),
                    id="sds-split",
                ),
                Static("runs", classes="section-title"),
                DataTable(id="sds-runs", cursor_type="row", zebra_stripes=True),
            ]
        )
        self.query_one("#sds-workers", DataTable).add_columns(
            # short headers: the nine columns fit 80 (messages and bytes sent out, messages received)
            "worker",
            "batch",
            "layer",
            "rows",
            "nnz",
            "msgs out",
            "bytes out",
            "msgs in",
            "last ms",
        )
        self.query_one("#sds-runs", DataTable).add_columns(
            "run", "config", "variant", "inputs", "categories", "truth", "billion edges/s", "runtime s"
        )
        self.load_presets()
        self._show_runs(self.runs)  # the runs themselves load on resume (DeckScreen), maybe already

    @work(thread=True, exclusive=True, group="sds-presets")
    def load_presets(self) -> None:
        try:
            names = [p.name for p in self.deck.backend.presets("sdsinf")]
        except Exception as exc:  # noqa: BLE001 - a broken user preset file is named in the status line
            self.post_message(WorkFailed("presets", str(exc)))
            return
        self.post_message(PresetsLoaded(names))

    async def on_presets_loaded(self, message: PresetsLoaded) -> None:
        names = message.names
        self._preset_options = [(n, n) for n in names]
        if names:
            # a select made without a blank: the "loading presets" placeholder is not left as a choice
            old = self.query_one("#sds-preset", Select)
            field = old.parent
            await old.remove()
            if isinstance(field, Widget):
                await field.mount(
                    Select(self._preset_options, value=names[0], allow_blank=False, id="sds-preset", compact=True)
                )
        self._fit(self.size.width, self.size.height)

    def action_make_data(self) -> None:
        """What `skydeck sdsinf data generate` + `data upload` do, from here."""
        form = Form(
            "Generate a Graph Challenge-style network and inputs, and upload them",
            [("name", "data name (presets name it)", "radixnet-1024n-120l"), ("dir", "write it to", "sdsinf-data"),
             ("neurons", "neurons", "1024"), ("layers", "layers", "120"), ("inputs", "inputs", "1000")],
        )  # fmt: skip

        def make(a: dict[str, str]) -> str:
            try:
                neurons, layers, inputs = int(a["neurons"]), int(a["layers"]), int(a["inputs"])
            except ValueError:
                raise ValueError("neurons, layers and inputs must be whole numbers") from None
            return self.deck.backend.generate_and_upload_sdsinf(
                a["name"], Path(a["dir"]).expanduser(), neurons, layers, inputs
            )

        self.ask_then_run("generate + upload data", form, make)

    def action_refresh(self) -> None:
        self.load_runs()

    def action_compare(self) -> None:
        """The run under the cursor in the runs table beside a published metrics file, as
        `skydeck sdsinf compare` shows it."""
        table = self.query("#sds-runs")
        if not table or table.first(DataTable).row_count == 0:
            self.notify("no run to compare: launch one first", severity="warning")
            return
        runs = table.first(DataTable)
        run_id = str(runs.coordinate_to_cell_key(runs.cursor_coordinate).row_key.value)
        # a file that is there (the newest master_metrics_*.csv here), never a name that is not
        found = sorted(Path.cwd().glob("master_metrics_*.csv"), key=lambda p: p.stat().st_mtime, reverse=True)
        form = Form(
            f"Compare run {run_id} with a published metrics file",
            # `published`: the original's c1 run, which skydeck keeps (a file here, if any, comes first)
            [("path", "master_metrics_*.csv, or published", str(found[0]) if found else "published")],
        )

        def go(answers: dict[str, str] | None) -> None:
            if answers is not None:
                self.compare_run(run_id, answers["path"])

        self.app.push_screen(form, go)

    @work(thread=True, exclusive=True, group="sds-compare")
    def compare_run(self, run_id: str, path: str) -> None:
        try:
            full_id, columns = self.deck.backend.compare_run(run_id, Path(path).expanduser())
        except Exception as exc:  # noqa: BLE001 - the operator reads it and picks another file
            self.post_message(WorkFailed("compare", str(exc)))
            return
        self.post_message(RunCompared(full_id, path, columns))

    def on_run_compared(self, message: RunCompared) -> None:
        from tui.screens.sdsinf.compare import ComparisonScreen

        name = "published c1" if message.published in ("published", "c1") else Path(message.published).name
        self.app.push_screen(ComparisonScreen(message.run_id, name, message.columns))

    @work(thread=True, exclusive=True, group="sds-runs")
    def load_runs(self) -> None:
        try:
            self.post_message(RunsLoaded(self.deck.backend.runs()))
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed("runs", str(exc)))

    def on_runs_loaded(self, message: RunsLoaded) -> None:
        self._show_runs(message.runs)

    def on_work_failed(self, message: WorkFailed) -> None:
        self._status(f"[red]{message.what}: {markup_safe(message.error)}[/red]")
        if message.what == "compare":  # the dialog is gone: say it where the eye is
            self.notify(f"compare: {message.error}", severity="error", timeout=10)
        if message.what == "run":
            self.notify(message.error, severity="error")

    def _show_runs(self, runs: list[RunSummary]) -> None:
        self.runs = runs
        if not self.query("#sds-runs"):
            return  # the body mounts a frame after the screen; it loads the runs itself then
        truth = {None: "-", True: "ok", False: "DIFFERS"}
        rows = [
            (
                r.run_id,
                (
                    markup_safe(r.run_id, limit=80),
                    markup_safe(r.config, limit=80),
                    markup_safe(r.variant, limit=40),
                    str(r.inputs),
                    str(r.categories),
                    truth[r.matches_truth],
                    f"{r.edges_per_s / 1e9:.2f}",
                    f"{r.runtime_s:.1f}",
                ),
            )
            for r in runs
            if not self.filter_text or self.filter_text in f"{r.run_id} {r.config}".lower()
        ]
        sync_rows(self.query_one("#sds-runs", DataTable), rows)

    def refilter(self) -> None:
        self._show_runs(self.runs)

    def _status(self, text: str) -> None:
        self.query_one("#sds-status", Static).update(text)

    @on(Button.Pressed, "#sds-launch")
    def _pressed(self) -> None:
        self.action_launch()

    def action_launch(self) -> None:
        if self.deck.read_only:
            self.notify("read-only mode: nothing is launched", severity="warning")
            return
        preset = self.query_one("#sds-preset", Select).value
        if preset == Select.BLANK:
            self.notify("no sdsinf preset to launch", severity="error")
            return
        try:
            batch = self._count("#sds-batch", "batch size")
            self.workers_seen.clear()
            self.per_layer.clear()
            # the last run's rows go now, not when the new run's first layer lands (10 s or more later)
            self.query_one("#sds-workers", DataTable).clear()
            for plot in ("#sds-plot", "#sds-comm", "#sds-comp"):
                self.query_one(plot, Sparkline).data = []
            workers = self._count("#sds-workers-n", "workers", most=256)
            bfr, levels = self._count("#sds-bfr", "bfr"), self._count("#sds-levels", "levels")
        except ValueError as exc:
            self._status(f"[red]{exc}[/red]")
            return
        # the form has done its work: the screen's keys (c, r, 1-5) work again at once, not in a text field
        self.query_one("#sds-workers", DataTable).focus()
        self.run_it(
            str(preset),
            None
            if self.query_one("#sds-variant", Select).is_blank()
            else str(self.query_one("#sds-variant", Select).value),
            self.query_one("#sds-data", Input).value.strip() or None,
            batch,
            workers,
            bfr,
            levels,
        )

    def _count(self, widget: str, label: str, most: int | None = None) -> int | None:
        """A form field's whole number, None when left empty; ValueError naming the field otherwise."""
        text = self.query_one(widget, Input).value.strip()
        if not text:
            return None
        if not text.isdigit() or int(text) < 1 or (most is not None and int(text) > most):
            kind = "a positive integer" if most is None else f"an integer from 1 to {most}"
            raise ValueError(f"{label}: must be {kind}")
        return int(text)

    def _post_metric(self, metric: LiveMetric) -> None:
        self.post_message(RunMetric(metric))

    @work(thread=True, exclusive=True, group="sds-run")
    def run_it(
        self,
        preset_name: str,
        variant: str | None,
        data: str | None,
        batch: int | None,
        workers: int | None = None,
        bfr: int | None = None,
        nlevels: int | None = None,
    ) -> None:
        backend = self.deck.backend
        try:
            # the same plan the CLI makes from a preset: partition and server mode included
            plan = backend.plan_run(
                preset_name, variant=variant, workers=workers, data=data, batch=batch, bfr=bfr, nlevels=nlevels
            )
            started = backend.start_run(plan)
            self.post_message(RunStarted(started.run_id, started.variant))
            summary = backend.follow_run(started.run_id, self._post_metric)
        except Exception as exc:  # noqa: BLE001 - the operator reads it in the status line
            self.post_message(WorkFailed("run", str(exc)))
            return
        self.post_message(RunFinished(summary))

    @on(Input.Submitted, "#sdsinf-form Input")
    def _launch_on_enter(self) -> None:
        """Enter in any field of the form launches, as the button does (empty fields take the preset's)."""
        self.action_launch()

    def on_run_started(self, message: RunStarted) -> None:
        self._status(f"run {message.run_id} started ({message.variant})")

    def on_run_metric(self, message: RunMetric) -> None:
        m = message.metric
        self.workers_seen[m.worker] = m
        layer = self.per_layer.setdefault((m.batch, m.layer), [0.0, 0.0, 0.0])
        layer[0] = max(layer[0], m.duration_s * 1000)
        layer[1] = max(layer[1], m.comm_s * 1000)
        layer[2] = max(layer[2], m.comp_s * 1000)
        ordered = [self.per_layer[k] for k in sorted(self.per_layer)][-400:]
        self.query_one("#sds-plot", Sparkline).data = [v[0] for v in ordered]
        self.query_one("#sds-comm", Sparkline).data = [v[1] for v in ordered]
        self.query_one("#sds-comp", Sparkline).data = [v[2] for v in ordered]
        total = sum(v[0] for v in ordered) or 1.0
        self.query_one("#sds-plot-title", Static).update(
            f"duration ms a layer (slowest worker); communication {100 * sum(v[1] for v in ordered) / total:.0f}% of it"
        )
        rows = [
            (
                str(w),
                (
                    str(w),
                    str(v.batch),
                    f"{v.layer + 1}/{v.layers}",
                    str(v.rows_active),
                    str(v.nnz),
                    str(v.messages_sent),
                    size(v.bytes_sent),
                    str(v.messages_received),
                    f"{v.duration_s * 1000:.1f}",
                ),
            )
            for w, v in sorted(self.workers_seen.items())
        ]
        sync_rows(self.query_one("#sds-workers", DataTable), rows)

    def on_run_finished(self, message: RunFinished) -> None:
        summary = message.summary
        check = {None: "no truth to check", True: "categories match the truth", False: "categories DIFFER"}
        self._status(
            f"[green]run {summary.run_id} done[/green]: {summary.categories} of {summary.inputs} "
            f"categorised, {summary.edges_per_s / 1e9:.2f} billion edges/s, {summary.runtime_s:.1f}s "
            f"wall; {check[summary.matches_truth]}"
        )
        self.notify(f"SDS-Inf run {summary.run_id} finished")
        self.action_refresh()
