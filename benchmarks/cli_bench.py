"""How long a command takes to answer, as a whole process: what an operator (or a script looping over
commands) waits for. Medians of several runs, each a fresh `python -m cli` process, against a local
cloud holding 100 jobs and one finished SDS-Inf run.

    .venv/bin/python benchmarks/cli_bench.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backend.context import Context
from backend.core.paths import Home
from backend.localcloud import control
from lambda_src.jobs.schema import parse_job


def timed(args: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """(median, best) wall seconds of `skydeck ARGS` as a fresh process."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise SystemExit(f"skydeck {' '.join(args)} failed: {done.stderr[-500:]}")
    return statistics.median(times), min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    home = Home(Path(tempfile.mkdtemp(prefix="skydeck-cli-bench-")))
    env = {**os.environ, "SKYDECK_HOME": str(home.root), "SKYDECK_LOCAL_WORKERS": "0"}
    os.environ.update(env)
    control.up(home, workers=0)
    try:
        ctx = Context.create(None, home)
        ctx.stacks.deploy("infra")
        store = ctx.jobs.store
        ids = [store.submit(parse_job({"scene": "lego", "name": f"bench-{i}"})).job_id for i in range(100)]
        ctx.stacks.deploy("sdsinf")
        from backend.sdsinf.data import generate
        from backend.sdsinf.plans import RunPlan
        from backend.sdsinf.runs import SdsinfRuns

        runs = SdsinfRuns(ctx)
        generate(home.root / "gc", 1024, 4, 20, seed=1)
        runs.upload(home.root / "gc", 1024, 4, "bench")
        runs.follow(runs.start(RunPlan("", "bench", "serial", 1)).run_id, timeout_s=300)
        cases = {
            "--version": ["--version"],
            "jobs list --help": ["jobs", "list", "--help"],
            "jobs list (100 jobs)": ["jobs", "list", "--json"],
            "jobs show": ["jobs", "show", ids[0][:8], "--json"],
            "sdsinf runs": ["sdsinf", "runs", "--json"],
        }
        rows = {name: timed(argv, env, args.runs) for name, argv in cases.items()}
    finally:
        control.down(home)
    print(f"{'command':<24} {'median s':>9} {'best s':>8}   ({args.runs} runs each, fresh processes)")
    for name, (median, best) in rows.items():
        print(f"{name:<24} {median:>9.3f} {best:>8.3f}")
    print(json.dumps({name: round(m, 3) for name, (m, _) in rows.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
