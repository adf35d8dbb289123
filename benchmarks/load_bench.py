"""The jobs pipeline under load and faults: 2,000 jobs through the API from 16 clients while 4
executors (a fast test engine) drain them, one executor killed -9 every 20 s and the local cloud
killed -9 twice at random points.

    make bench            (or: .venv/bin/python benchmarks/load_bench.py [--jobs N --clients N ...])

Prints submit throughput, API latency (p50/p99), end-to-end latency, jobs lost / made twice / stuck
(all must be 0), executors alive at the end (all), and how long each restart of the cloud took.
First, in the same run, the same clients without faults (no kill of anything): the API's own p99
(target <= 100 ms), beside which the faulted run's p99 shows what the kills cost. The calm run's
p99 is also printed after its first answers, which wait for the API function's workers to start (its
cold starts), and again at 4 clients: latency at a fixed number of clients is clients / throughput
(Little's law), so the two show whether a miss is the cold start or the work per request.
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
    calm_plan = LoadPlan(
        jobs=max(1, args.jobs // 2), clients=args.clients, executors=args.executors,
        kill_executor_every_s=float("inf"), cloud_kills=0, seed=args.seed + 1,
    )  # fmt: skip
    few_clients_plan = LoadPlan(
        jobs=max(1, args.jobs // 4), clients=min(4, args.clients), executors=args.executors,
        kill_executor_every_s=float("inf"), cloud_kills=0, seed=args.seed + 2,
    )  # fmt: skip
    reports = []
    for each in (calm_plan, few_clients_plan, plan):
        with tempfile.TemporaryDirectory() as tmp:
            home = Home(Path(tmp) / "home")
            try:
                reports.append(run(home, each, say=lambda line: print(f"  {line}", flush=True)))
            finally:
                control.down(home)
    calm, few, report = reports
    print("without faults:")
    print("\n".join(calm.lines()))
    p99 = calm.percentile(99)
    print(f"API p99 without faults {p99:.1f} ms (target <= 100 ms): {'ok' if p99 <= 100 else 'MISSED'}")
    print(f"\nwithout faults, {few.plan.clients} clients:")
    print("\n".join(few.lines()))
    print("\nwith faults:")
    print("\n".join(report.lines()))
    if report.failed:
        print("failed jobs (first 5):", *report.failed[:5], sep="\n  ")
    clean = report.clean and calm.clean and few.clean
    print("result:", "OK" if clean else "PROBLEMS")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
