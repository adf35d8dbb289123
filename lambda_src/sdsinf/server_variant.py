"""The Server baseline: the same kernel and run files as Serial, as a plain process instead of a Lambda.

Job-scoped: `python -m lambda_src.sdsinf.server_variant --event-s3 s3://BUCKET/runs/RUN/request.json` runs
one run and exits (on EC2 the instance then powers off, which terminates it; on the local cloud
skydeck starts it as a local process).

Always-on: `python -m lambda_src.sdsinf.server_variant --serve QUEUE_URL` takes runs from the stack's
server-requests queue ({"request": "s3://.../request.json"} per message) one after another until
SIGTERM, which it honours between runs.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

import boto3

from lambda_src.sdsinf import serial
from lambda_src.sdsinf.contracts import RunRequest

VISIBILITY_S = 900  # a run longer than this would be delivered again: the same as Lambda's limit


def run_request(s3: Any, uri: str) -> dict[str, Any]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"{uri!r} is not an s3://bucket/key URI")
    bucket, key = uri[5:].split("/", 1)
    event = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return serial.run(RunRequest.from_event(event).with_variant("server"))


def serve(queue_url: str, stop: threading.Event, wait_s: int = 20) -> int:
    """Run requests from the queue until `stop` is set; returns how many ran."""
    session = boto3.session.Session()
    sqs, s3 = session.client("sqs"), session.client("s3")
    done = 0
    while not stop.is_set():
        got = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=wait_s, VisibilityTimeout=VISIBILITY_S
        ).get("Messages", [])
        for message in got:
            try:
                uri = json.loads(message["Body"])["request"]
                summary = run_request(s3, uri)
                print(json.dumps({"event": "run_done", "request": uri, "state": summary.get("state")}), flush=True)
                done += 1
            except (ValueError, KeyError, TypeError) as exc:
                print(json.dumps({"event": "bad_request", "detail": str(exc)}), flush=True)
            # a run that failed wrote its FAILED summary: delivering it again would only repeat that
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lambda_src.sdsinf.server_variant", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--event-s3", help="job-scoped: s3://bucket/key of the run's request.json")
    mode.add_argument("--serve", metavar="QUEUE_URL", help="always-on: take runs from this queue until SIGTERM")
    parser.add_argument("--wait", type=int, default=20, help="queue long-poll seconds (1-20)")
    args = parser.parse_args(argv)
    if args.serve:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        print(json.dumps({"event": "serving", "queue": args.serve}), flush=True)
        serve(args.serve, stop, max(1, min(args.wait, 20)))
        return 0
    try:
        summary = run_request(boto3.session.Session().client("s3"), args.event_s3)
    except ValueError as exc:
        print(f"error: --event-s3: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
