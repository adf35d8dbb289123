"""Batch launches: one file names a preset, scenes and a grid (or list) of overrides; each
combination becomes one validated job - what svox2's autotune.py does on one machine, across the
fleet. A file is submitted all or none (every combination is validated before the first job is
queued), and running it again skips combinations that succeeded or are still queued/running.

    name: tune-demo            # optional; default: the file's name
    preset: syn-cpu-quick
    scenes: [demo]
    grid:                      # every combination of these
      lr_sigma: [10, 30]
      lambda_tv: [1.0e-5, 1.0e-4]
    list:                      # and/or these override sets, one job each
      - {lr_sh: 0.02}

A job's name is NAME-<hash of preset, scene and overrides>, so a combination is recognised later.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from backend.core.errors import ConfigError
from backend.core.presets import compose_job, get_preset
from lambda_src.jobs.record import JobProgress, JobRecord, JobResult
from lambda_src.jobs.schema import JobSpec

if TYPE_CHECKING:
    from backend.context import Context

MAX_JOBS = 1000
_ALLOWED = {"name", "preset", "scenes", "grid", "list", "engine", "description"}
_DONE_OR_BUSY = ("SUCCEEDED", "QUEUED", "RUNNING")


@dataclass
class Combination:
    scene: str
    overrides: dict[str, Any]
    spec: JobSpec
    name: str
    existing: JobRecord | None = None

    @property
    def action(self) -> str:
        if self.existing and self.existing.state in _DONE_OR_BUSY:
            return f"skip ({self.existing.state.lower()})"
        return "submit"


@dataclass
class BatchPlan:
    name: str
    preset: str
    combinations: list[Combination] = field(default_factory=list)


def load_plan(path: Path, ctx: Context) -> BatchPlan:
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping with preset, scenes and grid or list")
    unknown = set(doc) - _ALLOWED
    if unknown:
        raise ConfigError(f"{path}: {sorted(unknown)[0]}: unknown key; allowed: {', '.join(sorted(_ALLOWED))}")
    name = str(doc.get("name") or path.stem)
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", name)[:40]
    if not name or not name[0].isalnum():
        raise ConfigError(f"{path}: name must start with a letter or digit")
    if not isinstance(doc.get("preset"), str):
        raise ConfigError(f"{path}: preset: name a plenoxels preset (skydeck presets list --kind plenoxels)")
    preset = get_preset(ctx.home, doc["preset"])
    if preset.kind != "plenoxels":
        raise ConfigError(f"{path}: preset: {preset.name} is a {preset.kind} preset, not a training job")
    scenes = doc.get("scenes")
    if isinstance(scenes, str):
        scenes = [scenes]
    if not isinstance(scenes, list) or not scenes or not all(isinstance(s, str) for s in scenes):
        raise ConfigError(f"{path}: scenes: give a list of scene names, s3:// URIs or absolute paths")
    sets = _override_sets(path, doc)
    if len(scenes) * len(sets) > MAX_JOBS:
        raise ConfigError(f"{path}: {len(scenes) * len(sets)} jobs; a batch holds at most {MAX_JOBS}")
    plan = BatchPlan(name, preset.name)
    for scene, overrides in itertools.product(scenes, sets):
        assignments = [f"{k}={json.dumps(v)}" for k, v in overrides.items()]
        if doc.get("engine"):
            assignments.append(f"engine={json.dumps(doc['engine'])}")
        key = json.dumps([preset.name, scene, overrides, doc.get("engine")], sort_keys=True)
        job_name = f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
        assignments.append(f"name={json.dumps(job_name)}")
        try:
            spec = compose_job(preset.values, scene=scene, overrides=assignments, preset_name=preset.name)
        except ConfigError as exc:
            shown = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "no overrides"
            raise ConfigError(f"{path}: scene {scene}, {shown}: {exc}; nothing was submitted") from None
        plan.combinations.append(Combination(scene, overrides, spec, job_name))
    return plan


def _override_sets(path: Path, doc: dict[str, Any]) -> list[dict[str, Any]]:
    sets: list[dict[str, Any]] = []
    grid = doc.get("grid") or {}
    if not isinstance(grid, dict):
        raise ConfigError(f"{path}: grid: a mapping of option -> list of values")
    if grid:
        keys = sorted(grid)
        values = []
        for k in keys:
            v = grid[k]
            values.append(v if isinstance(v, list) else [v])
            if not values[-1]:
                raise ConfigError(f"{path}: grid.{k}: give at least one value")
        sets += [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]
    listed = doc.get("list") or []
    if not isinstance(listed, list) or not all(isinstance(x, dict) for x in listed):
        raise ConfigError(f"{path}: list: a list of option mappings, e.g. - {{lr_sigma: 10}}")
    sets += listed
    return sets or [{}]


def attach_existing(ctx: Context, plan: BatchPlan) -> None:
    """Find the newest job of each combination (by its name) among the jobs in the table."""
    wanted = {c.name: c for c in plan.combinations}
    token = None
    while True:
        page = ctx.jobs.list(limit=1000, next_token=token)
        for job in page.items:
            combo = wanted.get(job.name or "")
            if combo is not None and combo.existing is None:  # newest first: keep the first seen
                combo.existing = job
        token = page.next_token
        if not token:
            return


def run(ctx: Context, plan: BatchPlan, dry_run: bool = False) -> list[dict[str, Any]]:
    for combo in plan.combinations:  # all or none: every job the engine would refuse is refused first
        try:
            ctx.jobs.check_engine(combo.spec)
            ctx.jobs.check_laptop_time(combo.spec)
            ctx.jobs.check_memory(combo.spec)
        except ConfigError as exc:
            raise ConfigError(f"{combo.name}: {exc}; nothing was submitted") from None
    attach_existing(ctx, plan)
    rows = []
    for combo in plan.combinations:
        action = combo.action
        job_id = combo.existing.job_id if combo.existing else None
        if action == "submit" and not dry_run:
            job_id = ctx.jobs.submit(combo.spec).job_id
        rows.append(
            {"name": combo.name, "scene": combo.scene, "overrides": combo.overrides, "action": action, "job_id": job_id}
        )
    return rows


def leaderboard(ctx: Context, plan: BatchPlan) -> list[dict[str, Any]]:
    attach_existing(ctx, plan)
    rows: list[dict[str, Any]] = []
    for combo in plan.combinations:
        job = combo.existing
        result = (job.result if job else None) or JobResult()
        progress = (job.progress if job else None) or JobProgress()
        psnr = result.psnr if result.psnr is not None else progress.psnr
        rows.append(
            {
                "name": combo.name,
                "scene": combo.scene,
                "overrides": combo.overrides,
                "job_id": job.job_id if job else None,
                "state": job.state if job else "NOT SUBMITTED",
                "psnr": psnr,
                "ssim": result.ssim,
                "train_s": result.train_s,
            }
        )
    rows.sort(key=lambda r: (r["psnr"] is None, -(r["psnr"] or 0.0)))
    return rows
