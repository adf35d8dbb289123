"""The sparse voxel grid: density + SH coefficients per allocated voxel, addressed through `links`.

Layout and coordinates are svox2's: `links[x, y, z]` holds a row of the data arrays or -1 (empty);
world point p maps to grid coordinate ((p - center) / radius * 0.5 + 0.5) * reso - 0.5, so voxel
centres sit at integer coordinates. Internally an empty voxel points at an all-zero last row of
`data` (columns: density, then R, G and B SH coefficients), which keeps every lookup branch-free.
`save`/`load` read and write svox2's ckpt.npz, so either engine can render the other's model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gpu_executor.plenoxels.background import MsiBackground


def as_reso(values: Sequence[int]) -> tuple[int, int, int]:
    """A grid size as three ints: svox2's `reso` entries are [x, y, z]."""
    if len(values) != 3:
        raise ValueError(f"a grid size is [x, y, z], not {list(values)}")
    x, y, z = (int(v) for v in values)
    return x, y, z


@dataclass
class VoxelGrid:
    reso: tuple[int, int, int]
    radius: torch.Tensor  # [3]
    center: torch.Tensor  # [3]
    lut: torch.Tensor  # [X*Y*Z] int64 row per voxel; empty voxels point at the zero row (index n)
    data: torch.Tensor  # [n + 1, 1 + 3 * basis_dim]
    basis_dim: int
    background: MsiBackground | None = None  # svox2's background model, from a tnt/custom checkpoint

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def dense(
        cls, reso: tuple[int, int, int], basis_dim: int, init_sigma: float, radius=(1.0, 1.0, 1.0), center=(0, 0, 0)
    ) -> VoxelGrid:
        n = reso[0] * reso[1] * reso[2]
        data = torch.zeros(n + 1, 1 + 3 * basis_dim)
        data[:n, 0] = init_sigma
        return cls(
            as_reso(reso),
            torch.tensor(radius, dtype=torch.float32),
            torch.tensor(center, dtype=torch.float32),
            torch.arange(n, dtype=torch.int64),
            data,
            basis_dim,
        )

    @classmethod
    def sphere(
        cls, reso: tuple[int, int, int], basis_dim: int, init_sigma: float, radius=(1.0, 1.0, 1.0), center=(0, 0, 0)
    ) -> VoxelGrid:
        """svox2's start for NeRF data (SparseGrid's use_sphere_bound): only the voxels whose corner
        index i maps inside the unit ball, at p = 2i/reso - 1 per axis, with |p| <= 1 + sqrt(3)/max(reso)."""
        axes = [torch.arange(r, dtype=torch.float32) * (2.0 / r) - 1.0 for r in reso]
        x, y, z = torch.meshgrid(*axes, indexing="ij")
        norms = torch.sqrt(x * x + y * y + z * z)
        mask = norms <= 1.0 + (3**0.5) / max(reso)
        values = torch.zeros(mask.numel(), 1 + 3 * basis_dim)
        values[:, 0] = init_sigma
        return cls.from_mask(
            as_reso(reso), mask, values, basis_dim,
            torch.tensor(radius, dtype=torch.float32), torch.tensor(center, dtype=torch.float32),
        )  # fmt: skip

    @classmethod
    def from_mask(
        cls, reso: tuple[int, int, int], mask: torch.Tensor, values: torch.Tensor, basis_dim: int, radius, center
    ) -> VoxelGrid:
        """A grid allocating the voxels where `mask` [X,Y,Z] is set, with `values` [X*Y*Z, C] there."""
        flat = mask.reshape(-1)
        n = int(flat.sum())
        lut = torch.full((flat.numel(),), n, dtype=torch.int64)
        lut[flat] = torch.arange(n, dtype=torch.int64)
        data = torch.zeros(n + 1, values.shape[1])
        data[:n] = values[flat]
        return cls(as_reso(reso), radius.clone(), center.clone(), lut, data, basis_dim)

    # -- facts -------------------------------------------------------------------------------------
    @property
    def n_voxels(self) -> int:
        return self.data.shape[0] - 1

    @property
    def channels(self) -> int:
        return self.data.shape[1]

    def scale_offset(self) -> tuple[torch.Tensor, torch.Tensor]:
        """grid = world * scale + offset."""
        gsz = torch.tensor(self.reso, dtype=torch.float32, device=self.radius.device)
        scale = 0.5 * gsz / self.radius
        return scale, 0.5 * gsz - 0.5 - self.center * scale

    def occupied(self) -> torch.Tensor:
        """[X,Y,Z] bool: allocated voxels with positive density."""
        n = self.n_voxels
        dens = self.data[:, 0]
        return ((self.lut < n) & (dens[self.lut] > 0)).reshape(self.reso)

    def cell_occupancy(self) -> torch.Tensor:
        """[X-1,Y-1,Z-1] bool: cells with at least one occupied corner (others render as empty space)."""
        occ = self.occupied().float()[None, None]
        return F.max_pool3d(occ, kernel_size=2, stride=1)[0, 0] > 0

    # -- values anywhere -----------------------------------------------------------------------------
    def sample_world(self, points: torch.Tensor, chunk: int = 1 << 18) -> torch.Tensor:
        """Trilinearly interpolated data [P, C] at world points [P, 3] (zero outside the grid)."""
        scale, offset = self.scale_offset()
        out = torch.zeros(points.shape[0], self.channels)
        hi = torch.tensor(self.reso, dtype=torch.float32) - 1
        for s in range(0, points.shape[0], chunk):
            g = points[s : s + chunk] * scale + offset
            inside = ((g >= 0) & (g <= hi)).all(-1)
            corners, weights = corner_weights(self.reso, g[inside])
            out[s : s + chunk][inside] = (self.data[self.lut[corners]] * weights[..., None]).sum(1)
        return out

    def voxel_centres(self, reso: tuple[int, int, int]) -> torch.Tensor:
        """World positions [X*Y*Z, 3] of the voxel centres of a grid of `reso` with this grid's bounds."""
        axes = [(torch.arange(r, dtype=torch.float32) + 0.5) / r * 2 - 1 for r in reso]
        gx, gy, gz = torch.meshgrid(*axes, indexing="ij")
        unit = torch.stack([gx, gy, gz], -1).reshape(-1, 3)
        return unit * self.radius + self.center

    # -- svox2's checkpoint -----------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        n = self.n_voxels
        links = torch.where(self.lut < n, self.lut, torch.full_like(self.lut, -1)).to(torch.int32)
        arrays: dict[str, np.ndarray] = {
            "radius": self.radius.cpu().numpy(),
            "center": self.center.cpu().numpy(),
            "links": links.reshape(self.reso).cpu().numpy(),
            "density_data": self.data[:n, :1].detach().cpu().numpy().astype(np.float32),
            "sh_data": self.data[:n, 1:].detach().cpu().numpy().astype(np.float16),
            "basis_type": np.asarray(1, dtype=np.int64),  # svox2's BASIS_TYPE_SH
        }
        if self.background is not None:
            arrays["background_links"] = self.background.links.to(torch.int32).cpu().numpy()
            arrays["background_data"] = self.background.data.detach().cpu().numpy().astype(np.float32)
        np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy's stub reads **kwds as its allow_pickle

    @classmethod
    def load(cls, path: Path) -> VoxelGrid:
        with np.load(path) as z:
            missing = {"links", "density_data", "sh_data"} - set(z.files)
            if missing:
                raise ValueError(f"{path}: not an svox2 checkpoint (missing {', '.join(sorted(missing))})")
            if "basis_type" in z.files and int(z["basis_type"]) != 1:
                raise ValueError(f"{path}: basis_type {int(z['basis_type'])} is not SH; only SH grids are supported")
            background = None
            if "background_data" in z.files and z["background_data"].size > 0:
                if "background_links" not in z.files:
                    raise ValueError(f"{path}: background_data without background_links is not an svox2 checkpoint")
                background = MsiBackground.from_arrays(z["background_links"], z["background_data"], str(path))
            links = torch.from_numpy(z["links"].astype(np.int64))
            density = torch.from_numpy(z["density_data"].astype(np.float32))
            sh = torch.from_numpy(z["sh_data"].astype(np.float32))
            radius = (
                torch.from_numpy(z["radius"].astype(np.float32)) if "radius" in z.files else torch.ones(3, device="cpu")
            )
            center = (
                torch.from_numpy(z["center"].astype(np.float32))
                if "center" in z.files
                else torch.zeros(3, device="cpu")
            )
        n = density.shape[0]
        lut = links.reshape(-1)
        lut = torch.where(lut >= 0, lut, torch.full_like(lut, n))
        data = torch.cat([torch.cat([density, sh], 1), torch.zeros(1, 1 + sh.shape[1], device="cpu")])
        return cls(as_reso(links.shape), radius.reshape(3), center.reshape(3), lut, data, sh.shape[1] // 3, background)


def corner_weights(reso: tuple[int, int, int], g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat voxel indices [P, 8] of the cell around grid points g [P, 3] and their trilinear weights."""
    hi = torch.tensor([r - 2 for r in reso], dtype=torch.int64)
    lo = g.floor().to(torch.int64).clamp_min(0)
    lo = torch.minimum(lo, hi)
    f = (g - lo.to(g.dtype)).clamp(0.0, 1.0)
    _, ry, rz = reso
    base = (lo[:, 0] * ry + lo[:, 1]) * rz + lo[:, 2]
    offs = torch.tensor([0, 1, rz, rz + 1, ry * rz, ry * rz + 1, ry * rz + rz, ry * rz + rz + 1], dtype=torch.int64)
    corners = base[:, None] + offs[None, :]
    fx, fy, fz = f[:, 0:1], f[:, 1:2], f[:, 2:3]
    wx = torch.cat([1 - fx, fx], 1)
    wy = torch.cat([1 - fy, fy], 1)
    wz = torch.cat([1 - fz, fz], 1)
    w = (wx[:, :, None, None] * wy[:, None, :, None] * wz[:, None, None, :]).reshape(-1, 8)
    return corners, w
