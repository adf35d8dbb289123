"""A run as decided and as started: the typed answers of the SDS-Inf start path.

Apart from the runs module so that importing them (the console and CLI do, through backend.interface)
costs nothing: the start path itself loads numpy and scipy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RunPlan:
    """One run, decided: a preset's values with the operator's choices on top."""

    preset: str
    data: str
    variant: str
    workers: int
    batch: int | None = None
    partition: str = "row"
    server_mode: str = "job"
    num_data: int | None = None  # how many of the inputs to infer (the original's numData)
    bfr: int | None = None  # the invocation tree's fan-out (the original's bfr)
    nlevels: int | None = None  # its depth (the original's nlevels)
    neurons: int | None = None  # the model a payload expects (its numNeurons, numLayers): checked
    layers: int | None = None  # against the uploaded dataset's before the run starts
    wire: str = "original"  # how blocks travel (lambda_src.sdsinf.wire): the original's, or npz
    poll_timeout_s: float = 60.0  # a Queue receiver gives up after this long without a message
    from_payload: bool = False  # an original payload's run keeps its payload's config name as it is


@dataclass(frozen=True)
class RunLaunch:
    """What starting a run answers: its id, how it runs and where its files go. `server` is "service"
    for a run queued to the always-on server; `instance_id` the EC2 host a server run got."""

    run_id: str
    variant: str
    data: str
    prefix: str
    workers: int
    server: str | None = None
    instance_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form `sdsinf run --json` prints: optional keys only when they are set."""
        return {k: v for k, v in asdict(self).items() if v is not None}
