"""The jobs pipeline under load and faults: 2,000 jobs through the API from 16 clients while 4
executors (a fast test engine) drain them, one executor killed -9 every 20 s and the local cloud
killed -9 twice at random points.

    make bench            (or: .venv/bin/python benchmarks/load_bench.py [--jobs N --clients N ...])

Prints submit throughput, API latency (p50/p99), end-to-end latency, jobs lost / made twice / stuck
(all must be 0), executors alive at the end (all), and how long each restart of the cloud took.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.core.paths import Home  # noqa: E402
from backend.localcloud import control  # noqa: E402
from tests.load import LoadPlan, run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--executors", type=int, default=4)
    parser.add_argument("--kill-every", type=float, default=20.0, help="seconds between executor kills")
    parser.add_argument("--cloud-kills", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    plan = LoadPlan(
        jobs=args.jobs, clients=args.clients, executors=args.executors, kill_executor_every_s=args.kill_every,
        cloud_kills=args.cloud_kills, seed=args.seed,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp) / "home")
        try:
            report = run(home, plan, say=lambda line: print(f"  {line}", flush=True))
        finally:
            control.down(home)
    print("\n".join(report.lines()))
    if report.failed:
        print("failed jobs (first 5):", *report.failed[:5], sep="\n  ")
    print("result:", "OK" if report.clean else "PROBLEMS")
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
