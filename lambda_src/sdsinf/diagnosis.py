"""Why a distributed run failed, in one sentence that names the cause rather than its echoes.

When a worker dies (killed, out of memory, past the function's timeout) it writes nothing; the
workers that needed its blocks stall and each reports whom it waited for. Their reports are the
echo; the cause is the worker they all waited for that never reported at all. A worker that failed
with an error of its own (a broken layer file, say) is a cause too, and comes first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WorkerFailure:
    """What a worker wrote to `<prefix>/workers/failed-K.json`."""

    worker: int
    reason: str
    layer: int | None = None
    waited_for: tuple[int, ...] = ()

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> WorkerFailure:
        return cls(
            worker=int(raw["worker"]),
            reason=str(raw.get("reason", "")),
            layer=None if raw.get("layer") is None else int(raw["layer"]),
            waited_for=tuple(int(w) for w in raw.get("waited_for", ())),
        )

    @property
    def stalled(self) -> bool:
        return bool(self.waited_for)


def _names(workers: Iterable[int]) -> str:
    return ", ".join(f"{w:04d}" for w in sorted(workers))


def explain(total: int, failures: list[WorkerFailure], done: set[int], last_layer: dict[int, int]) -> str:
    """The run's failure as an operator should read it: the worker(s) at fault first, then who waited."""
    errors = [f for f in failures if not f.stalled]
    stalls = [f for f in failures if f.stalled]
    reported = done | {f.worker for f in failures}
    silent = [w for w in range(total) if w not in reported]
    waited_on = {w for f in stalls for w in f.waited_for}
    # the silent workers others waited for are the dead ones; with no stall reports, every silent one is
    dead = [w for w in silent if w in waited_on] if stalls else silent
    parts = [f"worker {f.worker:04d} failed: {f.reason}" for f in sorted(errors, key=lambda f: f.worker)]
    lost = sorted(waited_on & done)
    if lost:
        # it finished, so it sent everything: what it sent never arrived
        parts.append(
            f"worker(s) {_names(lost)} finished, but blocks they sent never arrived (a message or object lost "
            "in transit)"
        )
    for w in dead:
        where = f"after layer {last_layer[w]}" if w in last_layer else "before its first layer"
        parts.append(
            f"worker {w:04d} stopped {where} without reporting (killed, out of memory or past the "
            "function's timeout: see the function's log)"
        )
    if stalls:
        waiting = [f.worker for f in stalls]
        layers = sorted({f.layer for f in stalls if f.layer is not None})
        at = f" at layer {', '.join(map(str, layers))}" if layers else ""
        parts.append(f"worker(s) {_names(waiting)} waited{at} for worker(s) {_names(waited_on)}")
    if not parts and silent:
        parts.append(f"{len(silent)} worker(s) never reported: {_names(silent)}")
    return "; ".join(parts) or "the run failed without a reason from any worker"


def last_layers(live_keys: Iterable[str]) -> dict[int, int]:
    """The layer each worker finished last, from the live metric keys (`.../worker-K/bBBB-lLLLL.json`):
    the highest layer of its latest batch."""
    last: dict[int, tuple[int, int]] = {}
    for key in live_keys:
        parts = key.rsplit("/", 2)
        if len(parts) < 3 or not parts[1].startswith("worker-") or "-l" not in parts[2]:
            continue
        try:
            worker = int(parts[1].removeprefix("worker-"))
            batch_text, layer_text = parts[2].removesuffix(".json").split("-l", 1)
            step = (int(batch_text.removeprefix("b")), int(layer_text))
        except ValueError:
            continue
        last[worker] = max(step, last.get(worker, (-1, -1)))
    return {worker: layer for worker, (_, layer) in last.items()}
