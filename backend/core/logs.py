"""Log sources an operator can follow: the local cloud, each local Lambda function, executors."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from backend.core.paths import Home


@dataclass(frozen=True)
class LogSource:
    name: str
    path: Path


def sources(home: Home) -> list[LogSource]:
    found = [LogSource("local cloud", home.logs_dir / "localcloud.log")]
    for sub, label in (("lambda", "lambda"), ("executor", "executor")):
        folder = home.logs_dir / sub
        if folder.is_dir():
            found += [LogSource(f"{label}: {p.stem}", p) for p in sorted(folder.glob("*.log"))]
    return found


class Follower:
    """Reads what was appended to a file since the last call (the last `tail_bytes` on the first)."""

    def __init__(self, path: Path, tail_bytes: int = 64 * 1024) -> None:
        self.path = path
        self._pos: int | None = None
        self._tail = tail_bytes

    def read_new(self) -> list[str]:
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return []
        if self._pos is None or size < self._pos:  # first read, or the file was truncated
            self._pos = max(0, size - self._tail)
        if size == self._pos:
            return []
        with open(self.path, "rb") as f:
            f.seek(self._pos)
            data = f.read(size - self._pos)
        cut = data.rfind(b"\n")
        if cut < 0:
            return []
        self._pos += cut + 1
        return data[: cut + 1].decode("utf-8", "replace").splitlines()
