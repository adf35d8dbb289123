"""The `svox2` engine: svox2's own optimiser (`opt/opt.py`, CUDA) run with the job's config.

It does what the original `launch_auto.sh` did - write the config as the JSON that `opt.py -c`
takes and run `opt.py DATA_DIR -t TRAIN_DIR -c CONFIG` on the job's GPU - and streams svox2's
progress lines into the job. svox2 lives in $SVOX2_HOME (the fleet's user data clones and
builds it in /data/svox2).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any

from gpu_executor.engines import EngineError, RunContext, StopRequested
from gpu_executor.storage import LocalStorage, StorageError
from lambda_src.jobs.svox2_options import ENGINE_PATHS, RENDER_ONLY

DEFAULT_HOME = Path("/data/svox2")
_TRAIN_LINE = re.compile(r"epoch (\d+) psnr=([0-9.]+)")
_EVAL_PSNR = re.compile(r"eval stats:.*'psnr': ([0-9.eE+-]+)")
_ITER = re.compile(r"\|\s*(\d+)/(\d+)\s*\[")


def parse_line(line: str) -> dict[str, Any] | None:
    """Progress from one line of svox2's output (tqdm descriptions and eval summaries), or None."""
    if m := _EVAL_PSNR.search(line):
        return {"psnr": round(float(m.group(1)), 3)}
    if m := _TRAIN_LINE.search(line):
        out: dict[str, Any] = {"epoch": int(m.group(1)), "psnr_train": float(m.group(2))}
        if it := _ITER.search(line):
            out["batch"], out["batches"] = int(it.group(1)), int(it.group(2))
        return out
    return None


