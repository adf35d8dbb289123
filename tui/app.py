"""The operator console: Stacks, Jobs, Monitor and Logs over the headless backend.

Keyboard first: 1-4 switch screens, `?` help, `/` filter, ctrl+p the command palette (built from the
current screen), esc back. Blocking work runs in thread workers and comes back as messages; the UI
thread never waits on the network. `--read-only` hides every action that changes anything.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from backend.interface import Backend
from tui.messages import AccountKnown, JobEnded, NothingDeployed
from tui.screens.base import DeckScreen
from tui.screens.help import HelpScreen
from tui.screens.infra.stacks import StacksScreen
from tui.screens.jobs.list import JobsScreen
from tui.screens.ops.logs import LogsScreen
from tui.screens.ops.monitor import MonitorScreen
from tui.screens.sdsinf.runs import SdsinfScreen

JOB_WATCH_S = 5.0


class SkydeckApp(App[None]):
    TITLE = "skydeck"
    CSS_PATH = "app.tcss"
    MODES = {
        "stacks": StacksScreen,
        "jobs": JobsScreen,
        "monitor": MonitorScreen,
        "sdsinf": SdsinfScreen,
        "logs": LogsScreen,
    }
    DEFAULT_MODE = "jobs"
    BINDINGS = [
        Binding("1", "switch_mode('stacks')", "Stacks", id="app.go_stacks"),
        Binding("2", "switch_mode('jobs')", "Jobs", id="app.go_jobs"),
        Binding("3", "switch_mode('monitor')", "Monitor", id="app.go_monitor"),
        Binding("4", "switch_mode('sdsinf')", "SDS-Inf", id="app.go_sdsinf"),
        Binding("5", "switch_mode('logs')", "Logs", id="app.go_logs"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(self, backend: Backend, read_only: bool = False, mode: str | None = None) -> None:
        self.mode_chosen = mode is not None
        if mode:
            if mode not in self.MODES:
                raise ValueError(f"no screen named {mode!r}; screens: {', '.join(self.MODES)}")
            self.DEFAULT_MODE = mode  # type: ignore[misc]  # textual declares it ClassVar; the console picks its first screen per run
        super().__init__()
        self.backend = backend
        self.read_only = read_only
        self._set_subtitle()

    def _set_subtitle(self, account: str | None = None) -> None:
        p = self.backend.profile
        where = "local cloud" if p.is_local else p.region
        parts = [f"profile {p.name}", where] + ([f"account {account}"] if account else [])
        self.sub_title = " · ".join(parts) + (" · READ-ONLY" if self.read_only else "")

    def on_mount(self) -> None:
        try:
            self.set_keymap(self.backend.keymap())
        except Exception as exc:  # noqa: BLE001 - a broken keymap file must not keep the console shut
            self.notify(f"keymap not applied: {exc}", severity="error", timeout=10)
        self.load_account()
        if not self.mode_chosen:
            self.check_first_run()
        # Objects alive after start-up stay alive: keep the collector from walking them on every full
        # collection, which otherwise shows as a 100+ ms stall on a random key press.
        self.call_after_refresh(gc.freeze)
        self._job_states: dict[str, str] | None = None
        self.set_interval(JOB_WATCH_S, self.watch_jobs)

    @work(thread=True, exclusive=True, group="job-watch")
    def watch_jobs(self) -> None:
        """Notify when one of the newest jobs ends, whichever screen is showing."""
        try:
            jobs = self.backend.jobs(limit=50).items
        except Exception:  # noqa: BLE001 - no jobs stack yet, or the cloud is down: nothing to tell
            return
        states = {j.job_id: j.state for j in jobs}
        previous, self._job_states = self._job_states, states
        if previous is None:
            return  # the first look only learns what is there
        for job in jobs:
            before = previous.get(job.job_id)
            if job.ended and before not in (None, job.state):
                self.post_message(JobEnded(job))

    def on_job_ended(self, message: JobEnded) -> None:
        job = message.job
        name = f"{job.job_id[:8]} {job.name}".strip()
        psnr = job.result.psnr
        if job.state == "SUCCEEDED":
            self.notify(f"job {name} succeeded" + (f": PSNR {psnr:.2f} dB" if isinstance(psnr, int | float) else ""))
        elif job.state == "FAILED":
            self.notify(f"job {name} failed: {job.error or ''}"[:300], severity="error", timeout=10)
        else:
            self.notify(f"job {name} cancelled", severity="warning")

    @work(thread=True, exclusive=True, group="first-run")
    def check_first_run(self) -> None:
        """With nothing deployed yet, the first thing to do is on the Stacks screen: open there."""
        try:
            infra = next(s for s in self.backend.stacks() if s.short == "infra")
        except Exception:  # noqa: BLE001 - the Jobs screen says what is wrong with the cloud
            return
        if not infra.deployed:
            self.post_message(NothingDeployed())

    def on_nothing_deployed(self, message: NothingDeployed) -> None:
        self.switch_mode("stacks")
        hint = "" if self.read_only else ": press a to deploy them all"
        self.notify(f"nothing is deployed on profile {self.backend.profile.name} yet{hint}", timeout=8)

    @work(thread=True, exclusive=True, group="account")
    def load_account(self) -> None:
        try:
            account = self.backend.account_id()
        except Exception:  # noqa: BLE001 - the header just stays without it; doctor explains
            return
        if account:
            self.post_message(AccountKnown(account))

    def on_account_known(self, message: AccountKnown) -> None:
        self._set_subtitle(message.account)

    def action_help(self) -> None:
        screen = self.screen
        keys = []
        if isinstance(screen, DeckScreen):
            for binding in screen.BINDINGS:
                if isinstance(binding, Binding) and screen.check_action(binding.action, ()):
                    keys.append((self.get_key_display(binding), binding.description))
        self.push_screen(HelpScreen(keys, self.read_only))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        if isinstance(screen, DeckScreen):
            for title, help_text, callback in screen.palette_commands():
                yield SystemCommand(title, help_text, callback)
        for mode in self.MODES:
            yield SystemCommand(f"Go to {mode}", f"switch to the {mode} screen", lambda m=mode: self.switch_mode(m))
        try:
            names = self.backend.profiles()
        except Exception:  # noqa: BLE001 - a broken profiles file must not break the palette
            names = [self.backend.profile.name]
        for name in names:
            if name != self.backend.profile.name:
                yield SystemCommand(
                    f"Switch profile: {name}",
                    "point the console at another profile",
                    lambda n=name: self.switch_profile(n),
                )
        yield from super().get_system_commands(screen)

    def switch_profile(self, name: str) -> None:
        try:
            self.backend = self.backend.switch(name)
        except Exception as exc:  # noqa: BLE001
            self.notify(str(exc), severity="error")
            return
        self._set_subtitle()
        self.load_account()
        self.notify(f"profile {name}")
        screen = self.screen
        if hasattr(screen, "action_refresh"):
            screen.action_refresh()
