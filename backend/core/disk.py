"""A full disk, named as such: where, and how much is left. The local cloud answers a change it could
not journal with this; the CLI prints it once, for every command and for `local up`."""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

from backend.core.humanize import size


def is_full(exc: BaseException) -> bool:
    """Whether `exc` is the disk being full: ENOSPC (or a quota), or SQLite's SQLITE_FULL."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, sqlite3.Error) and "database or disk is full" in str(exc)


def full_disk(path: Path) -> str:
    """'the disk holding PATH is full (N free)': the nearest existing folder's free space."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = size(shutil.disk_usage(probe).free)
    except OSError:
        free = "unknown"
    return f"the disk holding {path} is full ({free} free); free some space there and retry"
