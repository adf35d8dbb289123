"""Plenoxels on this machine's CPU: train a generated 128 px scene with the `syn-cpu-quick` preset.

Prints held-out PSNR against wall time, training rays/s, peak memory, and - in the same run, on
the trained 128^3 grid with SH degree 2 - forward+backward rays/s of the fast renderer beside the
plain dense reference renderer (their ratio).

    .venv/bin/python benchmarks/plenoxels_bench.py [--size 128] [--budget 600]

With --before TREE it compares the renderer of an earlier checkout with this one's, in one run: the
same trainer takes its steps through either renderer in turn (three steps each, twelve rounds), on the
64^3 grid and again after the upsampling to 128^3, and prints the median time of a step of each.

With --end-to-end it runs the README's tour instead, as a user does, each step a `skydeck` process:
`local up` with one executor, `stacks deploy infra`, `data make-scene demo`, `data push`, `jobs submit
--preset syn-cpu-quick --scene demo`, then waits for the job's end. It prints the wall time from
submit to SUCCEEDED (target: <= 300 s at >= 30 dB on this 2-core machine), the held-out PSNR, and the
job's own phases (queued, load, train, evaluate, render, upload).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from gpu_executor.plenoxels.dataset import load_split
from gpu_executor.plenoxels.render import Occupancy, render, render_dense
from gpu_executor.plenoxels.scene import make_scene
from gpu_executor.plenoxels.train import TrainConfig, Trainer, reso_schedule

PRESET = Path(__file__).resolve().parent.parent / "presets" / "plenoxels" / "syn-cpu-quick.yaml"


def throughput(fn, batch: int, repeats: int) -> float:
    """Rays/s of forward + backward over `repeats` batches."""
    fn(batch)  # warm-up
    t = time.perf_counter()
    for _ in range(repeats):
        fn(batch)
    return batch * repeats / (time.perf_counter() - t)


def _psnr_curve(history: list[dict]) -> list[dict]:
    curve: list[dict] = []
    for h in history:
        if "psnr" in h and (not curve or curve[-1]["psnr"] != h["psnr"]):
            curve.append({"elapsed_s": h["elapsed_s"], "psnr": h["psnr"]})
    return curve


def end_to_end(timeout_s: float) -> int:
    """The README's tour through the local cloud, timed from submit to the job's end."""
    import os
    import subprocess

    home = Path(tempfile.mkdtemp(prefix="skydeck-plenoxels-e2e-"))
    env = {**os.environ, "SKYDECK_HOME": str(home), "SKYDECK_LOCAL_WORKERS": "1"}

    def skydeck(*argv: str, quiet: bool = False) -> str:
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "cli", *argv], capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise SystemExit(f"skydeck {' '.join(argv)} failed ({done.returncode}): {done.stderr[-800:]}")
        if not quiet:
            print(f"  {time.perf_counter() - t:6.1f} s  skydeck {' '.join(argv)}", flush=True)
        return done.stdout

    skydeck("local", "up")
    try:
        skydeck("stacks", "deploy", "infra", "--yes")
        skydeck("stacks", "deploy", "fleet", "--yes")  # the local executor runs as its instance role
        skydeck("data", "make-scene", "demo", "--out", str(home / "demo-scene"))
        skydeck("data", "push", str(home / "demo-scene"), "--name", "demo")
        submitted = time.perf_counter()
        job_id = json.loads(skydeck("jobs", "submit", "--preset", "syn-cpu-quick", "--scene", "demo", "--json"))[
            "job_id"
        ]
        job: dict = {}
        while time.perf_counter() - submitted < timeout_s:
            job = json.loads(skydeck("jobs", "show", job_id, "--json", quiet=True))
            if job["state"] not in ("QUEUED", "RUNNING"):
                break
            time.sleep(5)
        wall = time.perf_counter() - submitted
    finally:
        subprocess.run([sys.executable, "-m", "cli", "local", "down"], capture_output=True, env=env)
    result = job.get("result") or {}
    print()
    print(f"state                   {job.get('state')}  {job.get('error') or ''}")
    print(f"submit to end           {wall:8.1f} s (target <= 300 s)")
    print(f"held-out PSNR           {result.get('psnr', float('nan')):8.2f} dB over every test view (target >= 30)")
    print(f"training throughput     {result.get('rays_per_s', 0):8,.0f} rays/s")
    for name, seconds in (result.get("phases_s") or {}).items():
        print(f"  {name:<10} {seconds:8.1f} s")
    print(json.dumps({"state": job.get("state"), "wall_s": round(wall, 1), "psnr": result.get("psnr"),
                      "rays_per_s": result.get("rays_per_s"), "phases_s": result.get("phases_s")}))  # fmt: skip
    return 0 if job.get("state") == "SUCCEEDED" else 1


def steps_before_and_after(before: Path, size: int, views: int) -> int:
    """Milliseconds a training step takes through an earlier checkout's renderer and through this one's,
    interleaved on one trainer (the grid, rays and optimiser are the same for both)."""
    import importlib.util
    import statistics

    from gpu_executor.plenoxels import render as now
    from gpu_executor.plenoxels import train as training
    from gpu_executor.plenoxels.render import Occupancy, RenderStats

    spec = importlib.util.spec_from_file_location("earlier_render", before / "gpu_executor/plenoxels/render.py")
    assert spec is not None and spec.loader is not None
    earlier = importlib.util.module_from_spec(spec)
    sys.modules["earlier_render"] = earlier  # its dataclasses look their module up
    spec.loader.exec_module(earlier)
    with tempfile.TemporaryDirectory() as tmp:
        make_scene("bench", Path(tmp) / "s", size=size, views=views)
        train, test = load_split(Path(tmp) / "s", "train"), load_split(Path(tmp) / "s", "test")
    cfg = TrainConfig.from_options(yaml.safe_load(PRESET.read_text())["values"]["config"])
    trainer = Trainer(cfg, train, test)
    step = [0]

    def steps(n: int, renderer) -> float:  # noqa: ANN001 - a render function, this tree's or the earlier one
        training.render = renderer
        t = time.perf_counter()
        for _ in range(n):
            idx = torch.randint(0, trainer.origins.shape[0], (cfg.batch_size,), generator=trainer.gen)
            trainer.step(step[0], idx, RenderStats())
            if step[0] % 8 == 7:
                trainer.occ = Occupancy(trainer.grid)
            step[0] += 1
        return (time.perf_counter() - t) / n

    print(f"renderer of {before} (before) and of this tree (after), {cfg.batch_size} rays a step")
    stages = dict(reso_schedule(cfg.reso, cfg.upsamp_every, cfg.n_iters))
    for stage, reso in sorted(stages.items())[:2]:
        if stage:
            trainer.upsample(reso)
        steps(120, now.render)  # the grid trains into its stage before it is timed
        times: dict[str, list[float]] = {"before": [], "after": []}
        for _ in range(12):
            times["before"].append(steps(3, earlier.render))
            times["after"].append(steps(3, now.render))
        b, a = statistics.median(times["before"]), statistics.median(times["after"])
        print(f"  {reso[0]}^3: before {b * 1000:6.1f} ms a step ({cfg.batch_size / b:8,.0f} rays/s), "
              f"after {a * 1000:6.1f} ms ({cfg.batch_size / a:8,.0f} rays/s): {b / a:.2f}x", flush=True)  # fmt: skip
    training.render = now.render
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--views", type=int, default=100)
    parser.add_argument("--budget", type=float, default=600.0, help="training wall-time limit in seconds")
    parser.add_argument("--end-to-end", action="store_true", help="the README's tour through the local cloud")
    parser.add_argument("--before", type=Path, help="an earlier checkout whose renderer to time beside this one")
    args = parser.parse_args()
    if args.before:
        return steps_before_and_after(args.before, args.size, args.views)
    if args.end_to_end:
        return end_to_end(timeout_s=max(args.budget, 900.0))
    with tempfile.TemporaryDirectory() as tmp:
        scene = Path(tmp) / "bench"
        t = time.perf_counter()
        make_scene("bench", scene, size=args.size, views=args.views)
        print(f"scene: {args.views} views at {args.size} px in {time.perf_counter() - t:.1f} s")
        train, test = load_split(scene, "train"), load_split(scene, "test")
        cfg = TrainConfig.from_options(yaml.safe_load(PRESET.read_text())["values"]["config"])
        print(f"preset syn-cpu-quick: reso {cfg.reso}, {cfg.n_iters} iterations of {cfg.batch_size} rays")

        printed: list[float | None] = [None]

        def show(p) -> None:  # noqa: ANN001 - print each new held-out evaluation once
            if p.psnr_heldout is not None and p.psnr_heldout != printed[0]:
                printed[0] = p.psnr_heldout
                print(f"  {p.elapsed_s:7.1f} s  iter {p.iteration:5d}  grid {p.reso[0]}^3 {p.voxels:>9,} voxels  "
                      f"held-out PSNR {p.psnr_heldout:6.2f} dB  {p.rays_per_s:9,.0f} rays/s", flush=True)  # fmt: skip

        trainer = Trainer(cfg, train, test, on_progress=show, time_budget_s=args.budget, eval_every_s=15.0)
        started = time.perf_counter()
        grid = trainer.run()
        wall = time.perf_counter() - started
        final = trainer.heldout_psnr()
        rays_per_s = trainer.rays_seen / trainer.train_seconds
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        occ = Occupancy(grid)
        gen = torch.Generator().manual_seed(0)

        def fast(batch: int) -> None:
            idx = torch.randint(0, trainer.origins.shape[0], (batch,), generator=gen)
            data = grid.data.clone().requires_grad_(True)
            out = render(grid, trainer.origins[idx], trainer.dirs[idx], trainer.opts, occ, data=data)
            ((out - trainer.colours[idx]) ** 2).mean().backward()

        def dense(batch: int) -> None:
            idx = torch.randint(0, trainer.origins.shape[0], (batch,), generator=gen)
            data = grid.data.clone().requires_grad_(True)
            out = render_dense(grid, trainer.origins[idx], trainer.dirs[idx], trainer.opts, data=data)
            ((out - trainer.colours[idx]) ** 2).mean().backward()

        fast_rps = throughput(fast, 5000, 10)
        dense_rps = throughput(dense, 200, 3)
        print()
        print(f"training wall time      {wall:8.1f} s ({trainer.history[-1]['iteration']} iterations)")
        print(
            f"held-out PSNR (view 0)  {final:8.2f} dB at {grid.reso[0]}^3, "
            f"{grid.n_voxels:,} voxels, SH dim {grid.basis_dim}"
        )
        print(f"training throughput     {rays_per_s:8,.0f} rays/s (forward + backward + optimiser, all stages)")
        print(f"peak memory             {peak_mb:8,.0f} MB")
        print(f"fast renderer           {fast_rps:8,.0f} rays/s forward+backward on the trained {grid.reso[0]}^3 grid")
        print(f"dense reference         {dense_rps:8,.0f} rays/s forward+backward, same grid")
        print(f"ratio                   {fast_rps / dense_rps:8.1f}x")
        summary = {
            "psnr_heldout": round(final, 2), "train_wall_s": round(wall, 1), "train_rays_per_s": round(rays_per_s),
            "peak_memory_mb": round(peak_mb), "fast_rays_per_s": round(fast_rps), "dense_rays_per_s": round(dense_rps),
            "ratio": round(fast_rps / dense_rps, 1), "history": _psnr_curve(trainer.history),
        }  # fmt: skip
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
