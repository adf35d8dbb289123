"""The original SDS-Inf payloads (`resources/*_payload_*.json` in SDS-Inf-Code), read as they are, by
`skydeck sdsinf run --payload` and by the deployed coordinators when one is invoked with a payload.

A payload names S3 locations in the original's own buckets (`mnist-radixnet-*`); here the model and
inputs come from a dataset uploaded with `skydeck sdsinf data upload` and the run's files go to the
sdsinf stack's buckets. What the payload decides is kept: the run's config name (from
`metrics_loc.filename`, as the original's `output_metrics` derives it), the worker count and fan-out
(`invoc_params`), and how much of the input to infer and in what batches (`model_params`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambda_src.sdsinf.names import VARIANTS

MAX_WORKERS = 256  # skydeck's bound on one run's workers (the original's largest payload has 64)


def tree_size(bfr: int, nlevels: int, cap: int = MAX_WORKERS + 1) -> int:
    """Workers in the original's tree: the coordinator starts bfr, each of them bfr more, nlevels deep.
    Counting stops past `cap`: a tree that large is refused whatever its exact size, and counting a
    deep one in full would take as long as the payload asks."""
    total, level_size = 0, 1
    for _ in range(nlevels):
        level_size *= bfr
        total += level_size
        if total > cap:
            return total
    return total


def tree_depth(bfr: int, workers: int) -> int:
    """The nlevels of the smallest such tree that holds `workers`."""
    nlevels = 1
    while tree_size(bfr, nlevels) < workers:
        nlevels += 1
    return nlevels


class PayloadError(ValueError):
    """A payload that cannot run; the message names the field."""


@dataclass(frozen=True)
class OriginalPayload:
    config: str  # e.g. c1_1024n_8w_10000bs_queue
    variant: str  # queue | object | serial, from the config name's last part
    neurons: int
    layers: int
    num_data: int
    batch_size: int
    num_batches: int
    bfr: int
    nlevels: int
    total_nworkers: int
    dataset_hint: str  # the weights subfolder's last part, e.g. c1_1024n_8w_10000bs

    @property
    def inputs(self) -> int:
        """How many inputs the original infers: batchSize x numBatches (its numDataToUse); numData
        is only written into its metrics row."""
        return self.batch_size * self.num_batches

    def run_columns(self) -> dict[str, str]:
        """The run columns of the original's metrics row, as it writes them: the payload's own values."""
        return {
            "BFR": str(self.bfr), "NLEVELS": str(self.nlevels), "TOTAL_NWORKERS": str(self.total_nworkers),
            "NUM_NEURONS": str(self.neurons), "NUM_LAYERS": str(self.layers), "NUM_DATA": str(self.num_data),
            "BATCH_SIZE": str(self.batch_size), "NUM_BATCHES": str(self.num_batches),
        }  # fmt: skip


def _get(doc: Any, path: str) -> Any:
    value = doc
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise PayloadError(f"payload: {path} is missing (the original payloads have it)")
        value = value[part]
    return value


def _int(doc: Any, path: str, lo: int = 1, hi: int = 10**9) -> int:
    value = _get(doc, path)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise PayloadError(f"payload: {path} must be a whole number from {lo} to {hi:,}, not {str(value)[:40]}")
    return value


def parse_payload(doc: Any) -> OriginalPayload:
    if not isinstance(doc, dict):
        raise PayloadError("payload: must be a JSON object with data_params, invoc_params and model_params")
    filename = _get(doc, "data_params.metrics_loc.filename")
    if not isinstance(filename, str) or "_" not in filename:
        raise PayloadError(f"payload: data_params.metrics_loc.filename must look like 1_CONFIG.csv, not {filename!r}")
    config = filename.split("_", 1)[1].split(".")[0]  # as the original's output_metrics reads it
    variant = config.rsplit("_", 1)[-1]
    if variant not in VARIANTS:
        raise PayloadError(f"payload: the config {config!r} names no variant ({', '.join(VARIANTS)}) at its end")
    subfolder = _get(doc, "data_params.weights_loc.subfolder")
    payload = OriginalPayload(
        config=config,
        variant=variant,
        neurons=_int(doc, "model_params.numNeurons"),
        layers=_int(doc, "model_params.numLayers"),
        num_data=_int(doc, "model_params.numData"),
        batch_size=_int(doc, "model_params.batchSize"),
        num_batches=_int(doc, "model_params.numBatches"),
        bfr=_int(doc, "invoc_params.bfr", hi=MAX_WORKERS),
        nlevels=_int(doc, "invoc_params.nlevels", hi=MAX_WORKERS),
        total_nworkers=_int(doc, "invoc_params.total_nworkers", hi=MAX_WORKERS),
        dataset_hint=str(subfolder).rstrip("/").rsplit("/", 1)[-1],
    )
    tree = tree_size(payload.bfr, payload.nlevels)
    if payload.variant in ("queue", "object") and payload.total_nworkers != tree:
        # the original's coordinator starts bfr workers and each starts bfr more, nlevels deep
        raise PayloadError(
            f"payload: invoc_params.total_nworkers is {payload.total_nworkers}, but bfr {payload.bfr} and nlevels "
            f"{payload.nlevels} make a tree of {tree} workers"
        )
    return payload
