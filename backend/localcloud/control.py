"""Start, stop and inspect the local cloud process from the CLI (and the console)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from backend.core.disk import full_disk
from backend.core.errors import ConfigError, SkydeckError
from backend.core.paths import Home
from backend.localcloud.instance import holder, stop_leftovers
from backend.localcloud.journal import JOURNAL_DAMAGED_EXIT

START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Status:
    running: bool
    state: dict[str, Any]
    healthy: bool

    def to_dict(self) -> dict[str, Any]:
        if not self.running:
            return {"running": False, "pid": None, "parts": {}}
        return {"running": True, "healthy": self.healthy, **self.state}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child of this process lingers as a zombie until reaped
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _healthy(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/_skydeck/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def status(home: Home) -> Status:
    try:
        state = json.loads(home.local_state_file.read_text())
    except (OSError, ValueError):
        state = {}
    if state and _alive(int(state.get("pid", -1))):
        return Status(True, state, _healthy(state["endpoint"]))
    starting = holder(home.local_lock)  # started, still replaying its journal: no state file yet
    if starting is not None and _alive(starting):
        return Status(True, {"pid": starting, "phase": "starting (replaying its journal)", "parts": {}}, False)
    return Status(False, {}, False)  # nothing, or a stale file left by a kill -9


def _stop_leftovers_of_a_dead_server(home: Home) -> int:
    """After a kill -9 the server's executors and Lambda workers live on: stop them."""
    try:
        stale = json.loads(home.local_state_file.read_text())
    except (OSError, ValueError):
        return 0
    pid = int(stale.get("pid", -1))
    if pid <= 0 or _alive(pid):
        return 0
    return stop_leftovers(int(stale.get("pgid", pid)))


def default_workers() -> int:
    """Executor workers for a new local cloud: $SKYDECK_LOCAL_WORKERS, else 1."""
    raw = os.environ.get("SKYDECK_LOCAL_WORKERS", "1")
    try:
        return max(0, int(raw))
    except ValueError:
        raise ConfigError(f"SKYDECK_LOCAL_WORKERS={raw!r}: must be a whole number of executor workers") from None


def up(home: Home, on_wait: Any = None, workers: int | None = None) -> Status:
    """Start the local cloud (with `workers` executor workers) unless it is already running. Idempotent."""
    workers = default_workers() if workers is None else workers
    current = status(home)
    if current.running and current.healthy:
        return current
    if current.running:  # alive but not answering: maybe still replaying its journal
        return _wait_ready(home, int(current.state["pid"]), on_wait)
    home.ensure()
    _stop_leftovers_of_a_dead_server(home)
    home.local_state_file.unlink(missing_ok=True)
    log_path = home.logs_dir / "localcloud.log"
    with open(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend.localcloud.server", "--home", str(home.root), "--workers", str(workers)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "SKYDECK_HOME": str(home.root)},
        )
    return _wait_ready(home, proc.pid, on_wait, proc)


def _wait_ready(home: Home, pid: int, on_wait: Any = None, proc: subprocess.Popen[bytes] | None = None) -> Status:
    """Wait for the cloud to answer. A long journal replays as long as it takes, provided it moves:
    the deadline is START_TIMEOUT_S without progress, not in all."""
    deadline = time.time() + START_TIMEOUT_S
    progress_file = home.local_replay_progress
    last_progress = None
    while time.time() < deadline:
        try:
            mark = progress_file.stat().st_mtime
        except OSError:
            mark = None
        if mark is not None and mark != last_progress:
            last_progress = mark
            deadline = time.time() + START_TIMEOUT_S
        if proc is not None and proc.poll() is not None:
            tail = (home.logs_dir / "localcloud.log").read_text(errors="replace")[-2000:]
            if proc.returncode == JOURNAL_DAMAGED_EXIT:
                damaged = [line for line in tail.splitlines() if "is damaged" in line]
                raise SkydeckError(damaged[-1].split(" ERROR ", 1)[-1] if damaged else "the journal is damaged")
            if "[Errno 28]" in tail or "database or disk is full" in tail:
                raise SkydeckError(f"the local cloud could not start: {full_disk(home.root)}")
            raise SkydeckError(f"the local cloud exited during start (code {proc.returncode}). Log tail:\n{tail}")
        current = status(home)
        if current.running and current.healthy:
            return current
        if on_wait:
            on_wait()
        time.sleep(0.2)
    raise SkydeckError(
        f"the local cloud did not become ready in {START_TIMEOUT_S:.0f}s; see {home.logs_dir / 'localcloud.log'}"
    )


def down(home: Home, timeout_s: float = 20.0) -> bool:
    """Stop the local cloud; its state stays in the journal. Returns False if it was not running."""
    current = status(home)
    if not current.running:
        stopped = _stop_leftovers_of_a_dead_server(home)
        home.local_state_file.unlink(missing_ok=True)
        return stopped > 0
    pid = int(current.state["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout_s
    while time.time() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    home.local_state_file.unlink(missing_ok=True)
    return True
