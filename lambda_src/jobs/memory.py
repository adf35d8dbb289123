"""How much memory a job's training needs at its peak, from its config alone: checked at submit and again
by the executor before it allocates, so that a job too large for its host is refused with the estimate
and the limit, instead of taking executors down one after another as the kernel kills them.

The torch engine's peak (gpu_executor/plenoxels): starting a stage builds the whole grid's values
before keeping the allocated voxels (VoxelGrid.sphere / from_mask: reso^3 x C floats, with C = 1 + 3 x
sh_dim, plus the index and the positions), then trains the kept voxels with their gradient and the
optimiser's running average (3 x C floats each), and gathers, for each of a step's rays, the 8 corners
of every sample (index, weight and the C values of each). The estimate takes the largest stage and
counts every voxel as kept (svox2's sphere keeps about half), so it errs on the large side by design.
"""

from __future__ import annotations

import json
import os
from typing import Any

from lambda_src.jobs.svox2_options import OPTIONS

GIB = 1024**3
BASE_BYTES = 600 * 1024**2  # the interpreter, torch and the scene's images at the CPU presets' size
# the largest host of the fleet's supported families (p5.48xlarge and p6-b200.48xlarge: 2 TiB): a job past it
# fits no host, whatever the fleet's instance type
MAX_HOST_BYTES = 2048 * GIB
HEADROOM = 0.85  # of what the host has: the rest is the executor's own and the system's


def _option(config: dict[str, Any], name: str) -> Any:
    return config.get(name, OPTIONS[name].default)


def _stages(config: dict[str, Any]) -> list[list[int]]:
    reso = _option(config, "reso")
    grids = json.loads(reso) if isinstance(reso, str) else reso
    return [[g, g, g] if isinstance(g, int) else list(g) for g in grids]


def peak_bytes(config: dict[str, Any]) -> int:
    """The torch engine's peak memory for this config, in bytes (an upper estimate)."""
    channels = 1 + 3 * int(_option(config, "sh_dim"))
    batch = int(_option(config, "batch_size"))
    peak = 0
    for x, y, z in _stages(config):
        voxels = x * y * z
        build = voxels * (channels * 4 + 8 + 3 * 4)  # values, index, positions while the stage starts
        train = voxels * channels * 4 * 3  # data, gradient, RMSprop average
        samples = 2 * max(x, y, z)  # a ray crosses a side's worth of voxels, at svox2's step of 0.5
        rays = batch * samples * 8 * (8 + 4 + channels * 4)  # 8 corners: index, weight, values
        peak = max(peak, build + train, train + rays)
    return BASE_BYTES + peak


def host_bytes() -> int:
    """What this host can give a job: its memory, or its cgroup's limit where that is lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return int(total * HEADROOM)


def too_large(config: dict[str, Any], limit: int | None = None) -> str | None:
    """Why this config does not fit `limit` bytes (default: this host), or None when it fits."""
    limit = host_bytes() if limit is None else limit
    need = peak_bytes(config)
    if need <= limit:
        return None
    return (
        f"training would need about {need / GIB:.1f} GiB of memory at its peak (grid {_stages(config)[-1]}, "
        f"sh_dim {_option(config, 'sh_dim')}, batch_size {_option(config, 'batch_size')}), more than the "
        f"{limit / GIB:.1f} GiB this host can give it: lower reso, sh_dim or batch_size"
    )
