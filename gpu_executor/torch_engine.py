"""The `torch` engine: skydeck's own Plenoxels optimisation in plain PyTorch (any machine)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from gpu_executor.engines import EngineError, RunContext
from gpu_executor.storage import LocalStorage, StorageError
from lambda_src.jobs.memory import too_large

log = logging.getLogger("skydeck.engine.torch")
RESULTS_MARGIN_S = 60.0  # of a job's max_runtime_s, kept for writing and uploading its results


class TorchEngine:
    name = "torch"

    def available(self) -> tuple[bool, str]:
        try:
            import torch  # noqa: F401
        except ImportError:
            return False, "PyTorch is not installed (pip install 'skydeck[executor]' torch)"
        return True, ""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        from gpu_executor.plenoxels import option_support
        from gpu_executor.plenoxels.dataset import DatasetError, load_split
        from gpu_executor.plenoxels.results import write_results
        from gpu_executor.plenoxels.train import TrainConfig, Trainer

        if ctx.checkpoint is not None:
            return self.validate(ctx)
        try:
            ctx.notes.extend(option_support.check(ctx.spec.config))
        except option_support.UnsupportedOption as exc:
            raise EngineError(str(exc)) from None
        cfg = TrainConfig.from_options(ctx.spec.full_config())
        storage = ctx.storage or LocalStorage(ctx.workdir / "published")
        with ctx.phases.phase("load"):
            try:
                scene_dir = storage.fetch_scene(ctx.spec.scene)
            except StorageError as exc:
                raise EngineError(str(exc)) from None
            downscale = round(1 / cfg.scale) if cfg.scale else 1
            try:
                train = load_split(scene_dir, "train", downscale, cfg.white_bkgd, cfg.scene_scale, limit=cfg.n_train)
                held = "test" if (Path(scene_dir) / "transforms_test.json").exists() else "val"
                test = load_split(scene_dir, held, downscale, cfg.white_bkgd, cfg.scene_scale)
            except DatasetError as exc:
                raise EngineError(f"dataset refused: {exc}") from None
        # checked before the grid is allocated: past this host's memory the kernel would kill the executor,
        # and the next one to take the job after it
        too_big = too_large(ctx.spec.full_config())
        if too_big:
            raise EngineError(f"refused before training: {too_big}")
        ctx.report({"iteration": 0, "n_iters": cfg.n_iters, "stage": "loaded", "train_views": len(train)})
        budget = max(30.0, ctx.spec.resources.max_runtime_s - RESULTS_MARGIN_S)
        started = time.monotonic()
        previews = _Previews(ctx.job_id, storage)
        device = pick_device()
        ctx.notes.append(f"torch engine on {device}")
        trainer = Trainer(cfg, train, test, check=ctx.check, time_budget_s=budget, device=device)

        def progress(p: Any) -> None:
            ctx.report(p.to_dict())
            previews.offer(trainer.renders, trainer.last_render)

        trainer.on_progress = progress
        try:
            with ctx.phases.phase("train"):
                grid = trainer.run()
        except ValueError as exc:
            raise EngineError(str(exc)) from None
        train_s = time.monotonic() - started
        if trainer.stopped_early:
            ctx.notes.append(
                f"stopped at iteration {trainer.history[-1]['iteration']} of {cfg.n_iters}: max_runtime_s reached"
            )
        last = trainer.history[-1] if trainer.history else {}
        summary = {
            "engine": self.name,
            "scene": ctx.spec.scene,
            "iterations": last.get("iteration", 0),
            "train_s": round(train_s, 1),
            "rays_per_s": round(trainer.rays_seen / max(trainer.train_seconds, 1e-9), 1),
            "history": trainer.history,
        }
        ctx.report({**last, "stage": "writing results"})
        out = ctx.workdir / "results"
        metrics = write_results(grid, test, cfg.render_options(), out, summary, ctx.phases, n_eval=cfg.n_eval)
        try:
            with ctx.phases.phase("upload"):
                uri = storage.publish(ctx.job_id, out)
        except StorageError as exc:
            raise EngineError(str(exc)) from None
        lpips: dict[str, Any] = {}
        if "lpips" in metrics:
            lpips["lpips"] = round(metrics["lpips"], 4)
        else:
            lpips["lpips_unavailable"] = metrics["lpips_unavailable"]
            ctx.notes.append(f"no LPIPS for this job: {metrics['lpips_unavailable']}")
        return {
            "psnr": round(metrics["psnr"], 3),
            "ssim": round(metrics["ssim"], 4),
            **lpips,
            "iterations": summary["iterations"],
            "train_s": summary["train_s"],
            "rays_per_s": summary["rays_per_s"],
            "reso": list(grid.reso),
            "voxels": grid.n_voxels,
            "artifacts": uri,
            "stopped_early": trainer.stopped_early,
            "device": device,
        }

    def validate(self, ctx: RunContext) -> dict[str, Any]:
        """A validation-only job, as svox2's render_imgs.py: a trained checkpoint rendered at every test
        view of the scene; PSNR, SSIM and LPIPS (or why not), the renders and metrics.json published."""
        from gpu_executor.plenoxels.dataset import DatasetError, load_split
        from gpu_executor.plenoxels.grid import VoxelGrid
        from gpu_executor.plenoxels.results import evaluate
        from gpu_executor.plenoxels.train import TrainConfig

        assert ctx.checkpoint is not None
        cfg = TrainConfig.from_options(ctx.spec.full_config())
        storage = ctx.storage or LocalStorage(ctx.workdir / "published")
        try:
            with ctx.phases.phase("load"):
                scene_dir = storage.fetch_scene(ctx.spec.scene)
                grid = VoxelGrid.load(ctx.checkpoint)
                downscale = round(1 / cfg.scale) if cfg.scale else 1
                held = "test" if (Path(scene_dir) / "transforms_test.json").exists() else "val"
                test = load_split(scene_dir, held, downscale, cfg.white_bkgd, cfg.scene_scale)
        except (StorageError, DatasetError, ValueError, OSError) as exc:
            raise EngineError(f"validation refused: {exc}") from None
        ctx.report({"stage": "evaluating", "test_views": len(test)})
        out = ctx.workdir / "results"
        out.mkdir(parents=True, exist_ok=True)
        with ctx.phases.phase("evaluate"):
            metrics = evaluate(grid, test, cfg.render_options(), out, with_lpips=True, n_eval=cfg.n_eval)
        doc = {"engine": self.name, "scene": ctx.spec.scene, "checkpoint": ctx.spec.checkpoint, **metrics}
        (out / "metrics.json").write_text(json.dumps(doc, indent=2))
        try:
            with ctx.phases.phase("upload"):
                uri = storage.publish(ctx.job_id, out)
        except StorageError as exc:
            raise EngineError(str(exc)) from None
        found: dict[str, Any] = {"psnr": round(metrics["psnr"], 3), "ssim": round(metrics["ssim"], 4)}
        if "lpips" in metrics:
            found["lpips"] = round(metrics["lpips"], 4)
        else:
            found["lpips_unavailable"] = metrics["lpips_unavailable"]
            ctx.notes.append(f"no LPIPS for this job: {metrics['lpips_unavailable']}")
        return {**found, "test_views": metrics["test_views"], "checkpoint": ctx.spec.checkpoint, "artifacts": uri}


def pick_device() -> str:
    """CUDA when present, else the CPU; SKYDECK_TORCH_DEVICE overrides (e.g. cpu on a GPU host)."""
    import os

    import torch

    wanted = os.environ.get("SKYDECK_TORCH_DEVICE")
    if wanted:
        return wanted
    return "cuda" if torch.cuda.is_available() else "cpu"


class _Previews:
    """Uploads the latest held-out render as results/JOB_ID/preview.png when it changes (the console shows it)."""

    def __init__(self, job_id: str, storage: Any) -> None:
        self.job_id = job_id
        self.storage = storage
        self.sent: int | None = None

    def offer(self, number: int, image: Any) -> None:
        if image is None or number == self.sent:
            return
        import io

        import numpy as np
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB").save(buf, format="PNG")
        try:
            self.storage.put(self.job_id, "preview.png", buf.getvalue())
            self.sent = number
        except Exception as exc:  # noqa: BLE001 - a missed preview never fails training
            log.warning("preview upload for %s failed: %s", self.job_id, exc)
