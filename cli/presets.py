"""`skydeck presets`: list and show job and run presets."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.choices import PresetKind, value
from cli.common import JsonOpt, out, print_json, print_table

app = typer.Typer(no_args_is_help=True, help="Job and run presets.")


@app.command("list")
def presets_list(
    kind: Annotated[PresetKind | None, typer.Option(help="Only presets of this kind.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Built-in and user presets (user presets override built-ins of the same name)."""
    from backend.interface import list_presets

    presets = list_presets(value(kind))
    if json_out:
        print_json([p.to_dict() for p in presets])
        return
    print_table(
        ["name", "kind", "source", "description"],
        [[p.name, p.kind, "built-in" if p.builtin else "user", p.description] for p in presets],
    )


@app.command("show")
def presets_show(name: str, json_out: JsonOpt = False) -> None:
    """One preset's values."""
    import yaml

    from backend.interface import get_preset

    preset = get_preset(name)
    if json_out:
        print_json(preset.to_dict())
        return
    out.print(f"{preset.name} ({preset.kind}, {'built-in' if preset.builtin else 'user'}): {preset.description}")
    out.print(f"file: {preset.path}")
    out.print(yaml.safe_dump(preset.values, sort_keys=False).rstrip())
