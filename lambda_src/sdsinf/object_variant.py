"""The Object variant: workers exchange partial activations through the intermediate S3 bucket.

Per layer a sender writes one object per receiver, `RUN/lLLLL/toDDDD/fromSSSS.npz` (an empty block
is still written: it is the "nothing for you" mark), and a receiver polls its own inbox prefix
until every expected sender has written. The worker loop is `distributed.run_worker`.
"""

from __future__ import annotations

import time
from typing import Any

from lambda_src.sdsinf.distributed import Stalled, coordinate, get, put, run_worker, s3


class ObjectTransport:
    def __init__(self, event: dict[str, Any], k: int) -> None:
        self.bucket = event["intermediate"]["bucket"]
        self.run_id = event["run_id"]
        self.k = k
        self.publish_calls = 0
        self.poll_calls = 0

    def _base(self, layer: int) -> str:
        return f"{self.run_id}/l{layer:04d}"

    def send(self, layer: int, dst: int, body: bytes, empty: bool) -> list[int]:
        put(self.bucket, f"{self._base(layer)}/to{dst:04d}/from{self.k:04d}.npz", body)
        self.publish_calls += 1
        return [len(body)]

    def receive(self, layer: int, senders: list[int], timeout_s: float) -> list[bytes]:
        names = {f"from{s:04d}.npz" for s in senders}
        prefix = f"{self._base(layer)}/to{self.k:04d}/"
        deadline = time.time() + timeout_s
        found: dict[str, bytes] = {}
        client = s3()
        while True:
            self.poll_calls += 1
            for obj in client.list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", []):
                name = obj["Key"].rsplit("/", 1)[-1]
                if name in names and name not in found:
                    found[name] = get(self.bucket, obj["Key"])
            if len(found) == len(names):
                return [found[n] for n in sorted(found)]
            if time.time() > deadline:
                missing = sorted(n.removeprefix("from").removesuffix(".npz") for n in names - set(found))
                raise Stalled(
                    f"worker {self.k} waited {timeout_s:.0f}s at layer {layer} for worker(s) {', '.join(missing)}",
                    layer,
                    [int(m) for m in missing],
                )
            time.sleep(0.05)


def coordinator(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return coordinate(event, "object")


def worker(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return run_worker({**event, "variant": "object"}, ObjectTransport(event, int(event["worker_id"])))
