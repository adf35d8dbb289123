"""The engine interface: what the executor asks of a training backend.

An engine gets a `RunContext` (the job, a place to report progress, and a way to learn that it
must stop) and returns a result dict of numbers and strings. It raises `EngineError` with a message
for the operator when the job cannot succeed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gpu_executor.phases import PhaseClock
from lambda_src.jobs.schema import JobSpec


class EngineError(RuntimeError):
    """The job failed for a reason the operator can read (bad dataset, diverged, unavailable engine)."""


class StopRequested(Exception):
    """Raised inside an engine (by `RunContext.check`) when the job was cancelled or the host stops."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "cancelled" | "shutdown"


@dataclass
class RunContext:
    job_id: str
    spec: JobSpec
    workdir: Path
    report: Callable[[dict[str, Any]], None]
    stop_reason: Callable[[], str | None]
    storage: Storage | None = None  # where scenes come from and results go (see gpu_executor.storage)
    notes: list[str] = field(default_factory=list)
    checkpoint: Path | None = None  # a validation-only job: evaluate this ckpt.npz, train nothing
    phases: PhaseClock = field(default_factory=PhaseClock)  # seconds per phase, in the result as phases_s

    def check(self) -> None:
        """Call between steps: raises StopRequested when the engine must stop now."""
        reason = self.stop_reason()
        if reason:
            raise StopRequested(reason)


class Storage(Protocol):
    def fetch_scene(self, scene: str) -> Path: ...

    def fetch_checkpoint(self, ref: str) -> Path: ...

    def put(self, job_id: str, name: str, body: bytes) -> None: ...

    def read(self, job_id: str, name: str) -> bytes | None: ...

    def publish(self, job_id: str, root: Path) -> str: ...


class Engine(Protocol):
    name: str

    def available(self) -> tuple[bool, str]:
        """(usable here, why not)."""
        ...

    def run(self, ctx: RunContext) -> dict[str, Any]: ...


def builtin_engines() -> dict[str, Engine]:
    """The training engines this executor ships: svox2's own (GPU hosts) and skydeck's torch engine."""
    from gpu_executor.svox2_engine import Svox2Engine
    from gpu_executor.torch_engine import TorchEngine

    return {"svox2": Svox2Engine(), "torch": TorchEngine()}


def choose(
    engines: Mapping[str, Engine], wanted: str, preference: tuple[str, ...] = ("svox2", "torch")
) -> tuple[Engine, str]:
    """Pick the engine for a job. 'auto' takes the first available in `preference`; returns (engine, note)."""
    if wanted != "auto":
        engine = engines.get(wanted)
        if engine is None:
            raise EngineError(
                f"engine {wanted!r} is not installed on this executor; it has: {', '.join(sorted(engines))}"
            )
        ok, why = engine.available()
        if not ok:
            raise EngineError(f"engine {wanted} is unavailable here: {why}")
        return engine, ""
    reasons: list[str] = []
    for name in preference + tuple(n for n in engines if n not in preference):
        engine = engines.get(name)
        if engine is None:
            continue
        ok, why = engine.available()
        if ok:
            note = f"engine auto -> {name}" + (f" ({'; '.join(reasons)})" if reasons else "")
            return engine, note
        reasons.append(f"{name}: {why}")
    raise EngineError("no engine can run this job here: " + ("; ".join(reasons) or "none installed"))
