"""`skydeck profiles`: where skydeck points (the local cloud, or AWS accounts in profiles.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import JsonOpt, YesOpt, confirm, err, out, print_json, print_table

app = typer.Typer(no_args_is_help=True, help="Profiles: the local cloud, or an AWS account and region.")


@app.command("list")
def profiles_list(json_out: JsonOpt = False) -> None:
    """Every profile: kind, region, AWS CLI profile and stack prefix."""
    from backend.interface import list_profiles

    profiles = list_profiles()
    rows = [
        {
            "name": p.name,
            "kind": p.kind,
            "region": p.region,
            "aws_profile": p.aws_profile or "",
            "stack_prefix": p.stack_prefix,
        }
        for p in profiles
    ]
    if json_out:
        print_json(rows)
        return
    print_table(["name", "kind", "region", "aws_profile", "stack_prefix"], [list(r.values()) for r in rows])


@app.command("import")
def profiles_import(
    file: Annotated[Path, typer.Argument(help="The original's etc/environment.sh.")],
    name: Annotated[str, typer.Option(help="Name of the new profile.")] = "imported",
    yes: YesOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Turn the original's environment.sh into a profile (read as data, never run): region, AWS CLI
    profile, stack prefix and the fleet's image, instance type, VPC, subnets, SSH key and CIDR."""
    import yaml

    from backend.interface import import_profile

    answer = import_profile(file, name, confirm_replace=lambda question: confirm(question, yes))
    path, settings = answer["file"], answer["settings"]
    if json_out:
        print_json(answer)
        return
    out.print(f"profile {name} written to {path}")
    out.print(yaml.safe_dump({name: settings}, sort_keys=False).rstrip())
    for key, why in answer["ignored"].items():
        err.print(f"ignored {key}: {why}")
    for key in answer["placeholders"]:
        err.print(
            f"[yellow]{key} still holds the template's placeholder; set it in {path} or the file[/yellow]", markup=True
        )
    out.print(f"use it with: skydeck --profile {name} stacks list")
