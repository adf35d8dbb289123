"""The Server baseline: the same kernel and run files as Serial, as a plain process instead of a Lambda.

Job-scoped use: `python -m lambda_src.sdsinf.server --event-s3 s3://BUCKET/runs/RUN/request.json`
runs one run and exits (on EC2 the instance then shuts itself down; on the local cloud skydeck starts
it as a local process).
"""

from __future__ import annotations

import argparse
import json
import sys

import boto3

from lambda_src.sdsinf import serial


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lambda_src.sdsinf.server", description=__doc__)
    parser.add_argument("--event-s3", required=True, help="s3://bucket/key of the run's request.json")
    args = parser.parse_args(argv)
    if not args.event_s3.startswith("s3://") or "/" not in args.event_s3[5:]:
        print("error: --event-s3 must look like s3://bucket/key", file=sys.stderr)
        return 2
    bucket, key = args.event_s3[5:].split("/", 1)
    event = json.loads(boto3.session.Session().client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    summary = serial.handler({**event, "variant": "server"})
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
