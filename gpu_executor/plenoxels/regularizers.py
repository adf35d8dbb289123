"""Total variation on the grid, as svox2 applies it: on a random (contiguous by default) fraction
of the cells, sqrt(dx^2 + dy^2 + dz^2) per channel against the +x, +y and +z neighbours, scaled
by reso/256 and by lambda, summed (not averaged) so that lambdas carry over from svox2 configs."""

from __future__ import annotations

import torch

from gpu_executor.plenoxels.grid import VoxelGrid


def random_cells(reso: tuple[int, int, int], frac: float, contiguous: bool, gen: torch.Generator) -> torch.Tensor:
    total = reso[0] * reso[1] * reso[2]
    n = max(1, int(total * frac))
    if contiguous:
        start = int(torch.randint(0, max(1, total - n), (1,), generator=gen, device="cpu"))
        return torch.arange(start, start + n, dtype=torch.int64)
    return torch.randint(0, total, (n,), generator=gen, dtype=torch.int64, device="cpu").to(torch.get_default_device())


def tv_loss(grid: VoxelGrid, data: torch.Tensor, cells: torch.Tensor, cols: slice, scaling: float) -> torch.Tensor:
    """lambda * sum over cells and channels of sqrt(eps + dx^2 + dy^2 + dz^2), differentiable w.r.t. data."""
    rx, ry, rz = grid.reso
    x = cells // (ry * rz)
    y = (cells // rz) % ry
    z = cells % rz
    inner = (x < rx - 1) & (y < ry - 1) & (z < rz - 1)
    cells = cells[inner]
    if cells.numel() == 0:
        return data.sum() * 0.0
    v = data[:, cols]
    v0 = v[grid.lut[cells]]
    dx = v[grid.lut[cells + ry * rz]] - v0
    dy = v[grid.lut[cells + rz]] - v0
    dz = v[grid.lut[cells + 1]] - v0
    factor = rz / 256.0
    return scaling * factor * torch.sqrt(1e-9 + dx * dx + dy * dy + dz * dz).sum()
