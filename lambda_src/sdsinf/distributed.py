"""The distributed worker shared by the Object and Queue variants; only the transport differs.

The coordinator starts the workers asynchronously as the original's tree: `bfr` children a node,
`nlevels` deep, numbered in pre-order (bfr 2, nlevels 2: the coordinator starts 0 and 3, 0 starts 1
and 2, 3 starts 4 and 5), as the original's p_id + p_iter * p_js + 1 numbers them. Worker k owns a block
of neurons (the 1-D row partition of the original). Per layer it sends every worker that needs
some of its neurons exactly those rows (a block with no nonzero is "empty": the transport marks it
instead of carrying it where it can), receives the rows it needs, and computes its output neurons.
A worker that waits longer than `poll_timeout_s` fails the run cleanly, naming itself, the layer
and whom it waited for. Worker 0 gathers everyone's results and writes the run's files. Every
key, message and mark carries the run id, so a rerun never reads a failed run's data.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache
from typing import Any, Protocol

import boto3
import numpy as np

from lambda_src.sdsinf.contracts import LiveMetric, RunRequest, RunSummary
from lambda_src.sdsinf.diagnosis import WorkerFailure, explain, last_layers
from lambda_src.sdsinf.direct import is_original_payload, request_from_payload
from lambda_src.sdsinf.metrics import columns_for, to_csv, worker_file_columns
from lambda_src.sdsinf.model import CAP
from lambda_src.sdsinf.original_compute import OriginalLayers, owned_rows
from lambda_src.sdsinf.original_files import MetricsLoc, coordinator_answer, write_layerstats, write_master
from lambda_src.sdsinf.partition_files import load_part
from lambda_src.sdsinf.payload import MAX_WORKERS, PayloadError, tree_depth
from lambda_src.sdsinf.sample_results import Maxima, collate, log_block
from lambda_src.sdsinf.sample_results import to_csv as to_results_csv
from lambda_src.sdsinf.wire import codec_for


@lru_cache(maxsize=1)
def session() -> Any:
    return boto3.session.Session()


def s3() -> Any:
    return session().client("s3")


def get(bucket: str, key: str) -> bytes:
    return s3().get_object(Bucket=bucket, Key=key)["Body"].read()


def put(bucket: str, key: str, body: str | bytes) -> None:
    s3().put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="AES256")


def invoke(function: str, event: dict[str, Any]) -> None:
    session().client("lambda").invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(event).encode())


class Stalled(RuntimeError):
    """A worker gave up waiting for others' blocks; `waited_for` names them (they may be dead)."""

    def __init__(self, message: str, layer: int | None, waited_for: list[int]) -> None:
        super().__init__(message)
        self.layer = layer
        self.waited_for = waited_for

    @classmethod
    def waiting(cls, worker: int, timeout_s: float, where: str, layer: int | None, missing: list[int]) -> Stalled:
        """`worker` gave up `where` ("at layer 4", "at the end of batch 2") after `timeout_s`."""
        names = ", ".join(f"{m:04d}" for m in missing)
        return cls(f"worker {worker} waited {timeout_s:.0f}s {where} for worker(s) {names}", layer, missing)


class Transport(Protocol):
    """How one worker's blocks travel. Counters are read into the run's metrics; a transport without
    a kind of traffic (Object publishes nothing and has no table) keeps that counter at zero."""

    publish_calls: int  # SNS publish calls (Queue) or objects written (Object)
    poll_calls: int  # receive polls (Queue) or inbox listings (Object)
    publish_sizes: list[int]  # bytes per publish call, in order
    received_messages: int  # messages (Queue: a block may come in several) or objects read
    received_bytes: int
    table_reads: int  # empty-target items read, as the original counts them
    table_writes: int
    unique_table_reads: int
    null_written: int  # Object, --wire original: "nothing for you" files written (the original's .nul)
    null_observed: int  # ... and seen in the inbox (never read)

    def send(self, layer: int, dst: int, messages: list[str], empty: bool) -> list[int]:
        """Deliver one block, as its messages (lambda_src.sdsinf.wire), to worker dst; returns the sizes
        of the messages it took (none if marked)."""
        ...

    def receive(self, layer: int, senders: list[int], timeout_s: float) -> list[list[str]]:
        """The messages of each non-empty block sent this worker for `layer`, a list a sender; raises
        Stalled on timeout."""
        ...

    def flush(self) -> None:
        """Send what `send` held back (a transport that batches a layer's messages across targets)."""
        ...

    def end_batch(self, batch: int, workers: int, timeout_s: float) -> int:
        """Tell every worker this one finished `batch` and wait until all have; raises Stalled on
        timeout. Returns the folder scans of the wait that count (the original counts Object's)."""
        ...


