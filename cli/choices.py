"""The closed sets of values options take, as enums: --help lists them and a wrong one is a usage
error (exit 2) naming the choices. Built from the backend's own lists, so they never drift."""

from __future__ import annotations

from enum import Enum

from backend.sdsinf.runs import VARIANTS
from lambda_src.jobs.schema import STATES
from lambda_src.sdsinf.partition import PARTITIONS

JobState = Enum("JobState", {s: s for s in STATES}, type=str)  # type: ignore[misc]
Variant = Enum("Variant", {v: v for v in VARIANTS}, type=str)  # type: ignore[misc]
Partition = Enum("Partition", {p: p for p in PARTITIONS}, type=str)  # type: ignore[misc]
ServerMode = Enum("ServerMode", {"job": "job", "service": "service"}, type=str)  # type: ignore[misc]
PresetKind = Enum("PresetKind", {k: k for k in ("plenoxels", "sdsinf", "batch")}, type=str)  # type: ignore[misc]


def value(choice: Enum | None) -> str | None:
    return None if choice is None else str(choice.value)
