"""How long a job would take on a laptop's CPU (the torch engine): the guard against queueing weeks.

An estimate, not a promise: the rays a job traces (n_iters x batch_size) at the torch engine's measured
rate on a 128^3 grid (the README's training figure, rounded down), slowed in proportion to the finest
grid's side beyond 128 (each ray crosses that many more voxels). syn-cpu-quick comes out at about two
minutes, as it takes; svox2's syn config (512^3, 128,000 iterations) at about 13 hours.
"""

from __future__ import annotations

from typing import Any

from lambda_src.jobs.schema import parse_reso
from lambda_src.jobs.svox2_options import OPTIONS

RAYS_PER_S = 50_000.0  # torch engine, 128^3 grid, 2-core laptop (docs/plenoxels.md, benchmarks/plenoxels_bench.py)
REFERENCE_SIDE = 128
LAPTOP_LIMIT_S = 2 * 3600.0  # longer than this on the local cloud needs --force


def _option(config: dict[str, Any], name: str) -> Any:
    return config.get(name, OPTIONS[name].default)


def cpu_seconds(config: dict[str, Any]) -> float:
    rays = float(_option(config, "n_iters")) * float(_option(config, "batch_size"))
    reso = _option(config, "reso")
    stages = parse_reso(reso) if isinstance(reso, str) else reso
    side = max(max(stage) for stage in stages) if stages else REFERENCE_SIDE
    return rays / RAYS_PER_S * max(1.0, side / REFERENCE_SIDE)


def humanize(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
