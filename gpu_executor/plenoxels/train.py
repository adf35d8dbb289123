"""Plenoxels optimisation on a `VoxelGrid`, following svox2's `opt.py` step by step.

Coarse-to-fine: training starts on `reso[0]` (dense, density `init_sigma`, SH zero); every
`upsamp_every` steps the grid is resampled to the next resolution and pruned (voxels whose
rendering weight, or density for `thresh_type: sigma`, stays under the threshold are dropped,
then the kept set is dilated by 2 voxels as svox2 does), so the grid stays sparse in memory.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gpu_executor.plenoxels.dataset import Split
from gpu_executor.plenoxels.grid import VoxelGrid, as_reso
from gpu_executor.plenoxels.optim import SparseRMSprop, expon_lr
from gpu_executor.plenoxels.regularizers import random_cells, tv_loss
from gpu_executor.plenoxels.render import Occupancy, RenderOptions, RenderStats, render, sample_weights
from lambda_src.jobs.schema import parse_reso
from lambda_src.jobs.svox2_options import OPTIONS

DENSITY = slice(0, 1)
SH = slice(1, None)


def svox2_default(name: str) -> Any:
    return OPTIONS[name].default


@dataclass
class TrainConfig:
    """The svox2 options the torch engine implements. Defaults come from svox2's option table, the one
    place they are written down."""

    reso: list[list[int]] = field(default_factory=lambda: json.loads(svox2_default("reso")))
    upsamp_every: int = svox2_default("upsamp_every")
    n_iters: int = svox2_default("n_iters")
    batch_size: int = svox2_default("batch_size")
    sh_dim: int = svox2_default("sh_dim")
    init_sigma: float = svox2_default("init_sigma")
    step_size: float = svox2_default("step_size")
    sigma_thresh: float = svox2_default("sigma_thresh")
    stop_thresh: float = svox2_default("stop_thresh")
    background_brightness: float = svox2_default("background_brightness")
    white_bkgd: bool = svox2_default("white_bkgd")
    nosphereinit: bool = svox2_default("nosphereinit")
    near_clip: float = svox2_default("near_clip")
    sigma_optim: str = svox2_default("sigma_optim")
    sh_optim: str = svox2_default("sh_optim")
    rms_beta: float = svox2_default("rms_beta")
    lr_sigma: float = svox2_default("lr_sigma")
    lr_sigma_final: float = svox2_default("lr_sigma_final")
    lr_sigma_decay_steps: int = svox2_default("lr_sigma_decay_steps")
    lr_sigma_delay_steps: int = svox2_default("lr_sigma_delay_steps")
    lr_sigma_delay_mult: float = svox2_default("lr_sigma_delay_mult")
    lr_sh: float = svox2_default("lr_sh")
    lr_sh_final: float = svox2_default("lr_sh_final")
    lr_sh_decay_steps: int = svox2_default("lr_sh_decay_steps")
    lr_sh_delay_steps: int = svox2_default("lr_sh_delay_steps")
    lr_sh_delay_mult: float = svox2_default("lr_sh_delay_mult")
    lr_fg_begin_step: int = svox2_default("lr_fg_begin_step")
    lr_decay: bool = svox2_default("lr_decay")
    lambda_tv: float = svox2_default("lambda_tv")
    tv_sparsity: float = svox2_default("tv_sparsity")
    lambda_tv_sh: float = svox2_default("lambda_tv_sh")
    tv_sh_sparsity: float = svox2_default("tv_sh_sparsity")
    tv_decay: float = svox2_default("tv_decay")
    tv_early_only: int = svox2_default("tv_early_only")
    tv_contiguous: int = svox2_default("tv_contiguous")
    lambda_l2_sh: float = svox2_default("lambda_l2_sh")
    weight_decay_sigma: float = svox2_default("weight_decay_sigma")
    weight_decay_sh: float = svox2_default("weight_decay_sh")
    thresh_type: str = svox2_default("thresh_type")
    weight_thresh: float = svox2_default("weight_thresh")
    density_thresh: float = svox2_default("density_thresh")
    max_grid_elements: int = svox2_default("max_grid_elements")
    upsample_density_add: float = svox2_default("upsample_density_add")
    scene_scale: float | None = svox2_default("scene_scale")
    scale: float | None = svox2_default("scale")
    n_train: int | None = svox2_default("n_train")
    n_eval: int = svox2_default("n_eval")  # render_imgs.py's: test views scored, at an equal interval

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> TrainConfig:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in options.items() if k in known and v is not None}
        if "reso" in values:  # svox2's string (or a list); an item N is the cube [N, N, N]
            values["reso"] = parse_reso(values["reso"])
        return cls(**values)

    def render_options(self) -> RenderOptions:
        return RenderOptions(
            step_size=self.step_size,
            sigma_thresh=self.sigma_thresh,
            stop_thresh=self.stop_thresh,
            # svox2 renders background_brightness behind every ray; white_bkgd only says how the
            # dataset's transparent pixels are read
            background=self.background_brightness,
            near_clip=self.near_clip,
        )


def reso_schedule(reso: list[list[int]], upsamp_every: int, n_iters: int) -> list[tuple[int, tuple[int, int, int]]]:
    """(first step, grid size) for each stage that training reaches, as svox2 steps through `reso`."""
    stages = []
    for i, r in enumerate(reso):
        start = i * upsamp_every
        if start >= n_iters and i > 0:
            break
        stages.append((start, as_reso(r)))
    return stages


def psnr(mse: float) -> float:
    return -10.0 * math.log10(max(mse, 1e-12))


def ssim(a: np.ndarray, b: np.ndarray, size: int = 11, sigma: float = 1.5) -> float:
    """SSIM as svox2's `compute_ssim` (opt/util/util.py) reports it, for HxWx3 images in [0, 1].

    Its definition, not only its window: the 11-tap Gaussian (sigma 1.5) blurs rows, then columns, with
    zero padding that keeps the image's size (so the borders count, darkened by the zeros); the
    variances are clamped at 0 and the covariance to within +-sqrt(var_a * var_b); the map is averaged
    over every pixel of every channel. A 'valid' 2-D window without the clamps scores the same pair
    differently (0.699 against svox2's 0.726 on one 200x200 pair).
    """
    x = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[:, None].double()
    y = torch.from_numpy(np.ascontiguousarray(b.transpose(2, 0, 1)))[:, None].double()
    half = size // 2
    taps = torch.exp(-0.5 * ((torch.arange(size, dtype=torch.float64) - half + (2 * half - size + 1) / 2) / sigma) ** 2)
    taps = taps / taps.sum()
    down, across = taps.view(1, 1, -1, 1), taps.view(1, 1, 1, -1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, across, padding=(0, half)), down, padding=(half, 0))

    mx, my = blur(x), blur(y)
    vx = torch.clamp(blur(x * x) - mx * mx, min=0.0)
    vy = torch.clamp(blur(y * y) - my * my, min=0.0)
    cxy = blur(x * y) - mx * my
    cxy = torch.sign(cxy) * torch.minimum(torch.sqrt(vx * vy), cxy.abs())
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


@torch.no_grad()
def render_image(
    grid: VoxelGrid,
    split_rays: tuple[np.ndarray, np.ndarray],
    hw: tuple[int, int],
    opts: RenderOptions,
    occ: Occupancy | None = None,
    chunk: int = 1 << 14,
) -> np.ndarray:
    device = grid.data.device
    origins, dirs = (torch.from_numpy(a.astype(np.float32)).to(device) for a in split_rays)
    with torch.device(device):
        occ = occ or Occupancy(grid)
        parts = [
            render(grid, origins[s : s + chunk], dirs[s : s + chunk], opts, occ) for s in range(0, len(origins), chunk)
        ]
    return torch.cat(parts).clamp(0, 1).reshape(hw[0], hw[1], 3).cpu().numpy()


@dataclass
class Progress:
    iteration: int
    n_iters: int
    loss: float
    psnr_train: float
    rays_per_s: float
    elapsed_s: float
    eta_s: float | None  # None until a few steps have run: an estimate from the first step alone is noise
    reso: tuple[int, int, int]
    voxels: int
    psnr_heldout: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {
            "iteration": self.iteration,
            "n_iters": self.n_iters,
            "loss": round(self.loss, 6),
            "psnr_train": round(self.psnr_train, 3),
            "rays_per_s": round(self.rays_per_s, 1),
            "elapsed_s": round(self.elapsed_s, 1),
            "reso": list(self.reso),
            "voxels": self.voxels,
        }
        if self.eta_s is not None:
            d["eta_s"] = round(self.eta_s, 1)
        if self.psnr_heldout is not None:
            d["psnr"] = round(self.psnr_heldout, 3)
        return d


class Trainer:
    def __init__(
        self,
        cfg: TrainConfig,
        train: Split,
        heldout: Split,
        on_progress: Callable[[Progress], None] = lambda p: None,
        check: Callable[[], None] = lambda: None,
        time_budget_s: float | None = None,
        progress_every_s: float = 2.0,
        eval_every_s: float = 10.0,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.cfg = cfg
        self.train = train
        self.heldout = heldout
        self.on_progress = on_progress
        self.check = check
        self.time_budget_s = time_budget_s
        self.progress_every_s = progress_every_s
        self.eval_every_s = eval_every_s
        self.gen = torch.Generator().manual_seed(seed)
        self.opts = cfg.render_options()
        self.history: list[dict[str, Any]] = []
        self.stopped_early = False
        o, d, c = train.all_rays()
        self.origins, self.dirs, self.colours = (torch.from_numpy(a).to(self.device) for a in (o, d, c))
        self.heldout_rays = heldout.rays(0)
        self.lambda_tv = cfg.lambda_tv
        self.lambda_tv_sh = cfg.lambda_tv_sh
        steps = cfg.lr_sigma_decay_steps
        self.lr_sigma = expon_lr(
            cfg.lr_sigma, cfg.lr_sigma_final, cfg.lr_sigma_delay_steps, cfg.lr_sigma_delay_mult, steps
        )
        self.lr_sh = expon_lr(
            cfg.lr_sh, cfg.lr_sh_final, cfg.lr_sh_delay_steps, cfg.lr_sh_delay_mult, cfg.lr_sh_decay_steps
        )
        with torch.device(self.device):
            init = 0.0 if cfg.lr_fg_begin_step > 0 else cfg.init_sigma
            # svox2 starts NeRF data (all this engine reads) inside a sphere unless told not to
            start = VoxelGrid.dense if cfg.nosphereinit else VoxelGrid.sphere
            self.grid = start(as_reso(cfg.reso[0]), cfg.sh_dim, init)
            self.optim = SparseRMSprop(self.grid.data.shape[0], self.grid.data.shape[1], beta=cfg.rms_beta)
            self.occ = Occupancy(self.grid)
        self.rays_seen = 0
        self.train_seconds = 0.0
        self.last_heldout: float | None = None  # every report carries the latest held-out PSNR
        self.last_render: np.ndarray | None = None  # the held-out view behind it
        self.renders = 0

    # -- one step -----------------------------------------------------------------------------------
    def step(self, gstep: int, idx: torch.Tensor, stats: RenderStats) -> float:
        cfg = self.cfg
        if cfg.lr_fg_begin_step > 0 and gstep == cfg.lr_fg_begin_step:
            self.grid.data[:-1, 0] = cfg.init_sigma
        data = self.grid.data.requires_grad_(True)
        pred = render(self.grid, self.origins[idx], self.dirs[idx], self.opts, self.occ, data=data, stats=stats)
        mse = torch.mean((pred - self.colours[idx]) ** 2)
        loss = mse
        if self.lambda_tv > 0:
            cells = random_cells(self.grid.reso, cfg.tv_sparsity, bool(cfg.tv_contiguous), self.gen)
            loss = loss + tv_loss(self.grid, data, cells, DENSITY, self.lambda_tv)
        if self.lambda_tv_sh > 0:
            cells = random_cells(self.grid.reso, cfg.tv_sh_sparsity, bool(cfg.tv_contiguous), self.gen)
            loss = loss + tv_loss(self.grid, data, cells, SH, self.lambda_tv_sh)
        if cfg.lambda_l2_sh > 0:
            loss = loss + cfg.lambda_l2_sh * 0.5 * (data[:-1, SH] ** 2).sum()
        loss.backward()
        data.requires_grad_(False)
        grad = data.grad
        data.grad = None
        if grad is None:  # nothing in the loss reached the grid (every ray missed it)
            grad = torch.zeros_like(data)
        with torch.no_grad():
            rows = grad.ne(0).any(1).nonzero()[:, 0]
            if gstep >= cfg.lr_fg_begin_step:
                lr_sigma = self.lr_sigma(gstep) if cfg.lr_decay else cfg.lr_sigma
                lr_sh = self.lr_sh(gstep) if cfg.lr_decay else cfg.lr_sh
                self.optim.step(data, grad, rows, DENSITY, lr_sigma, cfg.sigma_optim)
                self.optim.step(data, grad, rows, SH, lr_sh, cfg.sh_optim)
            if gstep % 20 == 19:
                if cfg.weight_decay_sigma < 1.0:
                    data[:-1, DENSITY] *= cfg.weight_decay_sigma
                if cfg.weight_decay_sh < 1.0:
                    data[:-1, SH] *= cfg.weight_decay_sh
            data[-1] = 0.0  # the shared empty row stays empty
        return float(mse.detach())

    # -- resolution changes -------------------------------------------------------------------------
    @torch.no_grad()
    def _eta(self, remaining: int, step_s: float, elapsed: float, done: int) -> float | None:
        """Remaining steps at the recent step time (not the average since the start, which the first,
        slow steps on the dense grid inflate), plus evaluation at the share of time it has taken."""
        if done < 10:
            return None
        overhead = max(0.0, elapsed - self.train_seconds) / max(elapsed, 1e-9)
        return remaining * step_s / max(1.0 - overhead, 0.2)

    def upsample(self, reso: tuple[int, int, int]) -> None:
        cfg = self.cfg
        old = self.grid
        centres = old.voxel_centres(reso)
        if cfg.thresh_type == "weight":
            keep = self._max_weights(reso) > cfg.weight_thresh / reso[2]
        else:
            keep = torch.zeros(centres.shape[0], dtype=torch.bool)
            for s in range(0, centres.shape[0], 1 << 18):
                keep[s : s + (1 << 18)] = old.sample_world(centres[s : s + (1 << 18)])[:, 0] > cfg.density_thresh
        mask = F.max_pool3d(keep.reshape(reso).float()[None, None], 5, stride=1, padding=2)[0, 0] > 0
        if int(mask.sum()) > cfg.max_grid_elements:
            raise ValueError(
                f"the grid at {list(reso)} keeps {int(mask.sum())} voxels, over max_grid_elements "
                f"{cfg.max_grid_elements}; raise it or lower reso"
            )
        flat = mask.reshape(-1)
        values = torch.zeros(flat.numel(), old.channels)
        values[flat] = old.sample_world(centres[flat])
        self.grid = VoxelGrid.from_mask(reso, mask, values, old.basis_dim, old.radius, old.center)
        if cfg.upsample_density_add:
            self.grid.data[:-1, 0] += cfg.upsample_density_add
        self.optim = SparseRMSprop(self.grid.data.shape[0], self.grid.data.shape[1], beta=cfg.rms_beta)
        self.occ = Occupancy(self.grid)
        if cfg.tv_early_only > 0:
            self.lambda_tv = self.lambda_tv_sh = 0.0
        elif cfg.tv_decay != 1.0:
            self.lambda_tv *= cfg.tv_decay
            self.lambda_tv_sh *= cfg.tv_decay

    def _max_weights(self, reso: tuple[int, int, int], max_rays: int = 1 << 18) -> torch.Tensor:
        """Largest rendering weight each voxel of the new grid receives over (a sample of) the training rays."""
        n = self.origins.shape[0]
        pick = torch.randperm(n, generator=self.gen, device="cpu")[:max_rays].to(self.device)
        best = torch.zeros(reso[0] * reso[1] * reso[2])
        old = self.grid
        new_scale = 0.5 * torch.tensor(reso, dtype=torch.float32) / old.radius
        new_offset = 0.5 * torch.tensor(reso, dtype=torch.float32) - 0.5 - old.center * new_scale
        hi = torch.tensor(reso, dtype=torch.int64) - 1
        for s in range(0, pick.numel(), 1 << 14):
            sel = pick[s : s + (1 << 14)]
            world, weight = sample_weights(old, self.origins[sel], self.dirs[sel], self.opts, self.occ)
            g = (world * new_scale + new_offset).round().to(torch.int64)
            g = torch.minimum(g.clamp_min(0), hi)
            flat = (g[:, 0] * reso[1] + g[:, 1]) * reso[2] + g[:, 2]
            best.scatter_reduce_(0, flat, weight, reduce="amax")
        return best

    # -- the loop ----------------------------------------------------------------------------------------
    def heldout_psnr(self) -> float:
        h = self.heldout
        image = render_image(self.grid, self.heldout_rays, (h.height, h.width), self.opts, self.occ)
        self.last_render = image
        self.renders += 1
        return psnr(float(np.mean((image - h.images[0]) ** 2)))

    def run(self) -> VoxelGrid:
        """Train to n_iters (or the time budget); on `device` (factories inside default to it)."""
        with torch.device(self.device):
            return self._run()

    def _run(self) -> VoxelGrid:
        cfg = self.cfg
        stages = dict(reso_schedule(cfg.reso, cfg.upsamp_every, cfg.n_iters))
        n_rays = self.origins.shape[0]
        perm = torch.randperm(n_rays, generator=self.gen, device="cpu").to(self.device)
        cursor = 0
        started = time.monotonic()
        last_report = last_eval = started
        window_rays, window_s, mse_acc, mse_n = 0, 0.0, 0.0, 0
        window_steps = 0
        stats = RenderStats()
        for gstep in range(cfg.n_iters):
            self.check()
            if gstep in stages and gstep > 0:
                self.upsample(stages[gstep])
            if cursor + cfg.batch_size > n_rays:
                perm, cursor = torch.randperm(n_rays, generator=self.gen, device="cpu").to(self.device), 0
            idx = perm[cursor : cursor + cfg.batch_size]
            cursor += cfg.batch_size
            t0 = time.perf_counter()
            mse = self.step(gstep, idx, stats)
            if gstep % 8 == 7:
                self.occ = Occupancy(self.grid)
            dt = time.perf_counter() - t0
            self.train_seconds += dt
            window_rays += idx.numel()
            window_s += dt
            window_steps += 1
            self.rays_seen += idx.numel()
            mse_acc, mse_n = mse_acc + mse, mse_n + 1
            now = time.monotonic()
            last_step = gstep == cfg.n_iters - 1
            over_budget = self.time_budget_s is not None and now - started >= self.time_budget_s
            if now - last_report >= self.progress_every_s or last_step or over_budget or gstep == 0:
                if now - last_eval >= self.eval_every_s or last_step or over_budget or not self.history:
                    self.last_heldout = self.heldout_psnr()
                    last_eval = time.monotonic()
                elapsed = now - started
                done = gstep + 1
                progress = Progress(
                    iteration=done,
                    n_iters=cfg.n_iters,
                    loss=mse_acc / mse_n,
                    psnr_train=psnr(mse_acc / mse_n),
                    rays_per_s=window_rays / max(window_s, 1e-9),
                    elapsed_s=elapsed,
                    eta_s=self._eta(cfg.n_iters - done, window_s / max(window_steps, 1), elapsed, done),
                    reso=self.grid.reso,
                    voxels=self.grid.n_voxels,
                    psnr_heldout=self.last_heldout,
                )
                self.history.append(progress.to_dict())
                self.on_progress(progress)
                last_report = time.monotonic()
                window_rays, window_s, mse_acc, mse_n = 0, 0.0, 0.0, 0
                window_steps = 0
            if over_budget and not last_step:
                self.stopped_early = True
                break
        return self.grid