COORDINATOR = -1  # the original's coordinator id


def children(k: int, bfr: int, nlevels: int, total: int) -> list[int]:
    """The workers that worker k (or the coordinator, COORDINATOR) starts."""
    return list(_tree(bfr, nlevels, total).get(k, ()))


@lru_cache(maxsize=16)
def _tree(bfr: int, nlevels: int, total: int) -> dict[int, tuple[int, ...]]:
    """Each node's children in the original's pre-order numbering: a node takes the next number, then
    its subtree takes the numbers after it. Numbers from `total` on are not started; their subtrees
    would be numbered higher still, so the run's workers stay one connected tree."""
    kids: dict[int, list[int]] = {COORDINATOR: []}
    following = 0

    def visit(parent: int, level: int) -> None:  # recursion only nlevels deep
        nonlocal following
        for _ in range(bfr):
            if following >= total:
                return
            me = following
            following += 1
            kids[parent].append(me)
            kids[me] = []
            if level < nlevels:
                visit(me, level + 1)

    visit(COORDINATOR, 1)
    return {k: tuple(v) for k, v in kids.items()}


def _shape(ip: dict[str, Any]) -> tuple[int, int, int]:
    """(bfr, nlevels, total_nworkers) of a run's tree; nlevels at least as deep as the workers need."""
    total, bfr, nlevels = int(ip["total_nworkers"]), max(1, int(ip.get("bfr", 1))), int(ip.get("nlevels") or 1)
    # checked before anything is computed from them: a tree's size grows as bfr ** nlevels
    for name, value in (("total_nworkers", total), ("bfr", bfr), ("nlevels", nlevels)):
        if not 1 <= value <= MAX_WORKERS:
            raise PayloadError(f"invoc_params.{name} must be from 1 to {MAX_WORKERS}, not {value}")
    return bfr, max(nlevels, tree_depth(bfr, total)), total


def _worker_function(request: RunRequest) -> str:
    """The function each worker of a distributed run is started as; a request without one is refused
    before any worker starts (the text "None" would be invoked, and fail far from the cause)."""
    if not request.worker_function:
        raise ValueError(
            f"run {request.run_id}: the request names no worker_function; a distributed run is started by "
            "skydeck (or a deployed coordinator given a payload), which sets it from the sdsinf stack"
        )
    return request.worker_function


def coordinate(event: dict[str, Any], variant: str) -> dict[str, Any]:
    """Start a run's tree. Invoked with one of the original's payloads (as the original's README does),
    it first turns the payload into a run (lambda_src.sdsinf.direct); a broken payload is answered
    with the field at fault, and nothing starts."""
    from_payload = is_original_payload(event)
    if from_payload:
        try:
            request = request_from_payload(event, variant)
        except PayloadError as exc:
            return coordinator_answer("", None, error=str(exc))
    else:
        request = RunRequest.from_event(event)
    roots = children(COORDINATOR, *_shape(request.invoc_params))
    function = _worker_function(request)
    for k in roots:
        invoke(function, request.for_worker(k).to_event())
    if from_payload and request.metrics_loc:  # answered as the original's coordinator answers its caller
        return coordinator_answer(request.run_id, MetricsLoc.from_dict(request.metrics_loc))
    return {"run_id": request.run_id, "started": roots, "metrics": request.metrics}


