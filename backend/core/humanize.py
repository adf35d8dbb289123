"""Small formatting helpers shared by the CLI and the console."""

from __future__ import annotations

import time
from typing import Any


def age(ts: Any, now: float | None = None) -> str:
    """'42s', '5m', '3h', '2d' since an epoch timestamp; '-' when there is none."""
    if not ts:
        return "-"
    secs = max(0, int((time.time() if now is None else now) - float(ts)))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"
