"""What SDS-Inf's workers write and everything else reads: a live per-layer metric and a run's summary.

Workers write them through these types; the backend, the CLI and the console read them through the
same types, so a field renamed on one side fails at once on the other instead of reading as a
missing key in five places. On disk they stay plain JSON objects (extra keys are kept, so a newer
worker's file still reads).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any


def _known(cls: type, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    names = {f.name for f in fields(cls)} - {"extra"}
    return {k: v for k, v in raw.items() if k in names}, {k: v for k, v in raw.items() if k not in names}


@dataclass(frozen=True)
class LiveMetric:
    """One worker's one layer of one batch, written as it finishes (`<prefix>/live/worker-K/bBBB-lLLLL.json`)."""

    worker: int
    batch: int
    layer: int
    layers: int
    duration_s: float
    nnz: int
    rows_active: int
    messages_sent: int = 0
    bytes_sent: int = 0
    messages_received: int = 0
    bytes_received: int = 0
    publish_calls: int = 0
    poll_calls: int = 0
    compression_s: float = 0.0
    comm_s: float = 0.0
    comp_s: float = 0.0

    def key(self, prefix: str) -> str:
        return f"{prefix}/live/worker-{self.worker:04d}/b{self.batch:03d}-l{self.layer:04d}.json"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LiveMetric:
        known, _ = _known(cls, raw)
        return cls(**known)


@dataclass(frozen=True)
class RunSummary:
    """A run's outcome (`<prefix>/summary.json`): written last, so its presence means the run ended."""

    run_id: str
    config: str
    variant: str
    state: str = "SUCCEEDED"
    workers: int = 1
    partition: str = "row"
    inputs: int = 0
    categories: int = 0
    matches_truth: bool | None = None
    compute_s: float = 0.0
    comm_s: float | None = None
    runtime_s: float = 0.0
    edges_per_s: float = 0.0
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.state == "FAILED"

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "extra"}
        return {**self.extra, **out}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def with_extra(self, **values: Any) -> RunSummary:
        return replace(self, extra={**self.extra, **values})

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunSummary:
        known, extra = _known(cls, raw)
        return cls(**known, extra=extra)
