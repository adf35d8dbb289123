"""Work split across forked processes, each sending one answer back through a pipe.

A forked process shares the parent's memory (a network of 120 layers is not copied) and starts in a
millisecond. Only a pipe is used between them: a Lambda function has fork and pipes but no /dev/shm,
which multiprocessing's queues and pools need.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


@dataclass
class Forked:
    """One forked process working on `target(*args)`."""

    process: Any
    pipe: Any
    what: str

    def result(self) -> Any:
        """Its answer; its exception raised again here; a RuntimeError if it died without a word."""
        try:
            kind, value = self.pipe.recv()
        except EOFError:
            self.process.join(timeout=5)
            raise RuntimeError(f"a {self.what} process died (exit code {self.process.exitcode})") from None
        finally:
            self.pipe.close()
        self.process.join(timeout=5)
        if kind == "error":
            raise value
        return value

    def stop(self) -> None:
        """Ended, whatever it was doing (after an error elsewhere, its work is not wanted)."""
        self.pipe.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)


def start(what: str, target: Callable[..., Any], *args: Any) -> Forked:
    fork = multiprocessing.get_context("fork")
    mine, theirs = fork.Pipe(duplex=False)
    process = fork.Process(target=_answer, args=(target, args, theirs), daemon=True)
    process.start()
    theirs.close()
    return Forked(process, mine, what)


def results(started: list[Forked]) -> list[Any]:
    """Every process's answer, in order; the first error is raised, and the rest are stopped."""
    try:
        return [f.result() for f in started]
    finally:
        for f in started:
            f.stop()


def _answer(target: Callable[..., Any], args: tuple[Any, ...], pipe: Any) -> None:
    try:
        answer = ("ok", target(*args))
    except Exception as exc:  # raised again in the parent, as it would have been there
        answer = ("error", exc)
    try:
        pipe.send(answer)
    finally:
        pipe.close()
