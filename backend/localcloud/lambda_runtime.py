"""skydeck's Lambda runtime for the local cloud: runs deployed handlers in warm worker processes.

moto stores functions but cannot run them without Docker. Here each function gets a pool of worker
processes (its "containers"), one invocation at a time each, so CPU-bound handlers run in parallel.
Synchronous invokes answer like Lambda; asynchronous ones are queued and honour the function's
MaximumEventAgeInSeconds and MaximumRetryAttempts (AWS defaults: 6 h and 2 retries).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.localcloud.lambda_limits import RESPONSE_LIMIT, LimitExceeded, Limits, Watch, configuration_problem
from backend.localcloud.lambda_sandbox import Sandbox, extract_zip

log = logging.getLogger("skydeck.lambda")
BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
DEFAULT_MAX_EVENT_AGE_S = 6 * 3600
DEFAULT_MAX_RETRIES = 2
RETRY_DELAYS_S = (1.0, 2.0)  # AWS waits ~1 and ~2 minutes; locally the same shape, in seconds
CREDENTIALS_MARGIN_S = 30 * 60  # a warm worker whose role session ends sooner is replaced
# what a Lambda process's environment holds besides its function's own variables
_LAMBDA_ENV = {"LANG": "en_US.UTF-8", "TZ": ":UTC", "PYTHONUNBUFFERED": "1"}
# settings of the local cloud itself that its handlers read (where host-path scenes may live)
_PASSED_THROUGH = ("SKYDECK_DATA_ROOT",)
# the operator's own keys never reach a handler: it runs as its execution role
_OPERATOR_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
RoleEnv = Callable[[str, str], tuple[dict[str, str], float]]  # (role ARN, function) -> (env, expires at)


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    arn: str
    handler: str
    code: bytes
    code_sha: str
    timeout_s: int
    memory_mb: int
    env: dict[str, str]
    max_event_age_s: int = DEFAULT_MAX_EVENT_AGE_S
    max_retries: int = DEFAULT_MAX_RETRIES
    concurrency: int = 64
    role_arn: str = ""
    layers: tuple[tuple[str, str, bytes], ...] = ()  # (layer version ARN, code sha256, zip)
    ephemeral_mb: int = 512
    runtime: str = ""

    @property
    def limits(self) -> Limits:
        return Limits(memory_mb=self.memory_mb, tmp_mb=self.ephemeral_mb, timeout_s=float(self.timeout_s))


@dataclass
class Outcome:
    ok: bool
    payload: Any
    duration_s: float
    error_type: str | None = None


@dataclass
class InvocationRecord:
    function: str
    request_id: str
    kind: str  # "sync" | "async"
    status: str  # "ok" | "error" | "dropped" | "timeout"
    attempt: int
    started: float
    duration_s: float
    detail: str = ""


class _Worker:
    def __init__(
        self,
        spec: FunctionSpec,
        code_dir: Path,
        sys_path: list[Path],
        env: dict[str, str],
        tmp_dir: Path,
        log_file: Path,
        expires_at: float,
    ) -> None:
        read_fd, write_fd = os.pipe()
        self._log = open(log_file, "ab")  # noqa: SIM115 - lives as long as the worker
        # -I -S: no site-packages, no user site, no PYTHON* variables; the path is the bootstrap's argv
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(BOOTSTRAP), str(code_dir), spec.handler, str(write_fd),
             *[str(p) for p in sys_path]],
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=self._log,
            env=env,
            pass_fds=(write_fd,),
            cwd=str(code_dir),
        )  # fmt: skip
        os.close(write_fd)
        self._reader = os.fdopen(read_fd, "rb")
        self.code_sha = spec.code_sha
        self.tmp_dir = tmp_dir
        self.expires_at = expires_at

    def call(self, event: Any, request_id: str, limits: Limits) -> dict[str, Any]:
        """One invocation; TimeoutError past the timeout, LimitExceeded past memory or /tmp."""
        timeout_s = limits.timeout_s
        line = json.dumps({"id": request_id, "event": event, "remaining_ms": int(timeout_s * 1000)}) + "\n"
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode())
        self.proc.stdin.flush()
        watch = Watch(self.proc.pid, self.tmp_dir, limits)
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self._reader], [], [], min(left, watch.interval_s))
            if ready:
                break
            watch.check()  # raises LimitExceeded; the caller stops the process
        answer = self._reader.readline(RESPONSE_LIMIT + 64 * 1024)
        if answer and not answer.endswith(b"\n"):
            raise LimitExceeded(
                "Function.ResponseSizeTooLarge",
                f"Response payload size exceeded maximum allowed payload size ({RESPONSE_LIMIT} bytes).",
            )
        if not answer:
            raise RuntimeError(f"the function's process exited (code {self.proc.poll()})")
        return json.loads(answer)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait()
        self._reader.close()
        self._log.close()


@dataclass
class LambdaRuntime:
    work_dir: Path
    base_env: dict[str, str]
    logs_dir: Path
    history: deque[InvocationRecord] = field(default_factory=lambda: deque(maxlen=2000))
    role_env: RoleEnv | None = None  # the execution role's credentials; None: the base env's keys

    def __post_init__(self) -> None:
        self._idle: dict[str, list[_Worker]] = {}
        self._busy: dict[str, int] = {}
        self._lock = threading.Condition()
        self._extract_lock = threading.Lock()
        self._async = ThreadPoolExecutor(max_workers=64, thread_name_prefix="lambda-async")
        self._closed = False
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.sandbox = Sandbox(self.work_dir / "sandbox")
        self._spawned = 0

    # -- public --------------------------------------------------------------------------------
    def invoke(self, spec: FunctionSpec, event: Any) -> Outcome:
        """Synchronous invocation (RequestResponse)."""
        request_id = str(uuid.uuid4())
        outcome = self._run(spec, event, request_id)
        self._remember(spec, request_id, "sync", outcome, 1, time.time() - outcome.duration_s)
        return outcome

    def invoke_async(self, spec: FunctionSpec, event: Any) -> str:
        """Event invocation: queued now, run soon, retried and aged out as the function is configured."""
        request_id = str(uuid.uuid4())
        enqueued = time.time()
        self._async.submit(self._async_attempt, spec, event, request_id, enqueued, 1)
        return request_id

    def pids(self) -> dict[str, list[int]]:
        with self._lock:
            return {name: [w.proc.pid for w in workers] for name, workers in self._idle.items() if workers}

    def shutdown(self) -> None:
        self._closed = True
        self._async.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for workers in self._idle.values():
                for w in workers:
                    w.stop()
            self._idle.clear()

    # -- internals -----------------------------------------------------------------------------
    def _async_attempt(self, spec: FunctionSpec, event: Any, request_id: str, enqueued: float, attempt: int) -> None:
        if self._closed:
            return
        age = time.time() - enqueued
        if age > spec.max_event_age_s:
            detail = f"event dropped: {age:.1f}s old, over MaximumEventAgeInSeconds={spec.max_event_age_s}"
            log.warning("%s %s", spec.name, detail)
            self.history.append(
                InvocationRecord(spec.name, request_id, "async", "dropped", attempt, time.time(), 0.0, detail)
            )
            return
        started = time.time()
        outcome = self._run(spec, event, request_id)
        self._remember(spec, request_id, "async", outcome, attempt, started)
        if not outcome.ok and attempt <= spec.max_retries and not self._closed:
            delay = RETRY_DELAYS_S[min(attempt - 1, len(RETRY_DELAYS_S) - 1)]
            timer = threading.Timer(
                delay, lambda: self._async.submit(self._async_attempt, spec, event, request_id, enqueued, attempt + 1)
            )
            timer.daemon = True
            timer.start()

    def _remember(
        self, spec: FunctionSpec, request_id: str, kind: str, outcome: Outcome, attempt: int, started: float
    ) -> None:
        status = "ok" if outcome.ok else ("timeout" if outcome.error_type == "Timeout" else "error")
        detail = "" if outcome.ok else json.dumps(outcome.payload)[:500]
        if not outcome.ok:
            # in the function's own log too, where an operator is told to look (as CloudWatch has it)
            line = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {request_id} {kind} failed: {detail}\n"
            with contextlib.suppress(OSError), open(self.logs_dir / f"{spec.name}.log", "a") as out:
                out.write(line)
        self.history.append(
            InvocationRecord(spec.name, request_id, kind, status, attempt, started, outcome.duration_s, detail)
        )

    def _code_dir(self, spec: FunctionSpec) -> Path:
        target = self.work_dir / f"{spec.name}-{spec.code_sha[:16]}"
        with self._extract_lock:
            if not target.exists():
                extract_zip(spec.code, target)
        return target

    def _checkout(self, spec: FunctionSpec) -> _Worker:
        with self._lock:
            while True:
                pool = self._idle.setdefault(spec.name, [])
                while pool:
                    worker = pool.pop()
                    fresh = worker.expires_at - time.time() > CREDENTIALS_MARGIN_S
                    if worker.alive() and worker.code_sha == spec.code_sha and fresh:
                        self._busy[spec.name] = self._busy.get(spec.name, 0) + 1
                        return worker
                    worker.stop()
                if self._busy.get(spec.name, 0) < spec.concurrency:
                    self._busy[spec.name] = self._busy.get(spec.name, 0) + 1
                    break
                self._lock.wait(timeout=1.0)
        try:
            return self._spawn(spec)
        except Exception:
            self._checkin(spec, None)
            raise

    def _spawn(self, spec: FunctionSpec) -> _Worker:
        code_dir = self._code_dir(spec)
        sys_path = [self.sandbox.layer_dir(arn, sha, code) for arn, sha, code in spec.layers]
        sys_path.append(self.sandbox.runtime_dir())
        with self._lock:
            self._spawned += 1
            tmp_dir = self.sandbox.tmp_dir(f"{spec.name}-{self._spawned}")
        env = {k: v for k, v in self.base_env.items() if k not in _OPERATOR_KEYS or self.role_env is None}
        expires_at = time.time() + 365 * 86400
        if self.role_env is not None:
            role_env, expires_at = self.role_env(spec.role_arn, spec.name)
            env.update(role_env)
        env.update({k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ})
        env.update(
            {
                **_LAMBDA_ENV,
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                **spec.env,
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_s),
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime or 'python'}",
                "LAMBDA_TASK_ROOT": str(code_dir),
                "TMPDIR": str(tmp_dir),
            }
        )
        return _Worker(spec, code_dir, sys_path, env, tmp_dir, self.logs_dir / f"{spec.name}.log", expires_at)

    def _checkin(self, spec: FunctionSpec, worker: _Worker | None) -> None:
        with self._lock:
            self._busy[spec.name] = max(0, self._busy.get(spec.name, 0) - 1)
            if worker is not None and worker.alive() and not self._closed:
                self._idle.setdefault(spec.name, []).append(worker)
            elif worker is not None:
                worker.stop()
            self._lock.notify_all()

    def _run(self, spec: FunctionSpec, event: Any, request_id: str) -> Outcome:
        started = time.time()
        problem = configuration_problem(spec.memory_mb, spec.timeout_s)
        if problem:
            error = {"errorMessage": f"{spec.name}: {problem}", "errorType": "InvalidParameterValueException"}
            return Outcome(False, error, 0.0, "InvalidParameterValueException")
        try:
            worker = self._checkout(spec)
        except Exception as exc:
            return Outcome(
                False,
                {"errorMessage": f"could not start the function: {exc}", "errorType": "Runtime.Init"},
                time.time() - started,
                "Runtime.Init",
            )
        try:
            answer = worker.call(event, request_id, spec.limits)
        except LimitExceeded as exc:
            worker.stop()
            self._checkin(spec, None)
            error = {"errorMessage": f"RequestId: {request_id} Error: {exc.message}", "errorType": exc.error_type}
            log.warning("%s: %s", spec.name, exc.message)
            return Outcome(False, error, time.time() - started, exc.error_type)
        except TimeoutError:
            worker.stop()
            self._checkin(spec, None)
            msg = f"Task timed out after {spec.timeout_s:.2f} seconds"
            return Outcome(False, {"errorMessage": msg, "errorType": "Timeout"}, time.time() - started, "Timeout")
        except Exception as exc:
            worker.stop()
            self._checkin(spec, None)
            return Outcome(
                False,
                {"errorMessage": str(exc), "errorType": "Runtime.ExitError"},
                time.time() - started,
                "Runtime.ExitError",
            )
        self._checkin(spec, worker)
        if answer.get("ok"):
            return Outcome(True, answer.get("result"), time.time() - started)
        err = answer.get("error") or {}
        return Outcome(False, err, time.time() - started, err.get("errorType"))


def spec_from_moto(fn: Any, account_id: str, region: str) -> FunctionSpec:
    """Read a moto LambdaFunction into what the runtime needs."""
    max_age, retries = DEFAULT_MAX_EVENT_AGE_S, DEFAULT_MAX_RETRIES
    for cfg in getattr(fn, "event_invoke_config", []) or []:
        conf = getattr(cfg, "config", {}) or {}
        max_age = int(conf.get("MaximumEventAgeInSeconds", max_age))
        retries = int(conf.get("MaximumRetryAttempts", retries))
    code = getattr(fn, "code_bytes", b"") or b""
    layers = []
    backend = lambda_backends_for(account_id, region)
    for layer in getattr(fn, "layers", []) or []:
        version = backend.layers_versions_by_arn(layer["Arn"])
        data = getattr(version, "code_bytes", b"") or b""
        layers.append((layer["Arn"], _digest(version, data), data))
    ephemeral = getattr(fn, "ephemeral_storage", None) or 512
    return FunctionSpec(
        name=fn.function_name,
        arn=fn.function_arn,
        handler=fn.handler,
        code=code,
        code_sha=_digest(fn, code),
        timeout_s=int(fn.timeout or 3),
        memory_mb=int(fn.memory_size or 128),
        env={str(k): str(v) for k, v in (fn.environment_vars or {}).items()},
        max_event_age_s=max_age,
        max_retries=retries,
        concurrency=int(fn.reserved_concurrency) if fn.reserved_concurrency not in (None, "") else 64,
        role_arn=str(getattr(fn, "role", "") or ""),
        layers=tuple(layers),
        ephemeral_mb=int(ephemeral),
        runtime=str(getattr(fn, "run_time", "") or ""),
    )


def _digest(holder: Any, code: bytes) -> str:
    """The hex SHA-256 moto computed when the code arrived (hashing it again on every invoke costs
    a pass over the whole zip); computed here only where moto has none."""
    return str(getattr(holder, "code_digest", "") or hashlib.sha256(code).hexdigest())


def lambda_backends_for(account_id: str, region: str) -> Any:
    from moto.awslambda.models import lambda_backends

    return lambda_backends[account_id][region]
