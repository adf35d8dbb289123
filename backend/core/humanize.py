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


def phases(seconds: dict[str, Any]) -> str:
    """A job's phases_s on one line, in the order they ran: 'queued 2.1s · load 0.8s · train 3m 1s'."""
    return " · ".join(f"{name} {duration(value)}" for name, value in seconds.items() if isinstance(value, int | float))


def size(count: float) -> str:
    """Bytes in at most 7 columns: '812 B', '12.3 kB', '104.1 MB', '1.28 GB' (powers of 1000)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            value = count / scale
            return f"{value:.2f} {unit}" if value < 10 and unit == "GB" else f"{value:.1f} {unit}"
    return f"{int(count)} B"


def duration(seconds: float) -> str:
    """'0.42s', '12.3s', '3m 01s', '1h 02m'."""
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    return f"{minutes // 60}h {minutes % 60:02d}m"
