"""`skydeck data`: Plenoxels scenes - make a synthetic one, push one, list them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import JsonOpt, ProfileOpt, backend, err, out, print_json

app = typer.Typer(no_args_is_help=True, help="Plenoxels scenes: make a synthetic one, push one to the data bucket.")


@app.command("make-scene")
def data_make_scene(
    name: Annotated[str, typer.Argument(help="Scene name (also seeds the camera positions).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the scene into.")],
    size: Annotated[int, typer.Option(min=16, max=2048, help="Image width and height in pixels.")] = 128,
    views: Annotated[int, typer.Option(min=1, max=1000, help="Training views.")] = 100,
    test_views: Annotated[int, typer.Option(min=1, max=200, help="Held-out test views (val gets half).")] = 10,
    json_out: JsonOpt = False,
) -> None:
    """Render a small synthetic scene with exact held-out views, in the NeRF-synthetic layout."""
    from backend.interface import make_scene

    if not json_out:
        err.print(f"rendering {views} + {test_views} + {max(1, test_views // 2)} views at {size}x{size} ...")
    info = make_scene(name, out_dir, size=size, views=views, test_views=test_views)
    if json_out:
        print_json({"name": info.name, "out": str(info.out), "size": info.size, "views": info.views})
    else:
        out.print(f"scene {name} in {out_dir}: " + ", ".join(f"{k} {v}" for k, v in info.views.items()))
        out.print(f"push it with: skydeck data push {out_dir} --name {name}")


@app.command("push")
def data_push(
    directory: Annotated[Path, typer.Argument(help="A NeRF-synthetic scene directory.")],
    name: Annotated[str, typer.Option(help="Name jobs will use as their scene.")],
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Check a scene and upload it to the data bucket as scenes/NAME/."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    door = backend(profile)
    if json_out or not err.is_terminal:
        result = door.push_scene(directory, name)
    else:
        with Progress(
            TextColumn("uploading"), BarColumn(), MofNCompleteColumn(), console=err.console, transient=True
        ) as bar:
            task = bar.add_task("push", total=None)
            result = door.push_scene(
                directory,
                name,
                on_file=lambda _: bar.advance(task),
                on_total=lambda n: bar.update(task, total=n),
            )
    if json_out:
        print_json(result.__dict__)
    else:
        out.print(f"pushed {result.files} files ({result.bytes / 1e6:.1f} MB) to {result.uri}")
        out.print(f"train it with: skydeck jobs submit --preset syn-cpu-quick --scene {name}")


@app.command("list")
def data_list(json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Scenes in the data bucket."""
    scenes = backend(profile).scenes()
    if json_out:
        print_json(scenes)
        return
    for scene in scenes:
        note = "" if scene["complete"] else "  incomplete: its push did not finish; push it again"
        out.print(f"{scene['name']:<24} {scene['uri']}{note}")
    if not scenes:
        out.print(
            "no scenes yet: skydeck data make-scene demo --out demo-scene && skydeck data push demo-scene --name demo"
        )
