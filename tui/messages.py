"""Typed messages that carry results from background workers back to the UI thread."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message


@dataclass
class StacksLoaded(Message):
    stacks: list[dict[str, Any]]


@dataclass
class StackEventArrived(Message):
    stack: str
    event: dict[str, Any]


@dataclass
class StackActionDone(Message):
    stack: str
    action: str
    ok: bool
    detail: str


@dataclass
class JobsLoaded(Message):
    jobs: list[dict[str, Any]]
    total: int


@dataclass
class WorkFailed(Message):
    what: str
    error: str
