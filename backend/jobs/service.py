"""Submit, list, show, cancel and watch Plenoxels jobs (through the same store the API uses)."""

from __future__ import annotations

import builtins
import threading
import time
import uuid
from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from backend.core.errors import ConfigError, NotFoundError, SkydeckError, Unreachable
from lambda_src.jobs.job_table import JobNotFound, JobStore, StateConflict
from lambda_src.jobs.record import JobRecord, JobRecordPage
from lambda_src.jobs.schema import STATES, JobSpec

if TYPE_CHECKING:
    from backend.core.aws import Clients
    from backend.core.profiles import Profile
    from backend.stacks.service import Stacks


class CloudAccess(Protocol):
    """What the jobs services use of a command's context (backend.context.Context is one): its stacks,
    its clients and its profile, each built when first read."""

    @property
    def stacks(self) -> Stacks: ...

    @property
    def clients(self) -> Clients: ...

    @property
    def profile(self) -> Profile: ...


class CloudService:
    """A service over a command's cloud: its stacks and clients, read on first use, so that a command
    refused for its arguments never connects."""

    def __init__(self, cloud: CloudAccess) -> None:
        self.cloud = cloud

    @property
    def stacks(self) -> Stacks:
        return self.cloud.stacks

    @property
    def clients(self) -> Clients:
        return self.cloud.clients