class Svox2Engine:
    name = "svox2"

    def __init__(self, home: Path | None = None, python: str | None = None) -> None:
        self.home = Path(home or os.environ.get("SVOX2_HOME") or DEFAULT_HOME)
        self.python = python or sys.executable

    def available(self) -> tuple[bool, str]:
        if importlib.util.find_spec("svox2") is None:
            return False, "svox2 is not installed here; it needs a CUDA GPU host (the fleet's instances build it)"
        try:
            import torch
        except ImportError:
            return False, "PyTorch is not installed"
        if not torch.cuda.is_available():
            return False, "no CUDA device here; svox2's optimiser needs a GPU host"
        if not (self.home / "opt" / "opt.py").is_file():
            return False, f"svox2's opt/opt.py is not under {self.home} (set SVOX2_HOME)"
        return True, ""

    def command(self, data_dir: Path, train_dir: Path, config_path: Path) -> list[str]:
        return [
            self.python,
            "-u",
            str(self.home / "opt" / "opt.py"),
            str(data_dir),
            "-t",
            str(train_dir),
            "-c",
            str(config_path),
        ]

    @staticmethod
    def config_json(config: dict[str, Any]) -> str:
        """The job's options as svox2's -c file: the same keys, `reso` as the string svox2 parses, but
        never the loader's paths, which this engine sets on the command line for each run, nor
        render_imgs.py's own options (opt.py would refuse them)."""
        kept = {k: v for k, v in config.items() if k not in ENGINE_PATHS and k not in RENDER_ONLY}
        return json.dumps(kept, indent=2, sort_keys=True)

    def environment(self, gpu: str | None) -> dict[str, str]:
        env = dict(os.environ)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        return env

    def run(self, ctx: RunContext) -> dict[str, Any]:
        storage = ctx.storage or LocalStorage(ctx.workdir / "published")
        try:
            with ctx.phases.phase("load"):
                data_dir = storage.fetch_scene(ctx.spec.scene)
        except StorageError as exc:
            raise EngineError(str(exc)) from None
        if ctx.checkpoint is not None:  # the original's validation command: render_imgs.py only
            return self._evaluate(ctx, ctx.checkpoint, data_dir, ctx.workdir / "svox2", {}, storage)
        train_dir = ctx.workdir / "svox2"
        train_dir.mkdir(parents=True, exist_ok=True)
        config_path = ctx.workdir / "config.json"
        owned = sorted(k for k in ENGINE_PATHS if k in ctx.spec.config)
        if owned:
            ctx.notes.append(
                f"config.{', config.'.join(owned)}: set by the engine for this run (the scene, its config file "
                "and its work directory), so the job's values are recorded, not used"
            )
        config_path.write_text(self.config_json(ctx.spec.config))
        cmd = self.command(data_dir, train_dir, config_path)
        tail: deque[str] = deque(maxlen=20)
        progress: dict[str, Any] = {}
        # opt.py reads the scene itself: its loading counts as training here
        with (
            ctx.phases.phase("train"),
            subprocess.Popen(
                cmd,
                cwd=self.home / "opt",
                env=self.environment(ctx.spec.gpu),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            ) as proc,
        ):
            try:
                for line in _lines(proc.stdout):
                    tail.append(line)
                    ctx.check()
                    if parsed := parse_line(line):
                        progress.update(parsed)
                        ctx.report(dict(progress))
            except StopRequested:
                proc.terminate()
                raise
        if proc.returncode != 0:
            raise EngineError(f"svox2 opt.py exited with {proc.returncode}: " + " | ".join(tail)[-1500:])
        (train_dir / "progress.json").write_text(json.dumps(progress))
        # As the original's executor did: svox2's render_imgs.py over the whole test set, for PSNR,
        # SSIM and LPIPS (opt.py's own eval sees at most a handful of views).
        return self._evaluate(ctx, train_dir / "ckpt.npz", data_dir, train_dir, progress, storage)

    def _evaluate(
        self, ctx: RunContext, ckpt: Path, data_dir: Path, out: Path, progress: dict[str, Any], storage: Any
    ) -> dict[str, Any]:
        ctx.report({**progress, "stage": "evaluating (render_imgs.py)"})
        out.mkdir(parents=True, exist_ok=True)
        cmd = self.eval_command(ckpt, data_dir, ctx.spec.config.get("n_eval"))
        if ctx.spec.validation_only and ctx.spec.config:
            # render_imgs.py merges a config file as opt.py does (dataset and render options)
            config_path = ctx.workdir / "config.json"
            config_path.write_text(self.config_json(ctx.spec.config))
            cmd += ["-c", str(config_path)]
        with ctx.phases.phase("evaluate"):  # render_imgs.py renders and scores in one pass
            evaluated = subprocess.run(
                cmd, cwd=self.home / "opt", env=self.environment(ctx.spec.gpu), capture_output=True, text=True
            )
        metrics = parse_averages(evaluated.stdout)
        if evaluated.returncode != 0 or not metrics:
            raise EngineError(
                f"svox2 render_imgs.py exited with {evaluated.returncode}: "
                + evaluated.stdout[-800:]
                + evaluated.stderr[-700:]
            )
        (out / "metrics.json").write_text(json.dumps(metrics))
        try:
            with ctx.phases.phase("upload"):
                uri = storage.publish(ctx.job_id, out)
        except StorageError as exc:
            raise EngineError(str(exc)) from None
        return {**progress, **metrics, "artifacts": uri}

    def eval_command(self, ckpt: Path, data_dir: Path, n_eval: int | None = None) -> list[str]:
        """The original's validation command: render_imgs.py CKPT DATA_DIR (with the job's --n_eval)."""
        cmd = [self.python, "-u", str(self.home / "opt" / "render_imgs.py"), str(ckpt), str(data_dir)]
        return cmd + (["--n_eval", str(n_eval)] if n_eval is not None else [])


def parse_averages(stdout: str) -> dict[str, float]:
    """render_imgs.py's summary, read as the original's executor read it: after a line `AVERAGES`,
    `NAME: value` lines (PSNR, SSIM, LPIPS) become lower-cased keys."""
    found: dict[str, float] = {}
    after = False
    for line in stdout.splitlines():
        if line.strip() == "AVERAGES":
            after = True
            continue
        if after and ":" in line:
            name, _, value = line.partition(":")
            try:
                found[name.strip().lower()] = float(value)
            except ValueError:
                continue
    return found


def _lines(stream) -> Any:
    """Lines of a byte stream split on newlines and on tqdm's carriage returns."""
    buf = b""
    for chunk in iter(lambda: stream.read1(4096), b""):
        buf += chunk
        *lines, buf = re.split(rb"[\r\n]", buf)
        for raw in lines:
            if raw.strip():
                yield raw.decode(errors="replace").strip()
    if buf.strip():
        yield buf.decode(errors="replace").strip()
