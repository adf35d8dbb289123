"""`skydeck stacks`: deploy, inspect and delete the CloudFormation stacks."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer

from backend.interface import markup_safe
from cli.common import JsonOpt, ProfileOpt, YesOpt, backend, confirm, err, out, print_json

app = typer.Typer(no_args_is_help=True, help="Deploy, inspect and delete the CloudFormation stacks.")


def _print_event(e: Any) -> None:
    stamp = time.strftime("%H:%M:%S", time.localtime(e.timestamp))
    colour = (
        "red"
        if "FAILED" in e.status or "ROLLBACK" in e.status
        else ("green" if e.status.endswith("COMPLETE") else "yellow")
    )
    reason = f"  {markup_safe(e.reason)}" if e.reason else ""
    err.print(
        f"{stamp}  {markup_safe(e.logical_id):<28} {markup_safe(e.resource_type):<36} [{colour}]{e.status}[/]{reason}",
        markup=True,
    )


@app.command("deploy")
def stacks_deploy(
    name: Annotated[str, typer.Argument(help="infra | api | fleet | sdsinf | all")],
    param: Annotated[list[str] | None, typer.Option("--param", help="Template parameter K=V (repeatable).")] = None,
    no_execute: Annotated[
        bool,
        typer.Option("--no-execute-changeset", help="Create each change set and show it, but do not run it."),
    ] = False,
    yes: YesOpt = False,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Create or update stacks through change sets: each one is shown, then run (asking first on AWS)."""
    from backend.interface import ConfigError, stack_shorts

    door = backend(profile)
    names = stack_shorts(name)
    params: dict[str, str] = {}
    for item in param or []:
        if "=" not in item:
            raise ConfigError(f"--param {item!r}: expected KEY=VALUE, e.g. --param Stage=prod")
        k, v = item.split("=", 1)
        params[k.strip()] = v
    if params and len(names) > 1:
        raise ConfigError("--param applies to one stack; deploy the stacks one at a time to set parameters")
    results = []
    for short in names:
        if not json_out:
            err.print(f"planning {door.profile.stack_name(short)} ...")
        plan = door.plan_stack(short, params, on_event=None if json_out else _print_event)
        changes = [c.to_dict() for c in plan.changes]
        if not json_out:
            _print_changes(plan)
        if plan.change_set is None or no_execute:
            info = door.stack(short)
            results.append({**info.to_dict(), "changes": changes, "change_set": plan.change_set, "executed": False})
            if not json_out:
                out.print(
                    f"{info.name}: no changes" if plan.change_set is None else
                    f"{info.name}: change set {plan.change_set} left for review "
                    f"(run it: skydeck stacks deploy {short}{_param_args(params)})"
                )  # fmt: skip
            continue
        if not door.profile.is_local:
            where = f"AWS ({door.profile.region}); this creates or changes billable resources"
            confirm(f"run these {len(changes)} change(s) to {plan.name} on {where}?", yes)
        try:
            info = door.execute_stack(plan, on_event=None if json_out else _print_event)
        except KeyboardInterrupt:
            err.print(
                f"interrupted: the {plan.change_type.lower()} of {plan.name} goes on without you; "
                f"follow it: skydeck stacks events {short} --follow"
            )
            raise typer.Exit(130) from None
        results.append({**info.to_dict(), "changes": changes, "change_set": plan.change_set, "executed": True})
        if not json_out:
            out.print(f"{info.name}: {info.status}")
            for k, v in info.outputs.items():
                out.print(f"  {k:<22} {v}")
    if json_out:
        print_json(results if len(results) > 1 else results[0])


def _param_args(params: dict[str, str]) -> str:
    return "".join(f" --param {k}={v}" for k, v in params.items())


def _print_changes(plan: Any) -> None:
    if not plan.changes:
        return
    colour = {"Add": "green", "Modify": "yellow", "Remove": "red"}
    err.print(f"{plan.change_type.lower()} {plan.name}: {len(plan.changes)} change(s)")
    for c in plan.changes:
        replace = "  (replaces it)" if c.replacement == "True" else ""
        err.print(
            f"  [{colour.get(c.action, 'white')}]{markup_safe(c.action):<7}[/] {markup_safe(c.logical_id):<30} "
            f"{markup_safe(c.resource_type)}{replace}",
            markup=True,
        )


@app.command("list")
def stacks_list(json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Every skydeck stack with its status."""
    infos = backend(profile).stacks()
    if json_out:
        print_json([i.to_dict() for i in infos])
        return
    from rich.table import Table  # rich is imported only to draw

    table = Table("stack", "name", "status", box=None)
    for i in infos:
        table.add_row(i.short, i.name, i.status)
    out.print(table)


@app.command("describe")
def stacks_describe(name: str, json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Status, parameters and outputs of one stack."""
    info = backend(profile).stack(name)
    if json_out:
        print_json(info.to_dict())
        return
    out.print(f"{info.name}: {info.status}{'  ' + info.reason if info.reason else ''}")
    for title, values in (("outputs", info.outputs), ("parameters", info.parameters)):
        if values:
            out.print(f"{title}:")
            for k, v in values.items():
                out.print(f"  {k:<22} {v}")


@app.command("events")
def stacks_events(
    name: str,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events until interrupted.")] = False,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """A stack's events, oldest first."""
    door = backend(profile)
    seen: set[tuple[float, str, str]] = set()
    while True:
        for e in door.stack_events(name):
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


@app.command("delete")
def stacks_delete(name: str, yes: YesOpt = False, json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Delete a stack (asks first). The data bucket and the jobs table are retained."""
    from backend.interface import SkydeckError, stack_shorts

    door = backend(profile)
    names = list(reversed(stack_shorts(name)))
    deployed = [n for n in names if door.stack(n).deployed]
    if not deployed:
        raise SkydeckError(f"nothing to delete: {name} is not deployed")
    confirm(
        f"delete {', '.join(door.profile.stack_name(n) for n in deployed)} ({door.profile.name})? "
        "Its resources are destroyed (the data bucket and jobs table are kept).",
        yes,
    )
    results = []
    for short in deployed:
        info = door.delete_stack(short, on_event=None if json_out else _print_event)
        results.append(info.to_dict())
        if not json_out:
            out.print(f"{info.name}: {info.status}")
    if json_out:
        print_json(results if len(results) > 1 else results[0])
