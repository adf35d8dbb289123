"""What the backend answers about jobs, as the front ends read it: one reading of a jobs-table record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from lambda_src.jobs.record import JobProgress, JobRecord, JobResult
from lambda_src.jobs.schema import TERMINAL_STATES


@dataclass(frozen=True)
class Job:
    """One training job as the jobs table holds it."""

    job_id: str
    state: str
    name: str = ""
    scene: str = ""
    engine: str = ""
    preset: str | None = None
    worker: str | None = None
    attempts: int = 0
    error: str | None = None
    note: str | None = None
    created_at: float | None = None
    cancel_requested: bool = False
    progress: JobProgress = field(default_factory=JobProgress)
    result: JobResult = field(default_factory=JobResult)
    config: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None  # a validation job's: the training job whose checkpoint it scores
    replayed: bool = False  # a submit answered with the job an earlier one made under the same key
    record: JobRecord | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_record(cls, record: JobRecord | Mapping[str, Any]) -> Job:
        """The front ends' reading of a jobs-table record (or of its item form)."""
        if not isinstance(record, JobRecord):
            record = JobRecord.from_item(record)
        # a job that ended is past every stage: its last one ("writing results") is history
        progress = record.progress or JobProgress()
        return cls(
            job_id=record.job_id,
            state=record.state,
            name=record.name or "",
            scene=record.scene or "",
            engine=record.engine or "",
            preset=record.preset,
            worker=record.worker,
            attempts=int(record.attempts or 0),
            error=record.error,
            note=record.note,
            created_at=float(record.created_at) if record.created_at is not None else None,
            cancel_requested=bool(record.cancel_requested),
            progress=replace(progress, stage=None) if record.ended else progress,
            result=record.result or JobResult(),
            config=dict(record.config or {}),
            resources=dict(record.resources or {}),
            checkpoint=record.checkpoint or None,
            replayed=bool(record.replayed),
            record=record,
        )

    def to_dict(self) -> dict[str, Any]:
        """The jobs table's item as it was read: what `--json` prints and scripts rely on."""
        return self.record.to_item() if self.record is not None else {"job_id": self.job_id, "state": self.state}

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def psnr(self) -> float | None:
        value = self.result.psnr if self.result.psnr is not None else self.progress.psnr
        return float(value) if isinstance(value, int | float) else None

    @property
    def iteration(self) -> int | None:
        """The last step: an ended job's result says how many it ran (its last progress may be older)."""
        ended = self.result.iterations
        if self.ended and isinstance(ended, int | float) and ended:
            return int(ended)
        value = self.progress.iteration
        return int(value) if isinstance(value, int | float) else None

    @property
    def phases(self) -> dict[str, float]:
        """Seconds per phase (queued, load, train, evaluate, render, upload) of a job that ended."""
        value = self.result.phases_s
        return {k: float(v) for k, v in value.items() if isinstance(v, int | float)} if isinstance(value, dict) else {}

    @property
    def notes(self) -> list[str]:
        return [str(n) for n in self.result.notes or []]


@dataclass(frozen=True)
class JobPage:
    items: list[Job]
    next_token: str | None = None


@dataclass(frozen=True)
class MonitorSnapshot:
    """The jobs queue's depth, jobs per state and the newest jobs, at one moment."""

    at: float
    queue_visible: int
    queue_in_flight: int
    dead_letter: int
    per_state: dict[str, int]
    recent: list[Job]
