"""One local cloud per home: a lock held for the server's whole life, and cleanup of what a killed
server left behind.

The server takes `local/server.lock` (flock) before anything else and writes its pid there, so a
second `local up` during a long journal replay finds it starting instead of starting a second
server; the lock dies with the process, so a `kill -9` never leaves it stuck. The server leads its
own process group (`local up` starts it in a new session), and its executors and Lambda workers stay
in that group; after a `kill -9` they outlive it, and the next `local up` or `local down` stops them
by the group id (checked against each process's command line, so a reused pid is never touched).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import time
from pathlib import Path
from typing import IO

# Command lines of the processes a local cloud starts: itself, executor workers, Lambda workers,
# the SDS-Inf server baseline.
_OURS = ("backend.localcloud", "-m gpu_executor", "lambda_bootstrap", "lambda_src.sdsinf")


class AlreadyRunning(RuntimeError):
    pass


class ServerLock:
    """Held by the running server; `holder()` tells others who holds it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the life of the server
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise AlreadyRunning(
                f"another local cloud already runs for this home (pid {holder(self.path)}); "
                "use it, or stop it with: skydeck local down"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def holder(path: Path) -> int | None:
    """The pid of the live server holding the lock, or None."""
    try:
        with open(path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = handle.read().strip()
                return int(text) if text.isdigit() else None
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None
    except OSError:
        return None


def _group_members(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z" and any(mark in cmdline for mark in _OURS):
            found.append(int(entry.name))
    return found


def stop_leftovers(pgid: int, timeout_s: float = 15.0) -> int:
    """Stop what a dead server of process group `pgid` left running (SIGTERM, then SIGKILL). Returns how many."""
    if not Path("/proc").is_dir():
        return 0
    pids = [p for p in _group_members(pgid) if p != os.getpid()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # an executor hands its job back to the queue
    deadline = time.time() + timeout_s
    while time.time() < deadline and _group_members(pgid):
        time.sleep(0.1)
    for pid in _group_members(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)
