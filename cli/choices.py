"""The closed sets of values options take, as enums: --help lists them and a wrong one is a usage
error (exit 2) naming the choices. Built from each list's one home, never spelt out again."""

from __future__ import annotations

from enum import Enum

from backend.interface import ENGINES, PARTITIONS, PRESET_KINDS, VARIANTS, WIRES

Engine = Enum("Engine", {e: e for e in ENGINES}, type=str)  # type: ignore[misc]  # Enum's functional form, members from data
Variant = Enum("Variant", {v: v for v in VARIANTS}, type=str)  # type: ignore[misc]  # Enum's functional form, members from data
Partition = Enum("Partition", {p: p for p in PARTITIONS}, type=str)  # type: ignore[misc]  # Enum's functional form, members from data
Wire = Enum("Wire", {w: w for w in WIRES}, type=str)  # type: ignore[misc]  # Enum's functional form, members from data
ServerMode = Enum("ServerMode", {"job": "job", "service": "service"}, type=str)
PresetKind = Enum("PresetKind", {k: k for k in PRESET_KINDS}, type=str)  # type: ignore[misc]  # Enum's functional form, members from data


def value(choice: Enum | None) -> str | None:
    return None if choice is None else str(choice.value)
