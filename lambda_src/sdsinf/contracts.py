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


class MalformedRecord(ValueError):
    """A stored record that does not read as its type: which one and what is wrong with it."""


# the JSON types each summary field may hold (an int is a number too)
_SUMMARY_TYPES: dict[str, tuple[type, ...]] = {
    "run_id": (str,), "config": (str,), "variant": (str,), "state": (str,), "workers": (int,),
    "partition": (str,), "inputs": (int,), "categories": (int,), "matches_truth": (bool, type(None)),
    "compute_s": (int, float), "comm_s": (int, float, type(None)), "runtime_s": (int, float),
    "edges_per_s": (int, float), "error": (str, type(None)),
}  # fmt: skip


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

    @classmethod
    def read(cls, body: bytes | str, where: str) -> RunSummary:
        """A stored summary, checked: MalformedRecord names `where` and what is wrong (not JSON, a
        missing key, a value of the wrong type) instead of a KeyError or a TypeError later."""
        try:
            raw = json.loads(body)
        except ValueError as exc:
            raise MalformedRecord(f"{where}: not JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise MalformedRecord(f"{where}: not a JSON object")
        missing = [k for k in ("run_id", "config", "variant") if k not in raw]
        if missing:
            raise MalformedRecord(f"{where}: lacks {', '.join(missing)}")
        for key, types in _SUMMARY_TYPES.items():
            value = raw.get(key)
            if key in raw and (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)):
                raise MalformedRecord(f"{where}: {key} is {json.dumps(value)[:40]}, not a {types[0].__name__}")
        return cls.from_dict(raw)


@dataclass(frozen=True)
class RunRequest:
    """The event every SDS-Inf function takes: made once where a run starts (`skydeck sdsinf run`, or an
    original payload sent to a deployed coordinator), then handed down the invocation tree to each
    worker with its `worker_id`. `request.json` under the run's prefix is the same object.

    `model`, `inputs` and `truth` are {bucket, key}; `metrics` is {bucket, prefix}. `parts`, `queue`
    and `intermediate` belong to the distributed variants, `metrics_loc` to a run started from a
    payload. Keys left unset are absent on the wire (`truth` is there as null when no truth was
    uploaded), and keys this version does not know are kept.
    """

    run_id: str
    config: str
    model: dict[str, str]
    inputs: dict[str, str]
    metrics: dict[str, str]
    truth: dict[str, str] | None = None
    partition: str = "row"
    model_params: dict[str, int] = field(default_factory=dict)  # the original's numData, batchSize
    invoc_params: dict[str, int] = field(default_factory=dict)  # the original's bfr, nlevels, total_nworkers
    variant: str | None = None
    workers: int | None = None
    wire: str | None = None  # how blocks travel (lambda_src.sdsinf.wire); None: the original's
    parts: dict[str, Any] | None = None
    worker_function: str | None = None
    poll_timeout_s: float | None = None
    queue: dict[str, Any] | None = None
    intermediate: dict[str, Any] | None = None
    metrics_loc: dict[str, Any] | None = None
    started_by: str | None = None
    worker_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics_bucket(self) -> str:
        return self.metrics["bucket"]

    @property
    def prefix(self) -> str:
        """Where the run's files go in the metrics bucket, without a trailing slash."""
        return self.metrics["prefix"].rstrip("/")

    @property
    def poll_timeout(self) -> float:
        return float(self.poll_timeout_s if self.poll_timeout_s is not None else 60.0)

    @property
    def worker(self) -> int:
        """The id of the worker this request was handed to (a coordinator's own request has none)."""
        if self.worker_id is None:
            raise ValueError("this run request was not handed to a worker: it carries no worker_id")
        return self.worker_id

    def for_worker(self, worker_id: int) -> RunRequest:
        return replace(self, worker_id=worker_id)

    def with_variant(self, variant: str) -> RunRequest:
        return replace(self, variant=variant)

    def to_event(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "extra" and (v is not None or k == "truth")}
        return {**self.extra, **out}

    def to_json(self) -> str:
        return json.dumps(self.to_event())

    @classmethod
    def from_event(cls, raw: dict[str, Any]) -> RunRequest:
        known, extra = _known(cls, raw)
        missing = {"run_id", "config", "model", "inputs", "metrics"} - set(known)
        if missing:
            raise ValueError(f"not an SDS-Inf run request: {', '.join(sorted(missing))} missing")
        if known.get("worker_id") is not None:
            known["worker_id"] = int(known["worker_id"])
        return cls(**known, extra=extra)
