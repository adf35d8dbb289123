"""`skydeck fleet`: the GPU hosts of the fleet stack - how each booted, and what each is doing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from cli.common import JsonOpt, ProfileOpt, YesOpt, backend, confirm, err, out, print_json, print_table

if TYPE_CHECKING:
    from backend.interface import Fleet

app = typer.Typer(no_args_is_help=True, help="The fleet's GPU hosts: boot state, heartbeat, job; boot logs.")


def _explain(fleet: Fleet) -> None:
    stopped = fleet.stopped_by
    if stopped is not None:
        err.print(
            f"the fleet is stopped (MaxSize 0): host {stopped.instance_id} failed its boot at step "
            f"'{stopped.failed_step}': {stopped.reason}\n"
            f"queued jobs wait until a host serves. See: skydeck fleet logs {stopped.instance_id}; "
            "fix the cause (an AMI, a parameter), then: skydeck fleet resume"
        )


@app.command("hosts")
def fleet_hosts(json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Each instance of the fleet (and each boot record of one that is gone): AMI, type, boot state and the
    step that failed, the executor's last heartbeat and the job it holds."""
    door = backend(profile)
    fleet = door.fleet_hosts()
    if json_out:
        print_json(fleet.to_dict())
        return
    local = door.profile.is_local
    if local:
        # the local cloud's group launches no instance: its executors (local-N) serve the queue
        out.print("on the local cloud, jobs are served by its own executors (local-N), listed here as hosts")
    else:
        out.print(f"group {fleet.group}: {fleet.desired} desired, min {fleet.min_size}, max {fleet.max_size}")
    rows = [
        [
            h.instance_id,
            (f"local, pid {h.pid}" if h.pid else "local") if h.local else (h.lifecycle or "gone"),
            h.ami or "-", h.instance_type or "-",
            h.boot_state + (f" at {h.failed_step}" if h.failed_step else ""),
            h.engine or "-", h.heartbeat or "-", h.job_id or "-",
        ]
        for h in fleet.hosts
    ]  # fmt: skip
    if rows:
        print_table(["instance", "state", "ami", "type", "boot", "engine", "heartbeat", "job"], rows)
    elif local:
        out.print("no executor has reported yet: `skydeck local up` starts them once infra and fleet are deployed")
    else:
        out.print("no hosts yet: the group starts one when a job is queued")
    for h in fleet.hosts:
        if h.boot_state == "failed" and h.reason:
            err.print(f"{h.instance_id}: {h.reason}")
    _explain(fleet)


@app.command("logs")
def fleet_logs(instance: str, profile: ProfileOpt = None) -> None:
    """Print a host's boot log (the tail the set-up uploaded)."""
    out.out(backend(profile).fleet_boot_log(instance), end="", highlight=False)


@app.command("resume")
def fleet_resume(
    yes: YesOpt = False,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Give the group back its stack's MinSize/MaxSize after a failed boot stopped it."""
    door = backend(profile)
    current = door.fleet_hosts()
    if current.stopped_by is None and (current.min_size, current.max_size) == (current.stack_min, current.stack_max):
        if json_out:
            print_json(current.to_dict())
        else:
            out.print(f"the fleet is not stopped (min {current.min_size}, max {current.max_size}): nothing to resume")
        return
    confirm("start the fleet's group again (instances cost money while they run)?", yes)
    fleet = door.resume_fleet()
    if json_out:
        print_json(fleet.to_dict())
        return
    out.print(
        f"group {fleet.group} resumed: min {fleet.min_size}, max {fleet.max_size}; "
        "a host starts when a job is queued (skydeck fleet hosts)"
    )
