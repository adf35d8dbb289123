"""What a finished training leaves behind: svox2's ckpt.npz, test renders (PNG), a turntable GIF
and metrics.json, written into one directory that the executor then publishes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gpu_executor.phases import PhaseClock
from gpu_executor.plenoxels.cameras import orbit, pixel_rays
from gpu_executor.plenoxels.dataset import Split
from gpu_executor.plenoxels.grid import VoxelGrid
from gpu_executor.plenoxels.lpips_metric import lpips_scorer
from gpu_executor.plenoxels.render import Occupancy, RenderOptions
from gpu_executor.plenoxels.train import psnr, render_image, ssim

TURNTABLE_FRAMES = 24


def _png(image: np.ndarray, path: Path) -> None:
    Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB").save(path)


def evaluate(
    grid: VoxelGrid,
    test: Split,
    opts: RenderOptions,
    out: Path | None = None,
    with_lpips: bool = False,
    limit: int | None = None,
    n_eval: int | None = None,
) -> dict[str, Any]:
    """Mean PSNR and SSIM (and LPIPS, asked for and possible here) over the test views as svox2's
    render_imgs.py picks them: every view, or with `n_eval` every (views // n_eval)-th from the first
    (so at least n_eval of them, "at most evals every image"); or the first `limit`, for a quick look.
    Writes the renders as test/r_N.png when `out` is given. `test_views` says how many were scored."""
    occ = Occupancy(grid)
    psnrs, ssims, lpipses = [], [], []
    scorer, why_not = lpips_scorer() if with_lpips else (None, "")
    if out is not None:
        (out / "test").mkdir(parents=True, exist_ok=True)
    every = max(len(test) // n_eval, 1) if n_eval else 1  # render_imgs.py's img_eval_interval
    for i in range(0, len(test) if limit is None else min(len(test), limit), every):
        image = render_image(grid, test.rays(i), (test.height, test.width), opts, occ)
        psnrs.append(psnr(float(np.mean((image - test.images[i]) ** 2))))
        ssims.append(ssim(image, test.images[i]))
        if scorer is not None:
            lpipses.append(scorer(image, test.images[i]))
        if out is not None:
            _png(image, out / "test" / f"r_{i}.png")
    found: dict[str, Any] = {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)), "test_views": len(psnrs)}
    if lpipses:
        found["lpips"] = float(np.mean(lpipses))
    elif with_lpips:
        found["lpips_unavailable"] = why_not
    return found


def turntable(grid: VoxelGrid, test: Split, opts: RenderOptions, path: Path, frames: int = TURNTABLE_FRAMES) -> None:
    """A looping GIF around the scene at the test views' distance and resolution."""
    occ = Occupancy(grid)
    distance = float(np.linalg.norm(test.poses[0][:3, 3]))
    images = []
    for pose in orbit(frames, distance, elevation_deg=30.0):
        rays = pixel_rays(pose, test.width, test.height, test.focal)
        image = render_image(grid, rays, (test.height, test.width), opts, occ)
        images.append(Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB"))
    images[0].save(path, save_all=True, append_images=images[1:], duration=80, loop=0)


def write_results(
    grid: VoxelGrid,
    test: Split,
    opts: RenderOptions,
    out: Path,
    summary: dict[str, Any],
    phases: PhaseClock | None = None,
    n_eval: int | None = None,
) -> dict[str, Any]:
    clock = phases or PhaseClock()
    out.mkdir(parents=True, exist_ok=True)
    with clock.phase("evaluate"):
        grid.save(out / "ckpt.npz")
        metrics = evaluate(grid, test, opts, out, with_lpips=True, n_eval=n_eval)
    with clock.phase("render"):
        turntable(grid, test, opts, out / "turntable.gif")
    doc = {**summary, **metrics, "grid": {"reso": list(grid.reso), "voxels": grid.n_voxels, "sh_dim": grid.basis_dim}}
    (out / "metrics.json").write_text(json.dumps(doc, indent=2))
    return doc