class Jobs(CloudService):
    @property
    def is_local(self) -> bool:
        """The local cloud's executors run the torch engine; a fleet runs either."""
        return self.cloud.profile.is_local

    @cached_property
    def store(self) -> JobStore:
        out = self.stacks.outputs("infra")
        return JobStore(
            ddb=self.clients.client("dynamodb"),
            sqs=self.clients.deferred("sqs"),
            table=out["TableName"],
            queue_url=out["QueueUrl"],
        )

    def check_engine(self, spec: JobSpec) -> None:
        """Refuse now what the engine that will run the job would refuse later: an svox2 option the torch
        engine does not implement, on a job that runs on it (engine torch, or auto on the local cloud,
        whose executors have no GPU)."""
        from gpu_executor.plenoxels.option_support import UnsupportedOption, check

        if spec.engine == "svox2" or (spec.engine == "auto" and not self.is_local):
            return
        try:
            check(spec.config)
        except UnsupportedOption as exc:
            where = "the local cloud's executors run the torch engine; " if spec.engine == "auto" else ""
            raise ConfigError(f"{exc} ({where}nothing was queued)") from None

    def check_memory(self, spec: JobSpec) -> None:
        """A job the torch engine will train (engine torch, or auto on the local cloud) is refused when its
        peak memory (lambda_src.jobs.memory) exceeds this machine's, on the local cloud, or the largest
        fleet host's. `--force` queues it anyway (for a host with more memory than this one, say): the
        executor that takes it checks again before it allocates, and fails it with the same words."""
        from lambda_src.jobs.memory import MAX_HOST_BYTES, host_bytes, too_large

        if spec.engine == "svox2" or (spec.engine == "auto" and not self.is_local) or spec.checkpoint is not None:
            return
        why = too_large(spec.config, host_bytes() if self.is_local else MAX_HOST_BYTES)
        if why:
            where = "this machine's local executors" if self.is_local else "the largest fleet host"
            raise ConfigError(f"{why} ({where}; nothing was queued)")

    def check_laptop_time(self, spec: JobSpec) -> None:
        """On the local cloud, a training job estimated to take longer than LAPTOP_LIMIT_S on its CPU is
        refused, naming the estimate and the CPU presets (what the CLI, the console and batch ask for;
        `--force` skips it)."""
        from backend.jobs.estimate import LAPTOP_LIMIT_S, cpu_seconds, humanize

        if spec.engine == "svox2" or not self.is_local or spec.checkpoint is not None:
            return
        seconds = cpu_seconds(spec.config)
        if seconds > LAPTOP_LIMIT_S:
            raise ConfigError(
                f"this job would train for about {humanize(seconds)} on this machine's CPU (the torch engine "
                f"at ~50,000 rays/s): more than {humanize(LAPTOP_LIMIT_S)}. Use a CPU preset "
                "(--preset syn-cpu-quick, about 2 min; syn-cpu), lower n_iters or reso, or pass --force "
                "to queue it anyway (nothing was queued)"
            )

    def submit(self, spec: JobSpec, key: str | None = None, tries: int = 2, laptop_guard: bool = False) -> JobRecord:
        """One idempotent operation: the job's id is chosen here (or given, as `key`) and sent with every
        try, so a retry after a dropped connection or a lost answer finds the job it made instead of
        making a second; a job still QUEUED is sent again by that retry."""
        from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

        from lambda_src.jobs.job_table import IdempotencyConflict

        job_id = check_job_key(key) if key else str(uuid.uuid4())
        self.check_engine(spec)
        if laptop_guard:
            self.check_laptop_time(spec)
            self.check_memory(spec)
        for attempt in range(tries):
            try:
                return self.store.submit(spec, job_id=job_id)
            except IdempotencyConflict:
                raise ConfigError(
                    f"--idempotency-key {job_id}: a different job was already submitted with this key"
                ) from None
            except (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError) as exc:
                if attempt + 1 == tries:
                    raise Unreachable(
                        f"could not reach AWS ({exc}); job {job_id} may have been recorded without being sent. "
                        f"Run the same command with --idempotency-key {job_id}: it answers with that job if it "
                        "was made (and sends it), and makes it once if not. The next executor to start also "
                        "sends any job left unsent."
                    ) from None
                time.sleep(min(2.0**attempt, 5.0))
        raise AssertionError("unreachable")

    def list(self, state: str | None = None, limit: int = 50, next_token: str | None = None) -> JobRecordPage:
        if state is not None:
            if state.upper() not in STATES:
                raise ConfigError(f"--state {state!r}: use one of {', '.join(s.lower() for s in STATES)}")
            state = state.upper()
        try:
            return self.store.list(state=state, limit=limit, next_token=next_token)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def resolve(self, job_id: str) -> str:
        """A full job id from any unique prefix of one (as git and docker take them)."""
        if len(job_id) == 36:
            return job_id
        if len(job_id) < 4:
            raise ConfigError(f"job id {job_id!r} is too short: give at least 4 characters")
        found: list[str] = []
        paginator = self.store.ddb.get_paginator("scan")
        pages = paginator.paginate(
            TableName=self.store.table,
            ProjectionExpression="job_id",
            FilterExpression="begins_with(job_id, :p)",
            ExpressionAttributeValues={":p": {"S": job_id}},
        )
        for page in pages:
            found += [item["job_id"]["S"] for item in page.get("Items", [])]
        if not found:
            raise NotFoundError(f"no job {job_id!r}; list them with: skydeck jobs list")
        if len(found) > 1:
            shown = ", ".join(sorted(found)[:6]) + (" ..." if len(found) > 6 else "")
            raise ConfigError(f"job id {job_id!r} is ambiguous: {len(found)} jobs start with it ({shown})")
        return found[0]

    def get(self, job_id: str) -> JobRecord:
        try:
            return self.store.get(job_id)
        except JobNotFound as exc:
            raise NotFoundError(str(exc)) from None

    def cancel(self, job_id: str) -> JobRecord:
        try:
            return self.store.cancel(job_id)
        except JobNotFound as exc:
            raise NotFoundError(str(exc)) from None
        except StateConflict as exc:
            raise SkydeckError(str(exc)) from None

    def watch(
        self,
        job_id: str | None = None,
        interval_s: float = 1.0,
        until_done: bool = True,
        stop: threading.Event | None = None,
    ) -> Iterator[JobRecord | builtins.list[JobRecord]]:
        """Yield a job (or the newest page of jobs) whenever it changes; stops when the job ends, or
        within a poll once `stop` is set."""
        last: JobRecord | list[JobRecord] | None = None
        while True:
            current: JobRecord | list[JobRecord] = self.get(job_id) if job_id else self.list(limit=50).items
            if current != last:
                yield current
                last = current
            if job_id and until_done and isinstance(current, JobRecord) and current.ended:
                return
            if stop is None:
                time.sleep(interval_s)
            elif stop.wait(interval_s):
                return

    def queue_depth(self) -> dict[str, int]:
        out = self.stacks.outputs("infra")
        sqs = self.clients.client("sqs")
        depth: dict[str, int] = {}
        for key, url_key in (("queue", "QueueUrl"), ("dead_letter", "DeadLetterQueueUrl")):
            attrs = sqs.get_queue_attributes(
                QueueUrl=out[url_key],
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            depth[f"{key}_visible"] = int(attrs.get("ApproximateNumberOfMessages", 0))
            depth[f"{key}_in_flight"] = int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))
        return depth


def check_job_key(key: str) -> str:
    """An idempotency key is the job's id to be: a UUID, as every job id is."""
    try:
        return str(uuid.UUID(key))
    except ValueError:
        raise ConfigError(f"--idempotency-key {key!r}: use a UUID (the id the job will have)") from None
