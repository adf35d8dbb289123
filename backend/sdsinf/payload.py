"""The original SDS-Inf payloads (`resources/*_payload_*.json` in SDS-Inf-Code), read as they are.

A payload names S3 locations in the original's own buckets (`mnist-radixnet-*`); here the model and
inputs come from a dataset uploaded with `skydeck sdsinf data upload` and the run's files go to the
sdsinf stack's buckets. What the payload decides is kept: the run's config name (from
`metrics_loc.filename`, as the original's `output_metrics` derives it), the worker count and fan-out
(`invoc_params`), and how much of the input to infer and in what batches (`model_params`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.core.errors import ConfigError
from backend.sdsinf.variants import VARIANTS


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


def _get(doc: Any, path: str) -> Any:
    value = doc
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ConfigError(f"payload: {path} is missing (the original payloads have it)")
        value = value[part]
    return value


def _int(doc: Any, path: str, lo: int = 1) -> int:
    value = _get(doc, path)
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigError(f"payload: {path} must be a whole number >= {lo}, not {value!r}")
    return value


def parse_payload(doc: Any) -> OriginalPayload:
    if not isinstance(doc, dict):
        raise ConfigError("payload: must be a JSON object with data_params, invoc_params and model_params")
    filename = _get(doc, "data_params.metrics_loc.filename")
    if not isinstance(filename, str) or "_" not in filename:
        raise ConfigError(f"payload: data_params.metrics_loc.filename must look like 1_CONFIG.csv, not {filename!r}")
    config = filename.split("_", 1)[1].split(".")[0]  # as the original's output_metrics reads it
    variant = config.rsplit("_", 1)[-1]
    if variant not in VARIANTS:
        raise ConfigError(f"payload: the config {config!r} names no variant ({', '.join(VARIANTS)}) at its end")
    subfolder = _get(doc, "data_params.weights_loc.subfolder")
    payload = OriginalPayload(
        config=config,
        variant=variant,
        neurons=_int(doc, "model_params.numNeurons"),
        layers=_int(doc, "model_params.numLayers"),
        num_data=_int(doc, "model_params.numData"),
        batch_size=_int(doc, "model_params.batchSize"),
        num_batches=_int(doc, "model_params.numBatches"),
        bfr=_int(doc, "invoc_params.bfr"),
        nlevels=_int(doc, "invoc_params.nlevels"),
        total_nworkers=_int(doc, "invoc_params.total_nworkers"),
        dataset_hint=str(subfolder).rstrip("/").rsplit("/", 1)[-1],
    )
    tree = sum(payload.bfr**level for level in range(1, payload.nlevels + 1))
    if payload.variant in ("queue", "object") and payload.total_nworkers != tree:
        # the original's coordinator starts bfr workers and each starts bfr more, nlevels deep
        raise ConfigError(
            f"payload: invoc_params.total_nworkers is {payload.total_nworkers}, but bfr {payload.bfr} and nlevels "
            f"{payload.nlevels} make a tree of {tree} workers"
        )
    if payload.batch_size * payload.num_batches < payload.num_data:
        raise ConfigError(
            f"payload: model_params.batchSize x numBatches ({payload.batch_size} x {payload.num_batches}) "
            f"does not cover numData ({payload.num_data})"
        )
    return payload


def load_payload(path: Path) -> OriginalPayload:
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"--payload {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"--payload {path}: not valid JSON ({exc})") from None
    return parse_payload(doc)
