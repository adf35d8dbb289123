"""A fleet host's executor says it is alive: s3://BUCKET/fleet/hosts/INSTANCE/executor.json.

`skydeck fleet hosts` reads it beside the boot record: the executor's last heartbeat and the job it
holds. Written when a job is claimed and ends, and at most once a minute between; a failed write is
logged and never stops the executor.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("skydeck.executor.beacon")
HOSTS_PREFIX = "fleet/hosts/"


def beacon_key(instance_id: str) -> str:
    return f"{HOSTS_PREFIX}{instance_id}/executor.json"


@dataclass
class HostBeacon:
    s3: Any  # a boto3 S3 client
    bucket: str
    instance_id: str
    engine: str = ""  # the engine an `auto` job gets on this host
    every_s: float = 60.0
    _last: float = field(default=0.0, init=False)

    @classmethod
    def from_environment(cls, s3: Any) -> HostBeacon | None:
        """On a fleet host (SKYDECK_INSTANCE_ID and BUCKET set by its unit); None elsewhere."""
        instance_id, bucket = os.environ.get("SKYDECK_INSTANCE_ID"), os.environ.get("BUCKET")
        return cls(s3, bucket, instance_id) if instance_id and bucket else None

    def beat(self, job_id: str | None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        body = {
            "instance_id": self.instance_id, "host": socket.gethostname(), "pid": os.getpid(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "job_id": job_id, "engine": self.engine,
        }  # fmt: skip
        try:
            self.s3.put_object(
                Bucket=self.bucket, Key=beacon_key(self.instance_id), Body=json.dumps(body).encode(),
                ContentType="application/json",
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - a heartbeat is information, never a reason to stop
            log.warning("could not write the host heartbeat: %s", exc)
