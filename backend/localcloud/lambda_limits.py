"""Lambda's per-invocation limits, enforced on the local runtime's worker processes.

- Memory: a worker whose resident set (its process and any children) passes the function's
  MemorySize is killed, and the invocation fails as Lambda reports it: `Runtime.OutOfMemory`,
  "Runtime exited with error: signal: killed".
- /tmp: each worker's TMPDIR is its own folder; one that holds more than the function's
  EphemeralStorage fails the invocation (Lambda's /tmp is a file system of that size, so there a
  write past it fails with ENOSPC; here the worker is stopped, with the reason).
- Payloads: 6 MB for a synchronous request and for a response, 1 MB for an asynchronous event.
- Timeout: at most 900 s.

Memory is sampled every 20 ms from /proc, so an allocation faster than that overshoots briefly
before the kill, as on AWS, where the cgroup's kill is exact.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
ASYNC_PAYLOAD_LIMIT = 1024 * 1024
RESPONSE_LIMIT = 6 * 1024 * 1024
MAX_TIMEOUT_S = 900
MIN_MEMORY_MB, MAX_MEMORY_MB = 128, 10240
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class Limits:
    memory_mb: int
    tmp_mb: int
    timeout_s: float


class LimitExceeded(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def resident_bytes(pid: int) -> int:
    """Resident memory of a process and its descendants (0 when it is gone)."""
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/statm").read_text().split()
        except OSError:
            continue
        total += int(fields[1]) * _PAGE
        stack.extend(_children(current))
    return total


def folder_bytes(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


class Watch:
    """Checks one running invocation against its limits; `check` raises LimitExceeded."""

    interval_s = 0.02
    tmp_every_s = 0.5

    def __init__(self, pid: int, tmp_dir: Path, limits: Limits) -> None:
        self.pid = pid
        self.tmp_dir = tmp_dir
        self.limits = limits
        self._next_tmp = time.monotonic()

    def check(self) -> None:
        used = resident_bytes(self.pid)
        if used > self.limits.memory_mb * 1024 * 1024:
            raise LimitExceeded(
                "Runtime.OutOfMemory",
                f"Runtime exited with error: signal: killed (memory {used / 2**20:.0f} MB, "
                f"over the function's MemorySize of {self.limits.memory_mb} MB)",
            )
        now = time.monotonic()
        if now >= self._next_tmp:
            self._next_tmp = now + self.tmp_every_s
            held = folder_bytes(self.tmp_dir)
            if held > self.limits.tmp_mb * 1024 * 1024:
                raise LimitExceeded(
                    "Runtime.ExitError",
                    f"No space left on device: /tmp holds {held / 2**20:.0f} MB, over the function's "
                    f"EphemeralStorage of {self.limits.tmp_mb} MB",
                )


def configuration_problem(memory_mb: int, timeout_s: int) -> str | None:
    """Why Lambda would refuse a function configured so (None: it would not)."""
    if not MIN_MEMORY_MB <= memory_mb <= MAX_MEMORY_MB:
        return f"MemorySize {memory_mb} is outside Lambda's {MIN_MEMORY_MB}-{MAX_MEMORY_MB} MB"
    if timeout_s > MAX_TIMEOUT_S:
        return f"Timeout {timeout_s} is over Lambda's maximum of {MAX_TIMEOUT_S} seconds"
    return None
