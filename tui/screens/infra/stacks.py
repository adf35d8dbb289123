"""Stacks: status and outputs of each stack; deploy, update and delete with live events."""

from __future__ import annotations

import time
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, RichLog, Static

from backend.interface import ORDER, STACKS, markup_safe
from tui.messages import StackActionDone, StackEventArrived, StackRow, StacksLoaded, WorkFailed
from tui.screens.base import DeckScreen
from tui.widgets.confirm import Confirm

WHAT_IS_DESTROYED = {
    "infra": "the jobs queue and dead-letter queue (queued messages are lost); "
    "the data bucket and the jobs table are kept",
    "api": "the API Gateway endpoint and the jobs Lambda; clients can no longer submit",
    "fleet": "the GPU Auto Scaling group and its instances (running jobs are handed back to the queue), the VPC",
    "sdsinf": "the SDS-Inf buckets (with their data, weights and run metrics) and the Serial function",
}


class StacksScreen(DeckScreen):
    BINDINGS = [
        Binding("d", "deploy", "Deploy/update", id="stacks.deploy"),
        Binding("a", "deploy_all", "Deploy all", id="stacks.deploy_all"),
        Binding("x", "delete", "Delete", id="stacks.delete"),
        Binding("r", "refresh", "Refresh", id="stacks.refresh"),
        *DeckScreen.BINDINGS,
    ]
    MUTATING_ACTIONS = frozenset({"deploy", "deploy_all", "delete"})

    def __init__(self) -> None:
        super().__init__()
        self.stacks: list[StackRow] = []
        self.busy = False

    def compose(self) -> ComposeResult:
        yield from self.compose_frame()
        with Horizontal(id="stacks-body"):
            yield DataTable(id="stacks-table", cursor_type="row", zebra_stripes=True)
            # outputs are long (bucket names, ARNs) and many: the panel scrolls (Tab to it, then arrows)
            with VerticalScroll(id="stack-outputs-box", can_focus=True):
                yield Static("", id="stack-outputs")
        yield Static("events", classes="section-title")
        yield RichLog(id="stack-events", max_lines=2000, markup=True, wrap=True)
        yield from self.compose_footer()

    def on_mount(self) -> None:
        table = self.query_one("#stacks-table", DataTable)
        # the stack's full name and what it holds are the side panel's first lines: columns of them
        # were cut at 80 columns, and took the width the outputs' bucket names need
        table.add_columns("stack", "status")
        self.action_refresh()

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="stacks-load")
    def load(self) -> None:
        try:
            rows = [
                StackRow(
                    info,
                    STACKS[info.short].describe,
                    tuple(self._fleet_hosts()) if info.short == "fleet" and info.deployed else (),
                )
                for info in self.deck.backend.stacks()
            ]
            self.post_message(StacksLoaded(rows))
        except Exception as exc:  # noqa: BLE001 - shown to the operator
            self.post_message(WorkFailed("load stacks", str(exc)))

    def _fleet_hosts(self) -> list[str]:
        """The fleet's hosts as lines for the side panel (what `skydeck fleet hosts` prints)."""
        try:
            fleet = self.deck.backend.fleet_hosts()
        except Exception as exc:  # noqa: BLE001 - the stack list still shows; the panel says why not
            return [f"[red]hosts: {markup_safe(str(exc))}[/red]"]
        lines = [f"[b]hosts[/b] (desired {fleet.desired}, min {fleet.min_size}, max {fleet.max_size})"]
        for h in fleet.hosts:
            boot = markup_safe(h.boot_state + (f" at {h.failed_step}" if h.failed_step else ""), limit=80)
            colour = {"ok": "green", "failed": "red"}.get(h.boot_state, "yellow")
            lines.append(
                f"{markup_safe(h.instance_id)} {markup_safe(h.lifecycle or 'gone')} {markup_safe(h.instance_type)} "
                f"[{colour}]{boot}[/{colour}] beat {markup_safe(h.heartbeat or '-')} "
                f"job {markup_safe((h.job_id or '-')[:8])}"
            )
            if h.reason:
                lines.append(f"  [red]{markup_safe(h.reason)}[/red]")
        if not fleet.hosts:
            lines.append("no hosts yet: the group starts one when a job is queued")
        stopped = fleet.stopped_by
        if stopped is not None:
            lines.append(f"[red]stopped after {stopped.instance_id} failed its boot: skydeck fleet resume[/red]")
        return lines

    def on_stacks_loaded(self, message: StacksLoaded) -> None:
        self.stacks = message.stacks
        table = self.query_one("#stacks-table", DataTable)
        keep = table.cursor_row
        table.clear()
        for row in self.stacks:
            s = row.info
            if self.filter_text and self.filter_text not in f"{s.short} {s.status}".lower():
                continue
            table.add_row(s.short, _status(s.status), key=s.short)
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))
        self._show_outputs()

    def refilter(self) -> None:
        self.on_stacks_loaded(StacksLoaded(self.stacks))

    @on(DataTable.RowHighlighted, "#stacks-table")
    def _highlighted(self) -> None:
        self._show_outputs()

    def _selected(self) -> StackRow | None:
        table = self.query_one("#stacks-table", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((row for row in self.stacks if row.info.short == key), None)

    def _show_outputs(self) -> None:
        chosen = self._selected()
        box = self.query_one("#stack-outputs", Static)
        if not chosen:
            box.update("")
            return
        info = chosen.info
        lines = [f"[b]{info.name}[/b]  {_status(info.status)}", chosen.what]
        if info.reason:
            lines.append(f"[red]{markup_safe(info.reason)}[/red]")
        # a value on its own line, indented: a bucket name is cut only when the panel is narrower than it
        lines += [f"[b]{markup_safe(k)}[/b]\n  {markup_safe(v)}" for k, v in info.outputs.items()] or ["(no outputs)"]
        lines += chosen.hosts
        box.update("\n".join(lines))

    # -- actions -------------------------------------------------------------------------------
    def action_deploy(self) -> None:
        chosen = self._selected()
        if chosen:
            self._confirm_deploy([chosen.info.short])

    def action_deploy_all(self) -> None:
        self._confirm_deploy(list(ORDER))

    def _confirm_deploy(self, names: list[str]) -> None:
        if self.busy:
            self.notify("a stack operation is already running", severity="warning")
            return
        profile = self.deck.backend.profile
        where = "the local cloud" if profile.is_local else f"AWS {profile.region} (billable resources)"

        def go(yes: bool | None) -> None:
            if yes:
                self.run_stack_action("deploy", names)

        self.app.push_screen(
            Confirm(f"Deploy {', '.join(profile.stack_name(n) for n in names)} to {where}?", danger=False), go
        )

    def action_delete(self) -> None:
        chosen = self._selected()
        if not chosen:
            return
        info = chosen.info
        if not info.deployed:
            self.notify(f"{info.short} is not deployed", severity="warning")
            return
        if self.busy:
            self.notify("a stack operation is already running", severity="warning")
            return

        def go(yes: bool | None) -> None:
            if yes:
                self.run_stack_action("delete", [info.short])

        self.app.push_screen(
            Confirm(f"Delete stack {info.name}?", f"This destroys: {WHAT_IS_DESTROYED[info.short]}."), go
        )

    @work(thread=True, exclusive=True, group="stacks-change")
    def run_stack_action(self, action: str, names: list[str]) -> None:
        self.busy = True
        backend = self.deck.backend
        try:
            for name in names:

                def sink(event: Any, name: str = name) -> None:
                    self.post_message(StackEventArrived(name, event))

                try:
                    if action == "deploy":
                        info = backend.deploy_stack(name, on_event=sink)
                    else:
                        info = backend.delete_stack(name, on_event=sink)
                    self.post_message(StackActionDone(name, action, True, info.status))
                except Exception as exc:  # noqa: BLE001 - the failure is the operator's to read
                    self.post_message(StackActionDone(name, action, False, str(exc)))
                    break
        finally:
            self.busy = False
            self.load()

    def on_stack_event_arrived(self, message: StackEventArrived) -> None:
        e = message.event
        stamp = time.strftime("%H:%M:%S", time.localtime(e.timestamp))
        reason = f"  [red]{e.reason}[/red]" if e.reason and "FAILED" in e.status else ""
        self.query_one("#stack-events", RichLog).write(
            f"{stamp}  {e.logical_id:<26} {e.resource_type:<36} {_status(e.status)}{reason}"
        )

    def on_stack_action_done(self, message: StackActionDone) -> None:
        log = self.query_one("#stack-events", RichLog)
        # the events panel says it, in colour: a toast saying it again covered that panel at 80x24
        if message.ok:
            log.write(f"[green]{message.action} {message.stack}: {message.detail}[/green]")
        else:
            log.write(f"[red]{message.action} {message.stack} failed: {message.detail}[/red]")
            self.notify(f"{message.action} {message.stack} failed (see events)", severity="error", timeout=4)

    def on_work_failed(self, message: WorkFailed) -> None:
        self.notify(f"{message.what}: {message.error}", severity="error")


def _status(status: str) -> str:
    if "FAILED" in status or "ROLLBACK" in status:
        return f"[red]{status}[/red]"
    if status.endswith("IN_PROGRESS"):
        return f"[yellow]{status}[/yellow]"
    if status == "NOT_DEPLOYED":
        return f"[dim]{status}[/dim]"
    return f"[green]{status}[/green]"
