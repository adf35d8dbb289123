"""The jobs table is the source of truth; the queue only delivers a job id.

Every state change is a conditional write, so a message delivered twice, two executors racing, or a
cancel arriving mid-run all resolve to one outcome. Used by the API handler, the executor and the
backend alike (boto3 clients are passed in; nothing here picks an endpoint).

States: QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED; RUNNING -> QUEUED when an executor
hands a job back (SIGTERM, lost heartbeat).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lambda_src.jobs.attribute_values import from_dynamo_item, to_dynamo
from lambda_src.jobs.record import JobRecord, JobRecordPage
from lambda_src.jobs.schema import STATES, TERMINAL_STATES, JobSpec

BY_CREATED_INDEX = "by_created"
BY_STATE_INDEX = "by_state"


class JobNotFound(KeyError):
    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id

    def __str__(self) -> str:
        return f"no job {self.job_id!r}; list jobs with: skydeck jobs list"


class StateConflict(RuntimeError):
    """A conditional write lost: the job was not in the state the caller expected."""


def encode_token(key: dict[str, Any] | None) -> str | None:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode() if key else None


def decode_token(token: str | None) -> dict[str, Any] | None:
    if not token:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        raise ValueError("next_token is not one this API issued; drop it to start from the first page") from None
    if not isinstance(key, dict) or not _is_key(key):
        raise ValueError("next_token is not one this API issued; drop it to start from the first page")
    return key


_KEY_TYPES = {"job_id": "S", "kind": "S", "state": "S", "created_at": "N"}


def _is_key(key: dict[str, Any]) -> bool:
    """A page key as DynamoDB hands them back for this table: its key attributes, typed as the table has them."""
    if "job_id" not in key or not set(key) <= set(_KEY_TYPES):
        return False
    for name, value in key.items():
        if not (
            isinstance(value, dict) and list(value) == [_KEY_TYPES[name]] and isinstance(value[_KEY_TYPES[name]], str)
        ):
            return False
    return True


class IdempotencyConflict(ValueError):
    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"this idempotency key already made job {job_id} with a different body; use a new key for a new job"
        )
        self.job_id = job_id


@dataclass
class JobStore:
    ddb: Any  # boto3 DynamoDB client
    sqs: Any  # boto3 SQS client
    table: str
    queue_url: str

    # -- writes --------------------------------------------------------------------------------
    def submit(self, spec: JobSpec, job_id: str | None = None, sent: dict[str, Any] | None = None) -> JobRecord:
        """Record the job as QUEUED, then send its id. A failed send is repaired by the reconciler.
        `sent` keeps the original's `command` and `config` as the client sent them (the original's GET
        answers them as stored)."""
        now = time.time()
        record = {
            **({"sent": sent} if sent else {}),
            "job_id": job_id or str(uuid.uuid4()),
            "kind": "job",
            "state": "QUEUED",
            "created_at": now,
            "updated_at": now,
            "attempts": 0,
            **{k: v for k, v in spec.to_dict().items() if v is not None},
        }
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item={k: to_dynamo(v) for k, v in record.items()},
                ConditionExpression="attribute_not_exists(job_id)",
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            if job_id is None:
                raise
            return self._resubmitted(spec, job_id)
        self.enqueue(record["job_id"])
        return JobRecord.from_item(record)

    def _resubmitted(self, spec: JobSpec, job_id: str) -> JobRecord:
        """The same submit again (a client retrying after a lost answer): the job it made, not a new one.
        Its message may be what was lost, so a job still QUEUED is sent again (a job delivered twice runs
        once)."""
        existing = self.get(job_id)
        stored = existing.to_item()
        wanted = {k: v for k, v in spec.to_dict().items() if v is not None}
        if any(stored.get(k) != v for k, v in wanted.items()):
            raise IdempotencyConflict(job_id)
        if existing.state == "QUEUED":
            self.enqueue(job_id)
        return existing.as_replayed()

    def enqueue(self, job_id: str) -> str:
        resp = self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps({"job_id": job_id}))
        return resp["MessageId"]

    def claim(self, job_id: str, worker: str) -> JobRecord | None:
        """QUEUED -> RUNNING for this worker; None if someone else has it or it is no longer queued."""
        now = time.time()
        try:
            resp = self.ddb.update_item(
                TableName=self.table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression="SET #s = :run, worker = :w, started_at = :now, updated_at = :now, "
                "heartbeat_at = :now, attempts = if_not_exists(attempts, :zero) + :one",
                ConditionExpression="#s = :queued",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={
                    ":run": {"S": "RUNNING"},
                    ":queued": {"S": "QUEUED"},
                    ":w": {"S": worker},
                    ":now": to_dynamo(now),
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _is_conditional(exc):
                return None
            raise
        return JobRecord.from_item(from_dynamo_item(resp["Attributes"]))

    def heartbeat(self, job_id: str, worker: str, progress: dict[str, Any] | None = None) -> JobRecord:
        """Refresh the heartbeat (and progress) of a job this worker runs; returns the item."""
        now = time.time()
        expr = "SET heartbeat_at = :now, updated_at = :now"
        values: dict[str, Any] = {":now": to_dynamo(now), ":w": {"S": worker}, ":run": {"S": "RUNNING"}}
        if progress is not None:
            expr += ", progress = :p"
            values[":p"] = to_dynamo(progress)
        try:
            resp = self.ddb.update_item(
                TableName=self.table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression=expr,
                ConditionExpression="#s = :run AND worker = :w",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _is_conditional(exc):
                raise StateConflict(f"job {job_id} is no longer running on {worker}") from None
            raise
        return JobRecord.from_item(from_dynamo_item(resp["Attributes"]))

    def finish(
        self,
        job_id: str,
        worker: str,
        state: str,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        if state not in TERMINAL_STATES:
            raise ValueError(f"finish needs a terminal state, not {state}")
        now = time.time()
        expr = "SET #s = :state, finished_at = :now, updated_at = :now"
        values: dict[str, Any] = {
            ":state": {"S": state},
            ":now": to_dynamo(now),
            ":w": {"S": worker},
            ":run": {"S": "RUNNING"},
        }
        if result is not None:
            expr += ", #r = :r"
            values[":r"] = to_dynamo(result)
        if error is not None:
            expr += ", #e = :e"
            values[":e"] = {"S": error[:4000]}
        expr += " REMOVE note"  # a note is about the run in progress ("re-queued"): an ended job has none
        names = {"#s": "state"}
        if result is not None:
            names["#r"] = "result"
        if error is not None:
            names["#e"] = "error"
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression=expr,
                ConditionExpression="#s = :run AND worker = :w",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if _is_conditional(exc):
                raise StateConflict(f"job {job_id} is no longer running on {worker}") from None
            raise

    def release(self, job_id: str, worker: str, reason: str) -> bool:
        """RUNNING -> QUEUED (the executor is stopping); the caller re-sends the message."""
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression="SET #s = :queued, updated_at = :now, note = :why REMOVE worker",
                ConditionExpression="#s = :run AND worker = :w",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={
                    ":queued": {"S": "QUEUED"},
                    ":run": {"S": "RUNNING"},
                    ":w": {"S": worker},
                    ":now": to_dynamo(time.time()),
                    ":why": {"S": reason},
                },
            )
        except ClientError as exc:
            if _is_conditional(exc):
                return False
            raise
        return True

    def cancel(self, job_id: str) -> JobRecord:
        """QUEUED jobs are cancelled at once; RUNNING ones are asked to stop (the executor obeys)."""
        job = self.get(job_id)
        if job.ended:
            raise StateConflict(f"job {job_id} already ended ({job.state}); nothing to cancel")
        now = to_dynamo(time.time())
        try:
            if job.state == "QUEUED":
                self.ddb.update_item(
                    TableName=self.table,
                    Key={"job_id": {"S": job_id}},
                    UpdateExpression="SET #s = :c, finished_at = :now, updated_at = :now REMOVE note",
                    ConditionExpression="#s = :queued",
                    ExpressionAttributeNames={"#s": "state"},
                    ExpressionAttributeValues={":c": {"S": "CANCELLED"}, ":queued": {"S": "QUEUED"}, ":now": now},
                )
            else:
                self.ddb.update_item(
                    TableName=self.table,
                    Key={"job_id": {"S": job_id}},
                    UpdateExpression="SET cancel_requested = :t, updated_at = :now",
                    ConditionExpression="#s = :run",
                    ExpressionAttributeNames={"#s": "state"},
                    ExpressionAttributeValues={":t": {"BOOL": True}, ":run": {"S": "RUNNING"}, ":now": now},
                )
        except ClientError as exc:
            if _is_conditional(exc):
                return self.cancel(job_id)  # it moved under us: decide again from the new state
            raise
        return self.get(job_id)

    # -- repair --------------------------------------------------------------------------------
    def reconcile(
        self,
        queued_stale_s: float = 600.0,
        heartbeat_stale_s: float = 300.0,
        max_attempts: int = 3,
        worker_gone: Callable[[str], str | None] | None = None,
    ) -> dict[str, list[str]]:
        """Make a lost message or a dead executor harmless; the table says what should be happening.

        - RUNNING with no heartbeat for `heartbeat_stale_s`, or whose worker `worker_gone` knows is dead
          (it answers why, in words that follow "executor WORKER"): back to QUEUED and re-sent, or
          FAILED once it has used `max_attempts`.
        - QUEUED for `queued_stale_s` with fewer messages waiting in the queue than such jobs: that
          many of them (the oldest first) lost their message, and are re-sent. Messages in flight
          belong to running jobs, so they do not hide an orphan. A duplicate is harmless (the claim
          is conditional).
        """
        now = time.time()
        done: dict[str, list[str]] = {"requeued": [], "failed": [], "resent": []}
        waiting = self._visible_messages()  # before this pass adds messages of its own
        for job in self.iter_all(state="RUNNING"):
            beat = float(job.heartbeat_at or job.started_at or 0)
            gone = worker_gone(job.worker or "") if worker_gone is not None else None
            if now - beat < heartbeat_stale_s and gone is None:
                continue
            give_up = (job.attempts or 0) >= max_attempts
            target = "FAILED" if give_up else "QUEUED"
            why = (
                f"executor {job.worker} {gone}"
                if gone is not None
                else f"executor {job.worker} lost: no heartbeat for {now - beat:.0f}s"
            )
            try:
                self.ddb.update_item(
                    TableName=self.table,
                    Key={"job_id": {"S": job.job_id}},
                    UpdateExpression="SET #s = :t, updated_at = :now, note = :why"
                    + (", finished_at = :now, #e = :why" if give_up else "")
                    + " REMOVE worker",
                    ConditionExpression="#s = :run AND heartbeat_at = :beat",
                    ExpressionAttributeNames={"#s": "state", **({"#e": "error"} if give_up else {})},
                    ExpressionAttributeValues={
                        ":t": {"S": target},
                        ":run": {"S": "RUNNING"},
                        ":beat": to_dynamo(job.heartbeat_at),
                        ":now": to_dynamo(now),
                        ":why": {"S": why + (f" after {job.attempts} attempts" if give_up else "")},
                    },
                )
            except ClientError as exc:
                if _is_conditional(exc):
                    continue  # it came back to life, or another reconciler got there first
                raise
            if give_up:
                done["failed"].append(job.job_id)
            else:
                self.enqueue(job.job_id)
                done["requeued"].append(job.job_id)
        # a job last touched before the cut-off was made before it too: count those first (cheap, on the
        # index), and read them only when the queue holds fewer messages than that, so a deep backlog is
        # not read in full on every pass
        cutoff = now - queued_stale_s
        if self._count_queued_before(cutoff) <= waiting:
            return done
        stale = [
            job
            for job in self.iter_all(state="QUEUED")
            if job.job_id not in done["requeued"] and float(job.updated_at or 0) <= cutoff
        ]
        stale.sort(key=lambda job: float(job.created_at or 0))
        if len(stale) > waiting:
            for job in stale[: len(stale) - waiting]:
                try:
                    self.ddb.update_item(
                        TableName=self.table,
                        Key={"job_id": {"S": job.job_id}},
                        UpdateExpression="SET updated_at = :now",
                        ConditionExpression="#s = :queued AND updated_at = :seen",
                        ExpressionAttributeNames={"#s": "state"},
                        ExpressionAttributeValues={
                            ":queued": {"S": "QUEUED"},
                            ":seen": to_dynamo(job.updated_at),
                            ":now": to_dynamo(now),
                        },
                    )
                except ClientError as exc:
                    if _is_conditional(exc):
                        continue
                    raise
                self.enqueue(job.job_id)
                done["resent"].append(job.job_id)
        return done

    def _visible_messages(self) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]
        return int(attrs.get("ApproximateNumberOfMessages", 0))

    # -- reads ---------------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord:
        resp = self.ddb.get_item(TableName=self.table, Key={"job_id": {"S": job_id}}, ConsistentRead=True)
        if "Item" not in resp:
            raise JobNotFound(job_id)
        return JobRecord.from_item(from_dynamo_item(resp["Item"]))

    def newest_succeeded(self, name: str, look_back: int = 5000) -> str | None:
        """The id of the newest SUCCEEDED job called `name` among the newest `look_back` jobs."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "by_created",
            "KeyConditionExpression": "kind = :k",
            "FilterExpression": "#n = :n AND #s = :ok",
            "ExpressionAttributeNames": {"#n": "name", "#s": "state"},
            "ExpressionAttributeValues": {":k": {"S": "job"}, ":n": {"S": name}, ":ok": {"S": "SUCCEEDED"}},
            "ScanIndexForward": False,
            "ProjectionExpression": "job_id",
        }
        seen = 0
        while seen < look_back:
            resp = self.ddb.query(**kwargs, Limit=min(500, look_back - seen))
            seen += int(resp.get("ScannedCount", 0))
            if resp.get("Items"):
                return str(resp["Items"][0]["job_id"]["S"])
            if "LastEvaluatedKey" not in resp:
                return None
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return None

    def list(self, state: str | None = None, limit: int = 50, next_token: str | None = None) -> JobRecordPage:
        """Newest first; `next_token` pages on (its `to_dict` is GET /jobs's answer)."""
        if state is not None and state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
        limit = max(1, min(int(limit), 1000))
        kwargs: dict[str, Any] = {"TableName": self.table, "Limit": limit, "ScanIndexForward": False}
        if state:
            kwargs.update(
                IndexName=BY_STATE_INDEX,
                KeyConditionExpression="#s = :s",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={":s": {"S": state}},
            )
        else:
            kwargs.update(
                IndexName=BY_CREATED_INDEX,
                KeyConditionExpression="kind = :k",
                ExpressionAttributeValues={":k": {"S": "job"}},
            )
        start = decode_token(next_token)
        if start:
            # a page key of this listing names exactly the table's key and the index's: anything else
            # (a forged token) is refused here rather than handed to DynamoDB
            index_keys = {"job_id", "state" if state else "kind", "created_at"}
            if set(start) != index_keys or (state and start["state"] != {"S": state}):
                raise ValueError("next_token does not fit this listing; drop it to start from the first page")
            kwargs["ExclusiveStartKey"] = start
        try:
            resp = self.ddb.query(**kwargs)
        except ClientError as exc:
            if start and exc.response.get("Error", {}).get("Code") == "ValidationException":
                raise ValueError("next_token does not fit this listing; drop it to start from the first page") from None
            raise
        return JobRecordPage(
            [JobRecord.from_item(from_dynamo_item(i)) for i in resp.get("Items", [])],
            encode_token(resp.get("LastEvaluatedKey")),
        )

    def _count_queued_before(self, cutoff: float) -> int:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "by_state",
            "KeyConditionExpression": "#s = :q AND created_at <= :cut",
            "ExpressionAttributeNames": {"#s": "state"},
            "ExpressionAttributeValues": {":q": {"S": "QUEUED"}, ":cut": to_dynamo(cutoff)},
            "Select": "COUNT",
        }
        total = 0
        while True:
            resp = self.ddb.query(**kwargs)
            total += int(resp.get("Count", 0))
            if "LastEvaluatedKey" not in resp:
                return total
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def iter_all(self, state: str | None = None, page: int = 500) -> Iterator[JobRecord]:
        token = None
        while True:
            resp = self.list(state=state, limit=page, next_token=token)
            yield from resp.items
            token = resp.next_token
            if not token:
                return


def _is_conditional(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
