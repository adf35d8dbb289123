"""`skydeck local`: start, stop and inspect the embedded local cloud."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.common import JsonOpt, YesOpt, confirm, err, out, print_json

app = typer.Typer(no_args_is_help=True, help="The embedded local cloud (moto + Lambda runtime + API front).")


@app.command("up")
def local_up(
    workers: Annotated[
        int | None,
        typer.Option(
            min=0, max=16, help="Executor workers that train queued jobs here (default 1, or $SKYDECK_LOCAL_WORKERS)."
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Start the local cloud (idempotent). State survives down/up and crashes."""
    from backend.interface import LocalCloud

    cloud = LocalCloud()
    was = cloud.status()
    if not json_out and not was.running:
        err.print("starting the local cloud ...")
    if was.running and workers is not None and was.state.get("executor_workers") != workers:
        err.print(
            f"already running with {was.state.get('executor_workers', 0)} workers; `skydeck local down` first to change"
        )
    shown: list[str] = []

    def replay_progress() -> None:
        progress = cloud.replay_progress()
        if progress is None:
            return
        line = f"replaying the journal: {progress[0]}/{progress[1]} recorded changes"
        if not json_out and (not shown or shown[-1] != line):
            err.print(line)
            shown.append(line)

    status = cloud.up(on_wait=replay_progress, workers=workers)
    if json_out:
        print_json(status.to_dict())
        return
    restored = status.state.get("restored", {})
    verb = "already running" if was.running else "up"
    n = status.state.get("executor_workers", 0)
    out.print(f"local cloud {verb}: {status.state['endpoint']} (pid {status.state['pid']}, {n} executor worker(s))")
    if not was.running and restored.get("replayed"):
        out.print(
            f"restored {restored['replayed']} changes and {restored.get('messages', 0)} queued messages "
            f"in {restored.get('seconds', 0)}s"
        )
    if not was.running and restored.get("compacted"):
        c = restored["compacted"]
        out.print(f"journal compacted: {c['before']} records -> {c['after']} (start-up replays only what exists)")
    if not was.running:
        _print_not_restored(restored)
    for scene in status.state.get("upgraded", {}).get("scenes", []):
        out.print(f"upgraded: scene {scene} (pushed by an earlier release) was given its manifest; its files are whole")


@app.command("down")
def local_down(json_out: JsonOpt = False) -> None:
    """Stop the local cloud. Its state is kept for the next `local up`."""
    from backend.interface import LocalCloud

    stopped = LocalCloud().down()
    if json_out:
        print_json({"stopped": stopped})
    else:
        out.print("local cloud stopped" if stopped else "local cloud was not running")


@app.command("repair")
def local_repair(yes: YesOpt = False, json_out: JsonOpt = False) -> None:
    """Keep what a damaged journal still holds, set the file aside, and start the journal afresh."""
    from backend.interface import LocalCloud

    cloud = LocalCloud()
    confirm(f"Set {cloud.journal} aside and keep what can still be read from it?", yes)
    report = cloud.repair()
    if json_out:
        print_json(report.to_dict())
        return
    out.print(
        f"kept {report.requests_kept} recorded changes and {report.messages_kept} queued messages "
        f"(copying stopped at: {report.stopped_at})"
    )
    out.print(f"the damaged journal is kept at {report.set_aside}; start the cloud with: skydeck local up")


@app.command("status")
def local_status(json_out: JsonOpt = False) -> None:
    """Show whether the local cloud runs, and each part's pid and URL."""
    from backend.interface import LocalCloud

    status = LocalCloud().status()
    if json_out:
        print_json(status.to_dict())
        return
    if not status.running:
        out.print("local cloud: not running (start it with: skydeck local up)")
        raise typer.Exit(4)  # the exit code of every command that finds the local cloud down
    if "phase" in status.state:
        out.print(f"local cloud: {status.state['phase']}, pid {status.state['pid']}; `skydeck local up` waits for it")
        return
    out.print(f"local cloud: running, {'healthy' if status.healthy else 'NOT answering'}")
    for part, info in status.state.get("parts", {}).items():
        out.print(f"  {part:<8} pid {info.get('pid')}  {info.get('url', '')}")
    runtime = status.state.get("lambda_runtime") or {}
    if runtime and not runtime.get("matches", True):
        out.print(
            f"[yellow]note:[/] the templates' functions name {', '.join(runtime['templates'])}; the local Lambda "
            f"runtime runs them with {runtime['local']} (AWS runs the templates' version)",
            markup=True,
        )
    _print_not_restored(status.state.get("restored", {}))


def _print_not_restored(restored: dict[str, Any]) -> None:
    failed = int(restored.get("failed", 0))
    if not failed:
        return
    noun = "recorded change was" if failed == 1 else "recorded changes were"
    out.print(f"[yellow]{failed} {noun} not restored at start[/] (the rest of the state is back):", markup=True)
    for lost in restored.get("not_restored", []):
        out.print(f"  #{lost['seq']} {lost['action']} {lost['target']}: {lost['reason']}")
    if failed > len(restored.get("not_restored", [])):
        out.print(f"  ... and {failed - len(restored['not_restored'])} more; see the local cloud's log")
