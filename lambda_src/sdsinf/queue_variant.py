"""The Queue variant: blocks travel through SNS topics to per-worker SQS queues.

Each worker has its own queue, subscribed to every data topic of the stack with a filter policy
on the message attributes `run` and `target`, so a worker only ever receives its own run's blocks
(a worker publishes to data topic K mod Shards, as the original; lambda_src.sdsinf.shards), and to
the coordination topic for the run's batch-end messages. A rerun gets fresh queues and a fresh
run id: it never sees a failed run's messages. A block travels as the original's messages
(lambda_src.sdsinf.wire: zlib-compressed COO chunks cut by nonzero count), published as the original
publishes them: up to ten a PublishBatch call, under 99% of 256 KiB. A block with no nonzero is not
sent at all: the sender adds itself to the run's empty-targets item in DynamoDB
(`RUN#LAYER#TARGET`), and a receiver waiting for a sender looks there. Receivers long-poll; after
`poll_timeout_s` without a message (the original's POLL_TIMEOUT_DURATION) they fail the run, naming
the layer and the senders they waited for. Received data is only ever parsed by `wire.unpack` (a
literal parse and a bounded inflate: no eval, no pickle).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from lambda_src.sdsinf.contracts import RunRequest
from lambda_src.sdsinf.distributed import Stalled, coordinate, run_worker, session
from lambda_src.sdsinf.shards import shard_of
from lambda_src.sdsinf.wire import MAX_MESSAGE_CHARS

BATCH_ENTRIES = 10
PUBLISH_THREADS = 4  # the original's SNS_PUBLISH_THREADS
PUBLISH_RETRIES = 4  # the original's MAX_SNS_PUBLISH_RETRIES: exponential backoff from 0.1 s
BATCH_BYTES = MAX_MESSAGE_CHARS  # the original's MAX_ALLOWED_BATCH_MESSAGE_SIZE: 99% of 256 KiB
EMPTY_MARK_TTL_S = 24 * 3600


def _attr(value: str | int, number: bool = False) -> dict[str, str]:
    return {"DataType": "Number" if number else "String", "StringValue": str(value)}


class QueueTransport:
    def __init__(self, q: dict[str, Any], run_id: str, k: int) -> None:
        # as the original: a worker publishes its blocks to data topic (its id mod the shard count)
        self.topic = q["topic_arns"][shard_of(k, len(q["topic_arns"]))]
        self.coordination_topic = q["coordination_topic_arn"]
        self.queue_url = q["queue_urls"][k]
        self.table = q["table"]
        self.run_id = run_id
        self.k = k
        self.sns = session().client("sns")
        self.sqs = session().client("sqs")
        self.ddb = session().client("dynamodb")
        self.publish_calls = 0
        self.poll_calls = 0
        self.table_reads = 0
        self.table_writes = 0
        self.unique_table_reads = 0  # empty marks of senders not seen before (the original's unique items)
        self.publish_sizes: list[int] = []  # bytes per SNS publish batch, in order
        self.received_messages = 0  # SQS messages taken (a block may come in several)
        self.received_bytes = 0
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._marked: set[tuple[int, int]] = set()
        # (layer, sender) -> {part: text} and the part count; later layers can arrive early.
        self.parts: dict[tuple[int, int], dict[int, str]] = {}
        self.expected: dict[tuple[int, int], int] = {}
        self.batch_ends: dict[int, set[int]] = {}  # batch -> workers whose batch-end message came
        self.null_written = self.null_observed = 0  # empty targets are marked in the table instead

    # -- sending -------------------------------------------------------------------------------------
    def send(self, layer: int, dst: int, messages: list[str], empty: bool) -> list[int]:
        if empty:
            self.ddb.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"{self.run_id}#{layer}#{dst}"}},
                UpdateExpression="ADD senders :s SET expires_at = :t",
                ExpressionAttributeValues={
                    ":s": {"NS": [str(self.k)]},
                    ":t": {"N": str(int(time.time()) + EMPTY_MARK_TTL_S)},
                },
            )
            self.table_writes += 1
            return []
        entries = []
        for part, text in enumerate(messages):
            attrs = {
                "run": _attr(self.run_id),
                "target": _attr(dst),
                "layer": _attr(layer, number=True),
                "sender": _attr(self.k, number=True),
                "part": _attr(part, number=True),
                "parts": _attr(len(messages), number=True),
            }
            entries.append((text, attrs))
        # held until the layer's last block is sent (flush): a publish batch carries messages for
        # several targets, as the original's does (up to 10 messages, under 99% of 256 KiB)
        self._pending += [(text, attrs) for text, attrs in entries]
        return [len(e[0]) for e in entries]

    def flush(self) -> None:
        """Publish every message held since the last flush, as the original batches them: a batch is
        sent when it holds 10 messages or the next would bring it to 99% of 256 KiB. The batches go
        out from PUBLISH_THREADS threads, as the original's do."""
        batches: list[list[dict[str, Any]]] = []
        batch: list[dict[str, Any]] = []
        size = 0
        for text, attrs in self._pending:
            if batch and (len(batch) == BATCH_ENTRIES or size + len(text) >= BATCH_BYTES):
                batches.append(batch)
                batch, size = [], 0
            batch.append({"Id": str(len(batch)), "Message": text, "MessageAttributes": attrs})
            size += len(text)
        if batch:
            batches.append(batch)
        self._pending = []
        if not batches:
            return
        with ThreadPoolExecutor(PUBLISH_THREADS) as pool:
            calls = list(pool.map(self._publish, batches))  # raises the first failure, after all ended
        self.publish_calls += sum(calls)
        self.publish_sizes += [sum(len(entry["Message"]) for entry in b) for b in batches]

    def _publish(self, batch: list[dict[str, Any]]) -> int:
        """One batch, as the original's publish_message_batch sends it: a call refused (throttled) is
        tried again after 0.1, 0.2, 0.4 and 0.8 s; entries SNS failed are sent again once. Returns the
        calls that SNS took, as the original counts METRIC_PUBLISH_CALLS."""
        resp = self._publish_call(batch)
        if not resp.get("Failed"):
            return 1
        # the original resends what failed once (its resend took the error text for the message: the
        # entries themselves are resent here), and gives up if that fails too
        failed = {f["Id"] for f in resp["Failed"]}
        again = self._publish_call([entry for entry in batch if entry["Id"] in failed])
        if again.get("Failed"):
            first = again["Failed"][0]
            raise RuntimeError(
                f"SNS refused {len(again['Failed'])} message(s) twice: {first.get('Code')} {first.get('Message')}"
            )
        return 2

    def _publish_call(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        for attempt in range(PUBLISH_RETRIES + 1):
            try:
                answer: dict[str, Any] = self.sns.publish_batch(TopicArn=self.topic, PublishBatchRequestEntries=entries)
                return answer
            except ClientError:
                if attempt == PUBLISH_RETRIES:
                    raise
                time.sleep(0.1 * 2**attempt)
        raise AssertionError("unreachable")

    # -- receiving -----------------------------------------------------------------------------------
    def receive(self, layer: int, senders: list[int], timeout_s: float) -> list[list[str]]:
        deadline = time.time() + timeout_s
        empty: set[int] = set()
        while True:
            waiting = [s for s in senders if s not in empty and not self._complete(layer, s)]
            if waiting:
                if self._poll(wait_s=1 if len(waiting) < len(senders) else 2):
                    # as the original's POLL_TIMEOUT_DURATION: the time allowed is time without a message
                    deadline = time.time() + timeout_s
                waiting = [s for s in waiting if not self._complete(layer, s)]
            if waiting:
                empty |= self._empty_marks(layer)
                waiting = [s for s in waiting if s not in empty]
            if not waiting:
                return [self._take(layer, s) for s in senders if s not in empty]
            if time.time() > deadline:
                raise Stalled.waiting(self.k, timeout_s, f"at layer {layer}", layer, waiting)

    def end_batch(self, batch: int, workers: int, timeout_s: float) -> int:
        """The original's batch-end synchronisation: tell every worker this one finished `batch` (one
        message on the coordination topic) and wait until all have said the same. Blocks of the next
        batch that come meanwhile are kept for it. Not counted in the run's message or poll metrics,
        as the original counts neither: returns 0 polls to count."""
        body = json.dumps({"worker": self.k, "batch": batch})
        attrs = {
            "run": _attr(self.run_id),
            "coordinationFlag": _attr(1),
            "sender": _attr(self.k, number=True),
            "batch": _attr(batch, number=True),
        }
        self.sns.publish(TopicArn=self.coordination_topic, Message=body, MessageAttributes=attrs)
        deadline = time.time() + timeout_s
        while len(self.batch_ends.get(batch, ())) < workers:
            if time.time() > deadline:
                missing = sorted(set(range(workers)) - self.batch_ends.get(batch, set()))
                raise Stalled.waiting(self.k, timeout_s, f"at the end of batch {batch}", None, missing)
            self._poll(wait_s=1, counted=False)  # the original counts no poll of its batch-end wait
        self.batch_ends.pop(batch)
        return 0

    def _complete(self, layer: int, sender: int) -> bool:
        key = (layer, sender)
        return key in self.expected and len(self.parts.get(key, {})) == self.expected[key]

    def _take(self, layer: int, sender: int) -> list[str]:
        key = (layer, sender)
        got = self.parts.pop(key)
        self.expected.pop(key)
        return [got[i] for i in range(len(got))]

    def _poll(self, wait_s: int, counted: bool = True) -> int:
        """One receive; returns how many of this run's messages it took."""
        resp = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s, MessageAttributeNames=["All"]
        )
        self.poll_calls += 1 if counted else 0
        messages = resp.get("Messages", [])
        taken = 0
        for m in messages:
            a = {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()}
            if a.get("run") == self.run_id and a.get("coordinationFlag") == "1":
                self.batch_ends.setdefault(int(a["batch"]), set()).add(int(a["sender"]))
                continue
            if a.get("run") != self.run_id or a.get("target") != str(self.k):
                continue  # not ours (the filter policy should have kept it away): drop it
            key = (int(a["layer"]), int(a["sender"]))
            self.received_messages += 1
            self.received_bytes += len(m["Body"])
            self.parts.setdefault(key, {})[int(a["part"])] = m["Body"]
            self.expected[key] = int(a["parts"])
            taken += 1
        if messages:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        return taken

    def _empty_marks(self, layer: int) -> set[int]:
        item = self.ddb.get_item(
            TableName=self.table, Key={"pk": {"S": f"{self.run_id}#{layer}#{self.k}"}}, ConsistentRead=True
        ).get("Item")
        senders = {int(x) for x in item["senders"]["NS"]} if item else set()
        # as the original counts TOTAL_ITEMS_READ: the marks (one item per sender there) each read returns
        self.table_reads += len(senders)
        fresh = {(layer, s) for s in senders} - self._marked
        self.unique_table_reads += len(fresh)
        self._marked |= fresh
        return senders


def coordinator(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return coordinate(event, "queue")


def worker(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    request = RunRequest.from_event(event).with_variant("queue")
    return run_worker(request, QueueTransport(request.queue or {}, request.run_id, request.worker))