def run_worker(request: RunRequest, transport: Transport) -> dict[str, Any]:
    handler_started = time.perf_counter()  # the original's lambda_handler_start_time: children included
    k = request.worker
    bfr, nlevels, total = _shape(request.invoc_params)
    for c in children(k, bfr, nlevels, total):  # pass the start down the tree first: the others must not wait
        invoke(_worker_function(request), request.for_worker(c).to_event())
    out_bucket, prefix = request.metrics_bucket, request.prefix
    started = time.time()
    try:
        result = _work(request, total, transport, handler_started)
    except Stalled as exc:
        failure = {"worker": k, "layer": exc.layer, "reason": str(exc), "waited_for": exc.waited_for}
        put(out_bucket, f"{prefix}/workers/failed-{k:04d}.json", json.dumps(failure))
        result = {"worker": k, "failed": str(exc)}
    except Exception as exc:  # noqa: BLE001 - recorded for the run, then re-raised for Lambda's own log
        failure = {"worker": k, "layer": None, "reason": f"{type(exc).__name__}: {exc}"}
        put(out_bucket, f"{prefix}/workers/failed-{k:04d}.json", json.dumps(failure))
        raise
    if k == 0:
        try:
            gather(request, total, started)
        finally:
            _remove_own_queues(request)
    return result


def _remove_own_queues(request: RunRequest) -> None:
    """A Queue run started from a payload has nobody following it to remove its queues: worker 0 does."""
    q = request.queue or {}
    if q.get("remove_prefix"):
        from lambda_src.sdsinf.run_queues import remove_queues

        topics = [*q["topic_arns"], q["coordination_topic_arn"]]
        remove_queues(session().client("sqs"), session().client("sns"), topics, q["remove_prefix"])


def next_layer(full: np.ndarray, weights: Any, bias: float) -> np.ndarray:
    """One layer of the dense kernel (`--wire compact` and `npz`): the bias on every nonzero of the
    product, then the ReLU and the cap. `--wire original` takes original_compute's path instead."""
    z = np.asarray(full @ weights, dtype=np.float32)
    return np.where(z != 0, np.clip(z + bias, 0.0, CAP), 0.0).astype(np.float32)


