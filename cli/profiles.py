"""`skydeck profiles`: where skydeck points (the local cloud, or AWS accounts in profiles.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from backend.core.errors import ConfigError
from cli.common import JsonOpt, YesOpt, confirm, err, out, print_json, print_table

app = typer.Typer(no_args_is_help=True, help="Profiles: the local cloud, or an AWS account and region.")


@app.command("list")
def profiles_list(json_out: JsonOpt = False) -> None:
    """Every profile: kind, region, AWS CLI profile and stack prefix."""
    from backend.core.paths import Home
    from backend.core.profiles import load_profiles

    profiles = load_profiles(Home.from_env())
    rows = [
        {
            "name": p.name,
            "kind": p.kind,
            "region": p.region,
            "aws_profile": p.aws_profile or "",
            "stack_prefix": p.stack_prefix,
        }
        for p in profiles.values()
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

    from backend.core.environment_import import profile_from_environment, read_environment
    from backend.core.paths import Home
    from backend.core.profiles import LOCAL, parse_profile

    if name == LOCAL or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"--name {name!r}: use letters, digits, '-' and '_' (and not {LOCAL!r})")
    imported = profile_from_environment(read_environment(file))
    parse_profile(name, imported.settings)  # the same checks as loading it later: refuse now, not then
    path = Home.from_env().profiles_file
    doc = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    if not isinstance(doc, dict) or not isinstance(doc.setdefault("profiles", {}), dict):
        raise ConfigError(f"{path}: expected a top-level 'profiles:' mapping; fix it first")
    if name in doc["profiles"]:
        confirm(f"replace the profile {name!r} in {path}?", yes)
    doc["profiles"][name] = imported.settings
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    tmp.replace(path)  # a crash never leaves half a profiles file
    answer = {"profile": name, "file": str(path), "settings": imported.settings, "ignored": imported.ignored,
              "placeholders": imported.placeholders}  # fmt: skip
    if json_out:
        print_json(answer)
        return
    out.print(f"profile {name} written to {path}")
    out.print(yaml.safe_dump({name: imported.settings}, sort_keys=False).rstrip())
    for key, why in imported.ignored.items():
        err.print(f"ignored {key}: {why}")
    for key in imported.placeholders:
        err.print(f"[yellow]{key} still holds the template's placeholder; set it in {path} or the file[/yellow]")
    out.print(f"use it with: skydeck --profile {name} stacks list")
