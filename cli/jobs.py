"""`skydeck jobs`: submit, list, watch, fetch and cancel Plenoxels training jobs."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.choices import Engine, value
from cli.common import JsonOpt, ProfileOpt, YesOpt, backend, confirm, ctrl_c_stops, err, out, print_json, print_table

if TYPE_CHECKING:
    from backend.interface import Job

app = typer.Typer(no_args_is_help=True, help="Plenoxels training jobs.")


def _job_row(job: Job) -> list[str]:
    """What a row shows is what the console shows: the interface's one reading of a record."""
    from backend.interface import age

    return [
        job.job_id,
        job.state,
        job.name,
        job.engine,
        f"{job.iteration}" if job.iteration is not None else "-",
        f"{job.psnr:.2f}" if job.psnr is not None else "-",
        age(job.created_at),
    ]


@app.command("submit")
def jobs_submit(
    file: Annotated[Path | None, typer.Argument(help="A job JSON file (skydeck's form or the original's).")] = None,
    preset: Annotated[str | None, typer.Option(help="Start from this preset.")] = None,
    scene: Annotated[str | None, typer.Option(help="Scene name, s3:// URI or absolute path.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override key=value (repeatable).")] = None,
    no_check: Annotated[
        bool, typer.Option("--no-check", help="Queue even if the scene is not (yet) in the data bucket.")
    ] = False,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            help="The job's id to be (a UUID): the same command again answers with that job instead of "
            "making a second (default: a new one each time, printed if the submit may not have finished).",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Queue anyway a job estimated to take hours, or more memory than this machine has, on the local cloud "
            "(an executor still refuses one its host cannot hold).",
        ),
    ] = False,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Validate and queue a job from a file or a preset. On the local cloud, a job estimated to train for
    more than 2 hours on its CPU is refused unless --force."""
    from backend.interface import ConfigError, read_job_file

    door = backend(profile)
    if (file is None) == (preset is None):
        raise ConfigError("give either a job FILE or --preset NAME (not both)")
    if file is not None:
        if set_ or scene:
            raise ConfigError("--set and --scene go with --preset; edit the file instead")
        spec = read_job_file(file)
    else:
        spec = door.compose_job(door.preset(preset or ""), scene=scene, overrides=set_ or [])
    job = door.submit_job(
        spec,
        check_scene=not no_check,
        force=force,
        key=idempotency_key,
        scene_hint="; --no-check queues the job anyway",
    )
    if json_out:
        print_json(job.to_dict())
    elif job.replayed:
        out.print(f"already queued as {job.job_id} ({job.state}): nothing new was made")
    else:
        out.print(f"queued {job.job_id}  ({spec.name}, scene {spec.scene}, engine {spec.engine})")


@app.command("validate")
def jobs_validate(
    job_id: Annotated[str, typer.Argument(help="The training job whose checkpoint to evaluate (any unique prefix).")],
    scene: Annotated[str | None, typer.Option(help="Evaluate on this scene instead of the job's own.")] = None,
    engine: Annotated[Engine, typer.Option(case_sensitive=False, help="Engine that evaluates.")] = Engine("auto"),
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Queue a validation-only job: the checkpoint of a finished job rendered at every test view of the
    scene, with PSNR, SSIM and LPIPS, as svox2's render_imgs.py does (the original's validation job)."""
    door = backend(profile)
    spec = door.validation_job(job_id, scene=scene, engine=value(engine) or "auto")
    job = door.submit_job(spec)
    if json_out:
        print_json(job.to_dict())
    else:
        out.print(f"queued {job.job_id}  (validates {spec.checkpoint} on {spec.scene}, engine {spec.engine})")


