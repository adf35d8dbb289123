"""svox2's background model: the multi-sphere image (MSI) that tnt and custom scenes train beyond the
unit sphere (`background_nlayers > 0`), rendered as svox2's CUDA kernel renders it.

The layout is svox2's checkpoint's: `background_links[x, y]` ([2 * reso, reso], an equirectangular
map; -1 where `sparsify_background` emptied a column) points at a row of `background_data`
([n, nlayers, 4]: the SH DC coefficient of R, G and B, then density), one value per layer.

Rendering follows `render_background_forward` (svox2/csrc/render_lerp_kernel_cuvol.cu), which
render_imgs.py runs after the grid: the ray is taken into the sphere frame of the grid box (the box's
centre at 0, its faces at +-1), and its far intersections with spheres of radius
r_i = n / (n - i - 0.5) for i < n = int(nlayers / step_size) + 2 (from 1 outward, evenly in 1/r) are
the samples. Each is looked up at (longitude, latitude, layer (1 - 1/r) * nlayers - 0.5), wrapping
around in longitude and latitude, and composited with a step of (1/r_last - 1/r) * world_step. Only a
ray whose foreground left more than e^-25 of its light gets a background, and svox2's
background_brightness then shows through what the spheres leave.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

SH_C0 = 0.28209479177387814  # svox2's C0: the background's colours are SH DC coefficients
SKIP_BELOW_LOG_TRANSMIT = -25.0  # render_background_image_kernel: no background for a ray this dark
STOPPED_LOG_TRANSMIT = -1e3  # what the cuvol kernel records for a ray it stopped at stop_thresh


@dataclass
class MsiBackground:
    links: torch.Tensor  # [2 * reso, reso] int64, -1 for an empty column
    data: torch.Tensor  # [n, nlayers, 4] float32

    @property
    def reso(self) -> int:
        return int(self.links.shape[1])

    @property
    def nlayers(self) -> int:
        return int(self.data.shape[1])

    @classmethod
    def from_arrays(cls, links: np.ndarray, data: np.ndarray, where: str = "checkpoint") -> MsiBackground:
        """From svox2's `background_links` and `background_data`, checked as svox2's loader relies on them."""
        if links.ndim != 2 or links.shape[0] != 2 * links.shape[1]:
            raise ValueError(f"{where}: background_links must be [2 * reso, reso], not {tuple(links.shape)}")
        if data.ndim != 3 or data.shape[2] != 4 or data.shape[1] < 2:
            raise ValueError(
                f"{where}: background_data must be [n, nlayers >= 2, 4] (R, G, B, density), not {tuple(data.shape)}"
            )
        if links.size and int(links.max()) >= data.shape[0]:
            raise ValueError(f"{where}: background_links points past background_data's {data.shape[0]} rows")
        return cls(torch.from_numpy(links.astype(np.int64)), torch.from_numpy(data.astype(np.float32)))

    def lookup(self, cell: torch.Tensor, frac: torch.Tensor) -> torch.Tensor:
        """[A, 4] at MSI cells [A, 3] (x, y, layer) and their fractions [A, 3], as trilerp_bg_one: linear
        between two layers, bilinear over the map, wrapping at its right and bottom edges."""
        x, y, layer = cell.unbind(-1)
        nx = torch.where(x < 2 * self.reso - 1, x + 1, torch.zeros_like(x))
        ny = torch.where(y < self.reso - 1, y + 1, torch.zeros_like(y))

        def column(cx: torch.Tensor, cy: torch.Tensor) -> torch.Tensor:
            link = self.links[cx, cy]
            row = link.clamp_min(0)
            value = torch.lerp(self.data[row, layer], self.data[row, layer + 1], frac[:, 2:3])
            return value * (link >= 0).unsqueeze(-1)

        near = torch.lerp(column(x, y), column(x, ny), frac[:, 1:2])
        far = torch.lerp(column(nx, y), column(nx, ny), frac[:, 1:2])
        return torch.lerp(near, far, frac[:, 0:1])


def render_background(
    bg: MsiBackground,
    reso: tuple[int, int, int],
    grid_origins: torch.Tensor,
    grid_dirs: torch.Tensor,
    delta_scale: torch.Tensor,
    log_transmit: torch.Tensor,
    step_size: float,
    stop_thresh: float,
    brightness: float,
) -> torch.Tensor:
    """Colours [B, 3] the background adds behind rays given in grid coordinates (origins, unit
    directions, world length per grid unit) with the log transmittance the grid left them."""
    b = grid_origins.shape[0]
    out = torch.zeros(b, 3, dtype=log_transmit.dtype)
    lit = (log_transmit >= SKIP_BELOW_LOG_TRANSMIT).nonzero()[:, 0]
    if lit.numel() == 0:
        return out
    size = torch.tensor(reso, dtype=grid_origins.dtype)
    origin = (grid_origins[lit] + 0.5) * (2.0 / size) - 1.0
    direction = grid_dirs[lit] * (2.0 / size)
    inorm = 1.0 / direction.norm(dim=-1)
    world_step = delta_scale[lit] * inorm
    direction = direction * inorm[:, None]
    q2a = 2.0 * (direction * direction).sum(-1)
    qb = 2.0 * (origin * direction).sum(-1)
    f = qb * qb - 2.0 * q2a * (origin * origin).sum(-1)
    inner = torch.clamp_min(torch.linalg.cross(origin, direction).norm(dim=-1) + 1e-3, 1.0)
    invr_last = 1.0 / inner
    lt = log_transmit[lit]
    colour = torch.zeros(lit.numel(), 3, dtype=lt.dtype)
    running = torch.ones(lit.numel(), dtype=torch.bool)  # not yet stopped at stop_thresh
    n_steps = int(bg.nlayers / step_size) + 2
    for i in range(n_steps):
        r = n_steps / (n_steps - i - 0.5)
        det = f + 2.0 * q2a * (r * r)
        act = (running & (r >= inner) & (det >= 0)).nonzero()[:, 0]
        if act.numel() == 0:
            continue
        t = (-qb[act] + torch.sqrt(det[act])) / q2a[act]
        pos = origin[act] + t[:, None] * direction[act]
        invr_mid = 1.0 / pos.norm(dim=-1)
        unit = pos * invr_mid[:, None]
        lon = torch.atan2(unit[:, 0], unit[:, 2])
        lat = torch.asin(unit[:, 1].clamp(-1.0, 1.0))
        point = torch.stack(
            [
                bg.reso * 2 * (0.5 + lon * 0.5 / math.pi),
                bg.reso * (0.5 - lat / math.pi),
                ((1.0 - invr_mid) * bg.nlayers - 0.5).clamp(0.0, bg.nlayers - 1),
            ],
            -1,
        )
        cell = point.to(torch.int64)  # the kernel's (int) cast: the values are never negative
        cell[:, 0].clamp_(max=bg.reso * 2 - 1)
        cell[:, 1].clamp_(max=bg.reso - 1)
        cell[:, 2].clamp_(max=bg.nlayers - 2)
        value = bg.lookup(cell, point - cell.to(point.dtype))
        sigma = value[:, 3]
        dense = sigma > 0
        step = torch.where(dense, (invr_last[act] - invr_mid) * world_step[act] * sigma, torch.zeros_like(sigma))
        weight = torch.exp(lt[act]) * (1.0 - torch.exp(-step))
        rgb = torch.clamp_min(value[:, :3] * SH_C0 + 0.5, 0.0)
        colour = colour.index_add(0, act, weight[:, None] * rgb)
        lt = lt.index_add(0, act, -step)
        stopped = dense & (torch.exp(lt[act]) < stop_thresh)
        running[act[stopped]] = False
        invr_last[act[~stopped]] = invr_mid[~stopped]
    return out.index_copy(0, lit, colour + torch.exp(lt)[:, None] * float(brightness))
