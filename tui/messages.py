"""Typed messages that carry results from background workers back to the UI thread."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message

from backend.interface import (
    ColumnComparison,
    Job,
    JobPage,
    LiveMetric,
    MonitorSnapshot,
    RunSummary,
    StackEvent,
    StackInfo,
)


@dataclass
class StacksLoaded(Message):
    stacks: list[StackRow]


@dataclass(frozen=True)
class StackRow:
    """A stack as the Stacks screen shows it: the backend's StackInfo, what the stack holds, and the
    fleet's hosts as lines for the side panel."""

    info: StackInfo
    what: str
    hosts: tuple[str, ...] = ()


@dataclass
class StackEventArrived(Message):
    stack: str
    event: StackEvent


@dataclass
class StackActionDone(Message):
    stack: str
    action: str
    ok: bool
    detail: str


@dataclass
class JobsLoaded(Message):
    page: JobPage


@dataclass
class JobLoaded(Message):
    job: Job
    log: str | None = None
    preview: bytes | None = None


@dataclass
class JobEnded(Message):
    job: Job


@dataclass
class JobCancelled(Message):
    job: Job


@dataclass
class JobSubmitted(Message):
    job: Job


@dataclass
class AccountKnown(Message):
    account: str


@dataclass
class PresetsLoaded(Message):
    names: list[str]


@dataclass
class RunsLoaded(Message):
    runs: list[RunSummary]


@dataclass
class RunStarted(Message):
    run_id: str
    variant: str


@dataclass
class RunMetric(Message):
    metric: LiveMetric


@dataclass
class RunFinished(Message):
    summary: RunSummary


@dataclass
class MonitorLoaded(Message):
    snapshot: MonitorSnapshot


@dataclass
class WorkFailed(Message):
    what: str
    error: str


@dataclass
class LogLines(Message):
    lines: list[str]


@dataclass
class BatchPlanned(Message):
    path: Path
    name: str
    rows: list[dict[str, Any]]
    dry_run: bool


@dataclass
class NothingDeployed(Message):
    pass


@dataclass
class DataDone(Message):
    """A data task (make and push a scene, generate and upload SDS-Inf data, fetch results) ended."""

    what: str
    detail: str


@dataclass
class RunCompared(Message):
    run_id: str
    published: str
    columns: list[ColumnComparison]
