"""A run started the original's way: a deployed coordinator (or the Serial function) invoked with one
of the original's payload files (SDS-Inf-Code's README, step 12).

The payload's own S3 locations name the original's buckets; here, as with `skydeck sdsinf run
--payload`, the model and inputs are the uploaded dataset named by the last part of
`data_params.weights_loc.subfolder`, and the run writes to the stack's buckets (its id is in the
answer, its files under `runs/RUN_ID/` of the metrics bucket, where `skydeck sdsinf show` and
`fetch` find them). The dataset's per-worker files for the payload's worker count are made here
the first time (the original's nnp.K, train.K and conn files). The stack passes its buckets,
topics, table and worker function in the environment (SDSINF_*). A Queue run's queues are made
here and removed by worker 0 at the end.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import boto3

from lambda_src.sdsinf.contracts import RunRequest
from lambda_src.sdsinf.original_files import metrics_loc
from lambda_src.sdsinf.partition_files import prepare
from lambda_src.sdsinf.payload import PayloadError, parse_payload
from lambda_src.sdsinf.run_queues import make_queues, queue_prefix
from lambda_src.sdsinf.shards import Shards
from lambda_src.sdsinf.stored import object_exists

POLL_TIMEOUT_S = 60.0


def is_original_payload(event: Mapping[str, Any]) -> bool:
    return "data_params" in event and "run_id" not in event


def new_run_id() -> str:
    """A run's id: when it started, to the millisecond, then random: ids sort in the order runs started,
    two in the same second included (`sdsinf fetch --repeat` relies on it)."""
    now = time.time()
    millis = int(now * 1000) % 1000
    return f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}-{millis:03x}{uuid.uuid4().hex[:3]}"


def run_request(
    run_id: str,
    config: str,
    data: str,
    weights: str,
    inference: str,
    metrics: str,
    has_truth: bool,
    model_params: dict[str, int],
    invoc_params: dict[str, int],
    partition: str = "row",
) -> RunRequest:
    """What every variant's request holds, however the run was started (`skydeck sdsinf run` or a
    payload sent to a deployed function): the uploaded dataset `data`, where the run writes, its shape."""
    return RunRequest(
        run_id=run_id,
        config=config,
        model={"bucket": weights, "key": f"{data}/network.npz"},
        inputs={"bucket": inference, "key": f"{data}/inputs.npz"},
        truth={"bucket": inference, "key": f"{data}/truth.tsv"} if has_truth else None,
        metrics={"bucket": metrics, "prefix": f"runs/{run_id}"},
        partition=partition,
        model_params=model_params,
        invoc_params=invoc_params,
    )


def request_from_payload(doc: Any, variant: str, env: Mapping[str, str] | None = None) -> RunRequest:
    """The run request skydeck's workers take, from an original payload; raises PayloadError naming the field."""
    env = os.environ if env is None else env
    payload = parse_payload(doc)
    if payload.variant != variant:
        raise PayloadError(
            f"payload: data_params.metrics_loc.filename names a {payload.variant} run ({payload.config}); "
            f"invoke the {payload.variant} function with it, not the {variant} one"
        )
    weights, inference, metrics = (
        env["SDSINF_WEIGHTS_BUCKET"],
        env["SDSINF_INFERENCE_BUCKET"],
        env["SDSINF_METRICS_BUCKET"],
    )
    loc = replace(metrics_loc(doc, metrics), run_columns=payload.run_columns())
    session = boto3.session.Session()
    s3 = session.client("s3")
    data = payload.dataset_hint
    if not object_exists(s3, weights, f"{data}/network.npz"):
        raise PayloadError(
            f"payload: data_params.weights_loc.subfolder names the dataset {data!r} (its last part), and no "
            f"dataset of that name is uploaded; upload one: skydeck sdsinf data upload --data DIR --name {data}"
        )
    run_id = new_run_id()
    request = run_request(
        run_id, payload.config, data, weights, inference, metrics,
        has_truth=object_exists(s3, inference, f"{data}/truth.tsv"),
        # as the original: batchSize x numBatches inputs, whatever numData says (its metrics row says numData)
        model_params={
            "numData": payload.inputs,
            **({"batchSize": payload.batch_size} if payload.batch_size < payload.inputs else {}),
        },
        invoc_params={"bfr": payload.bfr, "nlevels": payload.nlevels, "total_nworkers": payload.total_nworkers},
    )  # fmt: skip
    more: dict[str, Any] = {"started_by": "payload", "metrics_loc": loc.to_dict()}
    if variant in ("object", "queue"):
        buckets = {"weights": weights, "inputs": inference, "connectivity": env["SDSINF_CONNECTIVITY_BUCKET"]}
        more.update(
            worker_function=env["SDSINF_WORKER_FUNCTION"], poll_timeout_s=POLL_TIMEOUT_S,
            parts=prepare(s3, buckets, data, "row", payload.total_nworkers),
        )  # fmt: skip
    if variant == "object":
        more["intermediate"] = Shards.from_env(env).intermediate()
    if variant == "queue":
        shards = Shards.from_env(env)
        run_prefix = queue_prefix(env["SDSINF_QUEUE_PREFIX"], run_id)
        urls = make_queues(
            session.client("sqs"), session.client("sns"), shards.topics, shards.coordination_topic,
            run_prefix, run_id, payload.total_nworkers,
        )  # fmt: skip
        # nobody follows a run started this way: worker 0 removes its queues when it ends
        more["queue"] = {**shards.queue(env["SDSINF_EMPTY_TABLE"], urls), "remove_prefix": run_prefix}
    request = replace(request, **more)
    s3.put_object(
        Bucket=metrics,
        Key=f"{request.prefix}/request.json",
        Body=request.to_json(),
        ServerSideEncryption="AES256",
    )
    return request
