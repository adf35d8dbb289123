"""`skydeck`: the headless commands. A thin Typer layer over the backend; every read takes --json."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from backend.context import Context
from backend.errors import ConfigError, SkydeckError
from backend.humanize import age

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="skydeck: run Plenoxels training and SDS-Inf inference on AWS or the embedded local cloud.",
)
local_app = typer.Typer(no_args_is_help=True, help="The embedded local cloud (moto + Lambda runtime + API front).")
stacks_app = typer.Typer(no_args_is_help=True, help="Deploy, inspect and delete the CloudFormation stacks.")
jobs_app = typer.Typer(no_args_is_help=True, help="Plenoxels training jobs.")
presets_app = typer.Typer(no_args_is_help=True, help="Job and run presets.")
api_app = typer.Typer(no_args_is_help=True, help="The jobs API.")
executor_app = typer.Typer(no_args_is_help=True, help="The job executor (what GPU hosts run).")
sdsinf_app = typer.Typer(no_args_is_help=True, help="SDS-Inf: sparse DNN inference (Graph Challenge networks).")
sdsinf_data_app = typer.Typer(no_args_is_help=True, help="Graph Challenge data: generate, import, upload.")
sdsinf_app.add_typer(sdsinf_data_app, name="data")
sdsinf_server_app = typer.Typer(no_args_is_help=True, help="The always-on Server baseline (takes runs from a queue).")
sdsinf_app.add_typer(sdsinf_server_app, name="server")
batch_app = typer.Typer(no_args_is_help=True, help="Batch launches: a preset x scenes x a grid of overrides.")
app.add_typer(batch_app, name="batch")
data_app = typer.Typer(
    no_args_is_help=True, help="Plenoxels scenes: make a synthetic one, push one to the data bucket."
)
app.add_typer(data_app, name="data")
app.add_typer(local_app, name="local")
app.add_typer(stacks_app, name="stacks")
app.add_typer(jobs_app, name="jobs")
app.add_typer(presets_app, name="presets")
app.add_typer(api_app, name="api")
app.add_typer(executor_app, name="executor")
app.add_typer(sdsinf_app, name="sdsinf")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

ProfileOpt = Annotated[
    str | None, typer.Option("--profile", "-p", envvar="SKYDECK_PROFILE", help="Profile to use (default: local).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def _ctx(profile: str | None) -> Context:
    return Context.create(profile)


def _json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfigError(f"{question} - refusing without a terminal to ask on; pass --yes to confirm")
    if not typer.confirm(question, default=False):
        raise typer.Exit(1)


# -- local -----------------------------------------------------------------------------------------
@local_app.command("up")
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
    from backend.localcloud import control
    from backend.paths import Home

    home = Home.from_env()
    was = control.status(home)
    if not json_out and not was.running:
        err.print("starting the local cloud ...")
    if was.running and workers is not None and was.state.get("executor_workers") != workers:
        err.print(
            f"already running with {was.state.get('executor_workers', 0)} workers; `skydeck local down` first to change"
        )
    status = control.up(home, workers=workers)
    if json_out:
        _json(status.to_dict())
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
    if not was.running:
        _print_not_restored(restored)


@local_app.command("down")
def local_down(json_out: JsonOpt = False) -> None:
    """Stop the local cloud. Its state is kept for the next `local up`."""
    from backend.localcloud import control
    from backend.paths import Home

    stopped = control.down(Home.from_env())
    if json_out:
        _json({"stopped": stopped})
    else:
        out.print("local cloud stopped" if stopped else "local cloud was not running")


@local_app.command("status")
def local_status(json_out: JsonOpt = False) -> None:
    """Show whether the local cloud runs, and each part's pid and URL."""
    from backend.localcloud import control
    from backend.paths import Home

    status = control.status(Home.from_env())
    if json_out:
        _json(status.to_dict())
        return
    if not status.running:
        out.print("local cloud: not running (start it with: skydeck local up)")
        raise typer.Exit(1)
    out.print(f"local cloud: running, {'healthy' if status.healthy else 'NOT answering'}")
    for part, info in status.state.get("parts", {}).items():
        out.print(f"  {part:<8} pid {info.get('pid')}  {info.get('url', '')}")
    _print_not_restored(status.state.get("restored", {}))


def _print_not_restored(restored: dict[str, Any]) -> None:
    failed = int(restored.get("failed", 0))
    if not failed:
        return
    noun = "recorded change was" if failed == 1 else "recorded changes were"
    out.print(f"[yellow]{failed} {noun} not restored at start[/] (the rest of the state is back):")
    for lost in restored.get("not_restored", []):
        out.print(f"  #{lost['seq']} {lost['action']} {escape(lost['target'])}: {escape(lost['reason'])}")
    if failed > len(restored.get("not_restored", [])):
        out.print(f"  ... and {failed - len(restored['not_restored'])} more; see the local cloud's log")


# -- stacks ----------------------------------------------------------------------------------------
def _stack_names(name: str) -> list[str]:
    from backend.stacks import ORDER, stack_def

    if name == "all":
        return list(ORDER)
    stack_def(name)
    return [name]


