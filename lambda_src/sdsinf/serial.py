"""The Serial variant: one Lambda runs the whole model over every batch.

Event (built by `skydeck sdsinf run`):
    {"run_id", "config", "model": {"bucket", "key"}, "inputs": {"bucket", "key"},
     "truth": {"bucket", "key"} | null, "metrics": {"bucket", "prefix"},
     "model_params": {"numNeurons", "numLayers", "numData", "batchSize", "numBatches"},
     "invoc_params": {"bfr", "nlevels", "total_nworkers"}}

While it runs it writes one small JSON object per layer under `<prefix>/live/worker-0000/` (that is
how the backend follows a run); at the end `metrics.csv`, `layerstats-worker-0000.csv`,
`categories.tsv` and `summary.json` under the prefix.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

import boto3
import numpy as np

from lambda_src.sdsinf.contracts import LiveMetric, RunRequest, RunSummary
from lambda_src.sdsinf.direct import is_original_payload, request_from_payload
from lambda_src.sdsinf.kernel import LiveRows, settle_points, transposed
from lambda_src.sdsinf.metrics import S3_LAYERSTATS_COLUMNS, S3_METRICS_COLUMNS, to_csv
from lambda_src.sdsinf.npz_codec import unpack_matrix, unpack_network
from lambda_src.sdsinf.original_files import MetricsLoc, coordinator_answer, write_master
from lambda_src.sdsinf.payload import PayloadError
from lambda_src.sdsinf.sample_results import Maxima, collate, log_block
from lambda_src.sdsinf.sample_results import to_csv as to_results_csv


@lru_cache(maxsize=1)
def _s3() -> Any:
    return boto3.session.Session().client("s3")


class _Reads:
    """The S3 objects a run reads, as the original's METRIC_S3_* count them."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.seconds = 0.0

    def get(self, loc: dict[str, str]) -> bytes:
        t = time.perf_counter()
        body = _s3().get_object(Bucket=loc["bucket"], Key=loc["key"])["Body"].read()
        self.seconds += time.perf_counter() - t
        self.sizes.append(len(body))
        return body


def _put(bucket: str, key: str, body: str | bytes) -> None:
    _s3().put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="AES256")


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    if is_original_payload(event):  # invoked the original's way, with its payload file
        try:
            request = request_from_payload(event, "serial")
        except PayloadError as exc:
            return coordinator_answer("", None, error=str(exc))
    else:
        request = RunRequest.from_event(event)
    return run(request)


def as_the_original(totals: dict[str, Any], total_s: float) -> dict[str, Any]:
    """The row the original's Serial worker writes at metrics_loc. It counts nothing in S3 (its stats for
    reads, writes, scans, sizes and communication stay 0), takes no row maximum, and its total is the
    inference loop's time, without the reads. skydeck's own metrics.csv keeps what it measured."""
    unmeasured = [c for c in totals if c.startswith("METRIC_S3_")] + [
        "METRIC_ELAPSED_TIME_COMMUNICATION", "METRIC_MAX_FILE_SIZE", "METRIC_MAX_ROW_NNZ",
    ]  # fmt: skip
    return {**totals, **dict.fromkeys(unmeasured, 0), "METRIC_ELAPSED_TIME_TOTAL": total_s}


