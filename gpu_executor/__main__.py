"""Run the executor as a service: `python -m gpu_executor` with QUEUE_URL and TABLE set.

This is what the fleet's systemd unit starts on each GPU host. Operators on a workstation use
`skydeck executor run`, which reads the same settings from the stacks.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import boto3

from gpu_executor import exits
from gpu_executor.engines import EngineError, builtin_engines, choose
from gpu_executor.executor import Executor, ExecutorConfig
from gpu_executor.host.beacon import HostBeacon
from gpu_executor.scale_in import ScaleInProtection
from gpu_executor.storage import S3Storage
from lambda_src.jobs.job_table import JobStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpu_executor", description=__doc__)
    parser.add_argument("--engine", default="auto", help="engine for every job (default: the job's own, or auto)")
    parser.add_argument("--once", action="store_true", help="handle at most one message, then exit")
    parser.add_argument("--wait", type=int, default=20, help="SQS long-poll seconds (1-20)")
    args = parser.parse_args(argv)
    missing = [k for k in ("QUEUE_URL", "TABLE") if not os.environ.get(k)]
    if missing:
        print(f"error: set {' and '.join(missing)} (the infra stack's QueueUrl and TableName outputs)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    session = boto3.session.Session()
    store = JobStore(session.client("dynamodb"), session.client("sqs"), os.environ["TABLE"], os.environ["QUEUE_URL"])
    config = ExecutorConfig(engine=args.engine, wait_s=max(1, min(args.wait, 20)))
    storage = S3Storage(session.client("s3"), os.environ.get("BUCKET"), config.workdir / "scenes")
    protection = ScaleInProtection.from_environment(session.client("autoscaling"))
    beacon = HostBeacon.from_environment(session.client("s3"))
    engines = builtin_engines()
    if beacon is not None:
        try:
            beacon.engine = choose(engines, args.engine)[0].name
        except EngineError as exc:
            beacon.engine = f"none ({exc})"
    executor = Executor(store, engines, config, storage=storage, protection=protection, beacon=beacon)
    exits.note_running(exits.exits_dir(), os.getpid())  # what a supervisor's exit record will name
    executor.install_signal_handlers()
    executor.run(once=args.once)
    return 0


if __name__ == "__main__":
    sys.exit(main())
