"""How long a command takes to answer, as a whole process: what an operator (or a script looping over
commands) waits for. Medians of several runs, each a fresh `python -m cli` process, against a local
cloud holding 100 jobs and one finished SDS-Inf run. Each is also given as a multiple of a bare
`python -c pass` by the same interpreter, timed in the same run, so that figures from a busy machine
and a quiet one compare (the target for `jobs list` is at most 15x).

    .venv/bin/python benchmarks/cli_bench.py [--runs 7] [--before TREE [--before-packages DIR]]

--before times each command again from an earlier checkout (run in that folder, so that its `cli`
is the one imported), with --before-packages first on PYTHONPATH for packages it ran with (an older
typer, say), interleaved with this one's runs: a before/after in one run.
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


def timed(args: list[str], envs: list[tuple[dict[str, str], str | None]], runs: int) -> list[tuple[float, float]]:
    """(median, best) wall seconds of `skydeck ARGS` as a fresh process, under each environment, their runs
    taken in turn (ARGS `-c pass`: a bare interpreter)."""
    times: list[list[float]] = [[] for _ in envs]
    argv = [sys.executable, "-c", "pass"] if args == ["-c", "pass"] else [sys.executable, "-m", "cli", *args]
    for _ in range(runs):
        for (env, cwd), taken in zip(envs, times, strict=True):
            t0 = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd)
            taken.append(time.perf_counter() - t0)
            if done.returncode != 0:
                raise SystemExit(f"skydeck {' '.join(args)} failed: {done.stderr[-500:]}")
    return [(statistics.median(taken), min(taken)) for taken in times]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--before", help="an earlier checkout to time beside this one")
    parser.add_argument("--before-packages", help="a folder of packages the earlier checkout ran with")
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
            "python -c pass": ["-c", "pass"],
            "--version": ["--version"],
            "jobs list --help": ["jobs", "list", "--help"],
            "jobs list (100 jobs)": ["jobs", "list"],
            "jobs list --json": ["jobs", "list", "--json"],
            "jobs show": ["jobs", "show", ids[0][:8], "--json"],
            "sdsinf runs": ["sdsinf", "runs", "--json"],
        }
        envs: list[tuple[dict[str, str], str | None]] = [(env, None)]
        if args.before:
            path = os.pathsep.join(p for p in (args.before_packages, args.before) if p)
            envs.append(({**env, "PYTHONPATH": path}, args.before))
        rows = {}
        for name, argv in cases.items():
            for label, figures in zip(("", " (before)"), timed(argv, envs, args.runs), strict=False):
                rows[name + label] = figures
    finally:
        control.down(home)
    bare = rows["python -c pass"][0]
    print(f"{'command':<24} {'median s':>9} {'best s':>8} {'x pass':>7}   ({args.runs} runs each, fresh processes)")
    for name, (median, best) in rows.items():
        print(f"{name:<24} {median:>9.3f} {best:>8.3f} {median / bare:>6.1f}x")
    ratio = rows["jobs list (100 jobs)"][0] / bare
    print(f"jobs list is {ratio:.1f}x a bare interpreter (target <= 15x: {'ok' if ratio <= 15 else 'MISSED'})")
    print(json.dumps({name: round(m, 3) for name, (m, _) in rows.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
