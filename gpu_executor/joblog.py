"""A job's own log: what happened to it, a line per event, kept beside its results.

The executor writes a line when it claims the job, for the engine it chose and every note, for
each progress report (iteration, loss, PSNR, rays/s), and for the outcome. The text is published
as results/JOB_ID/job.log while the job runs (at most every `every_s`) and once more at the end,
so `skydeck jobs logs ID --follow` and the console's job view can follow it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

PROGRESS_KEYS = ("iteration", "n_iters", "loss", "psnr_train", "psnr", "rays_per_s", "reso", "voxels", "stage", "eta_s")
MAX_LINES = 5000


class JobLog:
    def __init__(
        self, job_id: str, storage: Any | None, every_s: float = 10.0, echo: Callable[[str], None] | None = None
    ) -> None:
        self.job_id = job_id
        self.echo = echo  # each line also goes here (the executor's own log), as it is written
        self.storage = storage
        self.every_s = every_s
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._published = 0  # lines already published
        self._last_publish = 0.0
        self.earlier = ""  # the log of earlier attempts, kept above this one's

    def continue_earlier(self, attempt: int) -> None:
        """A job run again (re-queued after a lost executor or a hand-back) keeps its earlier log."""
        if self.storage is None or attempt <= 1:
            return
        try:
            earlier = self.storage.read(self.job_id, "job.log")
        except Exception:  # noqa: BLE001 - without the earlier log this attempt's still gets written
            earlier = None
        if earlier:
            self.earlier = earlier.decode(errors="replace").rstrip("\n") + "\n"

    def write(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        with self._lock:
            self.lines.append(f"{stamp} {text}")
            if len(self.lines) > MAX_LINES:  # a very long job keeps its start and its latest lines
                del self.lines[100 : len(self.lines) - MAX_LINES + 100]
        if self.echo is not None:
            self.echo(text)

    def progress(self, progress: dict[str, Any]) -> None:
        parts = [f"{k}={progress[k]}" for k in PROGRESS_KEYS if k in progress]
        if parts:
            self.write("progress " + " ".join(parts))

    def text(self) -> str:
        with self._lock:
            return self.earlier + "".join(line + "\n" for line in self.lines)

    def publish(self, force: bool = False) -> None:
        """Upload the log if it grew (and, unless forced, not more often than every_s)."""
        if self.storage is None:
            return
        now = time.monotonic()
        with self._lock:
            grown = len(self.lines) != self._published
        if not grown or (not force and now - self._last_publish < self.every_s):
            return
        try:
            self.storage.put(self.job_id, "job.log", self.text().encode())
            with self._lock:
                self._published = len(self.lines)
            self._last_publish = now
        except Exception:  # noqa: BLE001 - a log upload never fails a job; the next one retries
            pass
