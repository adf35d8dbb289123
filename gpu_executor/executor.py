"""The executor's lifecycle: receive a job id, claim it, run it, record the outcome.

- A job runs once even when its message arrives twice: the claim is a conditional write.
- While a job runs, a heartbeat thread extends the message's visibility and writes progress, so a
  job longer than the queue's visibility timeout is not delivered again.
- Cancel is honoured between engine steps; SIGTERM hands the job back (QUEUED, re-sent) or lets
  it finish if the engine does not check in time.
- A message that is not a job (bad JSON, unknown id) is never deleted: after the queue's
  maxReceiveCount it lands in the dead-letter queue where an operator can look at it.
- No AWS error ends the executor: polls back off (up to `max_backoff_s`) and go on; a finished
  job's outcome is retried; a receipt handle that died with a restart only means the message comes
  back once more, as a duplicate.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gpu_executor import exits
from gpu_executor.engines import Engine, EngineError, RunContext, StopRequested, Storage, choose
from gpu_executor.host.beacon import HostBeacon
from gpu_executor.joblog import JobLog
from gpu_executor.scale_in import ScaleInProtection
from gpu_executor.storage import LocalStorage, StorageError
from lambda_src.jobs.job_table import JobStore, StateConflict
from lambda_src.jobs.record import JobRecord
from lambda_src.jobs.schema import JobValidationError, original_experiment

log = logging.getLogger("skydeck.executor")


def private_workdir(path: Path | None = None) -> Path:
    """The executor's scratch folder: $SKYDECK_WORKDIR (a fleet host's, a home's), else one per user in
    the temp dir. Made 0700 and refused if it is a symlink or another user's: a shared or planted
    folder would let someone else choose where scenes and checkpoints are written."""
    chosen = path or Path(
        os.environ.get("SKYDECK_WORKDIR") or Path(tempfile.gettempdir()) / f"skydeck-executor-{os.getuid()}"
    )
    chosen.mkdir(parents=True, exist_ok=True, mode=0o700)
    if chosen.is_symlink() or chosen.stat().st_uid != os.getuid():
        raise RuntimeError(
            f"executor scratch folder {chosen} is a symlink or not this user's: remove it, or set SKYDECK_WORKDIR"
        )
    os.chmod(chosen, 0o700)
    return chosen


T = TypeVar("T")


@dataclass
class ExecutorConfig:
    engine: str = "auto"  # forces this engine for every job when not "auto"
    wait_s: int = 20  # SQS long poll
    visibility_s: int = 300  # how far each extension pushes the message's visibility
    extend_every_s: float = 60.0
    progress_every_s: float = 2.0
    reconcile_every_s: float = 60.0  # every executor also repairs lost messages and dead executors
    heartbeat_stale_s: float = 300.0
    queued_stale_s: float = 600.0  # a QUEUED job this old with no message waiting is sent again
    # at start, one left unsent (a submit cut off between the record and its message) is sent at once
    start_queued_stale_s: float = 5.0
    max_backoff_s: float = 30.0  # between polls while AWS (or the local cloud) keeps failing
    record_retry_s: float = 600.0  # how long a finished job's outcome is retried before the reconciler takes over
    workdir: Path = field(default_factory=lambda: private_workdir())


class Executor:
    def __init__(
        self,
        store: JobStore,
        engines: Mapping[str, Engine],
        config: ExecutorConfig | None = None,
        worker_id: str | None = None,
        storage: Storage | None = None,
        protection: ScaleInProtection | None = None,
        beacon: HostBeacon | None = None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.protection = protection
        self.beacon = beacon
        self.sqs = store.sqs
        self.engines = engines
        self.config = config or ExecutorConfig()
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.stopping = threading.Event()
        self.processed = 0

    # -- the loop ------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())

    def run(self, once: bool = False) -> int:
        """Serve the queue until stopped. With `once`, handle at most one message (or one empty poll)."""
        log.info(json.dumps({"event": "executor_started", "worker": self.worker_id, "engines": sorted(self.engines)}))
        last_reconcile = 0.0
        if not once:
            # at start: jobs left unsent, and jobs held by an executor of this host that is gone (a killed
            # local cloud's), are put right now rather than after the usual staleness
            self._reconcile(self.config.start_queued_stale_s, worker_gone=_gone_from_this_host)
            last_reconcile = time.monotonic()
        backoff = 0.0
        while not self.stopping.is_set():
            if self.beacon is not None:
                self.beacon.beat(None)
            if not once and time.monotonic() - last_reconcile >= self.config.reconcile_every_s:
                self._reconcile()
                last_reconcile = time.monotonic()
            try:
                self.poll_once()
                backoff = 0.0
            except Exception as exc:  # noqa: BLE001 - an executor outlives any AWS error: back off, go on
                if once:
                    raise
                backoff = min(max(1.0, backoff * 2), self.config.max_backoff_s)
                log.warning(json.dumps({"event": "aws_error", "detail": str(exc)[:300], "retry_in_s": backoff}))
                self.stopping.wait(backoff)
            if once:
                break
        log.info(json.dumps({"event": "executor_stopped", "worker": self.worker_id, "processed": self.processed}))
        return self.processed

    def poll_once(self) -> bool:
        resp = self.sqs.receive_message(
            QueueUrl=self.store.queue_url,
            MaxNumberOfMessages=1,
            WaitTimeSeconds=self.config.wait_s,
            VisibilityTimeout=self.config.visibility_s,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        messages = resp.get("Messages", [])
        for message in messages:
            self.handle(message)
        return bool(messages)

    def _reconcile(
        self, queued_stale_s: float | None = None, worker_gone: Callable[[str], str | None] | None = None
    ) -> None:
        try:
            done = self.store.reconcile(
                queued_stale_s=self.config.queued_stale_s if queued_stale_s is None else queued_stale_s,
                heartbeat_stale_s=self.config.heartbeat_stale_s,
                worker_gone=worker_gone,
            )
        except Exception as exc:  # noqa: BLE001 - repair is best effort; serving the queue comes first
            log.warning("reconcile failed: %s", exc)
            return
        if any(done.values()):
            log.info(json.dumps({"event": "reconciled", **done}))

    # -- one message ---------------------------------------------------------------------------
    def handle(self, message: dict[str, Any]) -> str:
        """Returns what happened: succeeded/failed/cancelled/released/duplicate/poison."""
        handle = message["ReceiptHandle"]
        try:
            body = json.loads(message.get("Body", ""))
            job_id = body["job_id"]
            if not isinstance(job_id, str):
                raise TypeError("job_id is not a string")
        except (ValueError, KeyError, TypeError) as exc:
            return self._poison(handle, f"not a job message ({exc})")
        try:
            job = self.store.get(job_id)
        except KeyError:
            return self._poison(handle, f"job {job_id} is not in the table")
        if job.state != "QUEUED":
            self._delete(handle)  # a second delivery of a job that already ran or is running
            log.info(json.dumps({"event": "duplicate_delivery", "job_id": job_id, "state": job.state}))
            return "duplicate"
        claimed = self.store.claim(job_id, self.worker_id)
        if claimed is None:
            self._delete(handle)
            return "duplicate"
        self.processed += 1
        return self._run_claimed(claimed, handle)

    def _run_claimed(self, job: JobRecord, handle: str) -> str:
        job_id = job.job_id
        # the executor's own log follows its job too: it said nothing between start and a job's end
        joblog = JobLog(
            job_id,
            self.storage,
            echo=lambda line: log.info(json.dumps({"event": "job", "job_id": job_id, "says": line})),
        )
        joblog.continue_earlier(job.attempts or 1)
        joblog.write(f"claimed by {self.worker_id} (attempt {job.attempts or 1})")
        state = _Live(joblog)
        if self.protection is not None:
            self.protection.hold()  # the group must not take this instance while the job runs
        if self.beacon is not None:
            self.beacon.beat(job_id, force=True)
        try:
            return self._run_and_record(job, handle, joblog, state)
        finally:
            if self.protection is not None:
                self.protection.release()
            if self.beacon is not None:
                self.beacon.beat(None, force=True)

    def _run_and_record(self, job: JobRecord, handle: str, joblog: JobLog, state: _Live) -> str:
        job_id = job.job_id
        beat = threading.Thread(target=self._heartbeat, args=(job_id, handle, state), daemon=True)
        beat.start()
        try:
            outcome, result, error = self._execute(job, state)
        finally:
            state.done.set()
            beat.join(timeout=10)
        ended = result or {}
        summary = {k: ended[k] for k in ("psnr", "ssim", "iterations", "train_s", "artifacts") if k in ended}
        for note in ended.get("notes", []):
            joblog.write(f"note: {note}")
        joblog.write(f"{outcome}" + (f": {error}" if error else "") + (f" {summary}" if summary else ""))
        joblog.publish(force=True)
        try:
            if outcome == "released":
                why = "executor stopped; job re-queued"
                if self._retrying("release", lambda: self.store.release(job_id, self.worker_id, why)):
                    self._retrying("re-send", lambda: self.store.enqueue(job_id))
            else:
                self._retrying(
                    "record outcome",
                    lambda: self.store.finish(job_id, self.worker_id, outcome, result=result, error=error),
                )
        except StateConflict as exc:
            log.warning(json.dumps({"event": "finish_conflict", "job_id": job_id, "detail": str(exc)}))
        self._delete(handle)
        log.info(json.dumps({"event": "job_ended", "job_id": job_id, "outcome": outcome, "error": error}))
        return outcome.lower()

    def _execute(self, job: JobRecord, state: _Live) -> tuple[str, dict[str, Any] | None, str | None]:
        try:
            spec = job.spec()
        except JobValidationError as exc:
            return "FAILED", None, f"the stored job is not valid: {exc}"
        wanted = self.config.engine if self.config.engine != "auto" else spec.engine
        workdir = self.config.workdir / job.job_id
        workdir.mkdir(parents=True, exist_ok=True)
        ctx = RunContext(
            job_id=job.job_id,
            spec=spec,
            workdir=workdir,
            report=state.set_progress,
            stop_reason=lambda: state.stop_reason(self.stopping),
            storage=self.storage,
        )
        started = time.time()
        # queued: from submission to this claim (the record's clocks; a retry counts its earlier attempts)
        claimed = float(job.started_at or started)
        ctx.phases.add("queued", claimed - float(job.created_at or claimed))
        try:
            if spec.checkpoint is not None:
                with ctx.phases.phase("load"):
                    ctx.checkpoint = self._checkpoint(spec.checkpoint, ctx)
            engine, note = choose(self.engines, wanted)
            if note:
                ctx.notes.append(note)
            if state.joblog is not None:
                state.joblog.write(f"engine {engine.name}" + (f" ({note})" if note else ""))
            ctx.check()
            result = dict(engine.run(ctx) or {})
            result.setdefault("engine", engine.name)
            result.setdefault("elapsed_s", round(time.time() - started, 3))
            result["phases_s"] = ctx.phases.as_dict()
            if ctx.notes:
                result["notes"] = ctx.notes
            return "SUCCEEDED", result, None
        except StopRequested as stop:
            if stop.reason == "cancelled":
                elapsed = {"elapsed_s": round(time.time() - started, 3), "phases_s": ctx.phases.as_dict()}
                return "CANCELLED", elapsed, "cancelled by operator"
            return "released", None, None
        except EngineError as exc:
            return "FAILED", None, str(exc)
        except Exception as exc:  # noqa: BLE001 - an engine bug fails the job, never the executor
            log.exception("engine crashed on %s", job.job_id)
            return "FAILED", None, f"engine crashed: {type(exc).__name__}: {exc}"

    def _checkpoint(self, ref: str, ctx: RunContext) -> Path:
        """The file a validation-only job evaluates. The original's ckpt/EXPERIMENT/ckpt.npz is read on
        this host when a training here left it; otherwise it means the newest succeeded job named
        EXPERIMENT, whose checkpoint is in the data bucket."""
        storage = self.storage or LocalStorage(ctx.workdir / "published")
        experiment = original_experiment(ref)
        try:
            return storage.fetch_checkpoint(ref)
        except StorageError as exc:
            if experiment is None:
                raise EngineError(str(exc)) from None
        trained = self.store.newest_succeeded(experiment)
        if trained is None:
            raise EngineError(
                f"checkpoint {ref}: not on this host, and no succeeded job is named {experiment!r} to take it from"
            )
        ctx.notes.append(f"checkpoint {ref}: the checkpoint of job {trained}, the newest succeeded {experiment!r}")
        try:
            return storage.fetch_checkpoint(trained)
        except StorageError as exc:
            raise EngineError(str(exc)) from None

    def _heartbeat(self, job_id: str, handle: str, state: _Live) -> None:
        last_extend = last_progress = time.monotonic()
        while not state.done.wait(timeout=min(self.config.progress_every_s, self.config.extend_every_s)):
            now = time.monotonic()
            if now - last_extend >= self.config.extend_every_s:
                try:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.store.queue_url, ReceiptHandle=handle, VisibilityTimeout=self.config.visibility_s
                    )
                except Exception as exc:  # noqa: BLE001 - the table still holds the truth
                    log.warning("could not extend visibility of %s: %s", job_id, exc)
                last_extend = now
            if state.joblog is not None:
                state.joblog.publish()
            if now - last_progress >= self.config.progress_every_s:
                try:
                    item = self.store.heartbeat(job_id, self.worker_id, state.progress)
                    if item.cancel_requested:
                        state.cancelled.set()
                except StateConflict:
                    state.cancelled.set()  # someone else owns it now: stop working on it
                except Exception as exc:  # noqa: BLE001
                    log.warning("heartbeat failed for %s: %s", job_id, exc)
                last_progress = now

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        """The outcome of a job that ran is worth waiting for: retry (backing off) while AWS fails, for
        up to `record_retry_s`; after that the reconciler re-queues the job as it does for a dead executor."""
        deadline = time.monotonic() + self.config.record_retry_s
        delay = 1.0
        while True:
            try:
                return call()
            except StateConflict:
                raise
            except Exception as exc:  # noqa: BLE001 - retried; the last failure is raised
                if time.monotonic() + delay > deadline:
                    raise
                log.warning(json.dumps({"event": "retrying", "what": what, "detail": str(exc)[:300]}))
                time.sleep(delay)
                delay = min(delay * 2, self.config.max_backoff_s)

    def _delete(self, handle: str) -> None:
        try:
            self.sqs.delete_message(QueueUrl=self.store.queue_url, ReceiptHandle=handle)
        except Exception as exc:  # noqa: BLE001 - e.g. a handle void after a restart: the job's state is
            # recorded, so a second delivery of the message is recognised as a duplicate and deleted then
            log.warning(json.dumps({"event": "delete_failed", "detail": str(exc)[:300]}))

    def _poison(self, handle: str, why: str) -> str:
        # Make it visible again at once: it reaches the dead-letter queue after maxReceiveCount receives.
        log.warning(json.dumps({"event": "poison_message", "detail": why}))
        try:
            self.sqs.change_message_visibility(QueueUrl=self.store.queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
        except Exception as exc:  # noqa: BLE001 - it becomes visible again when its timeout ends anyway
            log.warning(json.dumps({"event": "visibility_failed", "detail": str(exc)[:300]}))
        return "poison"


class _Live:
    """What the engine thread and the heartbeat thread share about one running job."""

    def __init__(self, joblog: JobLog | None = None) -> None:
        self.joblog = joblog
        self.done = threading.Event()
        self.cancelled = threading.Event()
        self._progress: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def set_progress(self, progress: dict[str, Any]) -> None:
        with self._lock:
            self._progress = dict(progress)
        if self.joblog is not None:
            self.joblog.progress(progress)

    @property
    def progress(self) -> dict[str, Any] | None:
        with self._lock:
            return dict(self._progress) if self._progress is not None else None

    def stop_reason(self, stopping: threading.Event) -> str | None:
        if self.cancelled.is_set():
            return "cancelled"
        if stopping.is_set():
            return "shutdown"
        return None


def _gone_from_this_host(worker: str) -> str | None:
    """Why `worker` (an executor id, HOST-PID) is gone, when it ran on this host in a process that has
    ended: what its supervisor recorded (a kill by the out-of-memory killer says so), or that it ended."""
    host, _, pid = worker.rpartition("-")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        directory = exits.exits_dir()
        ended = exits.read(directory, int(pid)) if directory is not None else None
        return ended.reason() if ended is not None else "is gone (its process ended)"
    except PermissionError:
        return None  # alive, someone else's
    return None