def _work(request: RunRequest, total: int, transport: Transport, handler_started: float) -> dict[str, Any]:
    k, out_bucket, prefix = request.worker, request.metrics_bucket, request.prefix
    timeout = request.poll_timeout
    # this worker's own files of the dataset's per-worker set (lambda_src.sdsinf.partition_files)
    part = load_part(get, request.parts or {}, k)
    codec = codec_for(request.wire, request.variant or "object")
    # the original's inf_batch_start_time: taken once, before its Phase-1 scan of sources and targets, and
    # never reset; each batch's end adds the time since then (so a second batch counts the first again)
    batch_clock = time.perf_counter()
    n_data = min(int(request.model_params.get("numData", part.inputs.shape[0])), part.inputs.shape[0])
    layer_plans = part.plans
    mine_at = [np.flatnonzero(o == k) for o in part.owners]
    mine_of = part.columns  # the columns of W this worker computes, per layer
    stats: list[dict[str, Any]] = []
    totals: dict[str, Any] = dict(sent=0, bytes_sent=0, received=0, bytes_received=0, comm=0.0, comp=0.0,
                                  compress=0.0, max_msg=0, batch_s=0.0, max_row_nnz=0, max_batch_msg=0)  # fmt: skip
    position = np.full(part.neurons, -1, dtype=np.int64)
    batch_size = max(1, min(int(request.model_params.get("batchSize", n_data) or n_data), n_data))
    alive_rows: list[np.ndarray] = []
    maxima: list[Maxima] = []  # per input: the original's argmax neuron and maximum over this worker's
    final_neurons = np.flatnonzero(part.owners[-1] == k)
    # W[layer] as the original's worker holds it (its output neurons' rows), for --wire original
    weights_k = (
        [owned_rows(mine_of[i], mine_at[i + 1], part.neurons) for i in range(part.depth)] if codec.counts_stored else []
    )
    runtime_s: float | None = None
    batches = 0
    uncounted_polls = 0
    live_s = 0.0  # time writing the live per-layer metric objects
    for b0 in range(0, n_data, batch_size):
        batches += 1
        b1 = min(b0 + batch_size, n_data)
        held = part.inputs[b0:b1].toarray().astype(np.float32)  # (batch x neurons I hold)
        # --wire original: the layers computed as the original computes them (original_compute)
        orig = (
            OriginalLayers.start(part.inputs[b0:b1], mine_at[0], part.neurons, part.bias)
            if codec.counts_stored
            else None
        )
        for layer, plan in enumerate(layer_plans):
            mine = mine_at[layer]
            step = (batches - 1) * part.depth + layer  # every batch's blocks travel apart
            position[:] = -1
            position[mine] = np.arange(mine.size)
            t_layer = time.perf_counter()
            comm_before, comp_before = totals["comm"], totals["comp"]
            publish_before = transport.publish_calls
            publishes_before = len(transport.publish_sizes)
            polls_before = transport.poll_calls
            nulls_before, null_written_before = transport.null_observed, transport.null_written
            nnz_sent = 0
            null_sent = 0
            # the original's NNZ: this layer's input, as it starts
            nnz_in = orig.nnz() if orig is not None else int(np.count_nonzero(held))
            counts = orig.row_counts() if orig is not None else None
            rows_sent = 0
            sizes: list[int] = []
            targets = 0
            for (src, dst), rows in plan.sends.items():
                if src != k:
                    continue
                t = time.perf_counter()
                if counts is not None:
                    row_nnz = counts[rows]
                else:
                    values = held[:, position[rows]]
                    row_nnz = np.count_nonzero(values, axis=0)  # the original's rows are neurons: inputs using each
                block_nnz = int(row_nnz.sum())
                nnz_sent += block_nnz
                # as the original: rows with an entry, towards a target that gets a message
                rows_sent += int(np.count_nonzero(row_nnz))
                totals["max_row_nnz"] = max(totals["max_row_nnz"], int(row_nnz.max(initial=0)))
                if orig is not None:  # timed as the original times it: zlib and str() alone (codec.clock)
                    messages = codec.encode_rows(orig.rows, rows.tolist(), row_nnz.tolist(), layer)
                else:
                    messages = codec.encode(rows, values, layer)
                    totals["compress"] += time.perf_counter() - t
                t = time.perf_counter()
                null_sent += int(block_nnz == 0)
                sizes += transport.send(step, dst, messages, empty=block_nnz == 0)
                totals["comm"] += time.perf_counter() - t
                targets += 1
            if orig is not None:  # the original's .nul files (Object): not among the files written
                null_sent = transport.null_written - null_written_before
            t = time.perf_counter()
            transport.flush()  # a transport that batches publishes across targets sends them now
            totals["comm"] += time.perf_counter() - t
            if orig is not None:
                # the original's communication timer runs from its row counts through the row extraction,
                # compression, the empty-target writes and the publishes (its compression timer, inside it)
                totals["comm"] = comm_before + (time.perf_counter() - t_layer)
            senders = sorted(src for (src, dst) in plan.sends if dst == k)
            t = time.perf_counter()
            got = transport.receive(step, senders, timeout) if senders else []
            totals["comm"] += time.perf_counter() - t
            null_seen = 0
            t = time.perf_counter()
            if orig is not None:  # each source's chunks apart: the original adds them up as they come
                received = [codec.decode_parts(messages, part.neurons, orig.batch) for messages in got]
                null_seen = transport.null_observed - nulls_before
            else:
                full = np.zeros((held.shape[0], part.neurons), dtype=np.float32)
                full[:, mine] = held
                for messages in got:  # the original counts decompression as compression time too
                    coo = codec.decode(messages, part.neurons, held.shape[0])
                    null_seen += int(not coo.values.any())
                    full[coo.cols, coo.rows] = coo.values
            if orig is not None:  # ... and on receiving, through the decompression of the last message
                totals["comm"] += time.perf_counter() - t
            else:
                totals["compress"] += time.perf_counter() - t
            read_sizes = [sum(len(m) for m in messages) for messages in got]
            # messages as they travelled (a transport that splits blocks counts its parts)
            totals["received"] = transport.received_messages
            totals["bytes_received"] = transport.received_bytes
            t = time.perf_counter()
            if orig is not None:
                orig.step(weights_k[layer], received)
                held = orig.held(mine_at[layer + 1])
            else:
                held = next_layer(full, mine_of[layer], part.bias)
            totals["comp"] += time.perf_counter() - t
            if orig is not None:
                totals["compress"] = codec.clock.seconds
            totals["sent"] += len(sizes)
            totals["bytes_sent"] += sum(sizes)
            totals["max_msg"] = max([totals["max_msg"], *sizes])
            duration = time.perf_counter() - t_layer
            nnz = int(np.count_nonzero(held))
            rows_active = int(np.count_nonzero(held.any(axis=1)))
            publishes = transport.publish_sizes[publishes_before:]
            totals["max_batch_msg"] = max([totals["max_batch_msg"], *publishes])
            per_target = max(targets, 1)  # the original divides by one where there is no target
            stats.append(
                {
                    # as the original counts them: publish calls (SNS batches) and messages *sent* by this
                    # worker; a message is one chunk of a block (lambda_src.sdsinf.wire), so CHUNK_* equal MSG_*
                    "CONFIG": request.config, "WORKER_ID": k, "LAYER": layer,
                    "PUBLISH_NUM": transport.publish_calls - publish_before, **_sizes("PUBLISH", publishes),
                    "MSG_NUM": len(sizes), **_sizes("MSG", sizes),
                    "LS_NUM_TARGETS": targets, "NNZ": nnz_in,
                    "CHUNKS_SENT": len(sizes), "CHUNKS_PER_TARGET": len(sizes) / per_target, **_sizes("CHUNK", sizes),
                    "NNZ_SENT": nnz_sent, "NNZ_PER_TARGET": nnz_sent / per_target,
                    "ROWS_SENT": rows_sent, "ROWS_PER_TARGET": rows_sent / per_target,
                    "LAYER_DURATION": duration,
                    "LAYER_START_TIME": t_layer, "LAYER_END_TIME": t_layer + duration,  # the original's timer
                    # the Object variant's names (the original's object worker): files, not messages
                    "FILES_WRITTEN": len(sizes), **_sizes("FILES_WRITTEN", sizes),
                    "FILES_READ": len(got), **_sizes("FILES_READ", read_sizes),
                    "NULL_FILES_WRITTEN": null_sent, "NULL_FILES_OBSERVED": null_seen,
                    "NUM_FOLDER_SCANS": transport.poll_calls - polls_before, "NUM_TARGETS": targets,
                }
            )  # fmt: skip
            metric = LiveMetric(
                worker=k, batch=batches, layer=layer, layers=part.depth, duration_s=duration, nnz=nnz,
                rows_active=rows_active,
                messages_sent=len(sizes), bytes_sent=sum(sizes), messages_received=len(got),
                bytes_received=sum(read_sizes), publish_calls=transport.publish_calls, poll_calls=transport.poll_calls,
                compression_s=totals["compress"], comm_s=totals["comm"] - comm_before,
                comp_s=totals["comp"] - comp_before,
            )  # fmt: skip
            t = time.perf_counter()
            put(out_bucket, metric.key(prefix), metric.to_json())
            live_s += time.perf_counter() - t  # skydeck's own: the original writes nothing per layer
        alive_rows.append(b0 + np.flatnonzero(held.any(axis=1)))
        maxima.append(Maxima.of_block(held, final_neurons))
        # METRIC_ELAPSED_TIME_BATCH, as the original (with --wire original, less skydeck's live-metric writes)
        totals["batch_s"] += time.perf_counter() - batch_clock - (live_s if orig is not None else 0.0)
        if b1 == n_data:
            # METRIC_LAMBDA_RUNTIME as the original takes it: from the handler's start to the last batch's
            # end, just before the final synchronisation
            runtime_s = time.perf_counter() - handler_started
        if total > 1:
            # the original's batch-end synchronisation, after the batch's time was taken (as there);
            # its counted listings go to the batch's last layer, the original's current layer then
            sync_scans = transport.end_batch(batches, total, timeout)
            stats[-1]["NUM_FOLDER_SCANS"] += sync_scans
            if orig is not None and b1 == n_data:
                # the original's Object worker compiles its stats before its last synchronisation: the
                # run's METRIC_S3_FOLDER_SCANS leaves those listings out
                uncounted_polls += sync_scans
    alive = np.concatenate(alive_rows) if alive_rows else np.zeros(0, dtype=np.int64)
    _, layer_columns = columns_for(request.variant or "object")
    put(out_bucket, f"{prefix}/layerstats-worker-{k:04d}.csv", to_csv(layer_columns, stats))
    if request.metrics_loc:
        loc = MetricsLoc.from_dict(request.metrics_loc)
        write_layerstats(put, loc, k, worker_file_columns(layer_columns), stats)
    done = {
        "worker": k, "alive": alive.tolist(), "n_data": n_data, "batch_size": batch_size, "batches": batches,
        "neurons": part.neurons, "layers": part.depth,
        "edges": part.edges, "publish_calls": transport.publish_calls,
        "polls": transport.poll_calls - uncounted_polls, "null_written": transport.null_written,
        "table_reads": transport.table_reads, "table_writes": transport.table_writes,
        "unique_table_reads": transport.unique_table_reads,
        "max_rows": Maxima.joined(maxima).rows.tolist(), "max_vals": Maxima.joined(maxima).vals.tolist(),
        **totals,
    }  # fmt: skip
    done["runtime_s"] = runtime_s if runtime_s is not None else time.perf_counter() - handler_started
    put(out_bucket, f"{prefix}/workers/done-{k:04d}.json", json.dumps(done))
    return {"worker": k, "alive": int(alive.size)}


