"""The closed sets of values options take, as enums: --help lists them and a wrong one is a usage
error (exit 2) naming the choices. Built from the backend's own lists (one spelt out, and tested)."""

from __future__ import annotations

from enum import Enum

from backend.sdsinf.variants import VARIANTS
from lambda_src.jobs.schema import ENGINES

Engine = Enum("Engine", {e: e for e in ENGINES}, type=str)  # type: ignore[misc]
Variant = Enum("Variant", {v: v for v in VARIANTS}, type=str)  # type: ignore[misc]
# lambda_src.sdsinf.partition.PARTITIONS, spelt out: importing it loads numpy and scipy into every
# command (a test keeps the two the same)
PARTITIONS = ("row", "component", "greedy")
Partition = Enum("Partition", {p: p for p in PARTITIONS}, type=str)  # type: ignore[misc]
ServerMode = Enum("ServerMode", {"job": "job", "service": "service"}, type=str)  # type: ignore[misc]
PresetKind = Enum("PresetKind", {k: k for k in ("plenoxels", "sdsinf", "batch")}, type=str)  # type: ignore[misc]


def value(choice: Enum | None) -> str | None:
    return None if choice is None else str(choice.value)
