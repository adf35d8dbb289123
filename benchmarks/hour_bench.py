"""The first hour's local cloud, restarted: does `local up` stay quick after ordinary use?

    .venv/bin/python benchmarks/hour_bench.py [--runs 7] [--jobs 2]

Does the walkthrough's kind of hour on a fresh home: the stacks deployed, a scene pushed, two training
jobs trained by an executor, an SDS-Inf dataset (1024 neurons x 120 layers) uploaded and seven runs of
it (serial, queue and object, up to 8 workers). Then restarts the local cloud twice and prints each
start's time, what it replayed, and the journal's size. Target: each restart under 5 s.
"""

from __future__ import annotations

import argparse
import collections
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.context import Context  # noqa: E402
from backend.core.paths import Home  # noqa: E402
from backend.localcloud import control  # noqa: E402


def journal_report(path: Path) -> str:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = db.execute("SELECT method, path, length(body) FROM requests").fetchall()
    db.close()
    by_kind: collections.Counter[str] = collections.Counter()
    bytes_by: collections.Counter[str] = collections.Counter()
    for method, p, size in rows:
        parts = p.strip("/").split("/")
        kind = f"{method} {parts[0][:28]}/{parts[1] if len(parts) > 2 else ''}"
        by_kind[kind] += 1
        bytes_by[kind] += size or 0
    top = sorted(by_kind, key=lambda k: -bytes_by[k])[:8]
    return "\n".join(f"    {by_kind[k]:>6} records {bytes_by[k] / 1e6:>8.1f} MB  {k}" for k in top)


def restart(home: Home) -> tuple[float, dict]:
    control.down(home)
    started = time.perf_counter()
    state = control.up(home, workers=0).state
    return time.perf_counter() - started, state.get("restored", {})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    os.environ["SKYDECK_LOCAL_WORKERS"] = "0"
    work = Path(tempfile.mkdtemp(prefix="skydeck-hour-"))
    home = Home(work / "home")
    os.environ["SKYDECK_HOME"] = str(home.root)
    control.up(home, workers=0)
    ctx = Context.create(None, home)
    t0 = time.perf_counter()
    try:
        for short in ("infra", "api", "fleet", "sdsinf"):
            ctx.stacks.deploy(short)
        _train(ctx, work, args.jobs)
        _sdsinf(ctx, work, args.runs)
        print(f"the hour's work: {time.perf_counter() - t0:.0f} s")
        journal = home.local_journal
        for n in (1, 2):
            seconds, restored = restart(home)
            size = sum(p.stat().st_size for p in journal.parent.glob(journal.name + "*"))
            print(
                f"restart {n}: {seconds:.1f} s, replayed {restored.get('replayed', 0)} changes"
                f"{', compacted ' + str(restored['compacted']) if restored.get('compacted') else ''}; "
                f"journal {size / 1e6:.1f} MB"
            )
    finally:
        control.down(home)
    print("the journal's largest parts (records, bytes, what):")
    print(journal_report(home.local_journal))
    return 0


def _train(ctx: Context, work: Path, jobs: int) -> None:
    from gpu_executor.engines import builtin_engines
    from gpu_executor.executor import Executor, ExecutorConfig
    from gpu_executor.plenoxels.scene import make_scene
    from lambda_src.jobs.schema import parse_job

    make_scene("demo", work / "scene", size=64, views=24, test_views=4)
    ctx.scenes.push(work / "scene", "demo")
    store = ctx.jobs.store
    config = {"reso": "[[32, 32, 32], [64, 64, 64]]", "upsamp_every": 150, "n_iters": 300, "batch_size": 2000}
    for _ in range(jobs):
        store.submit(parse_job({"scene": "demo", "engine": "torch", "config": config}))
    executor = Executor(store, builtin_engines(), ExecutorConfig(wait_s=1), storage=ctx.scenes.storage(work / "cache"))
    for _ in range(jobs):
        executor.run(once=True)


def _sdsinf(ctx: Context, work: Path, runs: int) -> None:
    from backend.interface import Backend
    from backend.sdsinf.data import generate
    from backend.sdsinf.plans import RunPlan
    from backend.sdsinf.runs import SdsinfRuns

    sds = SdsinfRuns(ctx)
    door = Backend(ctx)  # follows each run as `sdsinf run` and the console do
    generate(work / "gc", 1024, 120, 1000, seed=1)
    sds.upload(work / "gc", 1024, 120, "c1")
    shapes = [("serial", 1), ("queue", 2), ("queue", 4), ("queue", 8), ("object", 2), ("object", 4), ("serial", 1)]
    for variant, workers in (shapes * 2)[:runs]:
        plan = RunPlan(preset="", data="c1", variant=variant, workers=workers, batch=500)
        started = sds.start(plan)
        door.follow_run(started.run_id, lambda _: None)


if __name__ == "__main__":
    sys.exit(main())
