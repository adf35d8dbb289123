"""`skydeck batch`: one job per combination of a preset, scenes and overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import JsonOpt, ProfileOpt, backend, out, print_json

app = typer.Typer(no_args_is_help=True, help="Batch launches: a preset x scenes x a grid of overrides.")


def _overrides_text(overrides: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in overrides.items()) or "(preset as is)"


@app.command("run")
def batch_run(
    file: Annotated[Path, typer.Argument(help="A batch file: preset, scenes, grid and/or list of overrides.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and show what would be submitted.")] = False,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Submit one job per combination, all or none; combinations that succeeded (or are queued/running) are skipped."""
    door = backend(profile)
    plan = door.load_batch(file)
    rows = door.run_batch(plan, dry_run=dry_run)
    if json_out:
        print_json({"batch": plan.name, "preset": plan.preset, "dry_run": dry_run, "jobs": rows})
        return
    from rich.table import Table  # rich is imported only to draw

    table = Table("scene", "overrides", "action", "job id", box=None)
    for row in rows:
        action = f"would {row['action']}" if dry_run and row["action"] == "submit" else row["action"]
        table.add_row(row["scene"], _overrides_text(row["overrides"]), action, row["job_id"] or "-")
    out.print(table)
    submitted = sum(1 for r in rows if r["action"] == "submit")
    verb = "would submit" if dry_run else "submitted"
    out.print(f"batch {plan.name}: {verb} {submitted}, skipped {len(rows) - submitted} of {len(rows)}")


@app.command("status")
def batch_status(
    file: Annotated[Path, typer.Argument(help="The batch file that was run.")],
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """The batch's jobs as one leaderboard, best held-out PSNR first."""
    door = backend(profile)
    plan = door.load_batch(file)
    rows = door.batch_leaderboard(plan)
    if json_out:
        print_json({"batch": plan.name, "preset": plan.preset, "jobs": rows})
        return
    from rich.table import Table  # rich is imported only to draw

    table = Table("#", "psnr", "ssim", "state", "scene", "overrides", "job id", box=None)
    for i, row in enumerate(rows, 1):
        psnr = f"{row['psnr']:.2f}" if isinstance(row["psnr"], int | float) else "-"
        ssim = f"{row['ssim']:.3f}" if isinstance(row["ssim"], int | float) else "-"
        table.add_row(
            str(i), psnr, ssim, row["state"], row["scene"], _overrides_text(row["overrides"]), row["job_id"] or "-"
        )
    out.print(table)
