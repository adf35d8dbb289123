"""Local cloud start-up after a long history, with and without journal compaction.

    make bench            (or: .venv/bin/python benchmarks/replay_bench.py [--heartbeats 10000])

A long job's history: one job heartbeating N times and re-publishing its log every 10 heartbeats.
Target: start-up after compaction under 5 s, whatever N.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.context import Context  # noqa: E402
from backend.core.paths import Home  # noqa: E402
from backend.localcloud import control  # noqa: E402
from lambda_src.jobs.schema import parse_job  # noqa: E402


def restart(home: Home, compact_at: int) -> tuple[float, dict]:
    control.down(home)
    os.environ["SKYDECK_JOURNAL_COMPACT_AT"] = str(compact_at)
    started = time.perf_counter()
    restored = control.up(home, workers=0).state["restored"]
    return time.perf_counter() - started, restored


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heartbeats", type=int, default=10_000)
    args = parser.parse_args()
    home = Home(Path(tempfile.mkdtemp(prefix="skydeck-replay-")))
    control.up(home, workers=0)
    try:
        ctx = Context.create(None, home)
        ctx.stacks.deploy("infra")
        store = ctx.jobs.store
        s3 = ctx.clients.client("s3")
        job_id = store.submit(parse_job({"scene": "lego"})).job_id
        store.claim(job_id, "bench")
        t = time.perf_counter()
        for i in range(args.heartbeats):
            store.heartbeat(job_id, "bench", {"iteration": i})
            if i % 10 == 0:
                s3.put_object(Bucket=ctx.scenes.bucket, Key=f"results/{job_id}/job.log", Body=b"x" * 2000)
        wrote = time.perf_counter() - t
        full_s, full = restart(home, compact_at=10**9)
        compacting_s, compacting = restart(home, compact_at=5000)
        after_s, after = restart(home, compact_at=5000)
    finally:
        control.down(home)
    print(f"history: {args.heartbeats} heartbeats + {args.heartbeats // 10} log uploads written in {wrote:.1f}s")
    print(f"{'start-up':<34}{'records':>10}{'seconds':>10}")
    print(f"{'whole journal, no compaction':<34}{full['replayed']:>10}{full_s:>10.1f}")
    print(f"{'replay, then compaction':<34}{compacting['replayed']:>10}{compacting_s:>10.1f}")
    print(
        f"{'after compaction':<34}{after['replayed']:>10}{after_s:>10.1f}   target < 5 s "
        f"{'ok' if after_s < 5 else 'MISSED'}"
    )
    return 0 if after_s < 5 else 1


if __name__ == "__main__":
    sys.exit(main())