@app.command("list")
def jobs_list(
    state: Annotated[
        str | None,
        typer.Option(
            help="Only jobs in this state: queued, running, succeeded, failed or cancelled.",
            autocompletion=lambda: ["queued", "running", "succeeded", "failed", "cancelled"],
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    next_token: Annotated[str | None, typer.Option(help="Page on from a previous --json answer.")] = None,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Jobs, newest first."""
    page = backend(profile).jobs(state=state, limit=limit, next_token=next_token)
    if json_out:
        print_json({"items": [j.to_dict() for j in page.items], "next_token": page.next_token})
        return
    print_table(["job id", "state", "name", "engine", "iter", "psnr", "age"], [_job_row(j) for j in page.items])
    if page.next_token:
        out.print(f"more: --next-token {page.next_token}")


@app.command("show")
def jobs_show(job_id: str, json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """One job (any unique prefix of its id): its document, state, progress and result."""
    from backend.interface import age, phases

    door = backend(profile)
    job = door.job(door.resolve_job(job_id)).to_dict()
    if json_out:
        print_json(job)
        return
    for key in ("job_id", "state", "name", "scene", "engine", "preset", "worker", "attempts", "error", "note"):
        if job.get(key) not in (None, ""):
            out.print(f"{key:<10} {job[key]}")
    out.print(f"{'created':<10} {age(job.get('created_at'))} ago")
    ended = job.get("state") in ("SUCCEEDED", "FAILED", "CANCELLED")
    titles = {  # progress and result measure different things: each says which
        "config": "config:",
        "progress": "progress (the last report while training: a held-out view, a batch's rays):"
        if ended
        else "progress:",
        "result": "result (scored on every test view at the end):",
    }
    # said elsewhere: the history is long, the notes follow, a stage is over once the job has ended,
    # and why there is no LPIPS is one of the notes
    skipped = {"history", "notes", "phases_s", "lpips_unavailable"} | ({"stage"} if ended else set())
    for section in ("config", "progress", "result"):
        if job.get(section):
            out.print(titles[section])
            for k, v in job[section].items():
                if k in skipped:
                    continue
                out.print(f"  {k:<22} {v}")
    if isinstance((job.get("result") or {}).get("phases_s"), dict):
        out.print(f"{'phases':<10} {phases(job['result']['phases_s'])}")
    for note in (job.get("result") or {}).get("notes", []):
        out.print(f"note: {note}")
    if (job.get("result") or {}).get("artifacts"):
        out.print(
            f"fetch the checkpoint, renders, turntable.gif and metrics.json: skydeck jobs fetch {job_id} --out DIR"
        )


@app.command("fetch")
def jobs_fetch(
    job_id: str,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to download the job's results into.")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace files of the same name already in --out.")
    ] = False,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Download a job's results (ckpt.npz, test renders, turntable.gif, metrics.json). Files already in
    --out are not replaced without --overwrite."""
    from backend.interface import NotFoundError

    door = backend(profile)
    job_id = door.resolve_job(job_id)  # a clear "no such job" before looking in the bucket
    progress = (lambda n: None) if json_out else (lambda n: err.print(f"  {n}"))
    files = door.fetch_results(job_id, out_dir, on_file=progress, overwrite=overwrite)
    try:
        state: str | None = door.job(job_id).state
    except NotFoundError:  # results can outlive the job's record (or be put there by hand)
        state = None
    if json_out:
        print_json({"job_id": job_id, "state": state, "files": [str(p) for p in files]})
        return
    out.print(f"{len(files)} file(s) in {out_dir}")
    if state in ("QUEUED", "RUNNING"):
        err.print(
            f"job {job_id} is {state}: these are its files so far (its log, the live preview); "
            f"fetch again when it ends for the checkpoint and renders (skydeck jobs watch {job_id})"
        )


@app.command("logs")
def jobs_logs(
    job_id: str,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until the job ends.")] = False,
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between polls with --follow.")] = 2.0,
    profile: ProfileOpt = None,
) -> None:
    """A job's own log: claim, engine, progress, outcome (published while it runs)."""
    door = backend(profile)
    job_id = door.resolve_job(job_id)
    printed = 0
    with ctrl_c_stops() as stop:
        while not stop.is_set():
            # the executor publishes the log's last line before it records the outcome, so once the
            # job has ended, one more read has everything
            ended = door.job(job_id).ended
            lines = (door.job_log(job_id, strict=True) or "").splitlines()
            for line in lines[printed:]:
                out.print(line)
            printed = max(printed, len(lines))
            if not follow or ended:
                if not lines:
                    err.print(f"job {job_id} has no log yet (it appears once an executor claims it)")
                return
            stop.wait(interval)
    err.print(f"stopped following: job {job_id} runs on (skydeck jobs logs {job_id} -f to follow again)")
    raise typer.Exit(130)


@app.command("cancel")
def jobs_cancel(job_id: str, yes: YesOpt = False, json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Cancel a queued job, or ask a running one to stop."""
    door = backend(profile)
    job_id = door.resolve_job(job_id)
    job = door.job(job_id)
    if job.ended:  # said before any question: there is nothing to confirm
        err.print(f"job {job_id} already ended ({job.state}); nothing to cancel")
        raise typer.Exit(1)
    confirm(f"cancel job {job_id} ({job.name or None}, {job.state})?", yes)
    job = door.cancel_job(job_id)
    if json_out:
        print_json(job.to_dict())
    else:
        out.print(f"{job_id}: {'CANCELLED' if job.state == 'CANCELLED' else 'stop requested'}")


@app.command("watch")
def jobs_watch(
    job_id: Annotated[str | None, typer.Argument(help="A job id; without it, the newest jobs.")] = None,
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between polls.")] = 1.0,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Follow a job until it ends (or the job list until interrupted). Exits 1 if the job failed or was cancelled."""
    door = backend(profile)
    if job_id is not None:  # an empty id (an unset $JOB_ID) is refused, not read as "every job"
        job_id = door.resolve_job(job_id)
    last: Any = None
    said = ""  # a line is printed when what it says changes, not at every poll
    pace = _Pace()
    with ctrl_c_stops() as stop:
        for snapshot in door.watch_jobs(job_id, interval_s=interval, stop=stop):
            if stop.is_set():
                break
            last = snapshot
            if json_out:
                doc = [j.to_dict() for j in snapshot] if isinstance(snapshot, list) else snapshot.to_dict()
                sys.stdout.write(json.dumps(doc, default=str) + "\n")
                sys.stdout.flush()
                continue
            if not isinstance(snapshot, list):
                line = _watch_line(snapshot, pace)
            else:
                counts: dict[str, int] = {}
                for job in snapshot:
                    counts[job.state] = counts.get(job.state, 0) + 1
                line = "  ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            if line != said:
                out.print(f"{time.strftime('%H:%M:%S')}  {line}")
                said = line
    if stop.is_set():
        what = f"job {job_id} runs on" if job_id else "the jobs run on"
        err.print(f"stopped watching: {what}", soft_wrap=True)
        err.print(f"watch again with: skydeck jobs watch{' ' + job_id if job_id else ''}", soft_wrap=True)
        raise typer.Exit(130)
    if job_id and last and last.state in ("FAILED", "CANCELLED"):
        if not json_out:
            err.print(f"job {job_id} ended {last.state}" + (f": {last.error}" if last.error else ""))
        raise typer.Exit(1)


class _Pace:
    """Iterations per second seen while watching, for an ETA (from the first two readings on)."""

    def __init__(self) -> None:
        self.first: tuple[float, int] | None = None

    def eta(self, iteration: int, n_iters: int) -> str:
        now = time.monotonic()
        if self.first is None or iteration < self.first[1]:
            self.first = (now, iteration)
            return ""
        seconds, done = now - self.first[0], iteration - self.first[1]
        if done <= 0 or seconds <= 0:
            return ""
        left = (n_iters - iteration) / (done / seconds)
        return f"  eta {int(left // 60)}m{int(left % 60):02d}s"


def _watch_line(job: Job, pace: _Pace) -> str:
    n_iters = job.progress.n_iters
    it = job.iteration
    step = "-" if it is None else (f"{it}/{n_iters}" if n_iters else f"{it}")
    psnr = f"{job.psnr:.2f}" if job.psnr is not None else "-"
    eta = pace.eta(it, n_iters) if it is not None and n_iters and job.state == "RUNNING" else ""
    return f"{job.state:<10} iter {step:<11} psnr {psnr}{eta}"


@app.command("reconcile")
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
    done = backend(profile).reconcile_jobs(queued_after, heartbeat_after, max_attempts)
    if json_out:
        print_json(done)
        return
    for key, ids in done.items():
        out.print(f"{key:<9} {len(ids)}" + (f"  {' '.join(ids)}" if ids else ""))
