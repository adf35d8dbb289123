"""The local cloud's executor workers: N `skydeck executor run` processes kept alive beside it,
so that a job submitted on a laptop trains on that laptop. They wait (quietly retrying) until the
infra stack is deployed, are restarted if they die, and get SIGTERM - which hands a running job
back to the queue - when the local cloud stops. Logs: $SKYDECK_HOME/logs/executor/local-N.log."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger("skydeck.localcloud.executors")
RESTART_DELAY_S = 10.0


class ExecutorPool:
    def __init__(self, home_root: Path, logs_dir: Path, count: int) -> None:
        self.home_root = home_root
        self.logs_dir = logs_dir / "executor"
        self.count = count
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * count
        self.next_start = [0.0] * count
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._supervise, name="executor-pool", daemon=True)

    def start(self) -> None:
        if self.count > 0:
            self.logs_dir.mkdir(parents=True, exist_ok=True)
            self.thread.start()

    def _spawn(self, slot: int) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "cli", "executor", "run", "--wait", "5"]
        env = {**os.environ, "SKYDECK_HOME": str(self.home_root), "SKYDECK_PROFILE": "local"}
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
                    self.next_start[slot] = now + RESTART_DELAY_S
                    self.procs[slot] = None
                    continue
                if now >= self.next_start[slot]:
                    self.procs[slot] = self._spawn(slot)

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
