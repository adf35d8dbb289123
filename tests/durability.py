"""A model-checked workload for the local cloud's durability: random S3, SQS, DynamoDB and
CloudFormation calls, each applied to the cloud and to a plain-Python model of what the cloud should
hold; after a restart (clean, or kill -9 between two answered requests) the cloud must hold exactly
what the model holds. Used by the test suite (short runs) and by benchmarks/durability_bench.py
(long runs)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from backend.context import Context
from backend.core.paths import Home
from backend.localcloud import control

PART = 5 * 1024 * 1024  # S3's smallest part but the last
BUCKET = "durability"
TABLE = "durability"
QUEUES = ("durability-a", "durability-b")
TOPIC_TEMPLATE = json.dumps(
    {
        "Parameters": {"Label": {"Type": "String"}},
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": {"Ref": "Label"}}},
        },
    }
)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass
class Model:
    objects: dict[str, str] = field(default_factory=dict)  # key -> digest
    uploads: dict[str, tuple[str, list[tuple[int, bytes]]]] = field(default_factory=dict)  # client id -> key, parts
    messages: dict[str, dict[str, str]] = field(default_factory=lambda: {q: {} for q in QUEUES})  # id -> body
    held: list[tuple[str, str, str]] = field(default_factory=list)  # (queue, message id, receipt handle)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # pk -> {version, note}
    stacks: dict[str, str] = field(default_factory=dict)  # name -> Label


@dataclass
class Workload:
    """Drives one local cloud (in its own home) and keeps the model beside it."""

    home: Home
    rng: random.Random
    model: Model = field(default_factory=Model)
    ops: Counter[str] = field(default_factory=Counter)
    compactions: int = 0
    _serial: int = 0

    def __post_init__(self) -> None:
        self._connect()
        self.s3.create_bucket(Bucket=BUCKET)
        self.queue_urls = {q: self.sqs.create_queue(QueueName=q)["QueueUrl"] for q in QUEUES}
        self.ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

    def _connect(self) -> None:
        clients = Context.create(None, self.home).clients
        self.s3, self.sqs = clients.client("s3"), clients.client("sqs")
        self.ddb, self.cfn = clients.client("dynamodb"), clients.client("cloudformation")

    def _name(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}{self._serial}"

    # -- one random step ---------------------------------------------------------------------------
    def step(self) -> str:
        m = self.model
        choices: list[tuple[str, int]] = [
            ("s3_put", 6), ("s3_multipart_start", 1), ("s3_copy", 2 if m.objects else 0),
            ("s3_delete", 2 if m.objects else 0), ("s3_multipart_part", 2 if m.uploads else 0),
            ("s3_multipart_complete", 2 if m.uploads else 0), ("s3_multipart_abort", 1 if m.uploads else 0),
            ("sqs_send", 6), ("sqs_receive", 4), ("sqs_delete", 3 if m.held else 0),
            ("sqs_change_visibility", 2 if m.held else 0),
            ("ddb_put", 5), ("ddb_update", 4 if m.items else 0), ("ddb_delete", 2 if m.items else 0),
            ("cfn_create", 1 if len(m.stacks) < 4 else 0), ("cfn_change_set", 1 if len(m.stacks) < 4 else 0),
            ("cfn_update", 1 if m.stacks else 0), ("cfn_delete", 1 if m.stacks else 0),
        ]  # fmt: skip
        names = [n for n, w in choices if w]
        op = self.rng.choices(names, weights=[w for _, w in choices if w])[0]
        getattr(self, op)()
        self.ops[op] += 1
        return op

    # -- S3 ------------------------------------------------------------------------------------------
    def _key(self) -> str:
        return f"k/{self.rng.randrange(12)}"

    def s3_put(self) -> None:
        key, data = self._key(), self.rng.randbytes(self.rng.randrange(1, 4000))
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        self.model.objects[key] = _digest(data)

    def s3_copy(self) -> None:
        source = self.rng.choice(sorted(self.model.objects))
        target = self.rng.choice([k for k in (f"k/{i}" for i in range(12)) if k != source])
        self.s3.copy_object(Bucket=BUCKET, Key=target, CopySource={"Bucket": BUCKET, "Key": source})
        self.model.objects[target] = self.model.objects[source]

    def s3_delete(self) -> None:
        key = self.rng.choice(sorted(self.model.objects))
        self.s3.delete_object(Bucket=BUCKET, Key=key)
        del self.model.objects[key]

    def s3_multipart_start(self) -> None:
        key = self._key()
        upload = self.s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
        self.model.uploads[upload] = (key, [])
        self.s3_multipart_part(upload)

    def s3_multipart_part(self, upload: str | None = None) -> None:
        upload = upload or self.rng.choice(sorted(self.model.uploads))
        key, parts = self.model.uploads[upload]
        data = self.rng.randbytes(64) * (PART // 64) + self.rng.randbytes(self.rng.randrange(1, 64))
        number = len(parts) + 1
        self.s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=number, Body=data)
        parts.append((number, data))

    def s3_multipart_complete(self) -> None:
        upload = self.rng.choice(sorted(self.model.uploads))
        key, parts = self.model.uploads.pop(upload)
        listed = self.s3.list_parts(Bucket=BUCKET, Key=key, UploadId=upload)["Parts"]
        assert [p["PartNumber"] for p in listed] == [n for n, _ in parts], "an open upload lost a part"
        done = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in listed]
        self.s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": done})
        self.model.objects[key] = _digest(b"".join(d for _, d in parts))

    def s3_multipart_abort(self) -> None:
        upload = self.rng.choice(sorted(self.model.uploads))
        key, _ = self.model.uploads.pop(upload)
        self.s3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload)

    # -- SQS -----------------------------------------------------------------------------------------
    def sqs_send(self) -> None:
        queue, body = self.rng.choice(QUEUES), f"m{self._name('')}-{self.rng.randrange(10**6)}"
        sent = self.sqs.send_message(QueueUrl=self.queue_urls[queue], MessageBody=body)
        self.model.messages[queue][sent["MessageId"]] = body

    def sqs_receive(self) -> None:
        queue = self.rng.choice(QUEUES)
        got = self.sqs.receive_message(
            QueueUrl=self.queue_urls[queue], MaxNumberOfMessages=self.rng.randrange(1, 4), VisibilityTimeout=600
        ).get("Messages", [])
        for msg in got:
            assert self.model.messages[queue].get(msg["MessageId"]) == msg["Body"], "a message the model lacks"
            self.model.held.append((queue, msg["MessageId"], msg["ReceiptHandle"]))

    def sqs_delete(self) -> None:
        queue, mid, handle = self.model.held.pop(self.rng.randrange(len(self.model.held)))
        self.sqs.delete_message(QueueUrl=self.queue_urls[queue], ReceiptHandle=handle)
        del self.model.messages[queue][mid]

    def sqs_change_visibility(self) -> None:
        index = self.rng.randrange(len(self.model.held))
        queue, _, handle = self.model.held[index]
        timeout = self.rng.choice((0, 300))
        self.sqs.change_message_visibility(
            QueueUrl=self.queue_urls[queue], ReceiptHandle=handle, VisibilityTimeout=timeout
        )
        if timeout == 0:
            self.model.held.pop(index)  # visible again: receivable by anyone

    # -- DynamoDB ------------------------------------------------------------------------------------
    def ddb_put(self) -> None:
        pk, note = f"p{self.rng.randrange(10)}", self.rng.choice(("a", "b", "c")) * self.rng.randrange(1, 40)
        self.ddb.put_item(TableName=TABLE, Item={"pk": {"S": pk}, "version": {"N": "0"}, "note": {"S": note}})
        self.model.items[pk] = {"version": 0, "note": note}

    def ddb_update(self) -> None:
        pk = self.rng.choice(sorted(self.model.items))
        held = self.model.items[pk]["version"]
        expected = held if self.rng.random() < 0.7 else held + 1  # sometimes the condition must fail
        note = f"n{self.rng.randrange(1000)}"
        try:
            self.ddb.update_item(
                TableName=TABLE,
                Key={"pk": {"S": pk}},
                UpdateExpression="SET version = version + :one, note = :note",
                ConditionExpression="version = :expected",
                ExpressionAttributeValues={":one": {"N": "1"}, ":note": {"S": note}, ":expected": {"N": str(expected)}},
            )
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
            assert expected != held, "a conditional update that should have held was refused"
            return
        assert expected == held, "a conditional update that should have failed went through"
        self.model.items[pk] = {"version": held + 1, "note": note}

    def ddb_delete(self) -> None:
        pk = self.rng.choice(sorted(self.model.items))
        self.ddb.delete_item(TableName=TABLE, Key={"pk": {"S": pk}})
        del self.model.items[pk]

    # -- CloudFormation ------------------------------------------------------------------------------
    def cfn_create(self) -> None:
        name, label = self._name("durable-"), self._name("label-")
        self.cfn.create_stack(StackName=name, TemplateBody=TOPIC_TEMPLATE, Parameters=_label(label))
        self.model.stacks[name] = label

    def cfn_change_set(self) -> None:
        name, label = self._name("durable-"), self._name("label-")
        created = self.cfn.create_change_set(
            StackName=name, ChangeSetName=f"{name}-cs", ChangeSetType="CREATE", TemplateBody=TOPIC_TEMPLATE,
            Parameters=_label(label),
        )  # fmt: skip
        self.cfn.execute_change_set(ChangeSetName=created["Id"])  # by ARN: an id the server minted
        self.model.stacks[name] = label

    def cfn_update(self) -> None:
        name, label = self.rng.choice(sorted(self.model.stacks)), self._name("label-")
        self.cfn.update_stack(StackName=name, TemplateBody=TOPIC_TEMPLATE, Parameters=_label(label))
        self.model.stacks[name] = label

    def cfn_delete(self) -> None:
        name = self.rng.choice(sorted(self.model.stacks))
        self.cfn.delete_stack(StackName=name)
        del self.model.stacks[name]

    # -- what the cloud holds, read the same way as the model ----------------------------------------
    def observed(self) -> dict[str, Any]:
        objects = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for obj in page.get("Contents", []):
                objects[obj["Key"]] = _digest(self.s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read())
        uploads = sorted(
            (u["Key"], self._part_numbers(u)) for u in self.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
        )
        items = {
            i["pk"]["S"]: {"version": int(i["version"]["N"]), "note": i["note"]["S"]}
            for i in self.ddb.scan(TableName=TABLE)["Items"]
        }
        stacks = {}
        for name in sorted(set(self.model.stacks) | self._created_stacks()):
            try:
                stack = self.cfn.describe_stacks(StackName=name)["Stacks"][0]
            except ClientError:
                continue
            if stack["StackStatus"] != "DELETE_COMPLETE":
                stacks[name] = (
                    stack["StackStatus"],
                    {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]},
                )
        return {
            "objects": objects,
            "uploads": uploads,
            "messages": self._all_messages(),
            "items": items,
            "stacks": stacks,
        }

    def expected(self) -> dict[str, Any]:
        m = self.model
        return {
            "objects": dict(m.objects),
            "uploads": sorted((key, tuple(n for n, _ in parts)) for key, parts in m.uploads.values()),
            "messages": {q: dict(msgs) for q, msgs in m.messages.items()},
            "items": {k: dict(v) for k, v in m.items.items()},
            "stacks": {n: ("CREATE_COMPLETE", {"Label": label}) for n, label in m.stacks.items()},
        }

    def _part_numbers(self, upload: dict[str, Any]) -> tuple[int, ...]:
        listed = self.s3.list_parts(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
        return tuple(p["PartNumber"] for p in listed.get("Parts", []))

    def _created_stacks(self) -> set[str]:
        return {f"durable-{i}" for i in range(self._serial + 1)}

    def _all_messages(self) -> dict[str, dict[str, str]]:
        """Every message left in each queue: the ones this workload holds, plus all it can receive."""
        found: dict[str, dict[str, str]] = {q: {} for q in QUEUES}
        for queue, mid, _ in self.model.held:
            found[queue][mid] = self.model.messages[queue].get(mid, "?held but not in the model")
        for queue in QUEUES:
            url, taken = self.queue_urls[queue], []
            while True:
                got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)
                if not got.get("Messages"):
                    break
                for msg in got["Messages"]:
                    found[queue][msg["MessageId"]] = msg["Body"]
                    taken.append(msg["ReceiptHandle"])
            for handle in taken:  # put them back as they were: visible
                self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
        return found

    # -- restarts ------------------------------------------------------------------------------------
    def restart(self, kill: bool) -> None:
        if kill:
            os.kill(int(control.status(self.home).state["pid"]), signal.SIGKILL)
            deadline = time.time() + 10
            while control.status(self.home).running and time.time() < deadline:
                time.sleep(0.05)
        else:
            control.down(self.home)
        status = control.up(self.home, workers=0)
        restored = status.state["restored"]
        assert restored["failed"] == 0, f"records not restored: {restored['not_restored']}"
        self.compactions += bool(restored.get("compacted"))
        # Receipt handles die with the process (as SQS's do when a message's visibility ends): the
        # messages held are visible again.
        self.model.held.clear()
        self._connect()


def _label(value: str) -> list[dict[str, str]]:
    return [{"ParameterKey": "Label", "ParameterValue": value}]


def normalised_stacks(observed: dict[str, Any]) -> dict[str, Any]:
    """Stack states settle to *_COMPLETE; an update counts as the create it replaced."""
    out = {}
    for name, (status, params) in observed["stacks"].items():
        out[name] = ("CREATE_COMPLETE" if status in ("CREATE_COMPLETE", "UPDATE_COMPLETE") else status, params)
    return {**observed, "stacks": out}


@dataclass(frozen=True)
class Outcome:
    sequences: int
    operations: int
    restarts: int
    kills: int
    compactions: int
    by_operation: dict[str, int]


def run_sequences(root: Path, seeds: list[int], length: int, restarts_per_sequence: int = 2) -> Outcome:
    """Each seed: a fresh cloud, `length` random calls with restarts at random points; the state is
    compared with the model before and after every restart. Raises AssertionError on a difference."""
    ops: Counter[str] = Counter()
    restarts = kills = compactions = 0
    for seed in seeds:
        rng = random.Random(seed)
        home = Home(root / f"seq-{seed}")
        control.up(home, workers=0)
        try:
            work = Workload(home, rng)
            stops = sorted(rng.sample(range(1, length + 1), restarts_per_sequence))
            for i in range(1, length + 1):
                work.step()
                if i in stops:
                    before = normalised_stacks(work.observed())
                    assert before == work.expected(), f"seed {seed}: cloud and model differ before restart {i}"
                    kill = rng.random() < 0.5
                    work.restart(kill)
                    restarts += 1
                    kills += kill
                    after = normalised_stacks(work.observed())
                    assert after == before, _difference(seed, i, kill, before, after)
            ops.update(work.ops)
            compactions += work.compactions
        finally:
            control.down(home)
    return Outcome(len(seeds), sum(ops.values()), restarts, kills, compactions, dict(sorted(ops.items())))


def _difference(seed: int, step: int, kill: bool, before: dict[str, Any], after: dict[str, Any]) -> str:
    parts = [f"seed {seed}: after {'kill -9' if kill else 'restart'} at step {step} the state differs:"]
    for section in before:
        if before[section] != after[section]:
            parts.append(f"  {section}: before {before[section]!r}\n  {' ' * len(section)}  after  {after[section]!r}")
    return "\n".join(parts)