def run(request: RunRequest) -> dict[str, Any]:
    """One run on one process (the Serial function, or the Server baseline)."""
    started = time.time()
    run_id, config = request.run_id, request.config
    mp = request.model_params
    out_bucket, prefix = request.metrics_bucket, request.prefix
    reads = _Reads()
    net = unpack_network(reads.get(request.model))
    y_all = unpack_matrix(reads.get(request.inputs))
    n_data = min(int(mp.get("numData", y_all.shape[0])), y_all.shape[0])
    batch = max(1, int(mp.get("batchSize", n_data)))
    wts = transposed(net.layers)
    settle = settle_points(wts, net.bias)
    found: list[np.ndarray] = []
    maxima: list[Maxima] = []
    layerstats: list[dict[str, Any]] = []
    compute_s = 0.0
    max_row_nnz = 0
    batches = 0
    inference_started = time.perf_counter()  # the original's inf_batch_start_time: after the reads
    total_s = 0.0
    live_s = 0.0  # writing skydeck's live per-layer metrics, which the original does not do
    for b0 in range(0, n_data, batch):
        batches += 1
        live = LiveRows(y_all[b0 : min(b0 + batch, n_data)], np.arange(b0, min(b0 + batch, n_data)))
        for layer, wt in enumerate(wts):
            t = time.perf_counter()
            live.step(wt, net.bias)
            if settle[layer]:
                live.settle_saturated()
            took = time.perf_counter() - t
            compute_s += took
            nnz = int(np.count_nonzero(live.y)) + int(live.settled.size) * net.neurons
            # a row is a neuron, as the original counts it: the inputs where it is nonzero
            if live.y.size:
                max_row_nnz = max(max_row_nnz, int(np.count_nonzero(live.y, axis=0).max()) + int(live.settled.size))
            rows_active = int(live.ids.size + live.settled.size)
            layerstats.append({"CONFIG": config, "WORKER_ID": 0, "LAYER": layer, "NNZ": nnz, "LAYER_DURATION": took})
            metric = LiveMetric(
                worker=0, batch=batches, layer=layer, layers=net.depth, duration_s=took, nnz=nnz,
                rows_active=rows_active, comp_s=took,
            )  # fmt: skip
            t = time.perf_counter()
            _put(out_bucket, metric.key(prefix), metric.to_json())
            live_s += time.perf_counter() - t
        found.append(live.alive())
        maxima.append(Maxima.of_live(min(b0 + batch, n_data) - b0, b0, live.ids, live.yt, live.settled))
        # each batch adds the time since the start, as there, less skydeck's live writes
        total_s += time.perf_counter() - inference_started - live_s
    cats = np.sort(np.concatenate(found)) + 1 if found else np.empty(0, dtype=np.int64)
    truth_ok = None
    if request.truth:
        truth = np.asarray([int(x) for x in reads.get(request.truth).decode().split()], dtype=np.int64)
        truth = truth[truth <= n_data]
        truth_ok = bool(np.array_equal(np.sort(truth), cats))
    runtime = time.time() - started
    ip = request.invoc_params
    totals = {
        "CONFIG": config,
        "BFR": ip.get("bfr", 1),
        "NLEVELS": ip.get("nlevels", 1),
        "TOTAL_NWORKERS": ip.get("total_nworkers", 1),
        "NUM_NEURONS": net.neurons,
        "NUM_LAYERS": net.depth,
        "NUM_DATA": n_data,
        "BATCH_SIZE": batch,
        "NUM_BATCHES": batches,
        # the original's Serial schema (METRIC_S3_*): it read each layer's weights and kept hidden layers
        # in S3; here the model and inputs are two objects and hidden layers stay in memory, so the
        # reads are those objects and nothing is written between layers
        "METRIC_S3_NUM_WRITES": 0,
        "METRIC_S3_NUM_READS": len(reads.sizes),
        "METRIC_S3_WRITE_SIZE": 0,
        "METRIC_S3_READ_SIZE": sum(reads.sizes),
        "METRIC_S3_FOLDER_SCANS": 0,
        "METRIC_ELAPSED_TIME_TOTAL": compute_s + reads.seconds,
        "METRIC_ELAPSED_TIME_COMMUNICATION": reads.seconds,
        "METRIC_ELAPSED_TIME_COMPRESSION": 0.0,
        "METRIC_ELAPSED_TIME_COMPUTATION": compute_s,
        "METRIC_LAMBDA_RUNTIME": runtime,
        "METRIC_MAX_FILE_SIZE": max(reads.sizes, default=0),
        "METRIC_MAX_ROW_NNZ": max_row_nnz,
    }
    _put(out_bucket, f"{prefix}/metrics.csv", to_csv(S3_METRICS_COLUMNS, [totals]))
    _put(out_bucket, f"{prefix}/layerstats-worker-0000.csv", to_csv(S3_LAYERSTATS_COLUMNS, layerstats))
    if request.metrics_loc:  # started from an original payload: its file where it points, as it writes it
        write_master(
            _put, MetricsLoc.from_dict(request.metrics_loc), S3_METRICS_COLUMNS, as_the_original(totals, total_s)
        )
    _put(out_bucket, f"{prefix}/categories.tsv", "".join(f"{c}\n" for c in cats))
    results = collate([Maxima.joined(maxima)])  # one worker: the original's worker 0 collates itself
    _put(out_bucket, f"{prefix}/results.csv", to_results_csv(results))
    print(log_block(results), flush=True)
    summary = RunSummary(
        run_id=run_id,
        config=config,
        variant=request.variant or "serial",
        workers=1,
        inputs=n_data,
        categories=int(cats.size),
        matches_truth=truth_ok,
        compute_s=compute_s,
        runtime_s=runtime,
        edges_per_s=n_data * net.edges / max(compute_s, 1e-9),
    )
    _put(out_bucket, f"{prefix}/summary.json", summary.to_json())
    return summary.to_dict()