def _print_event(e: Any) -> None:
    stamp = time.strftime("%H:%M:%S", time.localtime(e.timestamp))
    colour = (
        "red"
        if "FAILED" in e.status or "ROLLBACK" in e.status
        else ("green" if e.status.endswith("COMPLETE") else "yellow")
    )
    reason = f"  {escape(e.reason)}" if e.reason else ""
    err.print(f"{stamp}  {e.logical_id:<28} {e.resource_type:<36} [{colour}]{e.status}[/]{reason}")


@stacks_app.command("deploy")
def stacks_deploy(
    name: Annotated[str, typer.Argument(help="infra | api | fleet | sdsinf | all")],
    param: Annotated[list[str] | None, typer.Option("--param", help="Template parameter K=V (repeatable).")] = None,
    yes: YesOpt = False,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Create or update stacks through change sets, streaming their events."""
    ctx = _ctx(profile)
    names = _stack_names(name)
    params: dict[str, str] = {}
    for item in param or []:
        if "=" not in item:
            raise ConfigError(f"--param {item!r}: expected KEY=VALUE, e.g. --param Stage=prod")
        k, v = item.split("=", 1)
        params[k.strip()] = v
    if params and len(names) > 1:
        raise ConfigError("--param applies to one stack; deploy the stacks one at a time to set parameters")
    if not ctx.profile.is_local:
        _confirm(
            f"deploy {', '.join(names)} to AWS ({ctx.profile.region}); this creates billable resources. Continue?", yes
        )
    results = []
    for short in names:
        if not json_out:
            err.print(f"deploying {ctx.profile.stack_name(short)} ...")
        info = ctx.stacks.deploy(short, params, on_event=None if json_out else _print_event)
        results.append(info.to_dict())
        if not json_out:
            out.print(f"{info.name}: {info.status}")
            for k, v in info.outputs.items():
                out.print(f"  {k:<22} {v}")
    if json_out:
        _json(results if len(results) > 1 else results[0])


@stacks_app.command("list")
def stacks_list(json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Every skydeck stack with its status."""
    infos = _ctx(profile).stacks.list()
    if json_out:
        _json([i.to_dict() for i in infos])
        return
    table = Table("stack", "name", "status", box=None)
    for i in infos:
        table.add_row(i.short, i.name, i.status)
    out.print(table)


@stacks_app.command("describe")
def stacks_describe(name: str, json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Status, parameters and outputs of one stack."""
    info = _ctx(profile).stacks.describe(name)
    if json_out:
        _json(info.to_dict())
        return
    out.print(f"{info.name}: {info.status}{'  ' + info.reason if info.reason else ''}")
    for title, values in (("outputs", info.outputs), ("parameters", info.parameters)):
        if values:
            out.print(f"{title}:")
            for k, v in values.items():
                out.print(f"  {k:<22} {v}")


@stacks_app.command("events")
def stacks_events(
    name: str,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events until interrupted.")] = False,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """A stack's events, oldest first."""
    stacks = _ctx(profile).stacks
    seen: set[tuple[float, str, str]] = set()
    while True:
        for e in stacks.events(name):
            key = (e.timestamp, e.logical_id, e.status)
            if key in seen:
                continue
            seen.add(key)
            if json_out:
                sys.stdout.write(json.dumps(e.to_dict()) + "\n")
                sys.stdout.flush()
            else:
                _print_event(e)
        if not follow:
            return
        time.sleep(1.0)


@stacks_app.command("delete")
def stacks_delete(name: str, yes: YesOpt = False, json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Delete a stack (asks first). The data bucket and the jobs table are retained."""
    ctx = _ctx(profile)
    names = list(reversed(_stack_names(name)))
    deployed = [n for n in names if ctx.stacks.describe(n).deployed]
    if not deployed:
        raise SkydeckError(f"nothing to delete: {name} is not deployed")
    _confirm(
        f"delete {', '.join(ctx.profile.stack_name(n) for n in deployed)} ({ctx.profile.name})? "
        "Its resources are destroyed (the data bucket and jobs table are kept).",
        yes,
    )
    results = []
    for short in deployed:
        info = ctx.stacks.delete(short, on_event=None if json_out else _print_event)
        results.append(info.to_dict())
        if not json_out:
            out.print(f"{info.name}: {info.status}")
    if json_out:
        _json(results if len(results) > 1 else results[0])


# -- api -------------------------------------------------------------------------------------------
@api_app.command("url")
def api_url(json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """The jobs API URL and how to authenticate (so the original curl commands work)."""
    from backend.api import api_endpoint

    info = api_endpoint(_ctx(profile))
    if json_out:
        _json(info)
        return
    out.print(info["url"])
    for k, v in info["headers"].items():
        out.print(f"header: {k}: {v}")
    out.print(f"auth: {info['auth']}")
    hdr = " ".join(f"-H '{k}: {v}'" for k, v in info["headers"].items())
    out.print(f"try:  curl -s {hdr} {info['url']}")


# -- jobs ------------------------------------------------------------------------------------------
def _job_row(job: dict[str, Any]) -> list[str]:
    progress = job.get("progress") or {}
    result = job.get("result") or {}
    psnr = result.get("psnr", progress.get("psnr"))
    it = progress.get("iteration")
    return [
        job["job_id"],
        job.get("state", "?"),
        job.get("name", ""),
        job.get("engine", ""),
        f"{it}" if it is not None else "-",
        f"{psnr:.2f}" if isinstance(psnr, int | float) else "-",
        age(job.get("created_at")),
    ]


@jobs_app.command("submit")
def jobs_submit(
    file: Annotated[Path | None, typer.Argument(help="A job JSON file (skydeck's form or the original's).")] = None,
    preset: Annotated[str | None, typer.Option(help="Start from this preset.")] = None,
    scene: Annotated[str | None, typer.Option(help="Scene name, s3:// URI or absolute path.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override key=value (repeatable).")] = None,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Validate and queue a job from a file or a preset."""
    from backend.presets import compose_job, get_preset
    from lambda_src.jobs.schema import JobValidationError, parse_body

    ctx = _ctx(profile)
    if (file is None) == (preset is None):
        raise ConfigError("give either a job FILE or --preset NAME (not both)")
    if file is not None:
        if set_ or scene:
            raise ConfigError("--set and --scene go with --preset; edit the file instead")
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {file}: {exc.strerror}") from None
        try:
            spec = parse_body(raw)
        except JobValidationError as exc:
            raise ConfigError(f"{file}: {exc.field}: {exc.message}") from None
    else:
        chosen = get_preset(ctx.home, preset or "")
        if chosen.kind != "plenoxels":
            raise ConfigError(f"preset {chosen.name} is a {chosen.kind} preset, not a training job")
        spec = compose_job(chosen.values, scene=scene, overrides=set_, preset_name=chosen.name)
    record = ctx.jobs.submit(spec)
    if json_out:
        _json(record)
    else:
        out.print(f"queued {record['job_id']}  ({spec.name}, scene {spec.scene}, engine {spec.engine})")


@jobs_app.command("list")
def jobs_list(
    state: Annotated[str | None, typer.Option(help="QUEUED | RUNNING | SUCCEEDED | FAILED | CANCELLED")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    next_token: Annotated[str | None, typer.Option(help="Page on from a previous --json answer.")] = None,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Jobs, newest first."""
    page = _ctx(profile).jobs.list(state=state, limit=limit, next_token=next_token)
    if json_out:
        _json(page)
        return
    table = Table("job id", "state", "name", "engine", "iter", "psnr", "age", box=None)
    for job in page["items"]:
        table.add_row(*_job_row(job))
    out.print(table)
    if page["next_token"]:
        out.print(f"more: --next-token {page['next_token']}")


@jobs_app.command("show")
def jobs_show(job_id: str, json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """One job: its document, state, progress and result."""
    job = _ctx(profile).jobs.get(job_id)
    if json_out:
        _json(job)
        return
    for key in ("job_id", "state", "name", "scene", "engine", "preset", "worker", "attempts", "error", "note"):
        if job.get(key) not in (None, ""):
            out.print(f"{key:<10} {job[key]}")
    out.print(f"{'created':<10} {age(job.get('created_at'))} ago")
    for section in ("config", "progress", "result"):
        if job.get(section):
            out.print(f"{section}:")
            for k, v in job[section].items():
                if k in ("history", "notes"):
                    continue
                out.print(f"  {k:<22} {v}")
    for note in (job.get("result") or {}).get("notes", []):
        out.print(f"note: {note}")
    if (job.get("result") or {}).get("artifacts"):
        out.print(
            f"fetch the checkpoint, renders, turntable.gif and metrics.json: skydeck jobs fetch {job_id} --out DIR"
        )


@jobs_app.command("fetch")
def jobs_fetch(
    job_id: str,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to download the job's results into.")],
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Download a job's results (ckpt.npz, test renders, turntable.gif, metrics.json)."""
    ctx = _ctx(profile)
    ctx.jobs.get(job_id)  # a clear "no such job" before looking in the bucket
    files = ctx.scenes.fetch(job_id, out_dir, on_file=(lambda n: None) if json_out else (lambda n: err.print(f"  {n}")))
    if json_out:
        _json({"job_id": job_id, "files": [str(p) for p in files]})
    else:
        out.print(f"{len(files)} file(s) in {out_dir}")


@jobs_app.command("logs")
def jobs_logs(
    job_id: str,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until the job ends.")] = False,
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between polls with --follow.")] = 2.0,
    profile: ProfileOpt = None,
) -> None:
    """A job's own log: claim, engine, progress, outcome (published while it runs)."""
    from backend.errors import NotFoundError
    from lambda_src.jobs.schema import TERMINAL_STATES

    ctx = _ctx(profile)
    ctx.jobs.get(job_id)
    printed = 0
    try:
        while True:
            # the executor publishes the log's last line before it records the outcome, so once the
            # job has ended, one more read has everything
            ended = ctx.jobs.get(job_id)["state"] in TERMINAL_STATES
            try:
                lines = ctx.scenes.read_result(job_id, "job.log").decode(errors="replace").splitlines()
            except NotFoundError:
                lines = []
            for line in lines[printed:]:
                out.print(escape(line))
            printed = max(printed, len(lines))
            if not follow or ended:
                if not lines:
                    err.print(f"job {job_id} has no log yet (it appears once an executor claims it)")
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        pass


@jobs_app.command("cancel")
def jobs_cancel(job_id: str, yes: YesOpt = False, json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Cancel a queued job, or ask a running one to stop."""
    ctx = _ctx(profile)
    job = ctx.jobs.get(job_id)
    _confirm(f"cancel job {job_id} ({job.get('name')}, {job['state']})?", yes)
    job = ctx.jobs.cancel(job_id)
    if json_out:
        _json(job)
    else:
        out.print(f"{job_id}: {'CANCELLED' if job['state'] == 'CANCELLED' else 'stop requested'}")


@jobs_app.command("watch")
def jobs_watch(
    job_id: Annotated[str | None, typer.Argument(help="A job id; without it, the newest jobs.")] = None,
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between polls.")] = 1.0,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Follow a job until it ends (or the job list until interrupted)."""
    try:
        for snapshot in _ctx(profile).jobs.watch(job_id, interval_s=interval):
            if json_out:
                sys.stdout.write(json.dumps(snapshot, default=str) + "\n")
                sys.stdout.flush()
            elif job_id:
                row = _job_row(snapshot)
                out.print(f"{time.strftime('%H:%M:%S')}  {row[1]:<10} iter {row[4]:<8} psnr {row[5]}")
            else:
                counts: dict[str, int] = {}
                for job in snapshot:
                    counts[job["state"]] = counts.get(job["state"], 0) + 1
                out.print(f"{time.strftime('%H:%M:%S')}  " + "  ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    except KeyboardInterrupt:
        pass


@jobs_app.command("reconcile")
def jobs_reconcile(
    queued_after: Annotated[
        float, typer.Option(help="Re-send QUEUED jobs idle this long (s) when the queue is empty.")
    ] = 600.0,
    heartbeat_after: Annotated[float, typer.Option(help="Re-queue RUNNING jobs silent this long (s).")] = 300.0,
    max_attempts: Annotated[int, typer.Option(min=1, help="Fail a job after this many lost executors.")] = 3,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Repair lost messages and jobs whose executor died (executors also do this every minute)."""
    done = _ctx(profile).jobs.store.reconcile(queued_after, heartbeat_after, max_attempts)
    if json_out:
        _json(done)
        return
    for key, ids in done.items():
        out.print(f"{key:<9} {len(ids)}" + (f"  {' '.join(ids)}" if ids else ""))


# -- executor --------------------------------------------------------------------------------------
@executor_app.command("run")
def executor_run(
    once: Annotated[bool, typer.Option("--once", help="Handle at most one message, then exit.")] = False,
    engine: Annotated[str, typer.Option(help="Engine for every job (default: each job's own).")] = "auto",
    wait: Annotated[int, typer.Option(min=1, max=20, help="SQS long-poll seconds.")] = 20,
    profile: ProfileOpt = None,
) -> None:
    """Serve the jobs queue from this machine."""
    import logging

    from gpu_executor.engines import builtin_engines
    from gpu_executor.executor import Executor, ExecutorConfig

    ctx = _ctx(profile)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)

    def waiting(why: str) -> None:
        err.print(f"waiting for the stacks: {why} (deploy it with: skydeck stacks deploy infra); serving starts then")

    ctx.stacks.wait_outputs("infra", waiting)
    config = ExecutorConfig(engine=engine, wait_s=wait)
    executor = Executor(
        ctx.jobs.store, builtin_engines(), config, storage=ctx.scenes.storage(config.workdir / "scenes")
    )
    executor.install_signal_handlers()
    err.print("infra stack is deployed: serving its jobs queue")
    n = executor.run(once=once)
    err.print(f"executor stopped after {n} job(s)")


# -- batch -----------------------------------------------------------------------------------------
def _overrides_text(overrides: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in overrides.items()) or "(preset as is)"


@batch_app.command("run")
def batch_run(
    file: Annotated[Path, typer.Argument(help="A batch file: preset, scenes, grid and/or list of overrides.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and show what would be submitted.")] = False,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Submit one job per combination, all or none; combinations that succeeded (or are queued/running) are skipped."""
    from backend.batch import load_plan, run

    ctx = _ctx(profile)
    plan = load_plan(file, ctx)
    rows = run(ctx, plan, dry_run=dry_run)
    if json_out:
        _json({"batch": plan.name, "preset": plan.preset, "dry_run": dry_run, "jobs": rows})
        return
    table = Table("scene", "overrides", "action", "job id", box=None)
    for row in rows:
        action = f"would {row['action']}" if dry_run and row["action"] == "submit" else row["action"]
        table.add_row(row["scene"], _overrides_text(row["overrides"]), action, row["job_id"] or "-")
    out.print(table)
    submitted = sum(1 for r in rows if r["action"] == "submit")
    verb = "would submit" if dry_run else "submitted"
    out.print(f"batch {plan.name}: {verb} {submitted}, skipped {len(rows) - submitted} of {len(rows)}")


@batch_app.command("status")
def batch_status(
    file: Annotated[Path, typer.Argument(help="The batch file that was run.")],
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """The batch's jobs as one leaderboard, best held-out PSNR first."""
    from backend.batch import leaderboard, load_plan

    ctx = _ctx(profile)
    plan = load_plan(file, ctx)
    rows = leaderboard(ctx, plan)
    if json_out:
        _json({"batch": plan.name, "preset": plan.preset, "jobs": rows})
        return
    table = Table("#", "psnr", "ssim", "state", "scene", "overrides", "job id", box=None)
    for i, row in enumerate(rows, 1):
        psnr = f"{row['psnr']:.2f}" if isinstance(row["psnr"], int | float) else "-"
        ssim = f"{row['ssim']:.3f}" if isinstance(row["ssim"], int | float) else "-"
        table.add_row(
            str(i), psnr, ssim, row["state"], row["scene"], _overrides_text(row["overrides"]), row["job_id"] or "-"
        )
    out.print(table)


# -- data (Plenoxels scenes) -----------------------------------------------------------------------
@data_app.command("make-scene")
def data_make_scene(
    name: Annotated[str, typer.Argument(help="Scene name (also seeds the camera positions).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the scene into.")],
    size: Annotated[int, typer.Option(min=16, max=2048, help="Image width and height in pixels.")] = 128,
    views: Annotated[int, typer.Option(min=1, max=1000, help="Training views.")] = 100,
    test_views: Annotated[int, typer.Option(min=1, max=200, help="Held-out test views (val gets half).")] = 10,
    json_out: JsonOpt = False,
) -> None:
    """Render a small synthetic scene with exact held-out views, in the NeRF-synthetic layout."""
    from gpu_executor.plenoxels.scene import make_scene

    if not json_out:
        err.print(f"rendering {views} + {test_views} + {max(1, test_views // 2)} views at {size}x{size} ...")
    info = make_scene(name, out_dir, size=size, views=views, test_views=test_views)
    if json_out:
        _json({"name": info.name, "out": str(info.out), "size": info.size, "views": info.views})
    else:
        out.print(f"scene {name} in {out_dir}: " + ", ".join(f"{k} {v}" for k, v in info.views.items()))
        out.print(f"push it with: skydeck data push {out_dir} --name {name}")


@data_app.command("push")
def data_push(
    directory: Annotated[Path, typer.Argument(help="A NeRF-synthetic scene directory.")],
    name: Annotated[str, typer.Option(help="Name jobs will use as their scene.")],
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Check a scene and upload it to the data bucket as scenes/NAME/."""
    ctx = _ctx(profile)
    result = ctx.scenes.push(directory, name, on_file=(lambda k: None) if json_out else (lambda k: err.print(f"  {k}")))
    if json_out:
        _json(result.__dict__)
    else:
        out.print(f"pushed {result.files} files ({result.bytes / 1e6:.1f} MB) to {result.uri}")
        out.print(f"train it with: skydeck jobs submit --preset syn-cpu-quick --scene {name}")


@data_app.command("list")
def data_list(json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Scenes in the data bucket."""
    scenes = _ctx(profile).scenes.list()
    if json_out:
        _json(scenes)
        return
    for scene in scenes:
        out.print(f"{scene['name']:<24} {scene['uri']}")
    if not scenes:
        out.print(
            "no scenes yet: skydeck data make-scene demo --out demo-scene && skydeck data push demo-scene --name demo"
        )


# -- sdsinf ----------------------------------------------------------------------------------------
@sdsinf_data_app.command("generate")
def sdsinf_generate(
    out: Annotated[Path, typer.Option(help="Directory to write the Graph Challenge layout into.")],
    neurons: Annotated[int, typer.Option(help="1024 | 4096 | 16384 | 65536")] = 1024,
    layers: Annotated[int, typer.Option(help="Network depth.")] = 120,
    inputs: Annotated[int, typer.Option(help="How many input images.")] = 1000,
    seed: Annotated[int, typer.Option(help="Same seed, same network and inputs.")] = 0,
    json_out: JsonOpt = False,
) -> None:
    """A RadiX-Net style network and inputs, with the truth categories (no download needed)."""
    from backend.sdsinf import generate

    info = generate(out, neurons, layers, inputs, seed)
    if json_out:
        _json(info)
    else:
        sys.stdout.write(
            f"wrote a {neurons}-neuron, {layers}-layer network and {inputs} inputs to {info['out']}; "
            f"{info['categories']} categories in the truth file\n"
        )


@sdsinf_app.command("infer")
def sdsinf_infer(
    data: Annotated[Path, typer.Option(help="A Graph Challenge directory.")],
    neurons: Annotated[int, typer.Option(help="1024 | 4096 | 16384 | 65536")],
    layers: Annotated[int, typer.Option(help="Network depth.")],
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the categories here, one a line.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Run inference on this machine; check against the truth file when there is one."""
    from backend.sdsinf import infer_dir

    result = infer_dir(data, neurons, layers)
    if out_file is not None:
        out_file.write_text("".join(f"{c}\n" for c in result.categories))
    if json_out:
        _json(result.to_dict())
    else:
        check = {
            None: "no truth file to check against",
            True: "matches the truth file",
            False: "DIFFERS from the truth file",
        }
        out.print(
            f"{len(result.categories)} of {result.inputs} inputs categorised in {result.seconds:.3f}s "
            f"({result.edges_per_s / 1e9:.2f} billion edges/s); {check[result.matches_truth]}"
        )
        if out_file is None and len(result.categories) <= 50:
            out.print(" ".join(map(str, result.categories)))
    if result.matches_truth is False:
        raise typer.Exit(1)


@sdsinf_data_app.command("import")
def sdsinf_import(
    src: Annotated[
        Path, typer.Argument(help="The download: a directory with neuron{N}.tar.gz, sparse-images-{N}.tsv.gz, ...")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the Graph Challenge layout into.")],
    neurons: Annotated[int, typer.Option(help="1024 | 4096 | 16384 | 65536")] = 1024,
    name: Annotated[str | None, typer.Option(help="Also upload it to the sdsinf stack under this name.")] = None,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Unpack and validate an official Graph Challenge download (and upload it with --name)."""
    from backend.sdsinf_import import import_download

    info = import_download(src, out_dir, neurons)
    if name:
        from backend.sdsinf_runs import SdsinfRuns

        info["uploaded"] = SdsinfRuns(_ctx(profile)).upload(out_dir, neurons, int(info["layers"]), name)
    if json_out:
        _json(info)
        return
    out.print(
        f"{out_dir}: {neurons} neurons x {info['layers']} layers, {info['inputs']} inputs, {info['edges']:,} edges"
        + (", truth file present" if info["truth"] else ", no truth file")
    )
    if name:
        out.print(f"uploaded as {name}; run it with: skydeck sdsinf run c1_1024n_4w_10000bs_queue --data {name}")
    else:
        out.print(
            f"next: skydeck sdsinf data upload --data {out_dir} --neurons {neurons} "
            f"--layers {info['layers']} --name NAME"
        )


def _server_status_line(status: dict[str, Any]) -> str:
    if not status["running"]:
        return f"always-on server: not running ({status['where']})"
    where = f"pid {status['pid']}" if "pid" in status else ", ".join(status.get("instances", []))
    return f"always-on server: running as {status['where']} ({where})"


@sdsinf_server_app.command("up")
def sdsinf_server_up(json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Start the always-on server (a local process on the local cloud, an EC2 instance on AWS)."""
    from backend.sdsinf_runs import SdsinfRuns

    status = SdsinfRuns(_ctx(profile)).server_up()
    _json(status) if json_out else out.print(
        _server_status_line(status) + "; run with: --variant server --server service"
    )


@sdsinf_server_app.command("down")
def sdsinf_server_down(yes: YesOpt = False, json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Stop the always-on server (it finishes the run in hand; EC2 instances are terminated)."""
    from backend.sdsinf_runs import SdsinfRuns

    runs = SdsinfRuns(_ctx(profile))
    status = runs.server_status()
    if status["running"]:
        _confirm(f"stop the always-on SDS-Inf server ({status['where']})?", yes)
    status = runs.server_down()
    if json_out:
        _json(status)
    else:
        out.print(_server_status_line(status))


@sdsinf_server_app.command("status")
def sdsinf_server_status(json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Whether the always-on server runs, and where."""
    from backend.sdsinf_runs import SdsinfRuns

    status = SdsinfRuns(_ctx(profile)).server_status()
    if json_out:
        _json(status)
    else:
        out.print(_server_status_line(status))


@sdsinf_app.command("partition")
def sdsinf_partition(
    data: Annotated[Path, typer.Option(help="A Graph Challenge directory.")],
    workers: Annotated[int, typer.Option(min=1, help="Workers to partition the neurons over.")],
    neurons: Annotated[int, typer.Option(help="1024 | 4096 | 16384 | 65536")] = 1024,
    layers: Annotated[int, typer.Option(help="Network depth.")] = 120,
    json_out: JsonOpt = False,
) -> None:
    """Rows and bytes sent between workers per layer: the 1-D row partition beside the others."""
    from backend.sdsinf import partition_report
    from lambda_src.sdsinf.partition import PARTITIONS

    report = partition_report(data, neurons, layers, workers)
    if json_out:
        _json(report)
        return
    table = Table("layer", *[f"{p} rows" for p in PARTITIONS], *[f"{p} KB" for p in PARTITIONS], box=None)
    shown = list(range(min(layers, 5))) + ([layers - 1] if layers > 5 else [])
    for i in shown:
        table.add_row(
            str(i + 1),
            *[f"{report[p]['rows_per_layer'][i]:,}" for p in PARTITIONS],
            *[f"{report[p]['bytes_per_layer'][i] / 1e3:,.1f}" for p in PARTITIONS],
        )
    table.add_row(
        "all",
        *[f"{report[p]['rows']:,}" for p in PARTITIONS],
        *[f"{report[p]['bytes'] / 1e3:,.1f}" for p in PARTITIONS],
    )
    out.print(table)
    base = report["row"]["rows"] or 1
    out.print("  ".join(f"{p}: {report[p]['rows'] / base:.2f}x the row partition's rows" for p in PARTITIONS))


@sdsinf_data_app.command("upload")
def sdsinf_upload(
    data: Annotated[Path, typer.Option(help="A Graph Challenge directory.")],
    name: Annotated[str, typer.Option(help="Name to run it by (e.g. radixnet-1024n-120l).")],
    neurons: Annotated[int, typer.Option(help="1024 | 4096 | 16384 | 65536")] = 1024,
    layers: Annotated[int, typer.Option(help="Network depth.")] = 120,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Convert a Graph Challenge directory and upload it to the sdsinf stack's buckets."""
    from backend.sdsinf_runs import SdsinfRuns

    info = SdsinfRuns(_ctx(profile)).upload(data, neurons, layers, name)
    if json_out:
        _json(info)
    else:
        out.print(
            f"uploaded {name}: {info['neurons']} neurons x {info['layers']} layers, {info['inputs']} inputs"
            + (", with truth" if info["truth"] else "")
        )


@sdsinf_app.command("run")
def sdsinf_run(
    preset: Annotated[str, typer.Argument(help="An sdsinf preset, e.g. b1_1024n_1w_10000bs_serial.")],
    variant: Annotated[str | None, typer.Option(help="queue | object | serial | server")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=256, help="Workers (queue and object variants).")] = None,
    data: Annotated[str | None, typer.Option(help="Uploaded data name (default: the preset's).")] = None,
    batch: Annotated[int | None, typer.Option(min=1, help="Inputs per batch.")] = None,
    repeat: Annotated[int, typer.Option(min=1, max=20, help="Run K times and report medians.")] = 1,
    partition: Annotated[
        str | None, typer.Option(help="row (the original's 1-D) | component | greedy; queue and object variants")
    ] = None,
    server: Annotated[
        str, typer.Option(help="server variant: job (one run per instance/process) | service (the always-on server)")
    ] = "job",
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Launch a run and stream each worker's per-layer metrics until it ends."""
    from backend.presets import get_preset
    from backend.sdsinf_runs import SdsinfRuns

    ctx = _ctx(profile)
    chosen = get_preset(ctx.home, preset)
    if chosen.kind != "sdsinf":
        raise ConfigError(f"preset {chosen.name} is a {chosen.kind} preset, not an sdsinf run")
    values = chosen.values
    runs = SdsinfRuns(ctx)

    def show(metric: dict[str, Any]) -> None:
        if json_out:
            sys.stdout.write(json.dumps({"event": "layer", **metric}) + "\n")
            sys.stdout.flush()
        elif metric["layer"] % 10 == 9 or metric["layer"] == metric["layers"] - 1:
            err.print(
                f"  worker {metric['worker']} batch {metric['batch']} layer {metric['layer'] + 1}/{metric['layers']}"
                f"  rows {metric['rows_active']}  {metric['duration_s'] * 1000:.1f} ms"
            )

    check = {None: "no truth to check", True: "categories match the truth", False: "categories DIFFER from the truth"}
    summaries = []
    for _ in range(repeat):
        started = runs.start(
            data or values.get("data", ""),
            variant or values.get("variant", "serial"),
            batch or values.get("batch"),
            config=chosen.name,
            workers=workers or int(values.get("workers", 1)),
            partition=partition or values.get("partition", "row"),
            server_mode=server,
        )
        if json_out:
            sys.stdout.write(json.dumps({"event": "started", **started}) + "\n")
        else:
            err.print(f"run {started['run_id']} ({started['variant']}, data {started['data']}) started")
        summary = runs.follow(started["run_id"], on_metric=show)
        summaries.append(summary)
        if json_out:
            sys.stdout.write(json.dumps({"event": "summary", **summary}) + "\n")
        else:
            out.print(
                f"run {summary['run_id']}: {summary['categories']} of {summary['inputs']} inputs categorised, "
                f"{summary['edges_per_s'] / 1e9:.2f} billion edges/s, runtime {summary['runtime_s']:.1f}s, "
                f"est. ${summary['cost_usd']:.6f} ({summary['gb_seconds']:.1f} GB-s, {summary['requests']} requests); "
                f"{check[summary['matches_truth']]}"
            )
    if repeat > 1:
        from backend.sdsinf_runs import median_summary

        med = median_summary(summaries)
        if json_out:
            sys.stdout.write(json.dumps({"event": "median", **med}) + "\n")
        else:
            out.print(
                f"median of {repeat}: runtime {med['runtime_s']:.2f}s, compute {med['compute_s']:.2f}s, "
                f"{med['edges_per_s'] / 1e9:.2f} billion edges/s, est. ${med['cost_usd']:.6f}"
            )
    if any(s.get("matches_truth") is False for s in summaries):
        raise typer.Exit(1)


@sdsinf_app.command("runs")
def sdsinf_runs(json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Finished runs, newest first."""
    from backend.sdsinf_runs import SdsinfRuns

    runs = SdsinfRuns(_ctx(profile)).runs()
    if json_out:
        _json(runs)
        return
    table = Table("run", "config", "variant", "inputs", "categories", "truth", "runtime s", box=None)
    for r in runs:
        table.add_row(
            r["run_id"],
            r["config"],
            r["variant"],
            str(r["inputs"]),
            str(r["categories"]),
            {None: "-", True: "ok", False: "DIFFERS"}[r["matches_truth"]],
            f"{r['runtime_s']:.1f}",
        )
    out.print(table)


@sdsinf_app.command("show")
def sdsinf_show(run_id: str, json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """One run's summary, its metrics file and what it wrote."""
    from backend.sdsinf_runs import SdsinfRuns

    info = SdsinfRuns(_ctx(profile)).show(run_id)
    if json_out:
        _json(info)
        return
    for key in (
        "run_id",
        "config",
        "variant",
        "partition",
        "workers",
        "inputs",
        "categories",
        "matches_truth",
        "runtime_s",
    ):
        out.print(f"{key:<14} {info[key]}")
    out.print(f"{'edges/s':<14} {info['edges_per_s'] / 1e9:.2f} billion")
    out.print("files: " + ", ".join(info["files"]))


# -- presets ---------------------------------------------------------------------------------------
@presets_app.command("list")
def presets_list(
    kind: Annotated[str | None, typer.Option(help="plenoxels | sdsinf | batch")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Built-in and user presets (user presets override built-ins of the same name)."""
    from backend.paths import Home
    from backend.presets import list_presets

    presets = list_presets(Home.from_env(), kind)
    if json_out:
        _json([p.to_dict() for p in presets])
        return
    table = Table("name", "kind", "source", "description", box=None)
    for p in presets:
        table.add_row(p.name, p.kind, "built-in" if p.builtin else "user", p.description)
    out.print(table)


@presets_app.command("show")
def presets_show(name: str, json_out: JsonOpt = False) -> None:
    """One preset's values."""
    import yaml

    from backend.paths import Home
    from backend.presets import get_preset

    preset = get_preset(Home.from_env(), name)
    if json_out:
        _json(preset.to_dict())
        return
    out.print(f"{preset.name} ({preset.kind}, {'built-in' if preset.builtin else 'user'}): {preset.description}")
    out.print(f"file: {preset.path}")
    out.print(yaml.safe_dump(preset.values, sort_keys=False).rstrip())


# -- doctor and console ----------------------------------------------------------------------------
@app.command("doctor")
def doctor(json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Check a profile: credentials, region, reachability, stacks. Says what to fix."""
    from backend.doctor import run_checks

    checks = run_checks(_ctx(profile))
    if json_out:
        _json([c.to_dict() for c in checks])
    else:
        for c in checks:
            mark = "[green]ok[/]  " if c.ok else "[red]FAIL[/]"
            out.print(f"{mark} {c.name:<22} {escape(c.detail)}")
            if not c.ok and c.fix:
                out.print(f"       fix: {escape(c.fix)}")
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@app.command("console")
def console(
    read_only: Annotated[bool, typer.Option("--read-only", help="Hide every action that changes anything.")] = False,
    profile: ProfileOpt = None,
) -> None:
    """Open the operator console (starts the local cloud when the local profile is used)."""
    ctx = _ctx(profile)
    if ctx.profile.is_local:
        from backend.localcloud import control

        control.up(ctx.home)
    from tui.app import SkydeckApp

    SkydeckApp(ctx=ctx, read_only=read_only).run()


def main() -> None:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        rc = app(standalone_mode=False)  # click hands back an Exit's code instead of raising it
        sys.exit(rc if isinstance(rc, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(1)
    except SkydeckError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(exc.exit_code)
    except NoCredentialsError:
        err.print(
            "[red]error:[/] no AWS credentials for this profile; set aws_profile in profiles.yaml or run aws configure"
        )
        sys.exit(2)
    except ClientError as exc:
        err.print(f"[red]error:[/] AWS refused the call: {escape(str(exc))}")
        sys.exit(1)
    except BotoCoreError as exc:
        err.print(f"[red]error:[/] could not reach AWS: {escape(str(exc))}")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(1)
    except Exception as exc:
        import os

        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if os.environ.get("SKYDECK_DEBUG"):
            raise
        err.print(
            f"[red]internal error:[/] {type(exc).__name__}: {escape(str(exc))} "
            "(run again with SKYDECK_DEBUG=1 for the traceback, and report it)"
        )
        sys.exit(70)


if __name__ == "__main__":
    main()
