"""The local cloud's executor workers: N `python -m gpu_executor` processes kept alive beside it -
the entry point a fleet host's service runs - so that a job submitted on a laptop trains on that
laptop. They start once the infra and fleet stacks are deployed (given the infra stack's queue, table
and bucket, as a host's unit gives them, and the fleet's role, as a host's profile gives it), are
restarted if they die, and get SIGTERM - which hands a running job back to the queue - when the local
cloud stops. Logs: $SKYDECK_HOME/logs/executor/local-N.log."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from backend.localcloud.imds import Instance, MetadataService
from gpu_executor import exits

if TYPE_CHECKING:
    from backend.context import Context

log = logging.getLogger("skydeck.localcloud.executors")
FLEET_ROLE = "FLEET_ROLE_ARN"
RESTART_DELAY_S = 10.0
WAIT_FOR_STACK_S = 3.0


def executor_settings(home_root: Path, ctx: Context | None = None) -> dict[str, str] | None:
    """What `python -m gpu_executor` reads from its environment to serve this local cloud's jobs queue
    (QUEUE_URL, TABLE, BUCKET, the endpoint, its work folder, and FLEET_ROLE_ARN: the role it runs
    as); None while the infra and fleet stacks are not deployed or their outputs cannot be read."""
    from backend.context import Context
    from backend.core.errors import SkydeckError
    from backend.core.paths import Home

    try:
        # a caller that asks every few seconds passes its own Context: a new one builds new clients, and
        # botocore reads its endpoint rules again for each (a twentieth of a second of CPU every time)
        ctx = ctx or Context.create("local", Home(home_root))
        out = ctx.stacks.outputs("infra")
        role = ctx.stacks.outputs("fleet")["InstanceRoleArn"]
        env = {k: v for k, v in ctx.clients.env().items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        return {
            **env,
            FLEET_ROLE: role,
            "QUEUE_URL": out["QueueUrl"],
            "TABLE": out["TableName"],
            "BUCKET": out["Bucket"],
            "SKYDECK_WORKDIR": str(ctx.home.cache_dir / "executor"),  # made private (0700) by the executor
            # LPIPS's VGG weights, fetched once (where lpips and torchvision are installed) and kept
            "TORCH_HOME": str(ctx.home.cache_dir / "torch"),
        }
    except SkydeckError:
        return None
    except Exception as exc:  # noqa: BLE001 - the cloud is starting or stopping: try again shortly
        log.debug("executor settings not readable yet: %s", exc)
        return None


def instance_env(imds_base: str) -> dict[str, str]:
    """A process that finds its credentials as an EC2 instance does: from the metadata service alone
    (no keys in its environment, no shared credentials or config file to find them in first)."""
    return {
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds_base,
        "AWS_EC2_METADATA_DISABLED": "false",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_CONFIG_FILE": "/dev/null",
        "SKYDECK_IMDS": imds_base,
    }


class ExecutorPool:
    """Executors as fleet hosts: each one is a local instance (`local-N`) of the fleet's instance
    role, which it gets from the local metadata service, so it may do exactly what a host may."""

    def __init__(self, home_root: Path, logs_dir: Path, count: int, imds: MetadataService, imds_url: str) -> None:
        self.imds = imds
        self.imds_url = imds_url
        self.home_root = home_root
        self.logs_dir = logs_dir / "executor"
        self.exits_dir = self.logs_dir / "exits"  # how each one ended: the next one tells its job's owner
        self.count = count
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * count
        self.next_start = [0.0] * count
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._supervise, name="executor-pool", daemon=True)
        self._ctx: Context | None = None

    def _context(self) -> Context | None:
        """One Context for the pool's life, so that its clients are made once (a Context retries making
        them while the cloud is still starting); None where it cannot be made yet."""
        if self._ctx is None:
            from backend.context import Context
            from backend.core.paths import Home

            try:
                self._ctx = Context.create("local", Home(self.home_root))
            except Exception as exc:  # noqa: BLE001 - executor_settings makes its own and says why
                log.debug("no context for the executor pool yet: %s", exc)
        return self._ctx

    def start(self) -> None:
        if self.count > 0:
            self.logs_dir.mkdir(parents=True, exist_ok=True)
            self.thread.start()

    def _spawn(self, slot: int, settings: dict[str, str]) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "gpu_executor", "--wait", "5"]
        instance_id = f"local-{slot + 1}"
        region = settings.get("AWS_DEFAULT_REGION", "us-east-1")
        self.imds.register(Instance(instance_id, "local", "local", settings[FLEET_ROLE], "", region))
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env = {
            **inherited,
            **settings,
            **instance_env(f"{self.imds_url}/{instance_id}"),
            "SKYDECK_HOME": str(self.home_root),
            "SKYDECK_PROFILE": "local",
            "SKYDECK_INSTANCE_ID": instance_id,  # its heartbeat goes where a host's does: `fleet hosts` lists it
            exits.EXITS_ENV: str(self.exits_dir),
        }
        with open(self.logs_dir / f"local-{slot + 1}.log", "ab") as out:
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)

    def _supervise(self) -> None:
        while not self.stopped.wait(timeout=1.0):
            now = time.monotonic()
            for slot, proc in enumerate(self.procs):
                if proc is not None and proc.poll() is None:
                    continue
                if proc is not None:
                    # it died (it waits for the infra stack by itself): restart it without a log storm
                    self.reap(proc)
                    self.next_start[slot] = now + RESTART_DELAY_S
                    self.procs[slot] = None
                    continue
                if now >= self.next_start[slot]:
                    settings = executor_settings(self.home_root, self._context())
                    if settings is None:  # no infra stack yet: look again in a moment
                        self.next_start = [now + WAIT_FOR_STACK_S] * self.count
                        break
                    self.procs[slot] = self._spawn(slot, settings)

    def reap(self, proc: subprocess.Popen[bytes]) -> None:
        """Write down how an executor ended, so that the job it held is not only "gone" but "killed"."""
        if proc.returncode is not None:
            exits.record(self.exits_dir, exits.Exit.from_returncode(proc.pid, proc.returncode))

    def stop(self, timeout_s: float = 15.0) -> None:
        self.stopped.set()
        live = [p for p in self.procs if p is not None and p.poll() is None]
        for proc in live:
            proc.terminate()
        deadline = time.monotonic() + timeout_s
        for proc in live:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()

    def alive(self) -> int:
        return sum(1 for p in self.procs if p is not None and p.poll() is None)
