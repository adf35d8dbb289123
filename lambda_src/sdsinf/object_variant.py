"""The Object variant: workers exchange partial activations through the intermediate S3 buckets.

Per layer a sender writes one object per receiver, `RUN/lLLLL/toDDDD/fromSSSS.dat` (the block in the
original's wire form, lambda_src.sdsinf.wire: one zlib-compressed float64 COO, as text), into the
receiver's shard bucket (receiver id mod Shards, as the original; lambda_src.sdsinf.shards). An
empty block is still written: it is the "nothing for you" mark. With `--wire original` that mark is
the original's: an empty `fromSSSS.nul`, counted among the run's writes but not among the layer's
files written, seen in the listing and never read; and the inbox is listed every 0.1 s, as the
original lists it. A receiver polls its own inbox prefix in its own shard until every expected
sender has written. At the end of a batch every
worker writes `RUN/sync/bBBBB/K.syn` to the base bucket and waits until all have (the original's
batch-end synchronisation). The worker loop is `distributed.run_worker`.
"""

from __future__ import annotations

import time
from typing import Any

from lambda_src.sdsinf.contracts import RunRequest
from lambda_src.sdsinf.distributed import Stalled, coordinate, get, put, run_worker, s3
from lambda_src.sdsinf.shards import shard_of


class ObjectTransport:
    def __init__(self, where: dict[str, Any], run_id: str, k: int, original: bool = False) -> None:
        self.original = original  # the original's .nul marks and listing pace (--wire original)
        self.null_written = self.null_observed = 0
        self.base = where["bucket"]
        self.buckets: list[str] = where["buckets"]
        self.bucket = self.buckets[shard_of(k, len(self.buckets))]  # this worker's inbox shard
        self.run_id = run_id
        self.k = k
        self.publish_calls = 0
        self.poll_calls = 0
        self.publish_sizes: list[int] = []  # nothing is published: blocks are objects
        self.received_messages = 0  # objects read
        self.received_bytes = 0
        self.table_reads = self.table_writes = self.unique_table_reads = 0  # no empty-target table

    def _base(self, layer: int) -> str:
        return f"{self.run_id}/l{layer:04d}"

    def send(self, layer: int, dst: int, messages: list[str], empty: bool) -> list[int]:
        shard = self.buckets[shard_of(dst, len(self.buckets))]
        if empty and self.original:
            put(shard, f"{self._base(layer)}/to{dst:04d}/from{self.k:04d}.nul", b"")
            self.null_written += 1
            return []
        body = "".join(messages).encode("ascii")  # one message a block on this variant
        put(shard, f"{self._base(layer)}/to{dst:04d}/from{self.k:04d}.dat", body)
        self.publish_calls += 1
        return [len(body)]

    def receive(self, layer: int, senders: list[int], timeout_s: float) -> list[list[str]]:
        names = {f"from{s:04d}.dat" for s in senders}
        prefix = f"{self._base(layer)}/to{self.k:04d}/"
        deadline = time.time() + timeout_s
        found: dict[str, bytes] = {}
        nothing: set[str] = set()  # senders whose .nul said "nothing for you"
        client = s3()
        while True:
            self.poll_calls += 1
            for obj in client.list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", []):
                name = obj["Key"].rsplit("/", 1)[-1]
                if self.original and name.endswith(".nul") and name.removesuffix(".nul") + ".dat" in names:
                    if name not in nothing:
                        nothing.add(name)
                        self.null_observed += 1
                elif name in names and name not in found:
                    found[name] = get(self.bucket, obj["Key"])
            if self.original:
                time.sleep(0.1)  # the original sleeps after every listing (S3_LIST_SLEEP_TIME)
            if len(found) + len(nothing) == len(names):
                self.received_messages += len(found)
                self.received_bytes += sum(len(b) for b in found.values())
                return [[found[n].decode("ascii")] for n in sorted(found)]
            if time.time() > deadline:
                done = set(found) | {n.removesuffix(".nul") + ".dat" for n in nothing}
                missing = sorted(int(n.removeprefix("from").removesuffix(".dat")) for n in names - done)
                raise Stalled.waiting(self.k, timeout_s, f"at layer {layer}", layer, missing)
            if not self.original:
                time.sleep(0.05)

    def flush(self) -> None:
        """Every object is written as it is sent: nothing is held back."""

    def end_batch(self, batch: int, workers: int, timeout_s: float) -> int:
        """Mark this worker's end of `batch` in the base bucket and wait for every worker's mark.
        Returns the listings it took: folder scans, as the original counts its sync listings."""
        prefix = f"{self.run_id}/sync/b{batch:04d}/"
        put(self.base, f"{prefix}{self.k:04d}.syn", b"")
        deadline = time.time() + timeout_s
        client = s3()
        scans = 0
        while True:
            listing = client.list_objects_v2(Bucket=self.base, Prefix=prefix).get("Contents", [])
            scans += 1
            self.poll_calls += 1
            seen = {int(o["Key"].rsplit("/", 1)[-1].removesuffix(".syn")) for o in listing}
            if len(seen) >= workers:
                return scans
            if time.time() > deadline:
                missing = sorted(set(range(workers)) - seen)
                raise Stalled.waiting(self.k, timeout_s, f"at the end of batch {batch}", None, missing)
            time.sleep(0.05)


def coordinator(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return coordinate(event, "object")


def worker(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    request = RunRequest.from_event(event).with_variant("object")
    original = (request.wire or "original") == "original"
    return run_worker(request, ObjectTransport(request.intermediate or {}, request.run_id, request.worker, original))
