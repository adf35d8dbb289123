"""The job composer: a preset, a scene, the config as a form validated as you type, then submit.

Validation is the API's own (`compose_job` -> the job schema), so what the form accepts the API
accepts, and the error names the same field.
"""

from __future__ import annotations

import json
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Select, Static

from backend.interface import ConfigError, markup_safe
from tui.messages import JobSubmitted, WorkFailed
from tui.screens.base import DeckScreen


class ComposerScreen(DeckScreen):
    BINDINGS = [
        Binding("ctrl+s", "submit", "Submit", id="composer.submit"),
        Binding("escape", "back", "Back", id="composer.back"),
    ]
    MUTATING_ACTIONS = frozenset({"submit"})

    def __init__(self, preset: str | None = None) -> None:
        super().__init__()
        self.initial = preset
        self.presets: dict[str, Any] = {}
        self.spec: Any = None
        self.loaded: Any = None

    def compose(self) -> ComposeResult:
        self.presets = {p.name: p for p in self.deck.backend.presets("plenoxels")}
        # on the local cloud the executors are this machine's CPU: start from the preset that trains there
        wanted = "syn-cpu-quick" if self.deck.backend.profile.is_local else "syn"
        fallback = wanted if wanted in self.presets else next(iter(self.presets), None)
        first = self.initial if self.initial in self.presets else fallback
        yield from self.compose_frame()
        with Horizontal(id="composer"):
            with VerticalScroll(id="composer-form"):
                yield Label("preset")
                yield Select(
                    [(f"{n} - {p.description}", n) for n, p in self.presets.items()],
                    value=first,
                    allow_blank=False,
                    id="preset",
                )
                yield Label("scene: a name, s3:// URI or /path")
                yield Input(placeholder="e.g. lego", id="scene", compact=True)
                yield Label("name (optional)")
                yield Input(placeholder="defaults to the scene's name", id="name", compact=True)
                yield Label("engine")
                yield Select(
                    [("auto", "auto"), ("torch", "torch"), ("svox2", "svox2")],
                    value="auto",
                    allow_blank=False,
                    id="engine",
                )
                yield Static("config (svox2 options)", classes="section-title")
                yield Vertical(id="config-fields")
                yield Label("more options: key=value key=value")
                yield Input(placeholder="e.g. n_iters=2000 lambda_tv=1e-5", id="extra", compact=True)
                yield Button("Submit (ctrl+s)", id="submit", variant="primary")
            with Vertical(id="composer-side"):
                yield Static("", id="composer-error")
                yield Static("", id="composer-preview")
        yield from self.compose_footer()

    async def on_mount(self) -> None:
        await self._load_preset()
        self.query_one("#scene", Input).focus()
        if self.deck.read_only:
            self.query_one("#submit", Button).disabled = True
        self._offer_scenes()

    @work(thread=True, exclusive=True, group="composer-scenes")
    def _offer_scenes(self) -> None:
        """The pushed scenes: the only one fills the empty scene field, several are named in it."""
        try:
            names = [s["name"] for s in self.deck.backend.scenes() if s.get("complete")]
        except Exception:  # noqa: BLE001 - an offer, not a need: the field still takes any scene
            return
        self.app.call_from_thread(self._fill_scene, names)

    def _fill_scene(self, names: list[str]) -> None:
        scene = self.query_one("#scene", Input)
        if scene.value or not names:
            return
        if len(names) == 1:
            scene.value = names[0]
        else:
            scene.placeholder = "pushed: " + ", ".join(names[:4]) + (" ..." if len(names) > 4 else "")

    @on(Select.Changed, "#preset")
    async def _preset_changed(self) -> None:
        await self._load_preset()

    async def _load_preset(self) -> None:
        chosen = self.query_one("#preset", Select).value
        name = chosen if isinstance(chosen, str) else None
        preset = self.presets.get(name) if name else None
        if preset is None or name == self.loaded:
            return
        self.loaded = name
        box = self.query_one("#config-fields", Vertical)
        await box.remove_children()
        fields = []
        for key, value in (preset.values.get("config") or {}).items():
            text = json.dumps(value) if not isinstance(value, str) else value
            # svox2 takes some options as JSON text (opt.py's --reso is a str, read with json.loads)
            label = f"{key} (JSON text, as svox2 takes it)" if isinstance(value, str) and text[:1] in "[{" else key
            fields += [
                Label(label, classes="field-label"),
                Input(value=text, id=f"cfg-{key}", classes="cfg", compact=True),
            ]
        await box.mount_all(fields)
        if preset.values.get("scene"):
            self.query_one("#scene", Input).value = str(preset.values["scene"])
        if preset.values.get("engine"):
            self.query_one("#engine", Select).value = preset.values["engine"]
        self.call_after_refresh(self.validate)

    @on(Input.Changed)
    @on(Select.Changed, "#engine")
    def _changed(self, event: Any) -> None:
        if getattr(event, "input", None) is not None and event.input.id == "filter":
            return
        self.validate()

    def overrides(self) -> list[str]:
        sets = [f"{(inp.id or '').removeprefix('cfg-')}={inp.value}" for inp in self.query("Input.cfg").results(Input)]
        extra = self.query_one("#extra", Input).value.split()
        name = self.query_one("#name", Input).value.strip()
        sets += extra + ([f"name={name}"] if name else [])
        sets.append(f"engine={self.query_one('#engine', Select).value}")
        return sets

    def validate(self) -> bool:
        chosen = self.query_one("#preset", Select).value
        preset = self.presets.get(chosen) if isinstance(chosen, str) else None
        for inp in self.query("Input.cfg").results(Input):
            inp.remove_class("invalid")
        error = self.query_one("#composer-error", Static)
        preview = self.query_one("#composer-preview", Static)
        scene = self.query_one("#scene", Input).value.strip() or None
        try:
            self.spec = self.deck.backend.compose_job(preset, scene, self.overrides())
        except ConfigError as exc:
            self.spec = None
            message = str(exc)
            error.update(f"[red]{message}[/red]")
            key = (exc.field or "").removeprefix("config.").split("[", 1)[0]
            for inp in self.query("Input.cfg").results(Input):
                if inp.id == f"cfg-{key}":
                    inp.add_class("invalid")
            return False
        error.update("[green]valid[/green]")
        preview.update(json.dumps(self.spec.to_dict(), indent=2))
        return True

    @on(Button.Pressed, "#submit")
    def _pressed(self) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        if self.deck.read_only:
            self.notify("read-only mode: nothing is submitted", severity="warning")
            return
        if not self.validate():
            self.notify("fix the highlighted field first", severity="error")
            return
        self.submit(self.spec)

    @work(thread=True, exclusive=True, group="submit")
    def submit(self, spec: Any) -> None:
        try:
            self.post_message(JobSubmitted(self.deck.backend.submit_job(spec)))
        except Exception as exc:  # noqa: BLE001
            self.post_message(WorkFailed("submit", str(exc)))

    def on_job_submitted(self, message: JobSubmitted) -> None:
        self.notify(f"queued {message.job.job_id[:8]} ({message.job.name})")
        self.app.pop_screen()

    def on_work_failed(self, message: WorkFailed) -> None:
        self.query_one("#composer-error", Static).update(f"[red]{markup_safe(message.error)}[/red]")
        self.notify(f"{message.what} failed: {message.error}", severity="error")

    def action_back(self) -> None:
        self.app.pop_screen()
