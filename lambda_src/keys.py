"""Bucket keys turned into local paths, and names turned into keys: one rule each, for every download.

A key is data written by whoever can write to the bucket. `local_path` places the part of a key
below a prefix under a destination folder and refuses anything that would land elsewhere: an
absolute part (`scenes/x//etc/passwd`), `..`, empty or `.` parts, NUL bytes, and a destination
folder that is (or passes through) a symlink planted inside the destination.
"""

from __future__ import annotations

import re
from pathlib import Path

# scenes, datasets, runs, presets and job names: one path part that stays one path part in any key
NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
NAME_HELP = "1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"


class UnsafeKey(ValueError):
    """A bucket key (or a name) that would write outside its folder."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(f"refused key {key!r}: {why}")
        self.key = key
        self.why = why


def check_name(kind: str, name: str) -> str:
    """A scene, dataset or run name: one path part that stays one path part in any key it makes."""
    if not isinstance(name, str) or not NAME_RULE.match(name):
        raise ValueError(f"{kind} name {name!r} is not allowed: use {NAME_HELP}")
    return name


def relative_parts(key: str, prefix: str = "") -> list[str]:
    """The parts of `key` below `prefix`, each a plain file or folder name; UnsafeKey otherwise."""
    if not key.startswith(prefix):
        raise UnsafeKey(key, f"it is not under {prefix!r}")
    rest = key[len(prefix) :]
    if "\x00" in rest or "\\" in rest:
        raise UnsafeKey(key, "it holds a NUL byte or a backslash")
    if rest.startswith("/"):
        raise UnsafeKey(key, "it names an absolute path")
    parts = rest.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise UnsafeKey(key, "it has an empty, '.' or '..' part")
    return parts


def local_path(dest: Path, key: str, prefix: str = "") -> Path:
    """Where the object `key` goes under `dest`: always inside it, never through a symlink in it."""
    parts = relative_parts(key, prefix)
    root = Path(dest).resolve()
    target = root.joinpath(*parts)
    # a symlink already inside the destination could point anywhere: refuse to write through one
    probe = root
    for part in parts:
        probe = probe / part
        if probe.is_symlink():
            raise UnsafeKey(key, f"{probe} is a symlink")
    if root != target and root not in target.parents:
        raise UnsafeKey(key, f"it resolves outside {root}")
    return target