def _sizes(name: str, sizes: list[int]) -> dict[str, float]:
    """The original's NAME_TOTAL/MAX/MIN/AVG_SIZE columns over a layer's sizes (0 where there are none)."""
    return {
        f"{name}_TOTAL_SIZE": sum(sizes),
        f"{name}_MAX_SIZE": max(sizes, default=0),
        f"{name}_MIN_SIZE": min(sizes, default=0),
        f"{name}_AVG_SIZE": sum(sizes) / max(len(sizes), 1),
    }


def gather(request: RunRequest, total: int, started: float) -> None:
    out_bucket, prefix = request.metrics_bucket, request.prefix
    timeout = request.poll_timeout * 2
    deadline = time.time() + timeout
    grace = min(5.0, timeout / 4)
    first_failure: float | None = None
    client = s3()
    while True:
        listing = client.list_objects_v2(Bucket=out_bucket, Prefix=f"{prefix}/workers/").get("Contents", [])
        keys = [o["Key"] for o in listing]
        failed = [k for k in keys if "/failed-" in k]
        done = [k for k in keys if "/done-" in k]
        if failed and first_failure is None:
            # the other stalled workers report within moments: their reports tell a dead worker from
            # one that was itself waiting
            first_failure = time.time()
        if len(done) == total or time.time() > deadline or (first_failure and time.time() - first_failure > grace):
            break
        time.sleep(0.1)
    summary: dict[str, Any] = {
        "run_id": request.run_id,
        "config": request.config,
        "variant": request.variant or "object",
        "partition": request.partition,
        "workers": total,
        "runtime_s": time.time() - started,
    }
    if failed or len(done) < total:
        failures = [WorkerFailure.from_dict(json.loads(get(out_bucket, k))) for k in failed]
        finished = {int(k.rsplit("-", 1)[1].removesuffix(".json")) for k in done}
        live = client.get_paginator("list_objects_v2").paginate(Bucket=out_bucket, Prefix=f"{prefix}/live/")
        layers = last_layers(o["Key"] for page in live for o in page.get("Contents", []))
        error = explain(total, failures, finished, layers)
        summary.update(state="FAILED", error=error, inputs=0, categories=0, matches_truth=None,
                       compute_s=0.0, edges_per_s=0.0)  # fmt: skip
        put(out_bucket, f"{prefix}/summary.json", RunSummary.from_dict(summary).to_json())
        return
    parts = [json.loads(get(out_bucket, k)) for k in sorted(done)]
    alive = sorted(set().union(*[set(p["alive"]) for p in parts]))
    cats = np.asarray(alive, dtype=np.int64) + 1
    truth_ok = None
    if request.truth:
        truth = np.asarray([int(x) for x in get(request.truth["bucket"], request.truth["key"]).decode().split()])
        truth_ok = bool(np.array_equal(np.sort(truth[truth <= parts[0]["n_data"]]), cats))
    comp = max(p["comp"] for p in parts)
    ip = request.invoc_params
    totals = {
        "CONFIG": request.config,
        "BFR": ip.get("bfr", 1),
        "NLEVELS": ip.get("nlevels", 1),
        "TOTAL_NWORKERS": total,
        "NUM_NEURONS": parts[0]["neurons"],
        "NUM_LAYERS": parts[0]["layers"],
        "NUM_DATA": parts[0]["n_data"],
        "BATCH_SIZE": parts[0]["batch_size"],
        "NUM_BATCHES": parts[0]["batches"],
        "METRIC_PUBLISH_CALLS": sum(p["publish_calls"] for p in parts),
        "METRIC_NUM_MESSAGES_SENT": sum(p["sent"] for p in parts),
        "METRIC_SIZE_MESSAGES_SENT": sum(p["bytes_sent"] for p in parts),
        "METRIC_RECEIVE_POLL_CALLS": sum(p["polls"] for p in parts),
        "METRIC_NUM_MESSAGES_RECEIVED": sum(p["received"] for p in parts),
        "METRIC_SIZE_MESSAGES_RECEIVED": sum(p["bytes_received"] for p in parts),
        # sums over the workers, as the original's stats_allworkers holds them (its master file's
        # 507.99 s batch time is the 8 workers' layer durations added up)
        "METRIC_ELAPSED_TIME_BATCH": sum(p["batch_s"] for p in parts),
        "METRIC_ELAPSED_TIME_COMMUNICATION": sum(p["comm"] for p in parts),
        "METRIC_ELAPSED_TIME_COMPUTATION": sum(p["comp"] for p in parts),
        "METRIC_ELAPSED_TIME_COMPRESSION": sum(p["compress"] for p in parts),
        "METRIC_LAMBDA_RUNTIME": sum(p["runtime_s"] for p in parts),
        "METRIC_MAX_MESSAGE_SIZE": max(p["max_msg"] for p in parts),
    }
    totals["METRIC_DYNAMODB_ITEMS_WRITTEN"] = sum(p["table_writes"] for p in parts)
    totals["METRIC_DYNAMODB_TOTAL_ITEMS_READ"] = sum(p["table_reads"] for p in parts)
    totals["METRIC_DYNAMODB_UNIQUE_ITEMS_READ"] = sum(p["unique_table_reads"] for p in parts)
    totals["METRIC_MAX_ROW_NNZ"] = max(p["max_row_nnz"] for p in parts)
    totals["METRIC_MAX_BATCH_MSG_SIZE"] = max(p["max_batch_msg"] for p in parts)
    totals.update(
        {
            # the original counts its .nul files among the writes (never among the files read)
            "METRIC_S3_NUM_WRITES": totals["METRIC_NUM_MESSAGES_SENT"] + sum(p.get("null_written", 0) for p in parts),
            "METRIC_S3_NUM_READS": totals["METRIC_NUM_MESSAGES_RECEIVED"],
            "METRIC_S3_WRITE_SIZE": totals["METRIC_SIZE_MESSAGES_SENT"],
            "METRIC_S3_READ_SIZE": totals["METRIC_SIZE_MESSAGES_RECEIVED"],
            "METRIC_S3_FOLDER_SCANS": totals["METRIC_RECEIVE_POLL_CALLS"],
            "METRIC_ELAPSED_TIME_TOTAL": totals["METRIC_ELAPSED_TIME_BATCH"],
            "METRIC_MAX_FILE_SIZE": totals["METRIC_MAX_MESSAGE_SIZE"],
        }
    )
    metric_columns, _ = columns_for(request.variant or "object")
    put(out_bucket, f"{prefix}/metrics.csv", to_csv(metric_columns, [totals]))
    if request.metrics_loc:
        write_master(put, MetricsLoc.from_dict(request.metrics_loc), metric_columns, totals)
    put(out_bucket, f"{prefix}/categories.tsv", "".join(f"{c}\n" for c in cats))
    results = collate([Maxima(np.asarray(p["max_rows"]), np.asarray(p["max_vals"], dtype=np.float32)) for p in parts])
    put(out_bucket, f"{prefix}/results.csv", to_results_csv(results))
    print(log_block(results), flush=True)  # worker 0's log, as the original's
    n_data = parts[0]["n_data"]
    summary.update(
        state="SUCCEEDED",
        inputs=n_data,
        categories=int(cats.size),
        matches_truth=truth_ok,
        compute_s=comp,
        comm_s=max(p["comm"] for p in parts),
        edges_per_s=n_data * parts[0]["edges"] / max(summary["runtime_s"], 1e-9),
    )
    put(out_bucket, f"{prefix}/summary.json", RunSummary.from_dict(summary).to_json())
